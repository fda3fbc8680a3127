//! The trait every backend implements, and the one way to break a lock through it.

use crate::doctor::{Doctor, Finding, Fix, Repaired};
use crate::error::{Error, Kind};
use crate::lock::{Backend, Lock};
use async_trait::async_trait;
use std::time::Duration;

/// A place where Terraform keeps locks (a directory, a table, a bucket, a container),
/// seen through one backend. Named for statemgr's `Locker`, from the other side: it finds
/// and breaks locks instead of taking them.
///
/// Safety contract:
/// - `list` never returns state objects or digest rows;
/// - `delete_if_unchanged` removes a lock only if it is still exactly the one its
///   [`Handle`](crate::Handle) names (compare-and-delete); if it changed or vanished,
///   nothing is removed and the result is [`Kind::Changed`];
/// - a destructive request is never retried blindly: when its reply is lost the result
///   is [`Kind::OutcomeUnknown`], and [`break_lock`](#method.break_lock) reads again.
///
/// Breaking goes through `<dyn LockStore>::break_lock`, which no backend can override:
/// it refuses what [`check_breakable`] refuses before a backend sees the request.
#[async_trait]
pub trait LockStore: Send + Sync {
    fn backend(&self) -> Backend;
    /// The target as the user can pass it to `-t`.
    fn target(&self) -> &str;
    /// Every lock held in this place.
    async fn list(&self) -> Result<Vec<Lock>, Error>;
    /// Removes the lock `lock.handle()` names if it is still exactly what was read.
    /// Called only by `break_lock`, after its checks.
    async fn delete_if_unchanged(&self, lock: &Lock, opts: &BreakOptions) -> Result<Broken, Error>;
    /// Reads again what `lock.handle()` names: is it gone, the same lock, or another?
    /// Used when a destructive reply was lost.
    async fn recheck(&self, lock: &Lock) -> Result<Presence, Error>;
    /// What guards a break on this store, found out at most once per store (an
    /// S3-compatible store may ignore `If-Match`). Sends nothing destructive to a lock.
    async fn break_guard(&self) -> Result<Guard, Error> {
        Ok(Guard::default())
    }
    /// The doctor this store keeps apart from itself, if any: the default `diagnose` and
    /// `repair` go to it.
    fn doctor(&self) -> Option<&dyn Doctor> {
        None
    }
    /// Problems around this place's locks that block Terraform (a DynamoDB digest that
    /// does not match the state, an orphan lockfile, ...). Reads only.
    async fn diagnose(&self) -> Result<Vec<Finding>, Error> {
        match self.doctor() {
            Some(d) => d.diagnose().await,
            None => Ok(Vec::new()),
        }
    }
    /// Applies a fix `diagnose` offered, only if what it was decided on is unchanged
    /// ([`Kind::Changed`] otherwise). Sent once, like a break.
    async fn repair(&self, fix: &Fix) -> Result<Repaired, Error> {
        match self.doctor() {
            Some(d) => d.repair(fix).await,
            None => Err(Error::refused(
                self.target(),
                format!("this backend cannot apply: {}", fix.description),
            )),
        }
    }
}

