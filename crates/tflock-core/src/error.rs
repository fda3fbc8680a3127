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

/// Collapses every run of whitespace (newlines included) to one space: errors are one line.
pub fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The error and its sources on one line, each text once (SDKs and HTTP clients hide the
/// cause behind "dispatch failure" / "error sending request"):
/// `dispatch failure: io error: ...: Connection refused (os error 111)`.
pub fn source_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(err);
    while let Some(e) = next {
        let text = e.to_string();
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    one_line(&parts.join(": "))
}

/// The innermost non-empty cause, on one line: what really happened
/// (`invalid peer certificate: UnknownIssuer`, `Connection refused (os error 111)`).
pub fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut next = err.source();
    while let Some(e) = next {
        let t = e.to_string();
        if !t.is_empty() {
            text = t;
        }
        next = e.source();
    }
    one_line(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Chain(&'static str, Option<Box<Chain>>);

    impl fmt::Display for Chain {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Chain {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|c| c as _)
        }
    }

    #[test]
    fn causes_on_one_line() {
        let e = Chain(
            "dispatch failure",
            Some(Box::new(Chain(
                "io error:\n  connect",
                Some(Box::new(Chain(
                    "",
                    Some(Box::new(Chain("Connection refused (os error 111)", None))),
                ))),
            ))),
        );
        assert_eq!(
            source_chain(&e),
            "dispatch failure: io error: connect: Connection refused (os error 111)"
        );
        assert_eq!(root_cause(&e), "Connection refused (os error 111)");
        let repeated = Chain(
            "timed out: deadline",
            Some(Box::new(Chain("deadline", None))),
        );
        assert_eq!(source_chain(&repeated), "timed out: deadline");
    }

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
