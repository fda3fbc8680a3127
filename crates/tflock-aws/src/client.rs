//! What both services share once credentials are settled: endpoints, the region,
//! timeouts and retries, and the two SDK clients built from them.

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{Region, SdkConfig};
use aws_sdk_s3::config::interceptors::InterceptorContext;
use aws_sdk_s3::config::retry::{ClassifyRetry, RetryAction};
use aws_sdk_s3::config::{RuntimeComponents, SharedHttpClient};
use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::{tls, Builder as HttpClientBuilder, ConnectorBuilder};
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::retries::classifiers::RetryClassifierPriority;
use std::sync::OnceLock;
use std::time::Duration;
use tflock_core::{Error, Target};

/// Retries on throttling, 5xx and connection errors (the SDK's standard mode), capped;
/// all of them inside one request timeout.
pub(crate) const MAX_ATTEMPTS: u32 = 3;

/// The endpoint of one service as a target configures it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Endpoint {
    /// Set on the target (`?endpoint=`, `?s3_endpoint=`): overrides everything else.
    pub explicit: Option<String>,
    /// Not AWS itself (the target's, or `AWS_ENDPOINT_URL[_SERVICE]`, or the profile's):
    /// path-style S3, and whether `If-Match` is honoured must be found out.
    pub custom: bool,
    /// The custom endpoint as far as it is known, for messages.
    pub shown: Option<String>,
}

impl Endpoint {
    /// The endpoint a target option names, checked; with the service's variable
    /// (`AWS_ENDPOINT_URL_S3`), which the SDK reads itself.
    pub fn from_option(target: &Target, option: &str, service_env: &str) -> Result<Self, Error> {
        let explicit = target.param(option).map(str::to_string);
        if let Some(e) = &explicit {
            match url::Url::parse(e) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
                _ => {
                    return Err(Error::usage(
                        &target.url,
                        format!(
                            "?{option}={} is not an http(s) URL",
                            tflock_core::redact::url(&tflock_core::text::escape_control(e))
                        ),
                    ))
                }
            }
        }
        let from_env = env(service_env).or_else(|| env("AWS_ENDPOINT_URL"));
        Ok(Endpoint {
            custom: explicit.is_some() || from_env.is_some(),
            shown: explicit.clone().or(from_env),
            explicit,
        })
    }

    /// After loading: the profile's `endpoint_url` also makes it custom.
    pub fn with_loaded(mut self, sdk: &SdkConfig) -> Self {
        if !self.custom {
            if let Some(e) = sdk.endpoint_url() {
                self.custom = true;
                self.shown = Some(e.to_string());
            }
        }
        self
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// A loaded configuration: credentials, region, timeouts, and each service's endpoint.
pub(crate) struct Aws {
    pub sdk: SdkConfig,
    pub s3: Endpoint,
    pub dynamodb: Endpoint,
}

impl Aws {
    pub fn region(&self) -> &str {
        self.sdk.region().map(Region::as_ref).unwrap_or("?")
    }

    /// S3, path-style on a custom endpoint (emulators and most private endpoints only
    /// serve that).
    pub fn s3_client(&self) -> aws_sdk_s3::Client {
        let mut b = aws_sdk_s3::config::Builder::from(&self.sdk)
            .force_path_style(self.s3.custom)
            .retry_classifier(RefusedIsFinal);
        if let Some(e) = &self.s3.explicit {
            b = b.endpoint_url(e);
            if is_plain_http(e) {
                b = b.http_client(plain_http_client());
            }
        }
        aws_sdk_s3::Client::from_conf(b.build())
    }

    pub fn dynamodb_client(&self) -> aws_sdk_dynamodb::Client {
        let mut b =
            aws_sdk_dynamodb::config::Builder::from(&self.sdk).retry_classifier(RefusedIsFinal);
        if let Some(e) = &self.dynamodb.explicit {
            b = b.endpoint_url(e);
            if is_plain_http(e) {
                b = b.http_client(plain_http_client());
            }
        }
        aws_sdk_dynamodb::Client::from_conf(b.build())
    }
}

/// The SDK's default HTTPS client, made at its first request instead of when a client is
/// built: the SDK builds its TLS connector (and reads every CA certificate of the system)
/// as soon as any client exists, and `aws_config`'s `load()` builds an STS client for the
/// web-identity provider whether or not it is ever used.
#[derive(Debug, Default)]
pub(crate) struct LazyHttps(OnceLock<SharedHttpClient>);

impl LazyHttps {
    pub fn shared() -> SharedHttpClient {
        SharedHttpClient::new(LazyHttps::default())
    }

    fn client(&self) -> &SharedHttpClient {
        self.0.get_or_init(|| {
            HttpClientBuilder::new().build_with_connector_fn(|settings, components| {
                let mut conn = ConnectorBuilder::default().tls_provider(tls::Provider::Rustls(
                    tls::rustls_provider::CryptoMode::AwsLc,
                ));
                conn.set_connector_settings(settings.cloned());
                if let Some(components) = components {
                    conn.set_sleep_impl(components.sleep_impl());
                }
                conn.set_proxy_config(Some(ProxyConfig::from_env()));
                conn.build()
            })
        })
    }
}

impl HttpClient for LazyHttps {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        self.client().http_connector(settings, components)
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        self.0.get().and_then(|c| c.connector_metadata())
    }
}

