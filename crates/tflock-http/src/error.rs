//! A server's answer that is not what was asked for, as one line with the right kind:
//! the HTTP status, the server's own message, and what to do.

use crate::client::Reply;
use serde_json::Value;
use tflock_core::error::one_line;
use tflock_core::{Error, Kind};

/// Whose rules the hint follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Service {
    GitLab,
    Http,
}

/// The server's own message: GitLab's `{"message": ...}` / `{"error": ...}` /
/// `{"errors": [{"message": ...}]}`, else the start of a plain-text body.
pub(crate) fn server_message(body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if let Ok(v) = serde_json::from_str::<Value>(text) {
        let found = v
            .get("message")
            .or_else(|| v.get("error"))
            .or_else(|| v.pointer("/errors/0/message"));
        return found.map(|m| match m {
            Value::String(s) => one_line(s),
            other => one_line(&other.to_string()),
        });
    }
    if text.starts_with('<') {
        return None;
    }
    let line = one_line(text);
    Some(match line.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &line[..i]),
        None => line,
    })
}

/// `what` failed with this answer. `place` names what a 404 means (`project g/app on
/// https://gitlab.example.com`).
/// `secrets` are blanked out of the server's message (a server may echo a header back).
pub(crate) fn status_error(
    target: &str,
    what: &str,
    reply: &Reply,
    service: Service,
    place: &str,
    secrets: &[&str],
) -> Error {
    let code = reply.status;
    let detail = match server_message(&reply.body) {
        Some(m) => format!("HTTP {code}: {}", tflock_core::redact::secrets(&m, secrets)),
        None => format!("HTTP {code}"),
    };
    let hint = match (code, service) {
        (300..=399, _) => format!(
            "the server redirects to {}: use that address",
            reply.location.as_deref().unwrap_or("another address")
        ),
        (401, Service::GitLab) => "the token was rejected: set GITLAB_TOKEN to a personal, project or group access token (scope api; read_api is enough to list with ?probe=false)".into(),
        (401, Service::Http) => "the server rejected the credentials: set username and password as in the backend block (or TF_HTTP_USERNAME / TF_HTTP_PASSWORD)".into(),
        (403, Service::GitLab) => "listing needs the Developer role; reading lock IDs and breaking need the Maintainer role and a token with the api scope".into(),
        (403, Service::Http) => "the credentials lack the permission for this".into(),
        (404, Service::GitLab) => format!("{place} does not exist, or the token cannot see it"),
        (404, Service::Http) => format!("nothing at {place}: check the address in the backend block"),
        (405, _) => "the server does not take this method here: set lock_method / unlock_method as in the backend block".into(),
        (408 | 429 | 500..=599, _) => "the server is failing or throttling: retry in a moment".into(),
        _ => format!("check {place}"),
    };
    let kind = match code {
        401 => Kind::Unauthenticated,
        403 => Kind::PermissionDenied,
        _ => Kind::Backend,
    };
    Error::backend(target, format!("{what} failed: {detail}"))
        .with_hint(hint)
        .with_kind(kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: u16, body: &str) -> Reply {
        Reply {
            status,
            body: body.as_bytes().to_vec(),
            location: None,
        }
    }

    #[test]
    fn gitlab_messages_and_kinds() {
        let e = status_error(
            "gitlab://h/g/p",
            "listing states",
            &reply(401, r#"{"message":"401 Unauthorized"}"#),
            Service::GitLab,
            "project g/p",
            &[],
        );
        assert_eq!(e.kind(), Kind::Unauthenticated);
        assert!(
            e.to_string()
                .starts_with("gitlab://h/g/p: listing states failed: HTTP 401: 401 Unauthorized (the token was rejected"),
            "{e}"
        );
        let e = status_error(
            "t",
            "x",
            &reply(403, r#"{"error":"insufficient_scope"}"#),
            Service::GitLab,
            "p",
            &[],
        );
        assert_eq!(e.kind(), Kind::PermissionDenied);
        assert!(
            e.to_string().contains("HTTP 403: insufficient_scope"),
            "{e}"
        );
        let e = status_error(
            "t",
            "x",
            &reply(404, r#"{"errors":[{"message":"Not found!"}]}"#),
            Service::GitLab,
            "project g/p",
            &[],
        );
        assert!(
            e.to_string()
                .contains("Not found! (project g/p does not exist"),
            "{e}"
        );
    }

    #[test]
    fn an_echoed_secret_is_blanked() {
        let e = status_error(
            "t",
            "x",
            &reply(400, r#"{"message":"bad header Bearer glpat-abcdef123"}"#),
            Service::GitLab,
            "p",
            &["glpat-abcdef123"],
        );
        assert!(!e.to_string().contains("glpat-abcdef123"), "{e}");
    }

    #[test]
    fn bodies_stay_one_short_line() {
        let long = format!("line one\nline two {}", "x".repeat(500));
        let m = server_message(long.as_bytes()).unwrap();
        assert!(!m.contains('\n') && m.chars().count() <= 201, "{m}");
        assert_eq!(server_message(b"<html><body>502</body></html>"), None);
        assert_eq!(server_message(b"  "), None);
    }
}
