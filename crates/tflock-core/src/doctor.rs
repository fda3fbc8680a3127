//! `tflock doctor`: problems around locks that keep Terraform from running, each with its
//! evidence, what to do, and (when a backend can make it safely) a conditional fix.

use crate::error::Error;
use crate::lock::Handle;
use async_trait::async_trait;

/// A backend's doctor, when it keeps one apart from its store: the store names it in
/// [`LockStore::doctor`](crate::LockStore::doctor) and `diagnose`/`repair` go to it.
#[async_trait]
pub trait Doctor: Send + Sync {
    async fn diagnose(&self) -> Result<Vec<Finding>, Error>;
    async fn repair(&self, fix: &Fix) -> Result<Repaired, Error>;
}

/// One problem found by [`LockStore::diagnose`](crate::LockStore::diagnose).
#[derive(Debug, Clone)]
pub struct Finding {
    /// Machine name: `digest-mismatch`, `digest-without-state`, `orphan-lockfile`,
    /// `lease-without-metadata`, `halves-disagree`.
    pub kind: &'static str,
    /// The target it was found in.
    pub target: String,
    /// What it is about: a state (`bucket/key`), a row, a blob, an object.
    pub subject: String,
    pub workspace: Option<String>,
    /// One line saying what is wrong.
    pub summary: String,
    /// The evidence, in order (`stored digest`, `MD5 of the state object`, ...).
    pub evidence: Vec<(String, String)>,
    /// What to do about it, for a person (the command to run, or what `--fix` does).
    pub advice: String,
    /// What `tflock doctor --fix` would do, when the backend can do it safely.
    pub fix: Option<Fix>,
}

/// A repair a backend offers: applied only if what it was decided on is unchanged.
#[derive(Debug, Clone)]
pub struct Fix {
    /// One line: `set Digest of tf-locks/bucket/key-md5 to 9a0364b9...`.
    pub description: String,
    handle: Handle,
}

impl Fix {
    pub fn new(description: impl Into<String>, handle: Handle) -> Self {
        Fix {
            description: description.into(),
            handle,
        }
    }
    /// The backend's own data for the repair.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }
}

/// What a repair did, one line per change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Repaired {
    pub done: Vec<String>,
}
