//! API server answers and transport failures turned into one-line tflock errors: the
//! HTTP status, the `Status` object's reason and message (Kubernetes API conventions,
//! "Response Status Kind"), and what to do.

use crate::client::Conn;
use serde::Deserialize;
use tflock_core::error::{excerpt, root_cause};
use tflock_core::exchange::Reply;
use tflock_core::{Error, Kind};

/// The `Status` object the API server sends with every failure:
/// `{"kind":"Status","status":"Failure","message":...,"reason":"Conflict","code":409}`.
#[derive(Deserialize, Default)]
struct Status {
    #[serde(default)]
    message: String,
    #[serde(default)]
    reason: String,
}

fn status_of(reply: &Reply) -> Status {
    serde_json::from_slice(&reply.body).unwrap_or_default()
}

/// `HTTP 409 Conflict: Operation cannot be fulfilled on leases...`, escaped and bounded.
pub fn describe(reply: &Reply) -> String {
    let s = status_of(reply);
    let reason = if s.reason.is_empty() {
        reqwest::StatusCode::from_u16(reply.status)
            .ok()
            .and_then(|c| c.canonical_reason())
            .unwrap_or("")
            .to_string()
    } else {
        s.reason
    };
    let message = excerpt(&s.message, 300);
    let mut text = format!("HTTP {}", reply.status);
    if !reason.is_empty() {
        text.push(' ');
        text.push_str(&tflock_core::text::escape_control(&reason));
    }
    if !message.is_empty() {
        text.push_str(": ");
        text.push_str(&message);
    }
    text
}

/// An answer that is not a success, for a request that changes nothing. `namespace` is
/// named in the permission hint.
pub fn status_error(conn: &Conn, what: &str, reply: &Reply, namespace: &str) -> Error {
    let (kind, hint) = match reply.status {
        401 => (
            Kind::Unauthenticated,
            format!(
                "the API server at {} rejected the credentials of {}: refresh them (kubectl get ns works when they are good)",
                conn.server(),
                conn.resolved.source
            ),
        ),
        403 => (
            Kind::PermissionDenied,
            format!("tflock needs get, list and update on leases.coordination.k8s.io in namespace {namespace} (kubectl auth can-i update leases -n {namespace})"),
        ),
        404 => (
            Kind::Backend,
            format!("check the cluster server {} and that it serves coordination.k8s.io/v1", conn.server()),
        ),
        429 | 500..=599 => (
            Kind::Backend,
            "the API server is busy or failing: retry in a moment".to_string(),
        ),
        _ => (Kind::Backend, "check the target".to_string()),
    };
    Error::new(kind, format!("{what} failed: {}", describe(reply)))
        .at(&conn.target)
        .with_hint(hint)
}

/// A request that got no HTTP answer. A write that may have reached the server is
/// [`Kind::OutcomeUnknown`]: the caller settles it by reading again.
pub fn transport(conn: &Conn, what: &str, e: &reqwest::Error, write: bool) -> Error {
    let server = conn.server();
    if e.is_timeout() {
        return timed_out(conn, what, write);
    }
    let cause = root_cause(e);
    if e.is_connect() {
        let tls = cause.contains("certificate") || cause.contains("Certificate");
        let hint = if tls {
            format!(
                "the server's certificate is not trusted: check certificate-authority(-data) of the cluster in {}",
                conn.resolved.source
            )
        } else {
            format!(
                "check the cluster server in {} and the network",
                conn.resolved.source
            )
        };
        return Error::unreachable(&conn.target, what, &server, &cause).with_hint(hint);
    }
    Error::no_answer(&conn.target, what, &server, &cause, write)
        .with_hint("check the network and the API server")
}

pub fn timed_out(conn: &Conn, what: &str, write: bool) -> Error {
    Error::timed_out(&conn.target, what, &conn.server(), conn.timeout, write)
        .with_hint("check the cluster server and the network, or raise --request-timeout")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_bodies_are_described_on_one_line() {
        let r = Reply {
            status: 409,
            body: br#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Operation cannot be fulfilled on leases.coordination.k8s.io \"lock-tfstate-default-x\": the object has been modified;\nplease apply your changes to the latest version and try again","reason":"Conflict","details":{"name":"lock-tfstate-default-x","group":"coordination.k8s.io","kind":"leases"},"code":409}"#.to_vec(),
        };
        let d = describe(&r);
        assert!(
            d.starts_with("HTTP 409 Conflict: Operation cannot be fulfilled"),
            "{d}"
        );
        assert!(!d.contains('\n'));
        let bare = Reply {
            status: 412,
            body: Vec::new(),
        };
        assert_eq!(describe(&bare), "HTTP 412 Precondition Failed");
        let hostile = Reply {
            status: 500,
            body: br#"{"message":"boom\u001b[31m","reason":"x\u0007"}"#.to_vec(),
        };
        assert!(!describe(&hostile).chars().any(|c| c.is_control()));
    }
}