fn is_plain_http(endpoint: &str) -> bool {
    endpoint
        .get(..7)
        .is_some_and(|s| s.eq_ignore_ascii_case("http://"))
}

/// The SDK's default client with TLS left out, for an `http://` endpoint (an emulator, a
/// local gateway): its connector would load every CA certificate of the system at the
/// first request, though none is used. Proxies from the environment still apply, as in
/// the default client. Credential providers (STS, SSO) keep the default client.
fn plain_http_client() -> SharedHttpClient {
    HttpClientBuilder::new().build_with_connector_fn(|settings, components| {
        let mut conn = ConnectorBuilder::default();
        conn.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            conn.set_sleep_impl(components.sleep_impl());
        }
        conn.set_proxy_config(Some(ProxyConfig::from_env()));
        conn.build_http()
    })
}

/// One `--request-timeout` bounds connecting, each attempt, and the whole request with
/// its retries and backoff.
pub(crate) fn timeouts(t: Duration) -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(t)
        .operation_attempt_timeout(t)
        .operation_timeout(t)
        .build()
}

pub(crate) fn retries() -> RetryConfig {
    RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS)
}

/// The override that sends an S3 request once (destructive requests and probes): a retry
/// after a lost reply would fail its precondition and be misreported as a change.
pub(crate) fn once_s3() -> aws_sdk_s3::config::Builder {
    aws_sdk_s3::config::Builder::default().retry_config(RetryConfig::disabled())
}

/// The same for DynamoDB (conditional deletes and digest repairs).
pub(crate) fn once_dynamodb() -> aws_sdk_dynamodb::config::Builder {
    aws_sdk_dynamodb::config::Builder::default().retry_config(RetryConfig::disabled())
}

/// A refused connection is not retried: nothing listens there, and trying again after a
/// backoff only turns a clear "unreachable" into a timeout.
#[derive(Debug)]
struct RefusedIsFinal;

impl ClassifyRetry for RefusedIsFinal {
    fn classify_retry(&self, ctx: &InterceptorContext) -> RetryAction {
        let refused = match ctx.output_or_error() {
            Some(Err(e)) => e
                .as_connector_error()
                .is_some_and(|c| c.is_io() && is_refused(c)),
            _ => false,
        };
        if refused {
            RetryAction::RetryForbidden
        } else {
            RetryAction::NoActionIndicated
        }
    }

    fn name(&self) -> &'static str {
        "tflock: a refused connection is final"
    }

    fn priority(&self) -> RetryClassifierPriority {
        RetryClassifierPriority::run_after(RetryClassifierPriority::transient_error_classifier())
    }
}

fn is_refused(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::ConnectionRefused {
                return true;
            }
        }
        next = e.source();
    }
    false
}
