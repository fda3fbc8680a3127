//! The AWS configuration both services share: the standard credential and region chains,
//! endpoint overrides, timeouts and retries.

use aws_config::environment::EnvironmentVariableRegionProvider;
use aws_config::meta::region::RegionProviderChain;
use aws_config::profile::ProfileFileCredentialsProvider;
use aws_config::profile::ProfileFileRegionProvider;
use aws_config::provider_config::ProviderConfig;
use aws_config::retry::RetryConfig;
use aws_config::sts::AssumeRoleProvider;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_runtime::env_config::file::{EnvConfigFileKind, EnvConfigFiles};
use aws_sdk_s3::config::{Credentials, SharedCredentialsProvider};
use std::time::Duration;
use tflock_core::{ConnectOptions, Error, Target};

/// Query parameters every AWS target accepts: the s3 backend block's own settings, under
/// Terraform's names (discovery and tflock.toml set them).
const PARAMS: [&str; 14] = [
    "region",
    "profile",
    "endpoint",
    "access_key",
    "secret_key",
    "token",
    "shared_config_files",
    "shared_credentials_files",
    "role_arn",
    "session_name",
    "external_id",
    "assume_role_duration",
    "sts_endpoint",
    // Path style is always used with a custom endpoint; accepted so a block that sets it works.
    "use_path_style",
];

/// Options that would be printed if written on the URL, which is the target's name.
const SECRETS: [&str; 4] = ["access_key", "secret_key", "token", "sse_customer_key"];

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
    target.refuse_secrets_in_url(
        &SECRETS,
        "set it in tflock.toml (secret_key = \"...\") or use AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN",
    )?;
    target.check_params(&known)?;
    let settings = Settings::from_target(target)?;
    let endpoint = target.param("endpoint").map(str::to_string);
    if let Some(e) = &endpoint {
        match url::Url::parse(e) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => {}
            _ => {
                return Err(Error::usage(
                    &target.url,
                    format!("?endpoint={e} is not an http(s) URL"),
                ))
            }
        }
    }
    let env_endpoint = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let custom_before_load = endpoint.is_some()
        || env_endpoint("AWS_ENDPOINT_URL").is_some()
        || env_endpoint(service_env).is_some();

    let t = opts.timeout;
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(timeouts(t))
        .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS));
    let profile = target.param("profile");
    if let Some(p) = profile {
        loader = loader.profile_name(p);
    }
    if let Some(files) = &settings.profile_files {
        loader = loader.profile_files(files.clone());
    }
    // Terraform's order: the block's keys, then the block's profile (even when AWS_*
    // keys are in the environment), then the standard chain.
    if let Some(creds) = settings.static_credentials.clone() {
        loader = loader.credentials_provider(creds);
    } else if let Some(p) = profile {
        let conf = ProviderConfig::default()
            .with_timeout_config(timeouts(t))
            .with_retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS))
            .with_region(target.param("region").map(|r| Region::new(r.to_string())));
        let mut from_profile = ProfileFileCredentialsProvider::builder()
            .configure(&conf)
            .profile_name(p);
        if let Some(files) = &settings.profile_files {
            from_profile = from_profile.profile_files(files.clone());
        }
        loader = loader.credentials_provider(from_profile.build());
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
        if let Some(files) = &settings.profile_files {
            from_profile = from_profile.profile_files(files.clone());
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
            return Err(Error::usage(&target.url, "no AWS region configured (set AWS_REGION, a region in your AWS profile, or add ?region=REGION to the target)"));
        }
        sdk = sdk
            .into_builder()
            .region(Region::from_static(ENDPOINT_DEFAULT_REGION))
            .build();
    }
    if let Some(role) = &settings.assume_role {
        sdk = assume_role(sdk, role).await;
    }
    Ok(Aws {
        sdk,
        custom_endpoint,
        endpoint,
    })
}

fn timeouts(t: Duration) -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(t)
        .operation_attempt_timeout(t)
        .operation_timeout(t)
        .build()
}

