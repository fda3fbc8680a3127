//! Credentials, in Terraform's gcs backend order: the block's `access_token` (or
//! `GOOGLE_OAUTH_ACCESS_TOKEN`), then its `credentials` (or `GOOGLE_BACKEND_CREDENTIALS` /
//! `GOOGLE_CREDENTIALS`), then anonymous for an emulator, then Application Default
//! Credentials. Every value that could be a secret is remembered in [`Secrets`], and every
//! message built from outside text goes through [`Secrets::scrub`].

use async_trait::async_trait;
use gcloud_storage::client::google_cloud_auth::credentials::CredentialsFile;
use gcloud_storage::client::google_cloud_auth::error::Error as AuthError;
use gcloud_storage::client::ClientConfig;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tflock_core::error::one_line;
use tflock_core::fsread::{read_text_bounded, ReadErrorKind, CONFIG_MAX};
use tflock_core::{redact, Error, Target};
use token_source::{TokenSource, TokenSourceProvider};

/// How the client authenticates, for hints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    Anonymous,
    AccessToken,
    Credentials,
}

/// Values tflock was given that must never be shown: tokens, keys, whole credentials
/// values. Messages from the auth crate and from servers are scrubbed of them.
#[derive(Default, Clone)]
pub struct Secrets(Vec<String>);

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secrets({} values)", self.0.len())
    }
}

impl Secrets {
    fn add(&mut self, value: &str) {
        let value = value.trim();
        if value.len() >= redact::MIN_SECRET_LEN {
            self.0.push(value.to_string());
        }
        // A key is also blanked line by line: a message may quote one line of a PEM.
        for line in value.lines().map(str::trim) {
            if line.len() >= 16 && line != value {
                self.0.push(line.to_string());
            }
        }
        // JSON escapes the newlines of a PEM: its lines may appear as `\n`-joined text.
        if value.contains("\\n") {
            for line in value.split("\\n").map(str::trim) {
                if line.len() >= 16 {
                    self.0.push(line.to_string());
                }
            }
        }
    }

    /// Every string in a credentials JSON except the fields that only describe it: a key,
    /// a client secret, a refresh token or anything unexpected is treated as secret.
    fn add_json(&mut self, json: &serde_json::Value) {
        const DESCRIPTIVE: &[&str] = &[
            "type",
            "client_email",
            "project_id",
            "client_id",
            "token_uri",
            "auth_uri",
            "auth_provider_x509_cert_url",
            "client_x509_cert_url",
            "universe_domain",
            "quota_project_id",
        ];
        match json {
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    match v {
                        serde_json::Value::String(s) if DESCRIPTIVE.contains(&k.as_str()) => {
                            // A descriptive field holding something long and odd is not
                            // trusted to be harmless either.
                            if !plain_word(s) {
                                self.add(s)
                            }
                        }
                        other => self.add_json(other),
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| self.add_json(v)),
            serde_json::Value::String(s) => self.add(s),
            _ => {}
        }
    }

    /// `text` without any known secret value and with every URL's userinfo, query values
    /// and fragment blanked.
    pub fn scrub(&self, text: &str) -> String {
        let refs: Vec<&str> = self.0.iter().map(String::as_str).collect();
        redact::url(&redact::secrets(text, &refs))
    }
}

/// A short identifier, e-mail or URL of printable ASCII: what descriptive fields hold.
fn plain_word(s: &str) -> bool {
    s.len() <= 200 && s.bytes().all(|b| b.is_ascii_graphic())
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

/// Why a credentials text is not JSON, without quoting any of it (serde's messages
/// quote values: `invalid type: string "..."`).
fn json_problem(e: &serde_json::Error) -> String {
    let what = match e.classify() {
        serde_json::error::Category::Eof => "ends too early",
        serde_json::error::Category::Syntax => "has a syntax error",
        serde_json::error::Category::Data => "has a value of the wrong type",
        serde_json::error::Category::Io => "could not be read",
    };
    format!("{what} at line {}, column {}", e.line(), e.column())
}

/// Parses a credentials text as a JSON object, remembering its secrets first.
fn parse_json(text: &str, what: &str, secrets: &mut Secrets) -> Result<String, String> {
    // Blank the whole value whatever happens: it may be the key itself, mangled.
    secrets.add(text);
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| format!("{what} is not valid JSON ({})", json_problem(&e)))?;
    secrets.add_json(&value);
    if !value.is_object() {
        return Err(format!("{what} is JSON but not an object"));
    }
    Ok(text.to_string())
}

