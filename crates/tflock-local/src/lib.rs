//! The local backend: `terraform.tfstate` (and `terraform.tfstate.d/<ws>/terraform.tfstate`)
//! locked with a POSIX `fcntl` write lock, plus `.terraform.tfstate.lock.info` beside it.
//!
//! Held vs leftover: `fcntl(F_GETLK)` on the state file names the holder's PID. A
//! `.lock.info` without a holder is a crash leftover: stale, and safe to remove.

mod fcntl;

use async_trait::async_trait;
use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use tflock_core::{check_breakable, Backend, BreakOptions, Broken, Error, Lock, LockStore, Target};

const WORKSPACES_DIR: &str = "terraform.tfstate.d";
const LOCK_INFO_SUFFIX: &str = ".lock.info";

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
            Ok(_) => Err(Error::usage(format!(
                "{}: not a directory (pass the Terraform working directory)",
                target.url
            ))),
            Err(e) => Err(Error::usage(format!(
                "{}: cannot open directory ({e})",
                target.url
            ))),
        }
    }

    fn err(&self, what: &Path, e: std::io::Error) -> Error {
        let hint = if e.kind() == ErrorKind::PermissionDenied {
            "run as the user that runs terraform"
        } else {
            "check the path"
        };
        Error::backend(&self.target, format!("{}: {e}", what.display())).with_hint(hint)
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
        let mut lock = Lock::new(
            Backend::Local,
            &self.target,
            info_path.display().to_string(),
        );
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
            Some(text) => {
                lock = lock.with_info_text(text);
                lock.snapshot.raw = Some(text.clone());
            }
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

#[async_trait]
impl LockStore for LocalStore {
    fn backend(&self) -> Backend {
        Backend::Local
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

    async fn break_lock(&self, lock: &Lock, opts: &BreakOptions) -> Result<Broken, Error> {
        check_breakable(lock, opts)?;
        let info_path = PathBuf::from(&lock.location);
        let state = lock
            .details
            .get("state_file")
            .map(PathBuf::from)
            .ok_or_else(|| {
                Error::usage(format!(
                    "{}: {} was not read by the local backend",
                    self.target, lock.location
                ))
            })?;
        let Some(expected) = &lock.snapshot.raw else {
            return Err(Error::refused(
                &self.target,
                format!("{} has no lock info to remove", state.display()),
            ));
        };
        // Take the same fcntl lock Terraform takes, so no terraform can lock this state
        // between the check and the removal. Opening read-write changes no byte.
        let _guard = match OpenOptions::new().read(true).write(true).open(&state) {
            Ok(f) => {
                if !fcntl::try_lock(&f).map_err(|e| self.err(&state, e))? {
                    let pid = fcntl::holder(&f)
                        .ok()
                        .flatten()
                        .map(|p| format!(" (pid {p})"))
                        .unwrap_or_default();
                    return Err(Error::changed(
                        &self.target,
                        format!("{} is now held by a live process{pid}", state.display()),
                    ));
                }
                Some(f)
            }
            Err(e) if e.kind() == ErrorKind::NotFound => None,
            Err(e) => return Err(self.err(&state, e)),
        };
        let now = match std::fs::read(&info_path) {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(Error::changed(
                    &self.target,
                    format!("{} is gone", info_path.display()),
                ));
            }
            Err(e) => return Err(self.err(&info_path, e)),
        };
        if &now != expected {
            return Err(Error::changed(
                &self.target,
                format!("{} holds a different lock now", info_path.display()),
            ));
        }
        std::fs::remove_file(&info_path).map_err(|e| self.err(&info_path, e))?;
        Ok(Broken {
            removed: vec![info_path.display().to_string()],
        })
    }
}
