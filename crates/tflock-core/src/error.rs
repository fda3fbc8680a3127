//! One error type for every backend: what kind of failure, on which target, what to do
//! about it, and the cause it came from. Exit codes are the CLI's business: it maps
//! [`Kind`] to them in one place.

use std::fmt;

/// What went wrong, as a script or the CLI needs to tell it apart. One agreed kind per
/// situation across every backend (the conformance suite checks the common ones).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A wrong target, option or flag: the user's to fix.
    Usage,
    /// No lock matches what was asked for.
    NotFound,
    /// The lock is no longer the one that was read (re-taken or already gone): nothing
    /// was removed.
    Changed,
    /// Refused on purpose: a live holder, a foreign lease, no confirmation.
    Refused,
    /// No usable credentials, or credentials the service does not accept.
    Unauthenticated,
    /// Credentials the service accepts, without the permission needed.
    PermissionDenied,
    /// The endpoint cannot be reached (DNS, connection refused, TLS).
    Unreachable,
    /// No answer within the request timeout.
    Timeout,
    /// A destructive request was sent and its reply was lost: whether it was applied is
    /// not known until the lock is read again.
    OutcomeUnknown,
    /// Anything else the backend reported: a missing bucket, throttling, a server error.
    Backend,
}

impl Kind {
    /// Short machine-readable name, used in JSON output and the audit log.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Usage => "usage",
            Kind::NotFound => "no-such-lock",
            Kind::Changed => "changed",
            Kind::Refused => "refused",
            Kind::Unauthenticated => "unauthenticated",
            Kind::PermissionDenied => "permission-denied",
            Kind::Unreachable => "unreachable",
            Kind::Timeout => "timeout",
            Kind::OutcomeUnknown => "unknown",
            Kind::Backend => "failed",
        }
    }
}

type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A failure, always one line when shown: `<target>: <message> (<hint>)`.
#[derive(Debug)]
pub struct Error {
    kind: Kind,
    target: Option<String>,
    message: String,
    hint: Option<String>,
    source: Option<Source>,
}

/// One `Error::<name>(target, message)` constructor per kind backends raise often, each
/// `Error::new(kind, message).at(target)`.
macro_rules! at_target {
    ($($name:ident => $kind:ident),* $(,)?) => {
        $(
            #[doc = concat!("`Error::new(Kind::", stringify!($kind), ", message).at(target)`.")]
            pub fn $name(target: impl Into<String>, message: impl Into<String>) -> Self {
                Error::new(Kind::$kind, message).at(target)
            }
        )*
    };
}

