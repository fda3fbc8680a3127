//! The HTTP side of the SDK pipeline: our own reqwest client with explicit timeouts,
//! `HTTPS_PROXY`/`NO_PROXY` from the environment, a short retry budget, and one deadline
//! over each whole request (retries included). The SDK defaults retry a dead endpoint or
//! an unknown CA for over a minute; an on-call tool must fail in seconds.
//!
//! Certificates are loaded only for an https endpoint: an emulator on plain http starts
//! without reading the system store or `SSL_CERT_FILE`.

use azure_core::error::ErrorKind;
use azure_core::http::policies::{Policy, PolicyResult};
use azure_core::http::{
    ClientOptions, Context, ExponentialRetryOptions, Request, RetryOptions, Transport, Url,
};
use azure_core::time::Duration as SdkDuration;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tflock_core::error::source_chain;
use tflock_core::exchange::client_builder;
use tflock_core::fsread::{read_bounded, CONFIG_MAX};
use tflock_core::ConnectOptions;

/// At most this many retries after the first try.
const MAX_RETRIES: u32 = 2;

/// Client options every client of one store shares (transport, retries, policies), for
/// an account whose blob endpoint is `endpoint`.
pub(crate) fn client_options(
    opts: &ConnectOptions,
    endpoint: &Url,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<ClientOptions, String> {
    let timeout = opts.timeout.max(Duration::from_millis(100));
    let https = endpoint.scheme() == "https";
    let mut builder =
        client_builder(timeout, https).connect_timeout(timeout.min(Duration::from_secs(10)));
    if https {
        if let Some(path) = env("SSL_CERT_FILE").filter(|p| !p.trim().is_empty()) {
            // Bounded and never blocking: a FIFO or /dev/zero named here is refused.
            let pem = read_bounded(Path::new(path.trim()), CONFIG_MAX)
                .map_err(|e| format!("SSL_CERT_FILE={path}: cannot read it: {e}"))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| format!("SSL_CERT_FILE={path}: not a PEM certificate bundle: {e}"))?;
            builder = builder.tls_certs_merge(certs);
        }
    }
    let client = builder
        .build()
        .map_err(|e| format!("cannot set up the HTTP client: {}", source_chain(&e)))?;
    let budget = SdkDuration::try_from(timeout).unwrap_or(SdkDuration::seconds(10));
    Ok(ClientOptions {
        transport: Some(Transport::new(Arc::new(client))),
        per_call_policies: vec![Arc::new(Deadline(timeout))],
        retry: RetryOptions::exponential(ExponentialRetryOptions {
            initial_delay: SdkDuration::milliseconds(200),
            max_retries: MAX_RETRIES,
            max_total_elapsed: budget,
            max_delay: SdkDuration::seconds(1),
        }),
        ..Default::default()
    })
}

/// Hands `request` to the rest of the pipeline, as every policy of ours does after its
/// own work; `policy` is named in the error if it was placed last.
pub(crate) async fn send_next(
    ctx: &Context<'_>,
    request: &mut Request,
    next: &[Arc<dyn Policy>],
    policy: &str,
) -> PolicyResult {
    match next.split_first() {
        Some((first, rest)) => first.send(ctx, request, rest).await,
        None => Err(azure_core::Error::with_message(
            ErrorKind::Other,
            format!("the {policy} policy must not be the last in the pipeline"),
        )),
    }
}

/// Bounds one whole request, retries and the response body included: it runs before the
/// retry policy, which alone would allow one full timeout per try.
#[derive(Debug)]
struct Deadline(Duration);

#[async_trait::async_trait]
impl Policy for Deadline {
    async fn send(
        &self,
        ctx: &Context,
        request: &mut Request,
        next: &[Arc<dyn Policy>],
    ) -> PolicyResult {
        match tokio::time::timeout(self.0, send_next(ctx, request, next, "deadline")).await {
            Ok(result) => result,
            Err(_) => Err(azure_core::Error::new(
                ErrorKind::Io,
                std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no answer within {:?} (--request-timeout)", self.0),
                ),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn the_ca_file_is_read_for_https_only() {
        let opts = ConnectOptions::default();
        let missing = |k: &str| (k == "SSL_CERT_FILE").then(|| "/nonexistent/ca.pem".to_string());
        let err = client_options(&opts, &url("https://acct.blob.core.windows.net"), &missing)
            .unwrap_err();
        assert!(
            err.starts_with("SSL_CERT_FILE=/nonexistent/ca.pem: cannot read it"),
            "{err}"
        );
        // A FIFO is refused at once (bounded, non-blocking reads), not waited on.
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("ca.pem");
        assert!(std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        let fifo = fifo.display().to_string();
        let named = |k: &str| (k == "SSL_CERT_FILE").then(|| fifo.clone());
        let err =
            client_options(&opts, &url("https://acct.blob.core.windows.net"), &named).unwrap_err();
        assert!(err.contains("not a regular file"), "{err}");
        // An emulator on plain http never reads it.
        assert!(client_options(&opts, &url("http://127.0.0.1:10000/acct"), &missing).is_ok());
        assert!(
            client_options(&opts, &url("https://acct.blob.core.windows.net"), &|_| None).is_ok()
        );
    }
}