/// `~/x` with the home directory, as Terraform expands it.
fn expand_home(value: &str) -> PathBuf {
    match value.strip_prefix("~/") {
        Some(rest) => match std::env::var_os("HOME") {
            Some(home) => Path::new(&home).join(rest),
            None => PathBuf::from(value),
        },
        None => PathBuf::from(value),
    }
}

/// Reads a credentials file with the bounds every file read has: no FIFO, device or
/// directory, at most [`CONFIG_MAX`] bytes, UTF-8.
fn read_credentials_file(path: &Path) -> Result<String, tflock_core::fsread::ReadError> {
    read_text_bounded(path, CONFIG_MAX)
}

/// The service-account JSON of a credentials setting, which (as in Terraform) is either the
/// JSON itself or the path of a file holding it. Errors never repeat the value: it may be
/// the key.
fn credentials_json(value: &str, from: &str, secrets: &mut Secrets) -> Result<String, String> {
    let value = value.trim();
    if value.starts_with('{') {
        return parse_json(value, from, secrets);
    }
    // Named only when it looks like a path: a mangled key must not be printed.
    let looks_like_path = ["/", "~/", "./", "../"]
        .iter()
        .any(|p| value.starts_with(p))
        || value.ends_with(".json");
    if !looks_like_path {
        secrets.add(value);
    }
    let path = expand_home(value);
    let text = read_credentials_file(&path).map_err(|e| {
        if looks_like_path {
            format!("{from} is neither service-account JSON nor a readable file ({e})")
        } else {
            format!(
                "{from} is neither service-account JSON nor a readable file (the value, not shown: {})",
                reason_of(e.kind())
            )
        }
    })?;
    parse_json(&text, &format!("{from}: {}", path.display()), secrets)
}

fn reason_of(kind: ReadErrorKind) -> &'static str {
    match kind {
        ReadErrorKind::NotFound => "no such file",
        ReadErrorKind::PermissionDenied => "permission denied",
        ReadErrorKind::NotRegular => "not a regular file",
        ReadErrorKind::TooLarge => "too large",
        ReadErrorKind::NotUtf8 => "not UTF-8 text",
        _ => "cannot be read",
    }
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

/// What the auth crate said, without anything secret. Its JSON errors quote values, and
/// `unsupported account X` repeats the `type` field: those are described, not quoted.
fn auth_problem(e: &AuthError, secrets: &Secrets) -> String {
    match e {
        AuthError::JsonError(j) => format!("it {}", json_problem(j)),
        // The `type` is not repeated: a mangled file may hold anything there.
        AuthError::UnsupportedAccountType(_) => {
            "its type is not supported (service_account, authorized_user or external_account)"
                .to_string()
        }
        other => secrets.scrub(&one_line(&other.to_string())),
    }
}

/// Credentials for a client of `base`, and which kind they are. Also returns every secret
/// value met, for scrubbing later messages.
pub async fn configure(
    target: &Target,
    base: ClientConfig,
    emulator: bool,
    timeout: Duration,
) -> Result<(ClientConfig, Auth, Secrets), Error> {
    configure_with(target, base, emulator, timeout, tflock_core::env_var).await
}

