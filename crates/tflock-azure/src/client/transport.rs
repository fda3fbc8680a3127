//! The HTTP side of the SDK pipeline: our own reqwest client with explicit timeouts,
//! extra CAs from `SSL_CERT_FILE`, `HTTPS_PROXY`/`NO_PROXY` from the environment, and a
//! short retry budget. The SDK defaults retry a dead endpoint or an unknown CA for over a
//! minute; an on-call tool must fail in seconds.

use azure_core::http::{ClientOptions, ExponentialRetryOptions, RetryOptions, Transport};
use azure_core::time::Duration as SdkDuration;
use std::sync::Arc;
use std::time::Duration;
use tflock_core::ConnectOptions;

/// At most this many retries after the first try.
const MAX_RETRIES: u32 = 2;

/// Client options every client of one store shares (transport, retries, policies).
pub(crate) fn client_options(
    opts: &ConnectOptions,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<ClientOptions, String> {
    let timeout = opts.timeout.max(Duration::from_millis(100));
    let mut builder = reqwest::Client::builder()
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none());
    if let Some(path) = env("SSL_CERT_FILE").filter(|p| !p.trim().is_empty()) {
        let pem = std::fs::read(path.trim())
            .map_err(|e| format!("SSL_CERT_FILE={path}: cannot read it: {e}"))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| format!("SSL_CERT_FILE={path}: not a PEM certificate bundle: {e}"))?;
        builder = builder.tls_certs_merge(certs);
    }
    let client = builder
        .build()
        .map_err(|e| format!("cannot set up the HTTP client: {e}"))?;
    let budget = SdkDuration::try_from(timeout).unwrap_or(SdkDuration::seconds(10));
    Ok(ClientOptions {
        transport: Some(Transport::new(Arc::new(client))),
        retry: RetryOptions::exponential(ExponentialRetryOptions {
            initial_delay: SdkDuration::milliseconds(200),
            max_retries: MAX_RETRIES,
            max_total_elapsed: budget,
            max_delay: SdkDuration::seconds(1),
        }),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_ca_file_is_a_clear_error() {
        let opts = ConnectOptions::default();
        let err = client_options(&opts, &|k| {
            (k == "SSL_CERT_FILE").then(|| "/nonexistent/ca.pem".to_string())
        })
        .unwrap_err();
        assert!(
            err.starts_with("SSL_CERT_FILE=/nonexistent/ca.pem: cannot read it"),
            "{err}"
        );
        assert!(client_options(&opts, &|_| None).is_ok());
    }
}
