//! GCS answers and transport failures -> one-line tflock errors with the right [`Kind`]
//! and a hint, naming the bucket, the HTTP status and what to do. Text from outside
//! (server messages, auth errors) is scrubbed of every secret tflock was given.

use crate::auth::{Auth, Secrets};
use gcloud_storage::http::Error as GcsError;
use std::time::Duration;
use tflock_core::error::{one_line, root_cause, source_chain};
use tflock_core::{Error, Kind};

/// Why a request failed: the client's error, or the request budget ran out (the request
/// and its retries took `--request-timeout`).
#[derive(Debug)]
pub enum Failure {
    Gcs(GcsError),
    OutOfTime,
}

impl From<GcsError> for Failure {
    fn from(e: GcsError) -> Self {
        Failure::Gcs(e)
    }
}

impl Failure {
    /// The HTTP status, if the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Failure::Gcs(e) => status(e),
            Failure::OutOfTime => None,
        }
    }
}

/// The HTTP status of an error response, if the server answered.
pub fn status(e: &GcsError) -> Option<u16> {
    match e {
        GcsError::Response(r) => Some(r.code),
        GcsError::HttpClient(re) | GcsError::RawResponse(re, _) => re.status().map(|s| s.as_u16()),
        _ => None,
    }
}

/// Worth another try for a read: GCS's own retry guidance (408, 429, 5xx).
pub fn retriable(e: &GcsError) -> bool {
    matches!(status(e), Some(408 | 429 | 500..=599))
}

/// What the error mapping needs to know about the connection.
pub struct Context<'a> {
    /// The target URL, the subject of every message.
    pub target: &'a str,
    pub bucket: &'a str,
    pub endpoint: &'a str,
    pub auth: Auth,
    pub timeout: Duration,
    pub secrets: &'a Secrets,
}

/// One line: what failed (`what`, e.g. "listing objects in bucket b"), the HTTP status or
/// transport problem, and a hint.
pub fn to_error(cx: &Context<'_>, what: &str, failure: &Failure) -> Error {
    let msg = |detail: String| {
        Error::backend(
            cx.target,
            format!("{what} failed: {}", cx.secrets.scrub(&detail)),
        )
    };
    let timed_out = || {
        msg(format!(
            "no answer from {} within {}s",
            cx.endpoint,
            cx.timeout.as_secs_f32()
        ))
        .with_hint("check the endpoint and the network, or raise --request-timeout")
        .with_kind(Kind::Timeout)
    };
    let e = match failure {
        Failure::OutOfTime => return timed_out(),
        Failure::Gcs(e) => e,
    };
    if let Some(code) = status(e) {
        let detail = match e {
            GcsError::Response(r) => {
                let reason = r.errors.first().map(|i| i.reason.as_str()).unwrap_or("");
                if reason.is_empty() {
                    format!("HTTP {code}: {}", one_line(&r.message))
                } else {
                    format!("HTTP {code} {reason}: {}", one_line(&r.message))
                }
            }
            _ => format!("HTTP {code}"),
        };
        return msg(detail)
            .with_hint(hint_for_status(cx, code))
            .with_kind(kind_of_status(code));
    }
    match e {
        GcsError::HttpClient(re) if re.is_timeout() => timed_out(),
        GcsError::HttpClient(re) if re.is_connect() => msg(format!(
            "cannot connect to {} ({})",
            cx.endpoint,
            root_cause(re)
        ))
        .with_hint("check the endpoint (?endpoint=, STORAGE_EMULATOR_HOST) and the network")
        .with_kind(Kind::Unreachable),
        GcsError::TokenSource(t) => msg(format!("getting an access token failed: {}", one_line(&t.to_string())))
            .with_hint("run `gcloud auth application-default login`, or set GOOGLE_APPLICATION_CREDENTIALS or GOOGLE_OAUTH_ACCESS_TOKEN")
            .with_kind(Kind::Unauthenticated),
        GcsError::HttpClient(re) => msg(source_chain(re)).with_hint("check the endpoint and the network"),
        other => msg(one_line(&other.to_string())),
    }
}

fn kind_of_status(code: u16) -> Kind {
    match code {
        401 => Kind::Unauthenticated,
        403 => Kind::PermissionDenied,
        _ => Kind::Backend,
    }
}

fn hint_for_status(cx: &Context<'_>, code: u16) -> String {
    let bucket = cx.bucket;
    match code {
        401 => match cx.auth {
            Auth::Anonymous => "the endpoint wants credentials: unset ?endpoint=/STORAGE_EMULATOR_HOST for real GCS, or set GOOGLE_OAUTH_ACCESS_TOKEN".to_string(),
            _ => "credentials were rejected: run `gcloud auth application-default login`, or check GOOGLE_APPLICATION_CREDENTIALS / GOOGLE_OAUTH_ACCESS_TOKEN".to_string(),
        },
        403 => format!("the caller needs storage.objects.list, storage.objects.get and storage.objects.delete on bucket {bucket} (e.g. roles/storage.objectUser)"),
        404 => format!("bucket {bucket} does not exist at {}: check the name in the backend \"gcs\" block", cx.endpoint),
        408 | 429 | 500..=599 => "GCS is throttling or failing: retry in a moment".to_string(),
        _ => format!("check bucket {bucket} and the request"),
    }
}
