//! The connection to GCS: endpoint, credentials, timeouts, the retry cap, and one-line
//! errors that name the bucket, the HTTP status and what to do.

use async_trait::async_trait;
use gcloud_storage::client::{Client, ClientConfig};
use gcloud_storage::http::Error as GcsError;
use std::sync::Arc;
use std::time::Duration;
use tflock_core::error::{one_line, root_cause, source_chain};
use tflock_core::{ConnectOptions, Error, Kind, Target};
use token_source::{TokenSource, TokenSourceProvider};

const GOOGLE_ENDPOINT: &str = "https://storage.googleapis.com";
/// Reads (list, get, download) are retried at most this many times, only on 408/429/5xx.
/// A dead endpoint (refused, timed out) is never retried: it fails within one timeout.
/// Deletes are never retried.
const READ_RETRIES: u32 = 2;

/// How the client authenticates, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    Anonymous,
    AccessToken,
    Credentials,
}

pub struct Conn {
    pub client: Client,
    /// The storage endpoint, without `/storage/v1`.
    pub endpoint: String,
    pub auth: Auth,
    pub timeout: Duration,
    /// The target URL, the subject of every message.
    pub target: String,
    pub bucket: String,
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

/// The static OAuth2 token Terraform's gcs backend would send: its `access_token`
/// setting (the target's option), else `GOOGLE_OAUTH_ACCESS_TOKEN`. Like Terraform, it is
/// sent to a custom endpoint too (Private Service Connect needs it; emulators ignore it).
fn access_token(target: &Target, env: impl Fn(&str) -> Option<String>) -> Option<String> {
    target
        .param("access_token")
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .or_else(|| env("GOOGLE_OAUTH_ACCESS_TOKEN"))
}

/// A static access token, sent as `Authorization: Bearer`.
struct StaticToken(String);

impl std::fmt::Debug for StaticToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StaticToken(..)")
    }
}

#[async_trait]
impl TokenSource for StaticToken {
    async fn token(&self) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
        Ok(format!("Bearer {}", self.0))
    }
}

#[derive(Debug)]
struct StaticTokenProvider(Arc<StaticToken>);

impl TokenSourceProvider for StaticTokenProvider {
    fn token_source(&self) -> Arc<dyn TokenSource> {
        self.0.clone()
    }
}

/// Terraform's `credentials` setting: the block's own (the target's option), else
/// `GOOGLE_BACKEND_CREDENTIALS`, else `GOOGLE_CREDENTIALS`; with where it came from.
fn credentials_setting(
    target: &Target,
    env: impl Fn(&str) -> Option<String>,
) -> Option<(String, &'static str)> {
    if let Some(v) = target
        .param("credentials")
        .map(str::trim)
        .filter(|v| !v.is_empty())
    {
        return Some((v.to_string(), "the backend's credentials"));
    }
    ["GOOGLE_BACKEND_CREDENTIALS", "GOOGLE_CREDENTIALS"]
        .into_iter()
        .find_map(|n| env(n).map(|v| (v, n)))
}

/// The service-account JSON of a credentials setting, which (as in Terraform) is either the
/// JSON itself or the path of a file holding it. Errors never repeat the value: it may be
/// the key.
fn credentials_json(value: &str, from: &str) -> Result<String, String> {
    let value = value.trim();
    if value.starts_with('{') {
        return serde_json::from_str::<serde_json::Value>(value)
            .map(|_| value.to_string())
            .map_err(|e| {
                format!(
                    "{from} is not valid JSON (line {}, column {})",
                    e.line(),
                    e.column()
                )
            });
    }
    let path = match value.strip_prefix("~/") {
        Some(rest) => match std::env::var_os("HOME") {
            Some(home) => std::path::Path::new(&home).join(rest),
            None => std::path::PathBuf::from(value),
        },
        None => std::path::PathBuf::from(value),
    };
    // Named only when it looks like a path: a mangled key must not be printed.
    let looks_like_path = ["/", "~/", "./", "../"]
        .iter()
        .any(|p| value.starts_with(p))
        || value.ends_with(".json");
    let text = std::fs::read_to_string(&path).map_err(|e| {
        let what = if looks_like_path {
            path.display().to_string()
        } else {
            "the value, not shown".to_string()
        };
        format!(
            "{from} is neither service-account JSON nor a readable file ({what}: {})",
            e.kind()
        )
    })?;
    serde_json::from_str::<serde_json::Value>(&text)
        .map(|_| text.clone())
        .map_err(|e| {
            format!(
                "{from}: {} is not valid JSON (line {}, column {})",
                path.display(),
                e.line(),
                e.column()
            )
        })
}

