//! An in-memory `LockStore` for testing everything above the trait. It keeps the same
//! compare-and-delete contract as the real backends: each lock carries a version that a
//! break must match.

use crate::error::Error;
use crate::lock::{Backend, Lock};
use crate::store::{check_breakable, BreakOptions, Broken, LockStore};
use async_trait::async_trait;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

pub struct MemoryStore {
    target: String,
    locks: Mutex<Vec<Lock>>,
    next_version: AtomicU64,
    fail: Mutex<Option<Error>>,
    breaks: AtomicU64,
}

impl MemoryStore {
    pub fn new(target: impl Into<String>) -> Self {
        MemoryStore {
            target: target.into(),
            locks: Mutex::new(Vec::new()),
            next_version: AtomicU64::new(1),
            fail: Mutex::new(None),
            breaks: AtomicU64::new(0),
        }
    }

    /// Takes a lock from LockInfo JSON for `location`, replacing any lock there (a new
    /// version, as a re-taken lock would have). Returns the lock as `list` will show it.
    pub fn hold(&self, location: &str, info_json: &str) -> Lock {
        let version = self.next_version.fetch_add(1, Ordering::SeqCst).to_string();
        let mut lock = Lock::new(Backend::Memory, &self.target, location).with_info_text(info_json);
        if lock.path.is_empty() {
            lock.path = location.to_string();
        }
        lock.snapshot.raw = Some(info_json.to_string());
        lock.snapshot.version = Some(version.clone());
        lock.details.insert("version".into(), version);
        self.put(lock.clone());
        lock
    }

    /// Stores a lock exactly as given (tests that need `held`, `foreign`, ...).
    pub fn put(&self, mut lock: Lock) {
        if lock.snapshot.version.is_none() {
            lock.snapshot.version =
                Some(self.next_version.fetch_add(1, Ordering::SeqCst).to_string());
        }
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.retain(|l| l.location != lock.location);
        locks.push(lock);
    }

    /// What is stored right now.
    pub fn locks(&self) -> Vec<Lock> {
        self.locks.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Makes every following call fail with `error` (or succeed again with `None`).
    pub fn fail_with(&self, error: Option<Error>) {
        *self.fail.lock().unwrap_or_else(|p| p.into_inner()) = error;
    }

    /// How many breaks reached the store (not refused before sending).
    pub fn break_calls(&self) -> u64 {
        self.breaks.load(Ordering::SeqCst)
    }

    fn failure(&self) -> Result<(), Error> {
        match self.fail.lock().unwrap_or_else(|p| p.into_inner()).clone() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

#[async_trait]
impl LockStore for MemoryStore {
    fn backend(&self) -> Backend {
        Backend::Memory
    }

    fn target(&self) -> &str {
        &self.target
    }

    async fn list(&self) -> Result<Vec<Lock>, Error> {
        self.failure()?;
        Ok(self.locks())
    }

    async fn break_lock(&self, lock: &Lock, opts: &BreakOptions) -> Result<Broken, Error> {
        check_breakable(lock, opts)?;
        self.failure()?;
        self.breaks.fetch_add(1, Ordering::SeqCst);
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        let Some(pos) = locks.iter().position(|l| l.location == lock.location) else {
            return Err(Error::changed(
                &self.target,
                format!("{} is gone", lock.location),
            ));
        };
        if locks[pos].snapshot != lock.snapshot {
            return Err(Error::changed(
                &self.target,
                format!("{} was re-taken", lock.location),
            ));
        }
        locks.remove(pos);
        Ok(Broken {
            removed: vec![lock.location.clone()],
        })
    }
}