impl dyn LockStore + '_ {
    /// Breaks `lock` if it may be broken and is still the lock that was read. The only
    /// way to break a lock: refusals happen here, before anything is sent, and a lost
    /// reply is settled by reading again, never by sending the delete again.
    pub async fn break_lock(&self, lock: &Lock, opts: &BreakOptions) -> Result<Broken, Error> {
        if lock.handle().origin() != self.target() {
            return Err(Error::usage(
                self.target(),
                format!(
                    "lock {} was listed from {}, not from this target; break it through the target that listed it",
                    lock.name(),
                    lock.handle().origin()
                ),
            ));
        }
        check_breakable(lock, opts)?;
        match self.delete_if_unchanged(lock, opts).await {
            Err(e) if e.kind() == Kind::OutcomeUnknown => self.settle(lock, e).await,
            other => other,
        }
    }

    /// A delete was sent and its reply lost: report what is true now.
    async fn settle(&self, lock: &Lock, lost: Error) -> Result<Broken, Error> {
        match self.recheck(lock).await {
            Ok(Presence::Gone) => Ok(Broken {
                removed: vec![lock.location.clone()],
                confirmed_by_reread: true,
                warnings: vec![format!(
                    "the reply was lost ({}); a second read confirmed the lock is gone",
                    lost.message()
                )],
            }),
            Ok(Presence::Same) => Err(Error::backend(
                self.target(),
                format!(
                    "no answer to the delete of {} ({}); a second read shows the lock is still there",
                    lock.location,
                    lost.message()
                ),
            )
            .with_hint("nothing was removed: run the same command again")
            .with_source(lost)),
            Ok(Presence::Other) => Err(Error::changed(
                self.target(),
                format!(
                    "no answer to the delete of {}, and a second read shows another lock there now (re-taken by someone else)",
                    lock.location
                ),
            )),
            Err(e) => Err(Error::outcome_unknown(
                self.target(),
                format!(
                    "no answer to the delete of {} ({}), and reading it again failed: {}",
                    lock.location,
                    lost.message(),
                    e.message()
                ),
            )
            .with_hint("run `tflock list` to see whether the lock is still there")),
        }
    }
}

/// What is where a handle pointed, read again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// No lock there any more.
    Gone,
    /// Exactly the lock that was listed.
    Same,
    /// A different lock (re-taken).
    Other,
}

impl Presence {
    /// What a second read found (`now`, `None` when nothing is there) against what the
    /// listing read.
    pub fn of<T: PartialEq>(now: Option<T>, listed: &T) -> Presence {
        match now {
            None => Presence::Gone,
            Some(now) if now == *listed => Presence::Same,
            Some(_) => Presence::Other,
        }
    }
}

/// Options that change what a break may do.
#[derive(Debug, Clone, Default)]
pub struct BreakOptions {
    /// Break leases that carry no Terraform lock metadata.
    pub force_foreign: bool,
}

/// What a successful break removed, for the user and the audit log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Broken {
    /// One line per thing removed.
    pub removed: Vec<String>,
    /// The delete's reply was lost and a second read proved the lock gone.
    pub confirmed_by_reread: bool,
    /// What the operator should know about how it went (a reply lost, stale metadata
    /// left on an unleased blob).
    pub warnings: Vec<String>,
}

/// How a break is guarded on one store, for the operator and the audit log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Guard {
    /// Facts for the audit record, e.g. `("if_match", "honoured")`.
    pub facts: Vec<(String, String)>,
    /// Set when the store's own precondition is not enforced and the break relies on a
    /// re-check alone: printed on stderr before breaking.
    pub warning: Option<String>,
}

/// Refuses to break what must not be broken, before anything is sent.
pub fn check_breakable(lock: &Lock, opts: &BreakOptions) -> Result<(), Error> {
    if lock.held == Some(true) {
        let who = lock.holder.as_deref().unwrap_or("a live process");
        return Err(Error::refused(
            &lock.target,
            format!(
                "lock {} on {} is held by {who}; stop that process instead of breaking its lock",
                lock.name(),
                lock.path
            ),
        ));
    }
    if lock.foreign && !opts.force_foreign {
        return Err(Error::refused(
            &lock.target,
            format!(
                "{} is locked by something other than Terraform (no lock metadata); pass --force-foreign to break it anyway",
                lock.location
            ),
        ));
    }
    Ok(())
}

/// Settings every backend honours when it connects.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Upper bound for one request including its retries and connecting: a dead endpoint
    /// fails this fast.
    pub timeout: Duration,
    /// How many per-lock reads run at once.
    pub concurrency: usize,
}

impl ConnectOptions {
    /// The default `--concurrency`: object stores serve thousands of reads a second per
    /// prefix, and at tens of ms of latency 64 reads in flight hide most of it.
    pub const DEFAULT_CONCURRENCY: usize = 64;
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            timeout: Duration::from_secs(10),
            concurrency: Self::DEFAULT_CONCURRENCY,
        }
    }
}
