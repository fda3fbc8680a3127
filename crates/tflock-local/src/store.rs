//! The locks of one Terraform working directory: each state file's fcntl holder and its
//! `.lock.info`, read without ever blocking, and a break that moves the info aside and
//! compares what it moved.

use crate::fcntl::{self, StateFileError};
use crate::naming::{info_name, state_of_info, STATE_FILE, WORKSPACES_DIR};
use async_trait::async_trait;
use std::fs::File;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use tflock_core::fsread::{read_bounded, ReadError, ReadErrorKind, LOCK_INFO_MAX};
use tflock_core::{
    Backend, BreakOptions, Broken, Error, Handle, Kind, Lock, LockStore, Presence, Target,
};

/// The backend name of local locks.
pub const LOCAL: Backend = Backend::new("local");

/// What a break of a local lock compares on: the lock info bytes read, beside which state.
struct LocalHandle {
    info_path: PathBuf,
    state: PathBuf,
    /// The `.lock.info` bytes read; `None` when there was none, or it could not be read
    /// (then there is nothing to compare, and nothing is removed).
    raw: Option<Vec<u8>>,
}

/// The lock info file of one state, as read.
enum Info {
    Missing,
    Read(Vec<u8>),
    /// Not read: a FIFO, device, directory, more than 1 MiB, unreadable. The reason.
    Refused(String),
}

/// Who holds the fcntl lock of one state file, as far as can be told.
enum Holder {
    None,
    Pid(i32),
    /// The state file is not a regular file or cannot be opened: the reason.
    Unknown(String),
}

/// Locks of the local backend in one Terraform working directory.
pub struct LocalStore {
    target: String,
    dir: PathBuf,
}

impl LocalStore {
    pub fn new(target: impl Into<String>, dir: impl Into<PathBuf>) -> Self {
        LocalStore {
            target: target.into(),
            dir: dir.into(),
        }
    }

    /// `file://DIR` or a plain directory.
    pub fn open(target: &Target) -> Result<Self, Error> {
        target.check_params(&[])?;
        let dir = PathBuf::from(&target.path);
        match std::fs::metadata(&dir) {
            Ok(m) if m.is_dir() => Ok(LocalStore::new(&target.url, dir)),
            Ok(_) => Err(Error::usage(
                &target.url,
                "not a directory (pass the Terraform working directory)",
            )),
            Err(e) => Err(Error::usage(
                &target.url,
                format!("cannot open directory ({e})"),
            )),
        }
    }

    fn err(&self, what: &Path, e: std::io::Error) -> Error {
        let denied = e.kind() == ErrorKind::PermissionDenied;
        let hint = if denied {
            "run as the user that runs terraform"
        } else {
            "check the path"
        };
        Error::backend(&self.target, format!("{}: {e}", what.display()))
            .with_kind(if denied {
                Kind::PermissionDenied
            } else {
                Kind::Backend
            })
            .with_hint(hint)
            .with_source(e)
    }

    fn read_err(&self, e: ReadError) -> Error {
        let kind = match e.kind() {
            ReadErrorKind::PermissionDenied => Kind::PermissionDenied,
            _ => Kind::Backend,
        };
        Error::backend(&self.target, e.to_string())
            .with_kind(kind)
            .with_hint("look at the file before breaking anything")
    }

    /// Every `(workspace, directory)` that may hold a state: the working directory for
    /// `default`, and one per `terraform.tfstate.d/<ws>`.
    fn workspace_dirs(&self) -> Result<Vec<(String, PathBuf)>, Error> {
        let mut dirs = vec![("default".to_string(), self.dir.clone())];
        let ws_root = self.dir.join(WORKSPACES_DIR);
        match std::fs::read_dir(&ws_root) {
            Ok(entries) => {
                let mut found = Vec::new();
                for entry in entries {
                    let entry = entry.map_err(|e| self.err(&ws_root, e))?;
                    if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                        found.push((
                            entry.file_name().to_string_lossy().into_owned(),
                            entry.path(),
                        ));
                    }
                }
                found.sort();
                dirs.extend(found);
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(self.err(&ws_root, e)),
        }
        Ok(dirs)
    }

