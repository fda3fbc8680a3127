//! The `Lock` record every backend returns, and the staleness rules.

use crate::lockinfo::LockInfo;
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;

/// Which kind of backend holds a lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Local,
    Dynamodb,
    S3,
    Azure,
    Gcs,
    /// The in-memory store used by tests above the trait.
    Memory,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Local => "local",
            Backend::Dynamodb => "dynamodb",
            Backend::S3 => "s3",
            Backend::Azure => "azure",
            Backend::Gcs => "gcs",
            Backend::Memory => "memory",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a backend read, kept to make the break a compare-and-delete on exactly that.
/// Never shown to users; each backend fills the parts it compares on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// The exact lock text read (DynamoDB `Info`, a lockfile body, a `.lock.info`).
    pub raw: Option<String>,
    /// The object's ETag (S3, Azure).
    pub etag: Option<String>,
    /// A version number or lease id (GCS generation, Azure lease id).
    pub version: Option<String>,
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
    /// Where the lock itself lives: a file, object, row or blob.
    pub location: String,
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
    pub details: BTreeMap<String, String>,
    #[serde(skip)]
    pub snapshot: Snapshot,
}

impl Lock {
    /// A lock with the required fields; the rest default to "unknown".
    pub fn new(backend: Backend, target: impl Into<String>, location: impl Into<String>) -> Self {
        Lock {
            backend,
            target: target.into(),
            path: String::new(),
            id: String::new(),
            aliases: Vec::new(),
            workspace: None,
            location: location.into(),
            held: None,
            holder: None,
            foreign: false,
            info: None,
            info_error: None,
            stored_at: None,
            details: BTreeMap::new(),
            snapshot: Snapshot::default(),
        }
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

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn status_rules() {
        let now = at("2026-11-26T12:00:00Z");
        let hour = Duration::hours(1);
        let base = Lock::new(Backend::S3, "s3://b", "s3://b/k.tflock")
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
        let bad = Lock::new(Backend::S3, "s3://b", "x").with_info_text("garbage");
        assert_eq!(bad.status(now, Duration::zero()), Status::Unreadable);
        assert!(bad.id.is_empty());
    }

    #[test]
    fn info_fills_id_and_path_but_keeps_backend_id() {
        let mut l = Lock::new(Backend::Gcs, "gs://b", "gs://b/default.tflock");
        l.id = "1795691440789684".into();
        let l = l.with_info_text(r#"{"ID":"uuid-1","Path":"gs://b/default.tflock"}"#);
        assert_eq!(l.id, "1795691440789684");
        assert_eq!(l.path, "gs://b/default.tflock");
        assert!(l.info_error.is_none());
        let no_id = Lock::new(Backend::S3, "s3://b", "x").with_info_text(r#"{"Who":"a@b"}"#);
        assert_eq!(no_id.info_error.as_deref(), Some("lock info has no ID"));
    }

    #[test]
    fn matching() {
        let mut l = Lock::new(Backend::S3, "s3://b", "s3://b/app/terraform.tfstate.tflock")
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
