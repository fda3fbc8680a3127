//! The connection to GCS: the endpoint, the HTTP client with tflock's timeouts (no retry
//! middleware), credentials from `auth.rs`, and the one read path with its retry budget.

use crate::auth::{self, Auth, Secrets};
use crate::error::{retriable, to_error, Context, Failure};
use gcloud_storage::client::{Client, ClientConfig};
use gcloud_storage::http::Error as GcsError;
use std::time::Duration;
use tflock_core::exchange::client_builder;
use tflock_core::{ConnectOptions, Error, Target};
use tokio::time::Instant;

const GOOGLE_ENDPOINT: &str = "https://storage.googleapis.com";
/// Reads (list, get, download) are retried at most this many times, only on 408/429/5xx,
/// and only while the request's time budget lasts. A dead endpoint (refused, timed out)
/// is never retried. Deletes are never retried.
const READ_RETRIES: u32 = 2;

pub struct Conn {
    pub client: Client,
    /// The storage endpoint, without `/storage/v1`.
    pub endpoint: String,
    pub auth: Auth,
    /// `--request-timeout`: one request, its retries and their pauses included.
    pub timeout: Duration,
    /// The target URL, the subject of every message.
    pub target: String,
    pub bucket: String,
    secrets: Secrets,
}

/// The storage endpoint from `?endpoint=` or `STORAGE_EMULATOR_HOST`, if any.
/// Accepts what Terraform's `storage_custom_endpoint` takes (`.../storage/v1/`).
fn custom_endpoint(target: &Target) -> Result<Option<String>, Error> {
    let (raw, from) = match target.param("endpoint") {
        Some(e) => (e.to_string(), "?endpoint="),
        None => match std::env::var("STORAGE_EMULATOR_HOST") {
            Ok(e) if !e.trim().is_empty() => (e.trim().to_string(), "STORAGE_EMULATOR_HOST"),
            _ => return Ok(None),
        },
    };
    let with_scheme = if raw.contains("://") {
        raw.clone()
    } else {
        format!("http://{raw}")
    };
    let url = url::Url::parse(&with_scheme).map_err(|e| {
        Error::usage(
            &target.url,
            format!("{from} {raw:?} is not a URL ({e}); pass e.g. http://127.0.0.1:4443"),
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(Error::usage(
            &target.url,
            format!("{from} {raw:?} must be an http:// or https:// URL"),
        ));
    }
    let text = url.as_str().trim_end_matches('/');
    let text = text.strip_suffix("/storage/v1").unwrap_or(text);
    Ok(Some(text.trim_end_matches('/').to_string()))
}

impl Conn {
    pub async fn new(target: &Target, opts: &ConnectOptions) -> Result<Conn, Error> {
        let bucket = target.host.clone();
        let timeout = opts.timeout;
        // No retry middleware: reads are retried by `read`, within the budget, and deletes
        // never.
        let custom = custom_endpoint(target)?;
        let endpoint = custom
            .clone()
            .unwrap_or_else(|| GOOGLE_ENDPOINT.to_string());
        let https = endpoint.starts_with("https:");
        let http = client_builder(timeout, https).build().map_err(|e| {
            Error::backend(&target.url, format!("cannot build the HTTP client: {e}"))
        })?;
        let http = reqwest_middleware::ClientBuilder::new(http).build();
        let base = ClientConfig {
            http: Some(http),
            storage_endpoint: endpoint.clone(),
            ..ClientConfig::default()
        };
        let (config, auth, secrets) =
            auth::configure(target, base, custom.is_some(), timeout).await?;
        Ok(Conn {
            client: Client::new(config),
            endpoint,
            auth,
            timeout,
            target: target.url.clone(),
            bucket,
            secrets,
        })
    }

    /// Runs a read, retrying only on 408/429/5xx, at most [`READ_RETRIES`] times, all of it
    /// within one `--request-timeout`: a retry that cannot finish in time is not started.
    pub async fn read<T, F, Fut>(&self, f: F) -> Result<T, Failure>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, GcsError>>,
    {
        let deadline = Instant::now() + self.timeout;
        let mut attempt = 0;
        loop {
            let result = tokio::time::timeout_at(deadline, f())
                .await
                .map_err(|_| Failure::OutOfTime)?;
            match result {
                Err(e) if attempt < READ_RETRIES && retriable(&e) => {
                    attempt += 1;
                    let pause = Duration::from_millis(200 << attempt);
                    // Not enough time left for the pause and an answer: report this one.
                    if Instant::now() + pause * 2 >= deadline {
                        return Err(Failure::Gcs(e));
                    }
                    tokio::time::sleep(pause).await;
                }
                other => return other.map_err(Failure::Gcs),
            }
        }
    }

    /// One request sent once (a delete): bounded by the same budget, never retried.
    pub async fn once<T, Fut>(&self, fut: Fut) -> Result<T, Failure>
    where
        Fut: std::future::Future<Output = Result<T, GcsError>>,
    {
        match tokio::time::timeout(self.timeout, fut).await {
            Ok(r) => r.map_err(Failure::Gcs),
            Err(_) => Err(Failure::OutOfTime),
        }
    }

    /// The error for `failure` while doing `what` (e.g. "listing objects in bucket b").
    pub fn error(&self, what: &str, failure: &Failure) -> Error {
        let cx = Context {
            target: &self.target,
            bucket: &self.bucket,
            endpoint: &self.endpoint,
            auth: self.auth,
            timeout: self.timeout,
            secrets: &self.secrets,
        };
        to_error(&cx, what, failure)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(url: &str) -> Option<String> {
        custom_endpoint(&Target::parse(url).unwrap()).unwrap()
    }

    #[test]
    fn endpoints_take_terraforms_form() {
        assert_eq!(
            endpoint("gs://b?endpoint=http://127.0.0.1:4443/storage/v1/").as_deref(),
            Some("http://127.0.0.1:4443")
        );
        assert_eq!(
            endpoint("gs://b?endpoint=127.0.0.1:4443").as_deref(),
            Some("http://127.0.0.1:4443")
        );
        let err = custom_endpoint(&Target::parse("gs://b?endpoint=ftp://x").unwrap()).unwrap_err();
        assert!(err.to_string().contains("http://"), "{err}");
    }
}