async fn configure_with(
    target: &Target,
    base: ClientConfig,
    emulator: bool,
    timeout: Duration,
    env: impl Fn(&str) -> Option<String>,
) -> Result<(ClientConfig, Auth, Secrets), Error> {
    refuse_impersonation(target, &env)?;
    let mut secrets = Secrets::default();
    if let Some(token) = access_token(target, &env) {
        secrets.add(&token);
        let provider = StaticTokenProvider(Arc::new(StaticToken(token)));
        let config = ClientConfig {
            token_source_provider: Some(Box::new(provider)),
            ..base
        };
        return Ok((config, Auth::AccessToken, secrets));
    }
    if let Some((value, from)) = credentials_setting(target, &env) {
        // Terraform's order: access_token, then credentials; sent to a custom endpoint too.
        let json = credentials_json(&value, from, &mut secrets)
            .map_err(|m| Error::usage(&target.url, m))?;
        let config = from_json(base, &json, from, &target.url, timeout, &secrets).await?;
        return Ok((config, Auth::Credentials, secrets));
    }
    if emulator {
        // An emulator: no credentials, as Terraform's `access_token = "dummy"` setups.
        return Ok((base.anonymous(), Auth::Anonymous, secrets));
    }
    let config = adc(base, &target.url, timeout, &env, &mut secrets).await?;
    Ok((config, Auth::Credentials, secrets))
}

