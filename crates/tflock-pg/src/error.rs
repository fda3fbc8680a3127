//! PostgreSQL and driver errors as tflock errors: the kind by SQLSTATE or by what failed
//! (connecting, TLS, login), the server's own message, and what to do, on one line with
//! the password blanked.

use crate::client::Conn;
use tflock_core::error::{one_line, root_cause};
use tflock_core::{Error, Kind};
use tokio_postgres::error::SqlState;

/// Who may end another session's backend, said whenever that is refused.
pub const RIGHTS_HINT: &str = "ending a session that holds a lock needs superuser, the same role as the session (terraform's conn_str user), or membership in both pg_signal_backend and pg_read_all_stats (GRANT pg_signal_backend, pg_read_all_stats TO <role>); superuser sessions only a superuser";

/// Maps `err`, raised while doing `action` on `conn`'s server.
pub fn pg_error(conn: &Conn, action: &str, err: &tokio_postgres::Error) -> Error {
    let ep = &conn.endpoint;
    let at = ep.address();
    let (kind, detail, hint) = match err.as_db_error() {
        Some(db) => {
            let code = db.code();
            let (kind, hint) = if *code == SqlState::INVALID_PASSWORD
                || *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
            {
                let mut hint = format!(
                    "check the password for role {} (conn_str, PGPASSWORD or ~/.pgpass) and that pg_hba.conf admits it from this host",
                    ep.user
                );
                if let Some(note) = &conn.passfile_note {
                    hint.push_str(&format!("; {note}"));
                }
                (Kind::Unauthenticated, Some(hint))
            } else if *code == SqlState::INVALID_CATALOG_NAME {
                (
                    Kind::Backend,
                    Some(format!(
                        "no database {} at {at}: check the database in conn_str or the target",
                        ep.dbname
                    )),
                )
            } else if *code == SqlState::UNDEFINED_TABLE || *code == SqlState::INVALID_SCHEMA_NAME {
                (
                    Kind::Backend,
                    Some("check schema_name and table_name (OpenTofu) of the backend block; terraform init creates the table".into()),
                )
            } else if *code == SqlState::INSUFFICIENT_PRIVILEGE {
                let hint = if action.starts_with("ending") {
                    RIGHTS_HINT.to_string()
                } else {
                    format!(
                        "role {} needs USAGE on the schema and SELECT on the states table (what terraform itself uses)",
                        ep.user
                    )
                };
                (Kind::PermissionDenied, Some(hint))
            } else if *code == SqlState::TOO_MANY_CONNECTIONS {
                (
                    Kind::Backend,
                    Some("the server has no free connection slot: try again shortly".into()),
                )
            } else if *code == SqlState::CANNOT_CONNECT_NOW
                || *code == SqlState::ADMIN_SHUTDOWN
                || *code == SqlState::CRASH_SHUTDOWN
            {
                (
                    Kind::Unreachable,
                    Some("the server is starting up or shutting down: try again shortly".into()),
                )
            } else if *code == SqlState::QUERY_CANCELED {
                (
                    Kind::Timeout,
                    Some("the query was cancelled (statement_timeout?): try again".into()),
                )
            } else {
                (Kind::Backend, None)
            };
            let mut detail = format!("{} ({})", db.message(), code.code());
            if let Some(d) = db.detail() {
                detail.push_str(&format!(": {d}"));
            }
            (kind, detail, hint)
        }
        None => {
            let top = err.to_string();
            let cause = root_cause(err);
            let detail = if cause == top {
                top.clone()
            } else {
                format!("{top}: {cause}")
            };
            if top.starts_with("error connecting to server") {
                (
                    Kind::Unreachable,
                    detail,
                    Some(format!(
                        "cannot reach {at}: check host and port (conn_str, PGHOST, PGPORT) and the network"
                    )),
                )
            } else if top.starts_with("error performing TLS handshake") {
                let hint = if cause.contains("does not support TLS") {
                    "the server offers no TLS: use sslmode=prefer or disable if a plain connection is acceptable".to_string()
                } else if cause.contains("certificate") || cause.contains("Certificate") {
                    format!(
                        "the server's certificate is not trusted for sslmode={}: give its CA as sslrootcert (PGSSLROOTCERT)",
                        ep.tls.mode.as_str()
                    )
                } else {
                    "TLS with the server failed: check sslmode and the certificates".to_string()
                };
                (Kind::Unreachable, detail, Some(hint))
            } else if cause.contains("password missing") {
                let mut hint = format!(
                    "the server asks role {} for a password: give it in conn_str, PGPASSWORD or ~/.pgpass",
                    ep.user
                );
                if let Some(note) = &conn.passfile_note {
                    hint.push_str(&format!("; {note}"));
                }
                (Kind::Unauthenticated, detail, Some(hint))
            } else if top.starts_with("authentication error") {
                (Kind::Unauthenticated, detail, None)
            } else if top.starts_with("timeout waiting for server") {
                (
                    Kind::Timeout,
                    detail,
                    Some(
                        "check the host and port and the network, or raise --request-timeout"
                            .into(),
                    ),
                )
            } else if top.starts_with("unexpected message") || top.starts_with("error parsing") {
                (
                    Kind::Unreachable,
                    detail,
                    Some(format!("is a PostgreSQL server listening at {at}?")),
                )
            } else if top.starts_with("connection closed") || top.starts_with("error communicating")
            {
                (
                    Kind::Unreachable,
                    detail,
                    Some(format!("the connection to {at} broke: try again")),
                )
            } else {
                (Kind::Backend, detail, None)
            }
        }
    };
    let message = conn.scrub(&one_line(&format!("{action} at {at}: {detail}")));
    let e = Error::new(kind, message).at(&conn.target);
    match hint {
        Some(h) => e.with_hint(conn.scrub(&h)),
        None => e,
    }
}
