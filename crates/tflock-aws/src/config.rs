//! The AWS configuration both services share: the standard credential and region chains,
//! endpoint overrides, timeouts and retries.

use aws_config::environment::EnvironmentVariableRegionProvider;
use aws_config::meta::region::RegionProviderChain;
use aws_config::profile::ProfileFileRegionProvider;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use tflock_core::{ConnectOptions, Error, Target};

/// Query parameters every AWS target accepts.
const PARAMS: [&str; 3] = ["region", "profile", "endpoint"];

/// Region used with a custom endpoint (an emulator, a VPC endpoint) when none is set.
const ENDPOINT_DEFAULT_REGION: &str = "us-east-1";

/// Retries on throttling, 5xx and connection errors (the SDK's standard mode), capped.
const MAX_ATTEMPTS: u32 = 3;

/// A loaded configuration, and whether it points at a custom endpoint.
pub(crate) struct Aws {
    pub sdk: SdkConfig,
    pub custom_endpoint: bool,
    /// The custom endpoint, as far as it can be known, for messages.
    pub endpoint: Option<String>,
}

impl Aws {
    pub fn region(&self) -> &str {
        self.sdk.region().map(Region::as_ref).unwrap_or("?")
    }
}

/// Loads the configuration for one target. `service_env` is the service's own endpoint
/// variable (`AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL_DYNAMODB`), which the SDK reads;
/// `service_params` the query parameters only that service takes.
pub(crate) async fn load(
    target: &Target,
    opts: &ConnectOptions,
    service_env: &str,
    service_params: &[&str],
) -> Result<Aws, Error> {
    let known: Vec<&str> = PARAMS.iter().chain(service_params).copied().collect();
    target.check_params(&known)?;
    let endpoint = target.param("endpoint").map(str::to_string);
    if let Some(e) = &endpoint {
        match url::Url::parse(e) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => {}
            _ => {
                return Err(Error::usage(format!(
                    "{}: ?endpoint={e} is not an http(s) URL",
                    target.url
                )))
            }
        }
    }
    let env_endpoint = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let custom_before_load = endpoint.is_some()
        || env_endpoint("AWS_ENDPOINT_URL").is_some()
        || env_endpoint(service_env).is_some();

    let t = opts.timeout;
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(t)
                .operation_attempt_timeout(t)
                .operation_timeout(t)
                .build(),
        )
        .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS));
    let profile = target.param("profile");
    if let Some(p) = profile {
        loader = loader.profile_name(p);
    }
    if let Some(e) = &endpoint {
        loader = loader.endpoint_url(e);
    }
    if let Some(r) = target.param("region") {
        loader = loader.region(Region::new(r.to_string()));
    } else if custom_before_load {
        // An emulator or private endpoint: no instance metadata lookups for the region.
        let mut from_profile = ProfileFileRegionProvider::builder();
        if let Some(p) = profile {
            from_profile = from_profile.profile_name(p);
        }
        loader = loader.region(
            RegionProviderChain::first_try(EnvironmentVariableRegionProvider::new())
                .or_else(from_profile.build()),
        );
    }
    let mut sdk = loader.load().await;
    let endpoint = endpoint
        .or_else(|| env_endpoint(service_env))
        .or_else(|| sdk.endpoint_url().map(str::to_string));
    let custom_endpoint = custom_before_load || endpoint.is_some();
    if sdk.region().is_none() {
        if !custom_endpoint {
            return Err(Error::usage(format!(
                "{}: no AWS region configured (set AWS_REGION, a region in your AWS profile, or add ?region=REGION to the target)",
                target.url
            )));
        }
        sdk = sdk
            .into_builder()
            .region(Region::from_static(ENDPOINT_DEFAULT_REGION))
            .build();
    }
    Ok(Aws {
        sdk,
        custom_endpoint,
        endpoint,
    })
}
