//! Consul answers and transport failures as one-line tflock errors. Consul's HTTP API
//! answers failures with a plain-text body (`Permission denied`, `ACL not found`,
//! `No path to datacenter`) and mostly status 403 / 500.

use crate::client::Conn;
use tflock_core::error::{excerpt, root_cause};
use tflock_core::exchange::Reply;
use tflock_core::{Error, Kind};

/// `true`/`false` answers of writes (`?cas=`, `?acquire=`, session destroy).
pub fn is_true(reply: &Reply) -> bool {
    String::from_utf8_lossy(&reply.body).trim() == "true"
}

/// `HTTP 403: Permission denied`, escaped and bounded.
pub fn describe(reply: &Reply) -> String {
    let text = excerpt(&String::from_utf8_lossy(&reply.body), 300);
    if text.is_empty() {
        format!("HTTP {}", reply.status)
    } else {
        format!("HTTP {}: {text}", reply.status)
    }
}

pub fn status_error(conn: &Conn, what: &str, reply: &Reply, acl: &str) -> Error {
    let body = String::from_utf8_lossy(&reply.body).to_string();
    let (kind, hint) = match reply.status {
        401 | 403 if body.contains("ACL not found") || (body.contains("token") && conn.auth.token.is_none()) => (
            Kind::Unauthenticated,
            format!(
                "the Consul token ({}) was not accepted: set CONSUL_HTTP_TOKEN or the backend's access_token",
                conn.auth.token_from.unwrap_or("none set")
            ),
        ),
        401 | 403 => (
            Kind::PermissionDenied,
            format!(
                "the token ({}) needs {acl}",
                conn.auth.token_from.unwrap_or("none set")
            ),
        ),
        500 if body.contains("No path to datacenter") => (
            Kind::Backend,
            format!(
                "datacenter {} is not known to {}: check the backend's datacenter (?datacenter=)",
                conn.datacenter.as_deref().unwrap_or("(default)"),
                conn.server()
            ),
        ),
        429 | 500..=599 => (
            Kind::Backend,
            "the Consul agent is failing or has no leader: retry in a moment".to_string(),
        ),
        _ => (Kind::Backend, "check the target".to_string()),
    };
    let dc = conn
        .datacenter
        .as_deref()
        .map(|d| format!(" in datacenter {d}"))
        .unwrap_or_default();
    Error::new(kind, format!("{what}{dc} failed: {}", describe(reply)))
        .at(&conn.target)
        .with_hint(hint)
}

pub fn transport(conn: &Conn, what: &str, e: &reqwest::Error, write: bool) -> Error {
    if e.is_timeout() {
        return timed_out(conn, what, write);
    }
    let (cause, server) = (root_cause(e), conn.server());
    if e.is_connect() {
        return Error::unreachable(&conn.target, what, &server, &cause).with_hint(
            "check the address (the backend's address, CONSUL_HTTP_ADDR), the scheme and the network",
        );
    }
    Error::no_answer(&conn.target, what, &server, &cause, write)
        .with_hint("check the network and the Consul agent")
}

pub fn timed_out(conn: &Conn, what: &str, write: bool) -> Error {
    Error::timed_out(&conn.target, what, &conn.server(), conn.timeout, write)
        .with_hint("check the address and the network, or raise --request-timeout")
}