/// `assume_role { ... }` of the s3 backend block (or its legacy top-level `role_arn`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct AssumeRole {
    role_arn: String,
    session_name: Option<String>,
    external_id: Option<String>,
    duration: Option<Duration>,
    /// Terraform's `endpoints.sts`; else `AWS_ENDPOINT_URL_STS` / the real STS.
    sts_endpoint: Option<String>,
}

/// The credential settings of one target, checked before anything is loaded.
struct Settings {
    static_credentials: Option<SharedCredentialsProvider>,
    profile_files: Option<EnvConfigFiles>,
    assume_role: Option<AssumeRole>,
}

impl Settings {
    fn from_target(target: &Target) -> Result<Settings, Error> {
        let usage = |m: String| Error::usage(&target.url, m);
        let static_credentials = match (target.param("access_key"), target.param("secret_key")) {
            (Some(id), Some(secret)) => Some(SharedCredentialsProvider::new(Credentials::new(
                id.trim(),
                secret.trim(),
                target.param("token").map(|t| t.trim().to_string()),
                None,
                "s3 backend access_key",
            ))),
            (None, None) => None,
            (Some(_), None) => return Err(usage("access_key is set without secret_key; set both (or neither, to use the AWS credential chain)".into())),
            (None, Some(_)) => return Err(usage("secret_key is set without access_key; set both (or neither, to use the AWS credential chain)".into())),
        };
        let config_files = paths(target.param("shared_config_files"));
        let credentials_files = paths(target.param("shared_credentials_files"));
        // Like Terraform: a list given replaces that kind's default file; the other kind
        // keeps its default (AWS_CONFIG_FILE / AWS_SHARED_CREDENTIALS_FILE or ~/.aws/...).
        let profile_files =
            (!config_files.is_empty() || !credentials_files.is_empty()).then(|| {
                let mut b = EnvConfigFiles::builder()
                    .include_default_config_file(config_files.is_empty())
                    .include_default_credentials_file(credentials_files.is_empty());
                for f in &config_files {
                    b = b.with_file(EnvConfigFileKind::Config, f);
                }
                for f in &credentials_files {
                    b = b.with_file(EnvConfigFileKind::Credentials, f);
                }
                b.build()
            });
        let assume_role = match target.param("role_arn") {
            None => {
                for dependent in ["session_name", "external_id", "assume_role_duration"] {
                    if target.param(dependent).is_some() {
                        return Err(usage(format!(
                            "{dependent} is set without role_arn (assume_role needs role_arn)"
                        )));
                    }
                }
                None
            }
            Some(arn) => Some(AssumeRole {
                role_arn: arn.trim().to_string(),
                session_name: target.param("session_name").map(str::to_string),
                external_id: target.param("external_id").map(str::to_string),
                duration: target
                    .param("assume_role_duration")
                    .map(|d| {
                        go_duration(d).ok_or_else(|| {
                            usage(format!(
                                "assume_role duration {d:?} is not a duration (e.g. 1h, 15m, 900s)"
                            ))
                        })
                    })
                    .transpose()?,
                sts_endpoint: target.param("sts_endpoint").map(str::to_string),
            }),
        };
        Ok(Settings {
            static_credentials,
            profile_files,
            assume_role,
        })
    }
}

/// A list of paths as a target option: comma-separated (tflock.toml) or one per line
/// (discovery joins the block's list with newlines).
fn paths(value: Option<&str>) -> Vec<String> {
    value
        .unwrap_or("")
        .split(['\n', ','])
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect()
}

/// A Go duration as Terraform's `assume_role.duration` takes it (`1h`, `1h30m`, `900s`), or
/// plain seconds (the legacy `assume_role_duration_seconds`).
fn go_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let mut total = 0f64;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .filter(|&i| i > 0)?;
        let value: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            _ => return None,
        };
        total += value * scale;
        rest = &rest[unit_len..];
    }
    (total > 0.0).then(|| Duration::from_secs_f64(total))
}

