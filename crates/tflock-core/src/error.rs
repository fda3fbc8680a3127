//! One error type for every backend, with the exit code scripts rely on.

use std::fmt;

/// Exit codes (docs/exit-codes.md).
pub mod exit {
    pub const OK: i32 = 0;
    pub const FAILED: i32 = 1;
    pub const USAGE: i32 = 2;
    pub const NO_SUCH_LOCK: i32 = 3;
    pub const REFUSED: i32 = 4;
    /// `list --exit-code` found a stale lock; `wait` timed out.
    pub const ATTENTION: i32 = 5;
}

/// What went wrong, always naming the target it happened on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The target URL or an option is wrong (exit 2).
    Usage { message: String },
    /// No lock matches (exit 3).
    NoSuchLock { target: String, message: String },
    /// The lock is no longer the one that was read: nothing was removed (exit 4).
    Changed { target: String, message: String },
    /// Breaking was refused on purpose: live holder, foreign lease, no confirmation (exit 4).
    Refused { target: String, message: String },
    /// The backend failed: unreachable, forbidden, missing, throttled (exit 1).
    Backend {
        target: String,
        message: String,
        hint: Option<String>,
    },
}

impl Error {
    pub fn usage(message: impl Into<String>) -> Self {
        Error::Usage {
            message: message.into(),
        }
    }
    pub fn no_such_lock(target: impl Into<String>, message: impl Into<String>) -> Self {
        Error::NoSuchLock {
            target: target.into(),
            message: message.into(),
        }
    }
    pub fn changed(target: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Changed {
            target: target.into(),
            message: message.into(),
        }
    }
    pub fn refused(target: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Refused {
            target: target.into(),
            message: message.into(),
        }
    }
    pub fn backend(target: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Backend {
            target: target.into(),
            message: message.into(),
            hint: None,
        }
    }
    /// Adds (or replaces) the "what to do" part of a backend error.
    pub fn with_hint(self, hint: impl Into<String>) -> Self {
        match self {
            Error::Backend {
                target, message, ..
            } => Error::Backend {
                target,
                message,
                hint: Some(hint.into()),
            },
            other => other,
        }
    }

    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage { .. } => exit::USAGE,
            Error::NoSuchLock { .. } => exit::NO_SUCH_LOCK,
            Error::Changed { .. } | Error::Refused { .. } => exit::REFUSED,
            Error::Backend { .. } => exit::FAILED,
        }
    }

    /// Short machine-readable kind, used in JSON output and the audit log.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Usage { .. } => "usage",
            Error::NoSuchLock { .. } => "no-such-lock",
            Error::Changed { .. } => "changed",
            Error::Refused { .. } => "refused",
            Error::Backend { .. } => "failed",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage { message } => write!(f, "{message}"),
            Error::NoSuchLock { target, message } => write!(f, "{target}: {message}"),
            Error::Changed { target, message } => {
                write!(
                    f,
                    "{target}: {message}; the lock changed since it was read, nothing was removed"
                )
            }
            Error::Refused { target, message } => write!(f, "{target}: {message}"),
            Error::Backend {
                target,
                message,
                hint,
            } => {
                write!(f, "{target}: {message}")?;
                if let Some(hint) = hint {
                    write!(f, " ({hint})")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_with_target_and_hint() {
        let e = Error::backend("s3://b", "NoSuchBucket: bucket b does not exist")
            .with_hint("check the name and region");
        assert_eq!(
            e.to_string(),
            "s3://b: NoSuchBucket: bucket b does not exist (check the name and region)"
        );
        assert_eq!(e.exit_code(), 1);
        assert_eq!(Error::changed("t", "x").exit_code(), 4);
        assert_eq!(Error::no_such_lock("t", "x").exit_code(), 3);
        assert_eq!(Error::usage("x").exit_code(), 2);
        assert!(!Error::changed("t", "lock 1 was re-taken")
            .to_string()
            .contains('\n'));
    }
}
