//! The `Lock` record every backend returns, and the staleness rules.

use crate::error::Error;
use crate::lockinfo::LockInfo;
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// Which backend a lock comes from: a short name (`s3`, `dynamodb`, `azure`, `gcs`,
/// `local`, ...) that each backend crate defines for itself, so a new backend needs no
/// change here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Backend(&'static str);

impl Backend {
    pub const fn new(name: &'static str) -> Self {
        Backend(name)
    }
    pub fn as_str(self) -> &'static str {
        self.0
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl Serialize for Backend {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0)
    }
}

/// What a backend needs to break exactly the lock it listed, made by that backend when
/// it listed it and opaque to everyone else (`S3 { key, etag }`, `Dynamo { lock_id,
/// info }`, ...). A break is decided by this typed data, never by parsing `location` or
/// `details`, which are for display only.
#[derive(Clone)]
pub struct Handle {
    /// The target of the store that made it: a lock is only broken through that store.
    origin: Arc<str>,
    value: Arc<dyn Any + Send + Sync>,
}

impl Handle {
    pub fn new<T: Any + Send + Sync>(origin: &str, value: T) -> Self {
        Handle {
            origin: origin.into(),
            value: Arc::new(value),
        }
    }
    /// The target of the store that listed the lock.
    pub fn origin(&self) -> &str {
        &self.origin
    }
    /// The backend's own data, if this handle was made by that backend.
    pub fn get<T: Any>(&self) -> Option<&T> {
        self.value.downcast_ref::<T>()
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Handle({})", self.origin)
    }
}

/// One lock as read from a backend.
#[derive(Debug, Clone, Serialize)]
pub struct Lock {
    pub backend: Backend,
    /// The target it was found in, as the user can pass it to `-t`.
    pub target: String,
    /// The state path as Terraform names it (LockInfo.Path when present).
    pub path: String,
    /// The ID `tflock break --id` and `terraform force-unlock` accept. Empty when unknown
    /// (undecodable metadata); such a lock can still be addressed by `location`.
    pub id: String,
    /// Other IDs that name this lock only (the LockInfo.ID of a GCS lock).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// Terraform workspace, when the backend's naming tells it.
    pub workspace: Option<String>,
    /// Where the lock itself lives: a file, object, row or blob. Display only.
    pub location: String,
    /// The state this lock protects, as people know it (`gs://b/app/default.tfstate`),
    /// when it differs from `path`.
    pub state: Option<String>,
    /// Whether the holder is known to be alive (true), known gone (false), or unknowable.
    pub held: Option<bool>,
    /// Who holds it at the storage level, when known (a PID, a lease state).
    pub holder: Option<String>,
    /// Locked by something that is not Terraform (a lease without Terraform metadata).
    pub foreign: bool,
    /// The decoded LockInfo, or `None` with `info_error` saying why.
    pub info: Option<LockInfo>,
    pub info_error: Option<String>,
    /// When the storage says the lock was written, if it says so (fallback for `Created`).
    pub stored_at: Option<DateTime<Utc>>,
    /// Backend facts shown by `inspect` (etag, generation, lease state, pid, ...).
    /// Display only.
    pub details: BTreeMap<String, String>,
    #[serde(skip)]
    handle: Handle,
}

impl Lock {
    /// A lock with the required fields; the rest default to "unknown". `handle` is what
    /// a break of this lock will compare and delete on.
    pub fn new(
        backend: Backend,
        target: impl Into<String>,
        location: impl Into<String>,
        handle: Handle,
    ) -> Self {
        Lock {
            backend,
            target: target.into(),
            path: String::new(),
            id: String::new(),
            aliases: Vec::new(),
            workspace: None,
            location: location.into(),
            state: None,
            held: None,
            holder: None,
            foreign: false,
            info: None,
            info_error: None,
            stored_at: None,
            details: BTreeMap::new(),
            handle,
        }
    }

    /// What the backend that listed this lock will compare and delete on.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// The handle as the backend's own type, for the store with target `target` to
    /// break it; a usage error when another kind of store listed the lock.
    pub fn handle_for<T: Any>(&self, target: &str) -> Result<&T, Error> {
        self.handle.get::<T>().ok_or_else(|| {
            Error::usage(
                target,
                format!("{} was not listed from this target", self.location),
            )
        })
    }

    /// Replaces the handle (a backend that learns more while reading the lock).
    pub fn set_handle(&mut self, handle: Handle) {
        self.handle = handle;
    }

    /// The lock of `holder` (a session, a Lease holder: the lock ID) with the LockInfo
    /// `raw` read beside it. Info that names another ID is not this holder's: the lock is
    /// then foreign, and the ID the info names is returned for the message.
    pub fn with_holder_info(self, holder: &str, raw: &str) -> (Self, Option<String>) {
        let mut lock = self.with_info_text(raw);
        lock.id = holder.to_string();
        let other = lock.info.as_ref().map(|i| &i.id).filter(|id| *id != holder);
        let other = other.cloned();
        lock.foreign |= other.is_some();
        (lock, other)
    }

