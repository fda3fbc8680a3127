//! The audit log: "who removed the lock at 03:12?" always has an answer.
//!
//! For every lock location a break touches, one `intent` record is written (and synced)
//! before the delete is sent, and one `outcome` record after it. A break does not happen
//! if its intent cannot be recorded. A `tflock doctor --fix` repair is recorded the same
//! way (`"action": "fix"`, tied by `fix_id`). Each record is one JSON line, serialised into one
//! buffer and written with one `write` on an `O_APPEND` file under an advisory `flock`,
//! then `fsync`ed: concurrent tflock runs never interleave lines, and a crash loses at most
//! the record being written.

use serde_json::{json, Map, Value};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use tflock_core::{Error, Finding, Guard, Kind, Lock, Repaired};

pub struct AuditLog {
    path: PathBuf,
    file: File,
    /// Fields every record carries: version, operator, command line.
    common: Map<String, Value>,
}

/// `--audit-log FILE`, else `$TFLOCK_AUDIT_LOG`, else `$XDG_STATE_HOME/tflock/audit.jsonl`
/// (`~/.local/state/tflock/audit.jsonl`).
pub fn default_path(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = explicit {
        return Some(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os("TFLOCK_AUDIT_LOG").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let base = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local").join("state"))
        })?;
    Some(base.join("tflock").join("audit.jsonl"))
}

/// How one location's break ended, as recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Removed,
    /// A doctor fix was applied.
    Applied,
    Changed,
    Refused,
    Failed,
    /// The reply was lost and reading again could not tell.
    Unknown,
}

impl Outcome {
    pub fn of(result: &Result<tflock_core::Broken, Error>) -> Outcome {
        match result {
            Ok(_) => Outcome::Removed,
            Err(e) => Outcome::of_error(e),
        }
    }
    /// How a doctor fix ended.
    pub fn of_fix(result: &Result<Repaired, Error>) -> Outcome {
        match result {
            Ok(_) => Outcome::Applied,
            Err(e) => Outcome::of_error(e),
        }
    }
    fn of_error(e: &Error) -> Outcome {
        match e.kind() {
            Kind::Changed => Outcome::Changed,
            Kind::Refused => Outcome::Refused,
            Kind::OutcomeUnknown => Outcome::Unknown,
            _ => Outcome::Failed,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Removed => "removed",
            Outcome::Applied => "applied",
            Outcome::Changed => "changed",
            Outcome::Refused => "refused",
            Outcome::Failed => "failed",
            Outcome::Unknown => "unknown",
        }
    }
}