/// A client authenticated by service-account (or other credential) JSON.
async fn from_json(
    base: ClientConfig,
    json: &str,
    from: &str,
    target: &str,
    timeout: Duration,
    secrets: &Secrets,
) -> Result<ClientConfig, Error> {
    let hint = "check the service-account key (a JSON key file of type service_account, authorized_user or external_account)";
    let limit = timeout.max(Duration::from_secs(5));
    let work = async {
        let file = CredentialsFile::new_from_str(json).await?;
        base.with_credentials(file).await
    };
    match tokio::time::timeout(limit, work).await {
        Ok(Ok(config)) => Ok(config),
        Ok(Err(e)) => Err(Error::backend(
            target,
            format!("{from} cannot be used: {}", auth_problem(&e, secrets)),
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
/// The files are read here, with bounds, so a FIFO or `/dev/zero` named by the variable
/// cannot hang or exhaust tflock; only the metadata server is left to the auth crate.
async fn adc(
    base: ClientConfig,
    target: &str,
    timeout: Duration,
    env: impl Fn(&str) -> Option<String>,
    secrets: &mut Secrets,
) -> Result<ClientConfig, Error> {
    let hint = "set GOOGLE_APPLICATION_CREDENTIALS, run `gcloud auth application-default login`, set GOOGLE_OAUTH_ACCESS_TOKEN, or pass ?endpoint= for an emulator";
    let file = match env("GOOGLE_APPLICATION_CREDENTIALS") {
        Some(path) => {
            let path = expand_home(&path);
            let text = read_credentials_file(&path).map_err(|e| {
                Error::usage(target, format!("GOOGLE_APPLICATION_CREDENTIALS: {e}")).with_hint(hint)
            })?;
            Some((
                text,
                format!("GOOGLE_APPLICATION_CREDENTIALS ({})", path.display()),
            ))
        }
        None => {
            let well_known = env("HOME")
                .map(|h| Path::new(&h).join(".config/gcloud/application_default_credentials.json"));
            match well_known.map(|p| (read_credentials_file(&p), p)) {
                Some((Ok(text), p)) => Some((text, p.display().to_string())),
                Some((Err(e), _)) if e.kind() != ReadErrorKind::NotFound => {
                    return Err(
                        Error::usage(target, format!("gcloud's credentials: {e}")).with_hint(hint)
                    )
                }
                _ => None,
            }
        }
    };
    if let Some((text, from)) = file {
        let json = parse_json(&text, &from, secrets).map_err(|m| Error::usage(target, m))?;
        return from_json(base, &json, &from, target, timeout, secrets).await;
    }
    // Only the metadata server is left: probing it may take a while off Google Cloud.
    let limit = timeout.max(Duration::from_secs(5));
    match tokio::time::timeout(limit, base.with_auth()).await {
        Ok(Ok(config)) => Ok(config),
        Ok(Err(e)) => Err(Error::backend(
            target,
            format!(
                "no usable Google credentials: {}",
                auth_problem(&e, secrets)
            ),
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn credentials_are_json_or_a_path() {
        let json = r#"{"type":"service_account","private_key":"k"}"#;
        let mut s = Secrets::default();
        assert_eq!(
            credentials_json(&format!(" {json} "), "x", &mut s).unwrap(),
            json
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("key.json");
        std::fs::write(&file, json).unwrap();
        assert_eq!(
            credentials_json(&file.display().to_string(), "x", &mut s).unwrap(),
            json
        );
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

    /// The one value every hostile case carries; no message may show it (or a part).
    const SECRET: &str = "TOPSECRET-7f3a9c2e1b5d";

    /// Runs `f` on its own thread and runtime, failing the test if it takes more than 20 s:
    /// a read that blocks (a FIFO) is a failure, not a hung test run.
    fn within_seconds<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        rx.recv_timeout(Duration::from_secs(20))
            .expect("blocked (or panicked) instead of failing with an error")
    }

    fn base() -> ClientConfig {
        ClientConfig {
            storage_endpoint: "http://127.0.0.1:9".into(),
            ..ClientConfig::default()
        }
    }

    /// Every credentials path with hostile content, from the block, the environment and
    /// Application Default Credentials: each fails with one line that never shows SECRET.
    #[test]
    fn no_credentials_error_shows_a_secret() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let file = |name: &str, body: &[u8]| {
            let p = d.join(name);
            std::fs::write(&p, body).unwrap();
            p.display().to_string()
        };
        let pem = format!("-----BEGIN PRIVATE KEY-----\\n{SECRET}\\n-----END PRIVATE KEY-----\\n");
        let broken = file(
            "broken.json",
            format!(r#"{{"private_key":"{SECRET}""#).as_bytes(),
        );
        let bad_key = file(
            "bad-key.json",
            format!(r#"{{"type":"service_account","private_key":"{pem}","client_email":"a@b"}}"#)
                .as_bytes(),
        );
        let huge = d.join("huge.json");
        {
            let f = std::fs::File::create(&huge).unwrap();
            f.set_len(CONFIG_MAX + 1).unwrap();
        }
        let fifo = d.join("fifo.json");
        let c = std::ffi::CString::new(fifo.display().to_string()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let home = d.join("home");
        std::fs::create_dir_all(home.join(".config/gcloud")).unwrap();
        std::fs::write(
            home.join(".config/gcloud/application_default_credentials.json"),
            format!(r#"{{"type":"authorized_user","client_secret":"{SECRET}"}}"#),
        )
        .unwrap();
        let (huge, fifo, home) = (
            huge.display().to_string(),
            fifo.display().to_string(),
            home.display().to_string(),
        );

        // (what, the block's credentials option, environment)
        type Case<'a> = (&'a str, Option<String>, Vec<(&'a str, String)>);
        let cases: Vec<Case> = vec![
            (
                "inline JSON cut short",
                Some(format!(r#"{{"private_key":"{SECRET}""#)),
                vec![],
            ),
            (
                "inline JSON, secret as type",
                Some(format!(r#"{{"type":"{SECRET}"}}"#)),
                vec![],
            ),
            (
                "inline JSON, key of the wrong type",
                Some(format!(
                    r#"{{"type":"service_account","private_key":["{SECRET}"]}}"#
                )),
                vec![],
            ),
            (
                "inline JSON, key that is not PEM",
                Some(format!(
                    r#"{{"type":"service_account","private_key":"{SECRET}","client_email":"a@b"}}"#
                )),
                vec![],
            ),
            (
                "inline JSON, PEM that is not a key",
                Some(format!(
                    r#"{{"type":"service_account","private_key":"{pem}","client_email":"a@b"}}"#
                )),
                vec![],
            ),
            (
                "inline JSON, user credentials without refresh token",
                Some(format!(
                    r#"{{"type":"authorized_user","client_secret":"{SECRET}"}}"#
                )),
                vec![],
            ),
            (
                "inline JSON, a string where a list belongs (serde quotes it)",
                Some(format!(
                    r#"{{"type":"service_account","delegates":"{SECRET}"}}"#
                )),
                vec![],
            ),
            (
                "inline JSON array",
                Some(format!(r#"["{SECRET}"]"#)),
                vec![],
            ),
            (
                "the key itself, neither JSON nor a path",
                Some(SECRET.to_string()),
                vec![],
            ),
            ("a file cut short", Some(broken.clone()), vec![]),
            ("a file with a bad key", Some(bad_key.clone()), vec![]),
            ("a FIFO", Some(fifo.clone()), vec![]),
            ("a huge file", Some(huge.clone()), vec![]),
            ("/dev/zero", Some("/dev/zero".into()), vec![]),
            ("a directory", Some(d.display().to_string()), vec![]),
            (
                "GOOGLE_CREDENTIALS inline",
                None,
                vec![(
                    "GOOGLE_CREDENTIALS",
                    format!(r#"{{"private_key":"{SECRET}""#),
                )],
            ),
            (
                "GOOGLE_BACKEND_CREDENTIALS, the key",
                None,
                vec![("GOOGLE_BACKEND_CREDENTIALS", SECRET.into())],
            ),
            (
                "ADC file cut short",
                None,
                vec![("GOOGLE_APPLICATION_CREDENTIALS", broken)],
            ),
            (
                "ADC file with a bad key",
                None,
                vec![("GOOGLE_APPLICATION_CREDENTIALS", bad_key)],
            ),
            (
                "ADC FIFO",
                None,
                vec![("GOOGLE_APPLICATION_CREDENTIALS", fifo)],
            ),
            (
                "ADC huge file",
                None,
                vec![("GOOGLE_APPLICATION_CREDENTIALS", huge)],
            ),
            (
                "ADC /dev/zero",
                None,
                vec![("GOOGLE_APPLICATION_CREDENTIALS", "/dev/zero".into())],
            ),
            ("gcloud's user credentials", None, vec![("HOME", home)]),
        ];
        for (what, option, env) in cases {
            let mut target = Target::parse("gs://b").unwrap();
            if let Some(v) = option {
                target.params.insert("credentials".into(), v);
            }
            let text = within_seconds(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                let lookup = |k: &str| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
                let got = rt.block_on(configure_with(
                    &target,
                    base(),
                    false,
                    Duration::from_secs(2),
                    lookup,
                ));
                match got {
                    Ok(_) => None,
                    Err(e) => Some(e.to_string()),
                }
            });
            let Some(text) = text else {
                panic!("{what}: accepted");
            };
            assert!(!text.contains(SECRET), "{what}: {text}");
            assert!(!text.contains("7f3a9c2e1b5d"), "{what}: {text}");
            assert!(!text.contains('\n'), "{what}: {text}");
            assert!(text.starts_with("gs://b: "), "{what}: {text}");
        }
    }

    #[test]
    fn scrubbing_blanks_values_lines_and_url_secrets() {
        let mut s = Secrets::default();
        s.add_json(
            &serde_json::json!({"type": "service_account", "client_email": "a@b.c",
                "private_key": format!("-----BEGIN-----\n{SECRET}AAAA\n-----END-----")}),
        );
        let text = s.scrub(&format!(
            "bad key line {SECRET}AAAA at https://u:p@h/x?token={SECRET} for a@b.c"
        ));
        assert!(!text.contains(SECRET), "{text}");
        assert!(text.contains("a@b.c"), "descriptive fields stay: {text}");
    }
}
