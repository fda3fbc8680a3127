//! The audit log: one JSON line per break attempt, so "who removed the lock at 03:12?"
//! has an answer. Opened before anything is broken: no log, no break.

use serde_json::{json, Value};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use tflock_core::{Error, Lock};

pub struct AuditLog {
    path: PathBuf,
    file: File,
    operator: String,
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

impl AuditLog {
    pub fn open(explicit: Option<&Path>) -> Result<AuditLog, Error> {
        let path = default_path(explicit).ok_or_else(|| {
            Error::usage("no place for the audit log: set HOME, XDG_STATE_HOME or TFLOCK_AUDIT_LOG, or pass --audit-log FILE")
        })?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| audit_error(&path, e))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| audit_error(&path, e))?;
        Ok(AuditLog {
            path,
            file,
            operator: operator(),
        })
    }

    /// Appends one record. `outcome`: broken, changed, refused, failed.
    pub fn record(
        &mut self,
        locks: &[&Lock],
        outcome: &str,
        error: Option<&Error>,
    ) -> Result<(), Error> {
        let Some(first) = locks.first() else {
            return Ok(());
        };
        let line = json!({
            "time": tflock_core::lockinfo::go_time(Some(chrono::Utc::now())),
            "operator": self.operator,
            "backend": first.backend.as_str(),
            "target": first.target,
            "path": first.path,
            "id": first.id,
            "locations": locks.iter().map(|l| Value::String(l.location.clone())).collect::<Vec<_>>(),
            "lock_info": first.info,
            "outcome": outcome,
            "error": error.map(|e| e.to_string()),
        });
        writeln!(self.file, "{line}")
            .and_then(|_| self.file.flush())
            .map_err(|e| audit_error(&self.path, e))
    }
}

fn audit_error(path: &Path, e: std::io::Error) -> Error {
    Error::backend(
        path.display().to_string(),
        format!("cannot write the audit log: {e}"),
    )
    .with_hint("pass --audit-log FILE or set TFLOCK_AUDIT_LOG to a writable file")
}

/// `user@host`, as Terraform writes `Who`.
pub fn operator() -> String {
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
    format!("{user}@{host}")
}
