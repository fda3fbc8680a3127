//! The local backend: `terraform.tfstate` (and `terraform.tfstate.d/<ws>/terraform.tfstate`)
//! locked with a POSIX `fcntl` write lock, plus `.terraform.tfstate.lock.info` beside it.
//!
//! Held vs leftover: `fcntl(F_GETLK)` on the state file names the holder's PID. A
//! `.lock.info` without a holder is a crash leftover: stale, and safe to remove.

mod discover;
mod fcntl;

use async_trait::async_trait;
use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use tflock_core::{
    Backend, BreakOptions, Broken, Error, Handle, Lock, LockStore, Presence, Target,
};

pub use discover::DRIVER;

/// The backend name of local locks.
pub const LOCAL: Backend = Backend::new("local");

const WORKSPACES_DIR: &str = "terraform.tfstate.d";
const LOCK_INFO_SUFFIX: &str = ".lock.info";

/// What a break of a local lock compares on: the lock info bytes read, beside which state.
struct LocalHandle {
    info_path: PathBuf,
    state: PathBuf,
    /// The `.lock.info` text read; `None` when the state was locked without one.
    raw: Option<String>,
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
        let hint = if e.kind() == ErrorKind::PermissionDenied {
            "run as the user that runs terraform"
        } else {
            "check the path"
        };
        let kind = if e.kind() == ErrorKind::PermissionDenied {
            tflock_core::Kind::PermissionDenied
        } else {
            tflock_core::Kind::Backend
        };
        Error::backend(&self.target, format!("{}: {e}", what.display()))
            .with_kind(kind)
            .with_hint(hint)
            .with_source(e)
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
        let mut names = vec!["terraform.tfstate".to_string()];
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.err(dir, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| self.err(dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(state) = name
                .strip_prefix('.')
                .and_then(|n| n.strip_suffix(LOCK_INFO_SUFFIX))
            {
                if !state.is_empty() && !names.iter().any(|n| n == state) {
                    names.push(state.to_string());
                }
            }
        }
        names.sort();
        Ok(names)
    }

    fn read_lock(
        &self,
        workspace: &str,
        dir: &Path,
        state_name: &str,
    ) -> Result<Option<Lock>, Error> {
        let state = dir.join(state_name);
        let info_path = dir.join(format!(".{state_name}{LOCK_INFO_SUFFIX}"));
        let raw = match std::fs::read(&info_path) {
            Ok(b) => Some(String::from_utf8_lossy(&b).into_owned()),
            Err(e) if e.kind() == ErrorKind::NotFound => None,
            Err(e) => return Err(self.err(&info_path, e)),
        };
        let pid = match File::open(&state) {
            Ok(f) => fcntl::holder(&f).map_err(|e| self.err(&state, e))?,
            Err(e) if e.kind() == ErrorKind::NotFound => None,
            Err(e) => return Err(self.err(&state, e)),
        };
        if raw.is_none() && pid.is_none() {
            return Ok(None);
        }
        let handle = Handle::new(
            &self.target,
            LocalHandle {
                info_path: info_path.clone(),
                state: state.clone(),
                raw: raw.clone(),
            },
        );
        let mut lock = Lock::new(LOCAL, &self.target, info_path.display().to_string(), handle);
        lock.workspace = Some(workspace.to_string());
        lock.path = state.display().to_string();
        lock.held = Some(pid.is_some());
        lock.holder = pid.map(|p| format!("pid {p}"));
        if let Some(p) = pid {
            lock.details.insert("pid".into(), p.to_string());
        }
        lock.details
            .insert("state_file".into(), state.display().to_string());
        match &raw {
            Some(text) => lock = lock.with_info_text(text),
            None => {
                lock.info_error = Some(format!(
                    "{} is locked but has no lock info file yet",
                    state.display()
                ));
            }
        }
        if let Ok(m) = std::fs::metadata(&info_path) {
            lock.stored_at = m.modified().ok().map(Into::into);
        }
        Ok(Some(lock))
    }
}

/// A name beside `info_path` for moving it aside while it is compared.
fn aside_name(info_path: &Path) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let mut name = info_path.as_os_str().to_owned();
    name.push(format!(".tflock-break-{}-{nanos}", std::process::id()));
    PathBuf::from(name)
}

impl LocalStore {
    fn mine<'a>(&self, lock: &'a Lock) -> Result<&'a LocalHandle, Error> {
        lock.handle().get::<LocalHandle>().ok_or_else(|| {
            Error::usage(
                &self.target,
                format!("{} was not listed by the local backend", lock.location),
            )
        })
    }

    /// Moves the lock info aside (atomic), compares what was moved with what was read,
    /// and removes it only if it is the same; otherwise puts it back. Whatever any
    /// terraform writes at the info path meanwhile is a new file and is never touched.
    fn unlink_if_same(&self, info_path: &Path, expected: &str) -> Result<(), Error> {
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
        let moved = std::fs::read(&aside).map(|b| String::from_utf8_lossy(&b).into_owned());
        if moved.as_deref().ok() == Some(expected) {
            std::fs::remove_file(&aside).map_err(|e| self.err(&aside, e))?;
            return Ok(());
        }
        // Not the lock that was read (or unreadable): put it back; a newer one already
        // written at the info path wins.
        let _ = std::fs::hard_link(&aside, info_path);
        let _ = std::fs::remove_file(&aside);
        match moved {
            Err(e) => Err(self.err(info_path, e)),
            Ok(_) => Err(Error::changed(
                &self.target,
                format!("{} holds a different lock now", info_path.display()),
            )),
        }
    }
}

#[async_trait]
impl LockStore for LocalStore {
    fn backend(&self) -> Backend {
        LOCAL
    }

    fn target(&self) -> &str {
        &self.target
    }

    async fn list(&self) -> Result<Vec<Lock>, Error> {
        let mut locks = Vec::new();
        for (workspace, dir) in self.workspace_dirs()? {
            for state in self.states_in(&dir)? {
                if let Some(lock) = self.read_lock(&workspace, &dir, &state)? {
                    locks.push(lock);
                }
            }
        }
        Ok(locks)
    }

    async fn delete_if_unchanged(&self, lock: &Lock, _: &BreakOptions) -> Result<Broken, Error> {
        let h = self.mine(lock)?;
        let Some(expected) = &h.raw else {
            return Err(Error::refused(
                &self.target,
                format!("{} has no lock info to remove", h.state.display()),
            ));
        };
        // Take the same fcntl lock Terraform takes, so no terraform can lock this state
        // between the check and the removal. Opening read-write changes no byte. Without
        // a state file no process can hold its lock; the move-aside below is then the
        // whole guard.
        let _guard = match OpenOptions::new().read(true).write(true).open(&h.state) {
            Ok(f) => {
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
            Err(e) if e.kind() == ErrorKind::NotFound => None,
            Err(e) => return Err(self.err(&h.state, e)),
        };
        self.unlink_if_same(&h.info_path, expected)?;
        Ok(Broken {
            removed: vec![h.info_path.display().to_string()],
            ..Broken::default()
        })
    }

    async fn recheck(&self, lock: &Lock) -> Result<Presence, Error> {
        let h = self.mine(lock)?;
        match std::fs::read(&h.info_path) {
            Ok(b) if h.raw.as_deref() == Some(&*String::from_utf8_lossy(&b)) => Ok(Presence::Same),
            Ok(_) => Ok(Presence::Other),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(Presence::Gone),
            Err(e) => Err(self.err(&h.info_path, e)),
        }
    }
}