impl Error {
    /// An error of `kind` not tied to one target (a bad flag, a config file).
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        Error {
            kind,
            target: None,
            message: one_line(&message.into()),
            hint: None,
            source: None,
        }
    }

    /// The same error, about `target` (ignored when empty).
    pub fn at(mut self, target: impl Into<String>) -> Self {
        let target = target.into();
        self.target = (!target.is_empty()).then_some(target);
        self
    }

    /// Adds (or replaces) the "what to do" part.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(one_line(&hint.into()));
        self
    }

    /// Keeps the error this one came from (an SDK error, an io error).
    pub fn with_source(mut self, source: impl Into<Source>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// The same error with another kind (a backend that knows better than the layer below).
    pub fn with_kind(mut self, kind: Kind) -> Self {
        self.kind = kind;
        self
    }

    /// `WHAT failed: no answer from SERVER within Ns`: a request without an answer in
    /// time. A write's outcome is then unknown ([`Kind::OutcomeUnknown`]).
    pub fn timed_out(
        target: &str,
        what: &str,
        server: &str,
        timeout: std::time::Duration,
        write: bool,
    ) -> Error {
        let secs = timeout.as_secs_f32();
        Error::new(
            Kind::Timeout,
            format!("{what} failed: no answer from {server} within {secs}s"),
        )
        .at(target)
        .unknown_if(write)
    }

    /// `WHAT failed: cannot connect to SERVER (CAUSE)`: the request never left, so
    /// nothing was changed.
    pub fn unreachable(target: &str, what: &str, server: &str, cause: &str) -> Error {
        let msg = format!("{what} failed: cannot connect to {server} ({cause})");
        Error::new(Kind::Unreachable, msg).at(target)
    }

    /// `WHAT failed: no answer from SERVER (CAUSE)`: the connection failed after the
    /// request may have left; a write's outcome is then unknown.
    pub fn no_answer(target: &str, what: &str, server: &str, cause: &str, write: bool) -> Error {
        let msg = format!("{what} failed: no answer from {server} ({cause})");
        Error::new(Kind::Backend, msg).at(target).unknown_if(write)
    }

    /// The same error, as `OutcomeUnknown` when the destructive request it is about
    /// `maybe_applied` (no reply, or a [`may_have_applied`] status): it is settled by
    /// reading again, never by sending it again.
    pub fn unknown_if(self, maybe_applied: bool) -> Self {
        if maybe_applied {
            self.with_kind(Kind::OutcomeUnknown)
        } else {
            self
        }
    }

    at_target! {
        usage => Usage,
        not_found => NotFound,
        changed => Changed,
        refused => Refused,
        backend => Backend,
        outcome_unknown => OutcomeUnknown,
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }
    pub fn target(&self) -> Option<&str> {
        self.target.as_deref()
    }
    pub fn message(&self) -> &str {
        &self.message
    }
    pub fn hint(&self) -> Option<&str> {
        self.hint.as_deref()
    }
    pub fn is(&self, kind: Kind) -> bool {
        self.kind == kind
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(t) = &self.target {
            write!(f, "{t}: ")?;
        }
        f.write_str(&self.message)?;
        if self.kind == Kind::Changed {
            f.write_str("; the lock changed since it was read, nothing was removed")?;
        }
        if let Some(hint) = &self.hint {
            write!(f, " ({hint})")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

/// Whether a destructive request answered with HTTP `status` may have been applied: a
/// 5xx other than 503 can come after the change; below 500, and 503, nothing was done.
pub fn may_have_applied(status: u16) -> bool {
    status >= 500 && status != 503
}

/// Collapses every run of whitespace (newlines included) to one space: errors are one line.
pub fn one_line(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for word in s.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// What a server said, fit for a one-line message: one line, control characters escaped,
/// at most `max` characters (a hostile or huge error body stays readable).
pub fn excerpt(s: &str, max: usize) -> String {
    crate::text::escape_control(&one_line(s))
        .chars()
        .take(max)
        .collect()
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
    fn only_an_answer_that_may_come_after_the_change_leaves_the_outcome_unknown() {
        for status in [200, 204, 400, 404, 409, 412, 429, 499, 503] {
            assert!(!may_have_applied(status), "{status}");
        }
        for status in [500, 502, 504, 599] {
            assert!(may_have_applied(status), "{status}");
        }
        let e = || Error::backend("t", "HTTP 500");
        assert_eq!(e().unknown_if(true).kind(), Kind::OutcomeUnknown);
        assert_eq!(e().unknown_if(false).kind(), Kind::Backend);
        assert_eq!(e().unknown_if(true).to_string(), e().to_string());
    }

    #[test]
    fn one_line_with_target_hint_and_source() {
        let e = Error::backend("s3://b", "NoSuchBucket: bucket b\ndoes not exist")
            .with_hint("check the name and region")
            .with_source(Chain("NoSuchBucket", None));
        assert_eq!(
            e.to_string(),
            "s3://b: NoSuchBucket: bucket b does not exist (check the name and region)"
        );
        assert_eq!(e.kind(), Kind::Backend);
        assert_eq!(
            std::error::Error::source(&e).map(|s| s.to_string()),
            Some("NoSuchBucket".to_string())
        );
        // Every kind takes a hint (none is silently dropped).
        let u = Error::usage("gs://b", "bad").with_hint("do this");
        assert_eq!(u.to_string(), "gs://b: bad (do this)");
        let c = Error::changed("t", "lock 1 was re-taken");
        assert!(c.to_string().ends_with("nothing was removed"), "{c}");
        assert!(!c.to_string().contains('\n'));
        assert_eq!(
            Error::new(Kind::Usage, "--x: bad").at("").to_string(),
            "--x: bad"
        );
    }
}