/// Terraform's `impersonate_service_account` (or `GOOGLE_BACKEND_IMPERSONATE_SERVICE_ACCOUNT`
/// / `GOOGLE_IMPERSONATE_SERVICE_ACCOUNT`): gcloud-storage cannot impersonate, and using the
/// caller's own identity instead would be wrong, so it is refused.
fn refuse_impersonation(
    target: &Target,
    env: impl Fn(&str) -> Option<String>,
) -> Result<(), Error> {
    let set = target
        .param("impersonate_service_account")
        .map(|v| ("impersonate_service_account", v.trim().to_string()))
        .or_else(|| {
            [
                "GOOGLE_BACKEND_IMPERSONATE_SERVICE_ACCOUNT",
                "GOOGLE_IMPERSONATE_SERVICE_ACCOUNT",
            ]
            .into_iter()
            .find_map(|n| env(n).map(|v| (n, v)))
        });
    match set {
        None => Ok(()),
        Some((name, account)) => Err(Error::usage(&target.url, format!("{name}={account}: tflock cannot impersonate a service account yet; run it with credentials of {account} (its key in GOOGLE_CREDENTIALS, or GOOGLE_OAUTH_ACCESS_TOKEN=$(gcloud auth print-access-token --impersonate-service-account={account}))"))),
    }
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

impl Conn {
    pub async fn new(target: &Target, opts: &ConnectOptions) -> Result<Conn, Error> {
        let bucket = target.host.clone();
        let timeout = opts.timeout;
        // No retry middleware: reads are retried by `read`, with a cap, and deletes never.
        let http = reqwest::Client::builder()
            .connect_timeout(timeout)
            .timeout(timeout)
            .build()
            .map_err(|e| {
                Error::backend(&target.url, format!("cannot build the HTTP client: {e}"))
            })?;
        let http = reqwest_middleware::ClientBuilder::new(http).build();
        refuse_impersonation(target, env_nonempty)?;
        let custom = custom_endpoint(target)?;
        let token = access_token(target, env_nonempty);
        let endpoint = custom
            .clone()
            .unwrap_or_else(|| GOOGLE_ENDPOINT.to_string());
        let base = ClientConfig {
            http: Some(http),
            storage_endpoint: endpoint.clone(),
            ..ClientConfig::default()
        };
        let (config, auth) = if let Some(token) = token {
            let provider = StaticTokenProvider(Arc::new(StaticToken(token)));
            (
                ClientConfig {
                    token_source_provider: Some(Box::new(provider)),
                    ..base
                },
                Auth::AccessToken,
            )
        } else if let Some((value, from)) = credentials_setting(target, env_nonempty) {
            // Terraform's order: access_token, then credentials; sent to a custom endpoint too.
            let json = credentials_json(&value, from).map_err(|m| Error::usage(&target.url, m))?;
            (
                from_json(base, &json, from, &target.url, timeout).await?,
                Auth::Credentials,
            )
        } else if custom.is_some() {
            // An emulator: no credentials, as Terraform's `access_token = "dummy"` setups.
            (base.anonymous(), Auth::Anonymous)
        } else {
            (adc(base, &target.url, timeout).await?, Auth::Credentials)
        };
        Ok(Conn {
            client: Client::new(config),
            endpoint,
            auth,
            timeout,
            target: target.url.clone(),
            bucket,
        })
    }

    /// Runs a read, retrying only on 408/429/5xx, at most [`READ_RETRIES`] times.
    pub async fn read<T, F, Fut>(&self, f: F) -> Result<T, GcsError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, GcsError>>,
    {
        let mut attempt = 0;
        loop {
            match f().await {
                Err(e) if attempt < READ_RETRIES && retriable(&e) => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
                }
                other => return other,
            }
        }
    }

    /// One line: what failed, on which bucket, the HTTP status or transport problem, and a
    /// hint. `what` is e.g. "listing objects" or "reading gs://b/o".
    pub fn error(&self, what: &str, e: &GcsError) -> Error {
        let bucket = &self.bucket;
        let msg = |detail: String| Error::backend(&self.target, format!("{what} failed: {detail}"));
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
            let hint = match code {
                401 => match self.auth {
                    Auth::Anonymous => "the endpoint wants credentials: unset ?endpoint=/STORAGE_EMULATOR_HOST for real GCS, or set GOOGLE_OAUTH_ACCESS_TOKEN".to_string(),
                    _ => "credentials were rejected: run `gcloud auth application-default login`, or check GOOGLE_APPLICATION_CREDENTIALS / GOOGLE_OAUTH_ACCESS_TOKEN".to_string(),
                },
                403 => format!("the caller needs storage.objects.list, storage.objects.get and storage.objects.delete on bucket {bucket} (e.g. roles/storage.objectUser)"),
                404 => format!("bucket {bucket} does not exist at {}: check the name in the backend \"gcs\" block", self.endpoint),
                408 | 429 | 500..=599 => "GCS is throttling or failing: retry in a moment".to_string(),
                _ => format!("check bucket {bucket} and the request"),
            };
            let kind = match code {
                401 => Kind::Unauthenticated,
                403 => Kind::PermissionDenied,
                _ => Kind::Backend,
            };
            return msg(detail).with_hint(hint).with_kind(kind);
        }
        match e {
            GcsError::HttpClient(re) if re.is_timeout() => msg(format!(
                "no answer from {} within {}s",
                self.endpoint,
                self.timeout.as_secs_f32()
            ))
            .with_hint("check the endpoint and the network, or raise --request-timeout")
            .with_kind(Kind::Timeout),
            GcsError::HttpClient(re) if re.is_connect() => msg(format!(
                "cannot connect to {} ({})",
                self.endpoint,
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
}

/// A client authenticated by service-account (or other credential) JSON.
async fn from_json(
    base: ClientConfig,
    json: &str,
    from: &str,
    target: &str,
    timeout: Duration,
) -> Result<ClientConfig, Error> {
    use gcloud_storage::client::google_cloud_auth::credentials::CredentialsFile;
    let hint = "check the service-account key (a JSON key file of type service_account, authorized_user or external_account)";
    let limit = timeout.max(Duration::from_secs(5));
    let work = async {
        let file = CredentialsFile::new_from_str(json).await?;
        base.with_credentials(file).await
    };
    match tokio::time::timeout(limit, work).await {
        Ok(Ok(config)) => Ok(config),
        // The auth crate's messages name fields and types, never key material.
        Ok(Err(e)) => Err(Error::backend(
            target,
            format!("{from} cannot be used: {}", one_line(&e.to_string())),
        )
        .with_hint(hint)),
        Err(_) => Err(Error::backend(
            target,
            format!("loading {from} took longer than {}s", limit.as_secs()),
        )
        .with_hint(hint)),
    }
}

/// Application Default Credentials, the Google way: `GOOGLE_APPLICATION_CREDENTIALS`,
/// gcloud's user credentials, and the metadata server. (Terraform's own `credentials`,
/// `GOOGLE_BACKEND_CREDENTIALS` and `GOOGLE_CREDENTIALS` come first: [`credentials_setting`].)
async fn adc(base: ClientConfig, target: &str, timeout: Duration) -> Result<ClientConfig, Error> {
    let hint = "set GOOGLE_APPLICATION_CREDENTIALS, run `gcloud auth application-default login`, set GOOGLE_OAUTH_ACCESS_TOKEN, or pass ?endpoint= for an emulator";
    // Finding credentials may probe the metadata server and fetch a first token.
    let limit = timeout.max(Duration::from_secs(5));
    match tokio::time::timeout(limit, base.with_auth()).await {
        Ok(Ok(config)) => Ok(config),
        Ok(Err(e)) => Err(Error::backend(
            target,
            format!("no usable Google credentials: {}", one_line(&e.to_string())),
        )
        .with_hint(hint)),
        Err(_) => Err(Error::backend(
            target,
            format!(
                "finding Google credentials took longer than {}s",
                limit.as_secs()
            ),
        )
        .with_hint(hint)),
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

fn retriable(e: &GcsError) -> bool {
    matches!(status(e), Some(408 | 429 | 500..=599))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(url: &str) -> Option<String> {
        custom_endpoint(&Target::parse(url).unwrap()).unwrap()
    }

    #[test]
    fn the_backend_blocks_access_token_wins_over_the_environment() {
        let env = |k: &str| (k == "GOOGLE_OAUTH_ACCESS_TOKEN").then(|| "from-env".to_string());
        let none = |_: &str| None;
        let mut t = Target::parse("gs://b").unwrap();
        assert_eq!(access_token(&t, env).as_deref(), Some("from-env"));
        assert_eq!(access_token(&t, none), None);
        t.params
            .insert("access_token".into(), " from-block ".into());
        assert_eq!(access_token(&t, env).as_deref(), Some("from-block"));
        t.params.insert("access_token".into(), " ".into());
        assert_eq!(access_token(&t, env).as_deref(), Some("from-env"));
    }

    #[test]
    fn credentials_come_from_the_block_then_terraforms_variables() {
        let env = |k: &str| match k {
            "GOOGLE_CREDENTIALS" => Some("/from/google_credentials.json".to_string()),
            "GOOGLE_BACKEND_CREDENTIALS" => Some("/from/backend.json".to_string()),
            _ => None,
        };
        let only_generic = |k: &str| {
            (k == "GOOGLE_CREDENTIALS").then(|| "/from/google_credentials.json".to_string())
        };
        let mut t = Target::parse("gs://b").unwrap();
        assert_eq!(
            credentials_setting(&t, env),
            Some(("/from/backend.json".into(), "GOOGLE_BACKEND_CREDENTIALS"))
        );
        assert_eq!(
            credentials_setting(&t, only_generic).map(|(_, from)| from),
            Some("GOOGLE_CREDENTIALS")
        );
        t.params.insert(
            "credentials".into(),
            "{\"type\":\"service_account\"}".into(),
        );
        assert_eq!(
            credentials_setting(&t, env).map(|(_, from)| from),
            Some("the backend's credentials")
        );
        assert_eq!(
            credentials_setting(&Target::parse("gs://b").unwrap(), |_| None),
            None
        );
    }

    #[test]
    fn credentials_are_json_or_a_path_and_errors_never_show_them() {
        let secret = "-----BEGIN PRIVATE KEY-----\\nTOPSECRET";
        let json = format!("{{\"type\":\"service_account\",\"private_key\":\"{secret}\"}}");
        assert_eq!(credentials_json(&format!(" {json} "), "x").unwrap(), json);
        let dir = std::env::temp_dir().join(format!("tflock-gcs-cred-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("key.json");
        std::fs::write(&file, &json).unwrap();
        assert_eq!(
            credentials_json(&file.display().to_string(), "x").unwrap(),
            json
        );
        // Broken JSON, inline or in a file, and a value that is neither.
        let broken = format!("{{\"private_key\":\"{secret}\"");
        std::fs::write(&file, &broken).unwrap();
        for value in [
            broken.clone(),
            file.display().to_string(),
            "TOPSECRET-not-a-path".into(),
        ] {
            let err = credentials_json(&value, "the backend's credentials").unwrap_err();
            assert!(!err.contains("TOPSECRET"), "{err}");
            assert!(err.starts_with("the backend's credentials"), "{err}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn impersonation_is_refused_not_ignored() {
        let mut t = Target::parse("gs://b").unwrap();
        assert!(refuse_impersonation(&t, |_| None).is_ok());
        let env = |k: &str| {
            (k == "GOOGLE_IMPERSONATE_SERVICE_ACCOUNT")
                .then(|| "env-sa@p.iam.gserviceaccount.com".to_string())
        };
        let err = refuse_impersonation(&t, env).unwrap_err();
        assert_eq!(err.kind(), tflock_core::Kind::Usage);
        assert!(
            err.to_string()
                .contains("GOOGLE_IMPERSONATE_SERVICE_ACCOUNT=env-sa@"),
            "{err}"
        );
        t.params.insert(
            "impersonate_service_account".into(),
            "tf@p.iam.gserviceaccount.com".into(),
        );
        let text = refuse_impersonation(&t, env).unwrap_err().to_string();
        assert!(
            text.starts_with("gs://b: impersonate_service_account=tf@p.iam.gserviceaccount.com: tflock cannot impersonate"),
            "{text}"
        );
        assert!(!text.contains('\n'));
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
