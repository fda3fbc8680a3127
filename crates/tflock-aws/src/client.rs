//! What both services share once credentials are settled: endpoints, the region,
//! timeouts and retries, and the two SDK clients built from them.

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{Region, SdkConfig};
use aws_sdk_s3::config::interceptors::InterceptorContext;
use aws_sdk_s3::config::retry::{ClassifyRetry, RetryAction};
use aws_smithy_runtime_api::client::retries::classifiers::RetryClassifierPriority;
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
        }
        aws_sdk_s3::Client::from_conf(b.build())
    }

    pub fn dynamodb_client(&self) -> aws_sdk_dynamodb::Client {
        let mut b =
            aws_sdk_dynamodb::config::Builder::from(&self.sdk).retry_classifier(RefusedIsFinal);
        if let Some(e) = &self.dynamodb.explicit {
            b = b.endpoint_url(e);
        }
        aws_sdk_dynamodb::Client::from_conf(b.build())
    }
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