    /// Decodes `raw` as LockInfo and fills `info`/`info_error`, `id` (unless the backend
    /// already set it: GCS, Azure) and `path` (when Terraform recorded one).
    pub fn with_info_text(mut self, raw: &str) -> Self {
        match LockInfo::parse(raw) {
            Ok(info) => {
                if info.id.is_empty() && self.id.is_empty() {
                    self.info_error = Some("lock info has no ID".into());
                }
                if self.id.is_empty() {
                    self.id = info.id.clone();
                }
                if !info.path.is_empty() {
                    self.path = info.path.clone();
                }
                self.info = Some(info);
            }
            Err(e) => self.info_error = Some(e.0),
        }
        self
    }

    /// How to name this lock in a message: its ID, else where it lives.
    pub fn name(&self) -> &str {
        if self.id.is_empty() {
            &self.location
        } else {
            &self.id
        }
    }

    /// `Created` from the LockInfo, else the storage timestamp.
    pub fn created(&self) -> Option<DateTime<Utc>> {
        self.info
            .as_ref()
            .and_then(|i| i.created)
            .or(self.stored_at)
    }

    pub fn age(&self, now: DateTime<Utc>) -> Option<Duration> {
        self.created().map(|c| (now - c).max(Duration::zero()))
    }

    /// Does `query` name this lock (ID, alias, or location)?
    pub fn matches_id(&self, query: &str) -> bool {
        let q = query.trim();
        !q.is_empty() && (self.id == q || self.aliases.iter().any(|a| a == q) || self.location == q)
    }

    /// Does `query` name the state this lock protects?
    pub fn matches_path(&self, query: &str) -> bool {
        let q = query.trim().trim_end_matches('/');
        !q.is_empty()
            && (self.path == q
                || self.location == q
                || self.path.ends_with(&format!("/{q}"))
                || self.location.ends_with(&format!("/{q}")))
    }

    pub fn status(&self, now: DateTime<Utc>, stale_after: Duration) -> Status {
        if self.held == Some(true) {
            Status::Held
        } else if self.foreign {
            Status::Foreign
        } else if self.held == Some(false) {
            Status::Stale
        } else if self.info_error.is_some() {
            Status::Unreadable
        } else {
            match self.age(now) {
                Some(age) if age >= stale_after => Status::Stale,
                _ => Status::Active,
            }
        }
    }
}

/// How a lock looks to an operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The holder is known to be alive (a local process holds the fcntl lock).
    Held,
    /// The holder cannot be seen and the lock is younger than the stale threshold.
    Active,
    /// The holder is known gone, or the lock is older than the threshold.
    Stale,
    /// A lease or lock not taken by Terraform: never broken without an explicit flag.
    Foreign,
    /// The lock metadata could not be decoded: look before breaking.
    Unreadable,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Held => "held",
            Status::Active => "active",
            Status::Stale => "stale",
            Status::Foreign => "foreign",
            Status::Unreadable => "unreadable",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S3: Backend = Backend::new("s3");

    fn h() -> Handle {
        Handle::new("s3://b", ())
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn status_rules() {
        let now = at("2026-11-26T12:00:00Z");
        let hour = Duration::hours(1);
        let base = Lock::new(S3, "s3://b", "s3://b/k.tflock", h())
            .with_info_text(r#"{"ID":"a","Created":"2026-11-26T11:30:00Z"}"#);
        assert_eq!(base.status(now, hour), Status::Active);
        assert_eq!(base.status(now, Duration::minutes(30)), Status::Stale);
        let mut held = base.clone();
        held.held = Some(true);
        assert_eq!(held.status(now, Duration::zero()), Status::Held);
        let mut gone = base.clone();
        gone.held = Some(false);
        assert_eq!(gone.status(now, hour), Status::Stale);
        let mut foreign = base.clone();
        foreign.foreign = true;
        assert_eq!(foreign.status(now, Duration::zero()), Status::Foreign);
        let bad = Lock::new(S3, "s3://b", "x", h()).with_info_text("garbage");
        assert_eq!(bad.status(now, Duration::zero()), Status::Unreadable);
        assert!(bad.id.is_empty());
    }

    #[test]
    fn info_fills_id_and_path_but_keeps_backend_id() {
        let mut l = Lock::new(Backend::new("gcs"), "gs://b", "gs://b/default.tflock", h());
        l.id = "1795691440789684".into();
        let l = l.with_info_text(r#"{"ID":"uuid-1","Path":"gs://b/default.tflock"}"#);
        assert_eq!(l.id, "1795691440789684");
        assert_eq!(l.path, "gs://b/default.tflock");
        assert!(l.info_error.is_none());
        let no_id = Lock::new(S3, "s3://b", "x", h()).with_info_text(r#"{"Who":"a@b"}"#);
        assert_eq!(no_id.info_error.as_deref(), Some("lock info has no ID"));
    }

    #[test]
    fn matching() {
        let mut l = Lock::new(S3, "s3://b", "s3://b/app/terraform.tfstate.tflock", h())
            .with_info_text(r#"{"ID":"abc","Path":"b/app/terraform.tfstate"}"#);
        l.aliases.push("alias".into());
        assert!(
            l.matches_id("abc")
                && l.matches_id("alias")
                && l.matches_id("s3://b/app/terraform.tfstate.tflock")
        );
        assert!(!l.matches_id("ab") && !l.matches_id(""));
        assert!(l.matches_path("b/app/terraform.tfstate"));
        assert!(l.matches_path("app/terraform.tfstate"));
        assert!(!l.matches_path("pp/terraform.tfstate"));
    }
}