    /// State file names in `dir` that have a `.<name>.lock.info` or are `terraform.tfstate`.
    fn states_in(&self, dir: &Path) -> Result<Vec<String>, Error> {
        let mut names = vec![STATE_FILE.to_string()];
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.err(dir, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| self.err(dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(state) = state_of_info(&name) {
                if !names.iter().any(|n| n == state) {
                    names.push(state.to_string());
                }
            }
        }
        names.sort();
        Ok(names)
    }

    /// The info file, read with the bounds of every lock read: never blocks, never more
    /// than 1 MiB, regular files only.
    fn read_info(info_path: &Path) -> Info {
        match read_bounded(info_path, LOCK_INFO_MAX) {
            Ok(bytes) => Info::Read(bytes),
            Err(e) if e.kind() == ReadErrorKind::NotFound => Info::Missing,
            Err(e) => Info::Refused(e.to_string()),
        }
    }

    fn holder_of(state: &Path) -> Holder {
        let refused = |why: String| {
            Holder::Unknown(format!(
                "{}: {why}; whether a process holds it cannot be told",
                state.display()
            ))
        };
        match fcntl::open_state(state, false) {
            Ok(None) => Holder::None,
            Ok(Some(f)) => match fcntl::holder(&f) {
                Ok(Some(pid)) => Holder::Pid(pid),
                Ok(None) => Holder::None,
                Err(e) => refused(e.to_string()),
            },
            Err(StateFileError::NotRegular(what)) => {
                refused(format!("is {what}, not a regular file"))
            }
            Err(StateFileError::Io(e)) => refused(e.to_string()),
        }
    }

    fn read_lock(&self, workspace: &str, dir: &Path, state_name: &str) -> Option<Lock> {
        let state = dir.join(state_name);
        let info_path = dir.join(info_name(state_name));
        let info = Self::read_info(&info_path);
        let holder = Self::holder_of(&state);
        if matches!((&info, &holder), (Info::Missing, Holder::None)) {
            return None;
        }
        let raw = match &info {
            Info::Read(bytes) => Some(bytes.clone()),
            _ => None,
        };
        let handle = Handle::new(
            &self.target,
            LocalHandle {
                info_path: info_path.clone(),
                state: state.clone(),
                raw,
            },
        );
        let mut lock = Lock::new(LOCAL, &self.target, info_path.display().to_string(), handle);
        lock.workspace = Some(workspace.to_string());
        lock.path = state.display().to_string();
        lock.details
            .insert("state_file".into(), state.display().to_string());
        let mut problems = Vec::new();
        match &holder {
            Holder::Pid(p) => {
                lock.held = Some(true);
                lock.holder = Some(format!("pid {p}"));
                lock.details.insert("pid".into(), p.to_string());
            }
            // A refused info file is shown as unreadable, not stale: it cannot be broken,
            // and what it is needs a look first.
            Holder::None if matches!(info, Info::Refused(_)) => {
                lock.details.insert("fcntl_holder".into(), "none".into());
            }
            Holder::None => lock.held = Some(false),
            Holder::Unknown(why) => problems.push(why.clone()),
        }
        match &info {
            Info::Read(bytes) => lock = lock.with_info_text(&String::from_utf8_lossy(bytes)),
            Info::Refused(why) => problems.push(why.clone()),
            Info::Missing => problems.push(format!(
                "{} is locked but has no lock info file yet",
                state.display()
            )),
        }
        if !problems.is_empty() {
            // A problem reading what is around the lock outranks a decode error.
            if let Some(decode) = lock.info_error.take() {
                problems.push(decode);
            }
            lock.info = None;
            lock.info_error = Some(problems.join("; "));
        }
        if let Ok(m) = std::fs::metadata(&info_path) {
            lock.stored_at = m.modified().ok().map(Into::into);
        }
        Some(lock)
    }

    /// Moves the lock info aside (atomic), compares what was moved with what was read,
    /// and removes it only if it is the same; otherwise puts it back. Whatever any
    /// terraform writes at the info path meanwhile is a new file and is never touched.
    fn unlink_if_same(&self, info_path: &Path, expected: &[u8]) -> Result<(), Error> {
        let aside = aside_name(info_path);
        match std::fs::rename(info_path, &aside) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(Error::changed(
                    &self.target,
                    format!("{} is gone", info_path.display()),
                ))
            }
            Err(e) => return Err(self.err(info_path, e)),
        }
        // Bounded and non-blocking: what was moved may have been swapped for a FIFO.
        let moved = read_bounded(&aside, LOCK_INFO_MAX);
        if moved.as_deref().ok() == Some(expected) {
            std::fs::remove_file(&aside).map_err(|e| self.err(&aside, e))?;
            return Ok(());
        }
        // Not the lock that was read (or not readable): put it back, unless a newer one
        // was already written at the info path (that one wins).
        put_back(&aside, info_path);
        match moved {
            Err(e) => Err(self.read_err(e)),
            Ok(_) => Err(Error::changed(
                &self.target,
                format!("{} holds a different lock now", info_path.display()),
            )),
        }
    }
}

