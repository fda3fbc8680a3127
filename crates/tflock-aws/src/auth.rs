//! Credentials: the s3 backend block's own settings (keys, profile files, assume_role) in
//! Terraform's order over the standard AWS chain, checked before the signer sees them;
//! and the region. Loads one target's configuration through `client.rs`.

use crate::client::{retries, timeouts, Aws, Endpoint, LazyHttps};
use crate::error::UnusableCredentials;
use aws_config::environment::EnvironmentVariableRegionProvider;
use aws_config::meta::region::RegionProviderChain;
use aws_config::profile::ProfileFileCredentialsProvider;
use aws_config::profile::ProfileFileRegionProvider;
use aws_config::provider_config::ProviderConfig;
use aws_config::sts::AssumeRoleProvider;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{future, ProvideCredentials};
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

/// Loads the configuration for one target: credentials (checked), region, timeouts, and
/// the endpoints of both services (`s3`, `dynamodb`, from the target's options).
/// `service_params` are the query parameters only this kind of target takes.
pub(crate) async fn load(
    target: &Target,
    opts: &ConnectOptions,
    service_params: &[&str],
    endpoints: impl FnOnce(&Target) -> Result<(Endpoint, Endpoint), Error>,
) -> Result<Aws, Error> {
    let known: Vec<&str> = PARAMS.iter().chain(service_params).copied().collect();
    target.refuse_secrets_in_url(
        &SECRETS,
        "set it in tflock.toml (secret_key = \"...\") or use AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN",
    )?;
    target.check_params(&known)?;
    let settings = Settings::from_target(target)?;
    let (s3, dynamodb) = endpoints(target)?;
    let custom_before_load = s3.custom || dynamodb.custom;

    let t = opts.timeout;
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(timeouts(t))
        .retry_config(retries())
        .http_client(LazyHttps::shared());
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
            .with_retry_config(retries())
            .with_http_client(LazyHttps::shared())
            .with_region(target.param("region").map(|r| Region::new(r.to_string())));
        let mut from_profile = ProfileFileCredentialsProvider::builder()
            .configure(&conf)
            .profile_name(p);
        if let Some(files) = &settings.profile_files {
            from_profile = from_profile.profile_files(files.clone());
        }
        loader = loader.credentials_provider(from_profile.build());
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
    if settings.static_credentials.is_none() && profile.is_none() {
        // The chain's first source; the signer panics on some characters, so refuse here
        // what would reach it. Raw values: the SDK does not trim them either.
        for var in [
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
        ] {
            if let Some(value) = std::env::var_os(var).filter(|v| !v.is_empty()) {
                key_text(&value.to_string_lossy(), var).map_err(|why| {
                    Error::usage(&target.url, format!("{why}; fix the environment variable"))
                })?;
            }
        }
    }
    let source = if settings.static_credentials.is_some() {
        "the access_key/secret_key/token settings".to_string()
    } else if let Some(p) = profile {
        format!("profile {p}")
    } else {
        "the AWS credential chain".to_string()
    };
    let mut sdk = loader.load().await;
    sdk = checked(sdk, &source);
    let (s3, dynamodb) = (s3.with_loaded(&sdk), dynamodb.with_loaded(&sdk));
    let custom_endpoint = s3.custom || dynamodb.custom;
    // The region goes into a signed header and the endpoint's host name: the signer
    // panics on a control character in it.
    let bad_region = |r: &str| {
        r.is_empty()
            || !r
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    if sdk.region().is_some_and(|r| bad_region(r.as_ref())) {
        return Err(Error::usage(
            &target.url,
            "the AWS region (from ?region=, AWS_REGION / AWS_DEFAULT_REGION or the profile) has characters no region name has (letters, digits and - only)",
        ));
    }
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
        sdk = checked(assume_role(sdk, role).await, "the assumed role");
    }
    Ok(Aws { sdk, s3, dynamodb })
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
        for name in SECRETS {
            if let Some(value) = target.param(name) {
                key_text(value.trim(), &format!("the {name} setting")).map_err(|why| {
                    usage(format!("{why}; fix it in the backend block or tflock.toml"))
                })?;
            }
        }
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
                    .map(role_duration)
                    .transpose()
                    .map_err(usage)?,
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

/// The shortest and longest sessions STS `AssumeRole` grants (`DurationSeconds`).
const ROLE_SESSION: (Duration, Duration) =
    (Duration::from_secs(15 * 60), Duration::from_secs(12 * 3600));

/// `assume_role.duration` (a Go duration such as `1h30m`) or the legacy
/// `assume_role_duration_seconds` (`900`), within what STS accepts.
fn role_duration(text: &str) -> Result<Duration, String> {
    let wanted = "use 15m to 12h, e.g. 1h";
    match tflock_core::duration::parse(text) {
        Ok(d) if (ROLE_SESSION.0..=ROLE_SESSION.1).contains(&d) => Ok(d),
        Ok(d) => Err(format!(
            "assume_role duration {}s is not a session length STS grants ({wanted})",
            d.as_secs()
        )),
        Err(e) => Err(format!(
            "assume_role duration is not a duration STS accepts ({wanted}): {e}"
        )),
    }
}

/// Refuses a key, secret or token with a character no AWS credential has (control
/// characters, spaces, non-ASCII): the SDK's signer panics on some of them, and none can
/// be valid. `what` names where it came from; the value is never shown.
pub(crate) fn key_text(value: &str, what: &str) -> Result<(), String> {
    match value.chars().find(|c| !c.is_ascii_graphic()) {
        None => Ok(()),
        Some(c) => {
            let kind = if c.is_control() {
                "a control character"
            } else if c.is_whitespace() {
                "a space"
            } else {
                "a non-ASCII character"
            };
            Err(format!(
                "{what} contains {kind}, which no AWS credential has (value not shown)"
            ))
        }
    }
}

/// Credentials that check what they resolve to before the signer sees it: profiles, SSO
/// and `credential_process` are read lazily, at the first request, so this is the
/// earliest a bad value in them can be caught.
#[derive(Debug)]
struct Checked {
    inner: SharedCredentialsProvider,
    source: String,
}

impl ProvideCredentials for Checked {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(async move {
            let creds = self.inner.provide_credentials().await?;
            let fields = [
                (
                    "the access key ID (aws_access_key_id)",
                    Some(creds.access_key_id()),
                ),
                (
                    "the secret access key (aws_secret_access_key)",
                    Some(creds.secret_access_key()),
                ),
                (
                    "the session token (aws_session_token)",
                    creds.session_token(),
                ),
            ];
            for (what, value) in fields {
                if let Some(value) = value {
                    key_text(value, &format!("{what} from {}", self.source)).map_err(|why| {
                        CredentialsError::invalid_configuration(UnusableCredentials(why))
                    })?;
                }
            }
            Ok(creds)
        })
    }
}

fn checked(sdk: SdkConfig, source: &str) -> SdkConfig {
    let Some(inner) = sdk.credentials_provider() else {
        return sdk;
    };
    let wrapped = Checked {
        inner,
        source: source.to_string(),
    };
    sdk.into_builder()
        .credentials_provider(SharedCredentialsProvider::new(wrapped))
        .build()
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
        assert_eq!(role_duration("900"), Ok(Duration::from_secs(900)));
        assert_eq!(role_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(role_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert!(role_duration("1x").is_err());
        assert!(role_duration("h").is_err());
        assert!(role_duration("899s").unwrap_err().contains("899s is not"));

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
            let err = load(&Target::parse(url).unwrap(), &opts, &[], |_| {
                Ok(Default::default())
            })
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