impl AuditLog {
    /// Opens (creating) the log before anything is broken: no log, no break.
    pub fn open(explicit: Option<&Path>, command: &[String]) -> Result<AuditLog, Error> {
        let path = default_path(explicit).ok_or_else(|| {
            Error::new(
                Kind::Usage,
                "no place for the audit log: set HOME, XDG_STATE_HOME or TFLOCK_AUDIT_LOG, or pass --audit-log FILE",
            )
        })?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| audit_error(&path, e))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| audit_error(&path, e))?;
        let meta = file.metadata().map_err(|e| audit_error(&path, e))?;
        if !meta.is_file() {
            return Err(audit_error(
                &path,
                std::io::Error::other("not a regular file"),
            ));
        }
        let (user, host) = operator();
        let mut common = Map::new();
        common.insert("tflock_version".into(), env!("CARGO_PKG_VERSION").into());
        common.insert("operator".into(), format!("{user}@{host}").into());
        common.insert("user".into(), user.into());
        common.insert("host".into(), host.into());
        common.insert(
            "command".into(),
            command
                .iter()
                .map(|a| Value::String(tflock_core::redact::url(a)))
                .collect(),
        );
        Ok(AuditLog { path, file, common })
    }

    /// Records that `lock` is about to be deleted. `break_id` ties it to its outcome.
    pub fn intent(&mut self, break_id: &str, lock: &Lock, guard: &Guard) -> Result<(), Error> {
        let record = self.record("intent", break_id, lock, guard);
        self.append(record)
    }

    /// Records how the delete of `lock` ended.
    pub fn outcome(
        &mut self,
        break_id: &str,
        lock: &Lock,
        guard: &Guard,
        outcome: Outcome,
        detail: Option<&str>,
    ) -> Result<(), Error> {
        let mut record = self.record("outcome", break_id, lock, guard);
        record.insert("outcome".into(), outcome.as_str().into());
        record.insert("detail".into(), detail.map(tflock_core::redact::url).into());
        self.append(record)
    }

    /// Records that the fix of `finding` is about to be applied. `fix_id` ties it to its
    /// outcome.
    pub fn fix_intent(&mut self, fix_id: &str, finding: &Finding) -> Result<(), Error> {
        let record = self.fix_record("intent", fix_id, finding);
        self.append(record)
    }

    /// Records how the fix of `finding` ended, and what it changed.
    pub fn fix_outcome(
        &mut self,
        fix_id: &str,
        finding: &Finding,
        outcome: Outcome,
        detail: Option<&str>,
        done: &[String],
    ) -> Result<(), Error> {
        let mut record = self.fix_record("outcome", fix_id, finding);
        record.insert("outcome".into(), outcome.as_str().into());
        record.insert("detail".into(), detail.map(tflock_core::redact::url).into());
        record.insert("done".into(), json!(done));
        self.append(record)
    }

    fn fix_record(&self, event: &str, fix_id: &str, f: &Finding) -> Map<String, Value> {
        let mut r = Map::new();
        r.insert("event".into(), event.into());
        r.insert("action".into(), "fix".into());
        r.insert(
            "time".into(),
            tflock_core::lockinfo::go_time(Some(chrono::Utc::now())).into(),
        );
        r.insert("fix_id".into(), fix_id.into());
        r.extend(self.common.clone());
        r.insert("kind".into(), f.kind.into());
        r.insert("target".into(), f.target.clone().into());
        r.insert("subject".into(), f.subject.clone().into());
        r.insert("workspace".into(), json!(f.workspace));
        r.insert(
            "fix".into(),
            json!(f.fix.as_ref().map(|x| x.description.as_str())),
        );
        let evidence: Map<String, Value> = f
            .evidence
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        r.insert("evidence".into(), Value::Object(evidence));
        r
    }

    fn record(
        &self,
        event: &str,
        break_id: &str,
        lock: &Lock,
        guard: &Guard,
    ) -> Map<String, Value> {
        let mut r = Map::new();
        r.insert("event".into(), event.into());
        r.insert(
            "time".into(),
            tflock_core::lockinfo::go_time(Some(chrono::Utc::now())).into(),
        );
        r.insert("break_id".into(), break_id.into());
        r.extend(self.common.clone());
        r.insert("backend".into(), lock.backend.as_str().into());
        r.insert("target".into(), lock.target.clone().into());
        r.insert("location".into(), lock.location.clone().into());
        r.insert("path".into(), lock.path.clone().into());
        r.insert("id".into(), lock.id.clone().into());
        r.insert("lock_info".into(), json!(lock.info));
        r.insert("info_error".into(), json!(lock.info_error));
        for (k, v) in &guard.facts {
            r.insert(k.clone(), v.clone().into());
        }
        r
    }

    /// One record: one buffer, one write on the O_APPEND file under `flock`, then fsync.
    fn append(&mut self, record: Map<String, Value>) -> Result<(), Error> {
        let mut line = serde_json::to_vec(&Value::Object(record))
            .map_err(|e| audit_error(&self.path, std::io::Error::other(e)))?;
        line.push(b'\n');
        let fd = self.file.as_raw_fd();
        // SAFETY: a valid fd owned by self.file; flock has no memory effects.
        if unsafe { libc::flock(fd, libc::LOCK_EX) } != 0 {
            return Err(audit_error(&self.path, std::io::Error::last_os_error()));
        }
        let written = self
            .file
            .write_all(&line)
            .and_then(|_| self.file.sync_data());
        // SAFETY: as above.
        unsafe { libc::flock(fd, libc::LOCK_UN) };
        written.map_err(|e| audit_error(&self.path, e))
    }
}

/// A fresh id for one break attempt, tying its intent to its outcome.
pub fn break_id() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!(
        "{:x}-{}-{}",
        nanos,
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

fn audit_error(path: &Path, e: std::io::Error) -> Error {
    Error::backend(
        path.display().to_string(),
        format!("cannot write the audit log: {e}"),
    )
    .with_hint("pass --audit-log FILE or set TFLOCK_AUDIT_LOG to a writable file")
}

/// `(user, host)`, as Terraform writes `Who` (`user@host`).
pub fn operator() -> (String, String) {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| {
            // SAFETY: getuid has no failure mode.
            format!("uid{}", unsafe { libc::getuid() })
        });
    let mut buf = [0u8; 256];
    // SAFETY: buf is valid for its length; gethostname NUL-terminates on success.
    let host = if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0 {
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        String::from_utf8_lossy(&buf[..end]).into_owned()
    } else {
        String::new()
    };
    (user, host)
}