/// A name beside `info_path` for moving it aside while it is compared.
fn aside_name(info_path: &Path) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let mut name = info_path.as_os_str().to_owned();
    name.push(format!(
        ".tflock-break-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    PathBuf::from(name)
}

/// Moves `aside` back to `info_path` unless something is there now: atomically, for any
/// kind of file (`renameat2(RENAME_NOREPLACE)`); where the filesystem cannot, with a hard
/// link (fails if the name exists) and an unlink.
fn put_back(aside: &Path, info_path: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let (Ok(from), Ok(to)) = (
        std::ffi::CString::new(aside.as_os_str().as_bytes()),
        std::ffi::CString::new(info_path.as_os_str().as_bytes()),
    ) else {
        return;
    };
    // SAFETY: two valid NUL-terminated paths, relative to the current directory.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if rc == 0 {
        return;
    }
    let err = std::io::Error::last_os_error();
    if err.kind() == ErrorKind::AlreadyExists {
        // A newer lock info is there: the moved one is outdated.
        let _ = std::fs::remove_file(aside);
        return;
    }
    if std::fs::hard_link(aside, info_path).is_ok() || std::fs::symlink_metadata(info_path).is_ok()
    {
        let _ = std::fs::remove_file(aside);
    }
}

#[async_trait]
impl LockStore for LocalStore {
    async fn list(&self) -> Result<Vec<Lock>, Error> {
        let mut locks = Vec::new();
        for (workspace, dir) in self.workspace_dirs()? {
            for state in self.states_in(&dir)? {
                locks.extend(self.read_lock(&workspace, &dir, &state));
            }
        }
        Ok(locks)
    }

    async fn delete_if_unchanged(&self, lock: &Lock, _: &BreakOptions) -> Result<Broken, Error> {
        let h = lock.handle_for::<LocalHandle>(&self.target)?;
        let Some(expected) = &h.raw else {
            return Err(Error::refused(
                &self.target,
                format!(
                    "{} has no lock info that was read; tflock removes only what it read",
                    h.state.display()
                ),
            ));
        };
        // Take the same fcntl lock Terraform takes, so no terraform can lock this state
        // between the check and the removal. Opening read-write changes no byte. Without
        // a state file no process can hold its lock; the move-aside below is then the
        // whole guard.
        let _guard: Option<File> = match fcntl::open_state(&h.state, true) {
            Ok(Some(f)) => {
                if !fcntl::try_lock(&f).map_err(|e| self.err(&h.state, e))? {
                    let pid = fcntl::holder(&f)
                        .ok()
                        .flatten()
                        .map(|p| format!(" (pid {p})"))
                        .unwrap_or_default();
                    return Err(Error::changed(
                        &self.target,
                        format!("{} is now held by a live process{pid}", h.state.display()),
                    ));
                }
                Some(f)
            }
            Ok(None) => None,
            Err(StateFileError::NotRegular(what)) => {
                return Err(Error::refused(
                    &self.target,
                    format!(
                        "{} is {what}, not a regular file: cannot take its lock to guard the break",
                        h.state.display()
                    ),
                ))
            }
            Err(StateFileError::Io(e)) => return Err(self.err(&h.state, e)),
        };
        self.unlink_if_same(&h.info_path, expected)?;
        Ok(Broken {
            removed: vec![h.info_path.display().to_string()],
            ..Broken::default()
        })
    }

    async fn recheck(&self, lock: &Lock) -> Result<Presence, Error> {
        let h = lock.handle_for::<LocalHandle>(&self.target)?;
        match Self::read_info(&h.info_path) {
            Info::Read(b) if h.raw.as_deref() == Some(&b[..]) => Ok(Presence::Same),
            Info::Read(_) => Ok(Presence::Other),
            Info::Missing => Ok(Presence::Gone),
            Info::Refused(why) => Err(Error::backend(&self.target, why)),
        }
    }

    fn backend(&self) -> Backend {
        LOCAL
    }

    fn target(&self) -> &str {
        &self.target
    }
}
