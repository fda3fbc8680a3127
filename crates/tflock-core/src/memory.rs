//! An in-memory `LockStore` for testing everything above the trait. It keeps the same
//! compare-and-delete contract as the real backends: each lock carries a version in its
//! handle that a break must match.

use crate::error::{Error, Kind};
use crate::lock::{Backend, Handle, Lock};
use crate::store::{BreakOptions, Broken, LockStore, Presence};
use async_trait::async_trait;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// The backend name of in-memory locks.
pub const MEMORY: Backend = Backend::new("memory");

/// What a memory lock's break compares on.
#[derive(Debug, Clone, PartialEq, Eq)]
struct MemHandle {
    location: String,
    version: u64,
}

pub struct MemoryStore {
    target: String,
    locks: Mutex<Vec<Lock>>,
    next_version: AtomicU64,
    fail: Mutex<Option<(Kind, String, Option<String>)>>,
    lose_reply: Mutex<bool>,
    breaks: AtomicU64,
}

impl MemoryStore {
    pub fn new(target: impl Into<String>) -> Self {
        MemoryStore {
            target: target.into(),
            locks: Mutex::new(Vec::new()),
            next_version: AtomicU64::new(1),
            fail: Mutex::new(None),
            lose_reply: Mutex::new(false),
            breaks: AtomicU64::new(0),
        }
    }

    fn handle(&self, location: &str) -> Handle {
        Handle::new(
            &self.target,
            MemHandle {
                location: location.to_string(),
                version: self.next_version.fetch_add(1, Ordering::SeqCst),
            },
        )
    }

    /// A new lock at `location` of this store (not stored: see [`put`](Self::put)).
    pub fn lock_at(&self, location: &str) -> Lock {
        Lock::new(MEMORY, &self.target, location, self.handle(location))
    }

    /// Takes a lock from LockInfo JSON for `location`, replacing any lock there (a new
    /// version, as a re-taken lock would have). Returns the lock as `list` will show it.
    pub fn hold(&self, location: &str, info_json: &str) -> Lock {
        let mut lock = self.lock_at(location).with_info_text(info_json);
        if lock.path.is_empty() {
            lock.path = location.to_string();
        }
        self.put(lock.clone());
        lock
    }

    /// Stores a lock exactly as given (tests that need `held`, `foreign`, ...), with a
    /// fresh version.
    pub fn put(&self, mut lock: Lock) {
        if lock.handle().get::<MemHandle>().is_none() {
            lock.set_handle(self.handle(&lock.location));
        }
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.retain(|l| l.location != lock.location);
        locks.push(lock);
    }

    /// What is stored right now.
    pub fn locks(&self) -> Vec<Lock> {
        self.locks.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Makes every following call fail like `error` (its kind, message and hint), or
    /// succeed again with `None`.
    pub fn fail_with(&self, error: Option<Error>) {
        *self.fail.lock().unwrap_or_else(|p| p.into_inner()) = error.map(|e| {
            (
                e.kind(),
                e.message().to_string(),
                e.hint().map(str::to_string),
            )
        });
    }

    /// Makes the next break apply but lose its reply (a timeout after the store acted).
    pub fn lose_next_reply(&self) {
        *self.lose_reply.lock().unwrap_or_else(|p| p.into_inner()) = true;
    }

    /// How many breaks reached the store (not refused before sending).
    pub fn break_calls(&self) -> u64 {
        self.breaks.load(Ordering::SeqCst)
    }

    fn failure(&self) -> Result<(), Error> {
        match self.fail.lock().unwrap_or_else(|p| p.into_inner()).clone() {
            Some((kind, message, hint)) => {
                let e = Error::new(kind, message).at(&self.target);
                Err(match hint {
                    Some(h) => e.with_hint(h),
                    None => e,
                })
            }
            None => Ok(()),
        }
    }
}

#[async_trait]
impl LockStore for MemoryStore {
    async fn list(&self) -> Result<Vec<Lock>, Error> {
        self.failure()?;
        Ok(self.locks())
    }

    async fn delete_if_unchanged(&self, lock: &Lock, _: &BreakOptions) -> Result<Broken, Error> {
        let want = lock.handle_for::<MemHandle>(&self.target)?;
        self.failure()?;
        self.breaks.fetch_add(1, Ordering::SeqCst);
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        let Some(pos) = locks.iter().position(|l| {
            l.handle().get::<MemHandle>().map(|h| &h.location) == Some(&want.location)
        }) else {
            return Err(Error::changed(
                &self.target,
                format!("{} is gone", want.location),
            ));
        };
        if locks[pos].handle().get::<MemHandle>() != Some(want) {
            return Err(Error::changed(
                &self.target,
                format!("{} was re-taken", want.location),
            ));
        }
        locks.remove(pos);
        let lost = std::mem::take(&mut *self.lose_reply.lock().unwrap_or_else(|p| p.into_inner()));
        if lost {
            return Err(Error::outcome_unknown(&self.target, "no reply within 10s"));
        }
        Ok(Broken {
            removed: vec![want.location.clone()],
            ..Broken::default()
        })
    }

    async fn recheck(&self, lock: &Lock) -> Result<Presence, Error> {
        let want = lock.handle_for::<MemHandle>(&self.target)?;
        self.failure()?;
        let locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        Ok(
            match locks.iter().find_map(|l| {
                l.handle()
                    .get::<MemHandle>()
                    .filter(|h| h.location == want.location)
            }) {
                None => Presence::Gone,
                Some(h) if h == want => Presence::Same,
                Some(_) => Presence::Other,
            },
        )
    }

    fn backend(&self) -> Backend {
        MEMORY
    }

    fn target(&self) -> &str {
        &self.target
    }
}