/// Wraps the loaded credentials in an STS AssumeRole provider, as Terraform's
/// `assume_role` does: the base credentials (keys, profile or chain) call AssumeRole, and
/// the role's temporary credentials sign every request to S3 and DynamoDB.
async fn assume_role(sdk: SdkConfig, role: &AssumeRole) -> SdkConfig {
    // STS must not inherit the S3 / DynamoDB endpoint override.
    let mut sts_conf = sdk.clone().into_builder();
    sts_conf.set_endpoint_url(role.sts_endpoint.clone());
    let mut builder =
        AssumeRoleProvider::builder(role.role_arn.clone()).configure(&sts_conf.build());
    if let Some(n) = &role.session_name {
        builder = builder.session_name(n);
    }
    if let Some(id) = &role.external_id {
        builder = builder.external_id(id);
    }
    if let Some(d) = role.duration {
        builder = builder.session_length(d);
    }
    let provider = match sdk.credentials_provider() {
        Some(base) => builder.build_from_provider(base).await,
        None => builder.build().await,
    };
    sdk.into_builder()
        .credentials_provider(SharedCredentialsProvider::new(provider))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(url: &str, hidden: &[(&str, &str)]) -> Target {
        let mut t = Target::parse(url).unwrap();
        for (k, v) in hidden {
            t.params.insert(k.to_string(), v.to_string());
        }
        t
    }

    #[test]
    fn block_settings_are_read_and_checked() {
        let t = target(
            "s3://b",
            &[
                ("access_key", "AKIDBLOCK"),
                ("secret_key", "s3cr3t-block"),
                ("shared_config_files", "/a/config\n~/b/config"),
                ("role_arn", "arn:aws:iam::123456789012:role/tf"),
                ("session_name", "oncall"),
                ("external_id", "x-1"),
                ("assume_role_duration", "1h30m"),
            ],
        );
        let s = Settings::from_target(&t).unwrap();
        assert!(s.static_credentials.is_some());
        assert!(s.profile_files.is_some());
        assert_eq!(
            s.assume_role,
            Some(AssumeRole {
                role_arn: "arn:aws:iam::123456789012:role/tf".into(),
                session_name: Some("oncall".into()),
                external_id: Some("x-1".into()),
                duration: Some(Duration::from_secs(5400)),
                sts_endpoint: None,
            })
        );
        assert_eq!(paths(Some("/a, /b\n/c")), ["/a", "/b", "/c"]);
        assert_eq!(go_duration("900"), Some(Duration::from_secs(900)));
        assert_eq!(go_duration("15m"), Some(Duration::from_secs(900)));
        assert_eq!(go_duration("1.5h"), Some(Duration::from_secs(5400)));
        assert_eq!(go_duration("1x"), None);
        assert_eq!(go_duration("h"), None);

        let half = target("s3://b", &[("access_key", "AKIDBLOCK")]);
        let err = Settings::from_target(&half).err().unwrap().to_string();
        assert!(err.contains("without secret_key"), "{err}");
        let orphan = target("s3://b", &[("external_id", "x")]);
        assert!(Settings::from_target(&orphan).is_err());
        let bad = target(
            "s3://b",
            &[("role_arn", "r"), ("assume_role_duration", "soon")],
        );
        assert_eq!(
            Settings::from_target(&bad).err().unwrap().kind(),
            tflock_core::Kind::Usage
        );
    }

    #[tokio::test]
    async fn secrets_on_the_url_are_refused_and_never_echoed() {
        let opts = ConnectOptions::default();
        for url in [
            "s3://b?secret_key=s3cr3t-url",
            "s3://b?access_key=AKIDURL&region=us-east-1",
            "s3://b?token=tok-url",
        ] {
            let err = load(
                &Target::parse(url).unwrap(),
                &opts,
                "AWS_ENDPOINT_URL_S3",
                &[],
            )
            .await
            .err()
            .unwrap();
            let text = err.to_string();
            assert_eq!(err.kind(), tflock_core::Kind::Usage, "{text}");
            for secret in ["s3cr3t-url", "AKIDURL", "tok-url"] {
                assert!(!text.contains(secret), "{text}");
            }
        }
    }
}
