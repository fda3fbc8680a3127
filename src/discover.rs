//! With no target: find the backend a Terraform working directory uses, the way
//! Terraform does, and turn it into targets that cover every workspace of that backend.
//!
//! Order: the initialised backend in `.terraform/terraform.tfstate` (type and resolved
//! config), else the `backend` block in `*.tf` / `*.tf.json`, else the local backend.

use serde_json::{Map, Value};
use std::path::{Path, PathBuf};
use tflock_core::{Error, Lock, Target};

/// A target found by discovery, and which of its locks belong to this backend config.
pub struct Discovered {
    pub target: Target,
    pub scope: Option<Scope>,
}

/// The result of discovery for one working directory.
pub struct Discovery {
    pub targets: Vec<Discovered>,
    /// `TF_WORKSPACE`, else `.terraform/environment`, else `default`.
    pub current_workspace: String,
}

/// Which lock records belong to one backend configuration, and their workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// What the location (or, for Azure, the path) starts with.
    base: String,
    rule: Rule,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Rule {
    /// s3 / DynamoDB: `<key>` or `<workspace_key_prefix>/<ws>/<key>`, then `suffix`.
    S3 {
        key: String,
        prefix: String,
        suffix: String,
    },
    /// azurerm: blob `<key>` or `<key>env:<ws>`.
    Azure { key: String },
    /// gcs: `<prefix><ws>.tflock`.
    Gcs,
}

impl Scope {
    /// The workspace of `lock` when it belongs to this backend configuration.
    pub fn workspace_of(&self, lock: &Lock) -> Option<String> {
        // Azure: the blob name (OpenTofu >= 1.11 writes Path as the full blob URL).
        let subject = match self.rule {
            Rule::Azure { .. } => lock.details.get("blob")?,
            _ => &lock.location,
        };
        let rest = subject.strip_prefix(&self.base)?;
        match &self.rule {
            Rule::S3 {
                key,
                prefix,
                suffix,
            } => {
                let rest = rest.strip_suffix(suffix.as_str())?;
                if rest == key {
                    return Some("default".into());
                }
                let ws = rest
                    .strip_prefix(&format!("{prefix}/"))?
                    .strip_suffix(&format!("/{key}"))?;
                (!ws.is_empty() && !ws.contains('/')).then(|| ws.to_string())
            }
            Rule::Azure { key } => {
                if rest == key {
                    return Some("default".into());
                }
                let ws = rest.strip_prefix(&format!("{key}env:"))?;
                (!ws.is_empty()).then(|| ws.to_string())
            }
            Rule::Gcs => {
                let ws = rest.strip_suffix(".tflock")?;
                (!ws.is_empty() && !ws.contains('/')).then(|| ws.to_string())
            }
        }
    }
}

pub fn discover(dir: &Path) -> Result<Discovery, Error> {
    if !dir.is_dir() {
        return Err(Error::usage(format!(
            "{}: not a directory (pass the Terraform working directory with --dir)",
            dir.display()
        )));
    }
    let current_workspace = current_workspace(dir);
    let initialised = dir.join(".terraform").join("terraform.tfstate");
    let (kind, config, source) = match std::fs::read_to_string(&initialised) {
        Ok(text) => {
            let v: Value = serde_json::from_str(&text).map_err(|e| {
                Error::usage(format!(
                    "{}: not valid JSON ({e}); run terraform init again",
                    initialised.display()
                ))
            })?;
            match v.get("backend").filter(|b| !b.is_null()) {
                Some(b) => (
                    b.get("type")
                        .and_then(Value::as_str)
                        .unwrap_or("local")
                        .to_string(),
                    b.get("config")
                        .and_then(Value::as_object)
                        .cloned()
                        .unwrap_or_default(),
                    initialised.display().to_string(),
                ),
                None => backend_block(dir)?,
            }
        }
        Err(_) => backend_block(dir)?,
    };
    let targets = targets_for(&kind, &config, dir, &source)?;
    Ok(Discovery {
        targets,
        current_workspace,
    })
}

fn current_workspace(dir: &Path) -> String {
    if let Ok(ws) = std::env::var("TF_WORKSPACE") {
        if !ws.trim().is_empty() {
            return ws.trim().to_string();
        }
    }
    std::fs::read_to_string(dir.join(".terraform").join("environment"))
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "default".into())
}

/// The `terraform { backend "TYPE" { ... } }` block of the configuration, if any.
fn backend_block(dir: &Path) -> Result<(String, Map<String, Value>, String), Error> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::usage(format!("{}: cannot read directory ({e})", dir.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let n = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            n.ends_with(".tf") || n.ends_with(".tf.json")
        })
        .collect();
    files.sort();
    for file in files {
        let text = std::fs::read_to_string(&file)
            .map_err(|e| Error::usage(format!("{}: cannot read ({e})", file.display())))?;
        let parsed: Value = if file.to_string_lossy().ends_with(".json") {
            serde_json::from_str(&text)
                .map_err(|e| Error::usage(format!("{}: not valid JSON ({e})", file.display())))?
        } else {
            hcl::from_str(&text)
                .map_err(|e| Error::usage(format!("{}: cannot parse HCL: {e}", file.display())))?
        };
        for terraform in as_list(parsed.get("terraform")) {
            for backend in as_list(terraform.get("backend")) {
                if let Some((kind, body)) = backend.as_object().and_then(|m| m.iter().next()) {
                    let config = as_list(Some(body))
                        .into_iter()
                        .next()
                        .and_then(Value::as_object)
                        .cloned()
                        .unwrap_or_default();
                    return Ok((
                        kind.clone(),
                        config,
                        format!("backend \"{kind}\" block in {}", file.display()),
                    ));
                }
            }
        }
    }
    Ok((
        "local".into(),
        Map::new(),
        format!("{} (no backend configured: local)", dir.display()),
    ))
}

/// HCL blocks decode to objects, JSON configs may use arrays of them: accept both.
fn as_list(v: Option<&Value>) -> Vec<&Value> {
    match v {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(Value::Null) | None => Vec::new(),
        Some(other) => vec![other],
    }
}

fn get_str<'a>(config: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    config
        .get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn get_bool(config: &Map<String, Value>, key: &str) -> bool {
    match config.get(key) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true",
        _ => false,
    }
}

fn nested_str<'a>(config: &'a Map<String, Value>, outer: &str, inner: &str) -> Option<&'a str> {
    as_list(config.get(outer))
        .into_iter()
        .find_map(|o| o.get(inner))
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn missing(kind: &str, keys: &[&str], source: &str) -> Error {
    Error::usage(format!(
        "the {kind} backend ({source}) does not set {}; run terraform init (for -backend-config values) or pass -t",
        keys.join(", ")
    ))
}

fn target(url: String, params: Vec<(&str, Option<String>)>) -> Target {
    let mut t = Target::parse(&url).unwrap_or(Target {
        url: url.clone(),
        scheme: String::new(),
        host: String::new(),
        path: String::new(),
        params: Default::default(),
    });
    for (k, v) in params {
        if let Some(v) = v {
            t.params.insert(k.to_string(), v);
        }
    }
    t
}

/// A list setting (`shared_config_files = [...]`), one entry per line.
fn get_list(config: &Map<String, Value>, key: &str) -> Option<String> {
    let items: Vec<&str> = as_list(config.get(key))
        .into_iter()
        .filter_map(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    (!items.is_empty()).then(|| items.join("\n"))
}

/// The s3 block's region, credential and role settings, as hidden target options under
/// Terraform's own names (the keys, token and profile never reach the shown URL).
/// `assume_role { ... }` wins over the legacy top-level `role_arn` settings.
fn s3_credential_params(c: &Map<String, Value>) -> Vec<(&'static str, Option<String>)> {
    let s = |k: &str| get_str(c, k).map(String::from);
    let role = |inner: &str, legacy: &str| {
        nested_str(c, "assume_role", inner)
            .or_else(|| get_str(c, legacy))
            .map(String::from)
    };
    // Legacy `assume_role_duration_seconds` is a number.
    let legacy_duration = c
        .get("assume_role_duration_seconds")
        .and_then(|v| {
            v.as_u64()
                .map(|n| n.to_string())
                .or_else(|| v.as_str().map(String::from))
        })
        .filter(|v| !v.is_empty() && v != "0");
    vec![
        ("region", s("region")),
        ("profile", s("profile")),
        ("access_key", s("access_key")),
        ("secret_key", s("secret_key")),
        ("token", s("token")),
        ("shared_config_files", get_list(c, "shared_config_files")),
        (
            "shared_credentials_files",
            get_list(c, "shared_credentials_files").or_else(|| s("shared_credentials_file")),
        ),
        ("role_arn", role("role_arn", "role_arn")),
        ("session_name", role("session_name", "session_name")),
        ("external_id", role("external_id", "external_id")),
        (
            "assume_role_duration",
            nested_str(c, "assume_role", "duration")
                .map(String::from)
                .or(legacy_duration),
        ),
        (
            "sts_endpoint",
            nested_str(c, "endpoints", "sts")
                .or_else(|| get_str(c, "sts_endpoint"))
                .map(String::from),
        ),
    ]
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn targets_for(
    kind: &str,
    c: &Map<String, Value>,
    dir: &Path,
    source: &str,
) -> Result<Vec<Discovered>, Error> {
    match kind {
        "local" | "" => {
            let mut t = target(dir.display().to_string(), vec![]);
            t.scheme = "file".into();
            t.path = dir.display().to_string();
            Ok(vec![Discovered { target: t, scope: None }])
        }
        "s3" => {
            let bucket = get_str(c, "bucket");
            let key = get_str(c, "key");
            let (Some(bucket), Some(key)) = (bucket, key) else {
                let miss: Vec<&str> = [("bucket", bucket), ("key", key)].iter().filter(|(_, v)| v.is_none()).map(|(k, _)| *k).collect();
                return Err(missing("s3", &miss, source));
            };
            let prefix = get_str(c, "workspace_key_prefix").unwrap_or("env:").trim_end_matches('/').to_string();
            let s3_endpoint = nested_str(c, "endpoints", "s3").or_else(|| get_str(c, "endpoint")).map(String::from);
            let ddb_endpoint = nested_str(c, "endpoints", "dynamodb").or_else(|| get_str(c, "dynamodb_endpoint")).map(String::from);
            let common = s3_credential_params(c);
            let with = |endpoint: Option<String>| {
                let mut p = common.clone();
                p.push(("endpoint", endpoint));
                p
            };
            let mut out = Vec::new();
            if get_bool(c, "use_lockfile") {
                out.push(Discovered {
                    target: target(format!("s3://{bucket}"), with(s3_endpoint)),
                    scope: Some(Scope {
                        base: format!("s3://{bucket}/"),
                        rule: Rule::S3 { key: key.into(), prefix: prefix.clone(), suffix: ".tflock".into() },
                    }),
                });
            }
            if let Some(table) = get_str(c, "dynamodb_table") {
                out.push(Discovered {
                    target: target(format!("dynamodb://{table}/{bucket}/"), with(ddb_endpoint)),
                    scope: Some(Scope {
                        base: format!("dynamodb://{table}/{bucket}/"),
                        rule: Rule::S3 { key: key.into(), prefix, suffix: String::new() },
                    }),
                });
            }
            if out.is_empty() {
                return Err(Error::usage(format!(
                    "the s3 backend ({source}) has no locking configured (neither use_lockfile nor dynamodb_table): there are no locks to find"
                )));
            }
            Ok(out)
        }
        "gcs" => {
            let Some(bucket) = get_str(c, "bucket") else {
                return Err(missing("gcs", &["bucket"], source));
            };
            let mut prefix = get_str(c, "prefix").unwrap_or("").trim_start_matches('/').to_string();
            if !prefix.is_empty() && !prefix.ends_with('/') {
                prefix.push('/');
            }
            let endpoint = get_str(c, "storage_custom_endpoint").map(String::from).or_else(|| env("GOOGLE_STORAGE_CUSTOM_ENDPOINT"));
            let url = if prefix.is_empty() { format!("gs://{bucket}") } else { format!("gs://{bucket}/{}", prefix.trim_end_matches('/')) };
            Ok(vec![Discovered {
                // access_token and credentials are hidden options: the shown target is the
                // URL alone. impersonate_service_account is passed so the crate can refuse it.
                target: target(
                    url,
                    vec![
                        ("endpoint", endpoint),
                        ("access_token", get_str(c, "access_token").map(String::from)),
                        ("credentials", get_str(c, "credentials").map(String::from)),
                        (
                            "impersonate_service_account",
                            get_str(c, "impersonate_service_account").map(String::from),
                        ),
                    ],
                ),
                scope: Some(Scope { base: format!("gs://{bucket}/{prefix}"), rule: Rule::Gcs }),
            }])
        }
        "azurerm" => {
            let account = get_str(c, "storage_account_name").map(String::from).or_else(|| env("ARM_STORAGE_ACCOUNT_NAME"));
            let container = get_str(c, "container_name").map(String::from).or_else(|| env("ARM_CONTAINER_NAME"));
            let key = get_str(c, "key").unwrap_or("terraform.tfstate").to_string();
            let (Some(account), Some(container)) = (account.clone(), container.clone()) else {
                let miss: Vec<&str> = [("storage_account_name", account), ("container_name", container)]
                    .iter()
                    .filter(|(_, v)| v.is_none())
                    .map(|(k, _)| *k)
                    .collect();
                return Err(missing("azurerm", &miss, source));
            };
            let mut params = vec![];
            if let Some(k) = get_str(c, "access_key") {
                params.push(("access_key", Some(k.to_string())));
            }
            if let Some(s) = get_str(c, "sas_token") {
                params.push(("sas_token", Some(s.to_string())));
            }
            // The cloud, and Entra ID for the data plane; unset ones fall back to
            // ARM_ENVIRONMENT / ARM_USE_AZUREAD in the backend crate, as in Terraform.
            // metadata_host is passed so the crate can refuse it instead of ignoring it.
            for name in ["environment", "metadata_host"] {
                params.push((name, get_str(c, name).map(String::from)));
            }
            let azuread = match c.get("use_azuread_auth") {
                Some(Value::Bool(b)) => Some(b.to_string()),
                Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
                _ => None,
            };
            params.push(("use_azuread_auth", azuread));
            Ok(vec![Discovered {
                target: target(format!("azblob://{account}/{container}"), params),
                scope: Some(Scope { base: String::new(), rule: Rule::Azure { key } }),
            }])
        }
        other => Err(Error::usage(format!(
            "the {other} backend ({source}) is not supported yet; tflock reads local, s3, azurerm and gcs backends"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tflock_core::Backend;

    fn lock(backend: Backend, location: &str, blob: &str) -> Lock {
        let mut l = Lock::new(backend, "t", location);
        l.details.insert("blob".into(), blob.into());
        l
    }

    #[test]
    fn s3_scope_covers_every_workspace_of_one_key() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("main.tf"),
            r#"terraform {
  backend "s3" {
    bucket         = "state"
    key            = "app/terraform.tfstate"
    region         = "eu-west-1"
    dynamodb_table = "locks"
    use_lockfile   = true
    endpoints = { s3 = "http://127.0.0.1:1", dynamodb = "http://127.0.0.1:2" }
  }
}"#,
        )
        .unwrap();
        let d = discover(dir.path()).unwrap();
        assert_eq!(d.targets.len(), 2);
        let s3 = &d.targets[0];
        assert_eq!(s3.target.url, "s3://state");
        assert_eq!(s3.target.param("endpoint"), Some("http://127.0.0.1:1"));
        assert_eq!(s3.target.param("region"), Some("eu-west-1"));
        let scope = s3.scope.as_ref().unwrap();
        let ws = |loc: &str| scope.workspace_of(&lock(Backend::S3, loc, ""));
        assert_eq!(
            ws("s3://state/app/terraform.tfstate.tflock").as_deref(),
            Some("default")
        );
        assert_eq!(
            ws("s3://state/env:/dev/app/terraform.tfstate.tflock").as_deref(),
            Some("dev")
        );
        assert_eq!(ws("s3://state/other/terraform.tfstate.tflock"), None);
        assert_eq!(ws("s3://state/env:/a/b/app/terraform.tfstate.tflock"), None);
        let ddb = &d.targets[1];
        assert_eq!(ddb.target.url, "dynamodb://locks/state/");
        assert_eq!(ddb.target.param("endpoint"), Some("http://127.0.0.1:2"));
        let scope = ddb.scope.as_ref().unwrap();
        assert_eq!(
            scope
                .workspace_of(&lock(
                    Backend::Dynamodb,
                    "dynamodb://locks/state/app/terraform.tfstate",
                    ""
                ))
                .as_deref(),
            Some("default")
        );
        assert_eq!(
            scope.workspace_of(&lock(
                Backend::Dynamodb,
                "dynamodb://locks/other/app/terraform.tfstate",
                ""
            )),
            None
        );
    }

    #[test]
    fn s3_credentials_files_and_assume_role_are_hidden_options() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("main.tf"),
            r#"terraform {
  backend "s3" {
    bucket                   = "state"
    key                      = "terraform.tfstate"
    use_lockfile             = true
    dynamodb_table           = "locks"
    access_key               = "AKIDBLOCK"
    secret_key               = "s3cr3t-from-block"
    token                    = "t0ken-from-block"
    shared_config_files      = ["/etc/aws/config", "~/.aws/team"]
    shared_credentials_files = ["/etc/aws/credentials"]
    use_path_style           = true
    skip_credentials_validation = true
    role_arn                 = "arn:aws:iam::1:role/legacy"
    assume_role = {
      role_arn     = "arn:aws:iam::123456789012:role/oncall"
      session_name = "tflock"
      external_id  = "ext"
      duration     = "30m"
    }
    endpoints = { sts = "http://127.0.0.1:3" }
  }
}"#,
        )
        .unwrap();
        let d = discover(dir.path()).unwrap();
        assert_eq!(d.targets.len(), 2);
        for t in d.targets.iter().map(|d| &d.target) {
            for secret in ["AKIDBLOCK", "s3cr3t-from-block", "t0ken-from-block"] {
                assert!(!t.url.contains(secret), "{}", t.url);
            }
            assert_eq!(t.param("access_key"), Some("AKIDBLOCK"));
            assert_eq!(t.param("secret_key"), Some("s3cr3t-from-block"));
            assert_eq!(t.param("token"), Some("t0ken-from-block"));
            assert_eq!(
                t.param("shared_config_files"),
                Some("/etc/aws/config\n~/.aws/team")
            );
            assert_eq!(
                t.param("shared_credentials_files"),
                Some("/etc/aws/credentials")
            );
            assert_eq!(
                t.param("role_arn"),
                Some("arn:aws:iam::123456789012:role/oncall")
            );
            assert_eq!(t.param("session_name"), Some("tflock"));
            assert_eq!(t.param("external_id"), Some("ext"));
            assert_eq!(t.param("assume_role_duration"), Some("30m"));
            assert_eq!(t.param("sts_endpoint"), Some("http://127.0.0.1:3"));
            // Settings tflock does not need are not passed on.
            assert_eq!(t.param("skip_credentials_validation"), None);
        }

        // The legacy top-level role settings, as `terraform init` records them.
        let legacy: Map<String, Value> = serde_json::from_str(
            r#"{"bucket":"b","key":"k","use_lockfile":true,"assume_role":null,"role_arn":"arn:aws:iam::1:role/legacy","assume_role_duration_seconds":900,"shared_config_files":null,"access_key":null}"#,
        )
        .unwrap();
        let t = &targets_for("s3", &legacy, dir.path(), "test").unwrap()[0].target;
        assert_eq!(t.param("role_arn"), Some("arn:aws:iam::1:role/legacy"));
        assert_eq!(t.param("assume_role_duration"), Some("900"));
        assert_eq!(t.param("access_key"), None);
        assert_eq!(t.param("shared_config_files"), None);
    }

    #[test]
    fn initialised_backend_wins_over_the_block() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("main.tf"),
            "terraform {\n  backend \"gcs\" {}\n}\n",
        )
        .unwrap();
        std::fs::create_dir(dir.path().join(".terraform")).unwrap();
        std::fs::write(
            dir.path().join(".terraform/terraform.tfstate"),
            r#"{"version":3,"backend":{"type":"gcs","config":{"bucket":"b","prefix":"/team/app","storage_custom_endpoint":null,"access_token":"ya29.tok","credentials":"{\"type\":\"service_account\",\"private_key\":\"SECRETKEY\"}","impersonate_service_account":"tf@p.iam.gserviceaccount.com"},"hash":1}}"#,
        )
        .unwrap();
        std::fs::write(dir.path().join(".terraform/environment"), "staging").unwrap();
        let d = discover(dir.path()).unwrap();
        assert_eq!(d.targets[0].target.url, "gs://b/team/app");
        assert_eq!(d.targets[0].target.param("access_token"), Some("ya29.tok"));
        let creds = d.targets[0].target.param("credentials").unwrap();
        assert!(creds.contains("SECRETKEY"), "{creds}");
        assert!(!d.targets[0].target.url.contains("SECRETKEY"));
        assert_eq!(
            d.targets[0].target.param("impersonate_service_account"),
            Some("tf@p.iam.gserviceaccount.com")
        );
        assert_eq!(d.targets[0].target.param("endpoint"), None);
        let scope = d.targets[0].scope.as_ref().unwrap();
        assert_eq!(
            scope
                .workspace_of(&lock(Backend::Gcs, "gs://b/team/app/dev.tflock", ""))
                .as_deref(),
            Some("dev")
        );
        assert_eq!(
            scope.workspace_of(&lock(Backend::Gcs, "gs://b/team/app/x/dev.tflock", "")),
            None
        );
        if std::env::var("TF_WORKSPACE").is_err() {
            assert_eq!(d.current_workspace, "staging");
        }
    }

    #[test]
    fn partial_block_names_what_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("backend.tf"),
            "terraform {\n  backend \"s3\" {\n    region = \"us-east-1\"\n  }\n}\n",
        )
        .unwrap();
        let err = discover(dir.path()).err().unwrap().to_string();
        assert!(
            err.contains("does not set bucket, key") && err.contains("backend.tf"),
            "{err}"
        );
    }

    #[test]
    fn azurerm_and_json_configs() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("main.tf.json"),
            r#"{"terraform":[{"backend":[{"azurerm":[{"storage_account_name":"acct","container_name":"tfstate","key":"prod.tfstate"}]}]}]}"#,
        )
        .unwrap();
        let d = discover(dir.path()).unwrap();
        assert_eq!(d.targets[0].target.url, "azblob://acct/tfstate");
        let scope = d.targets[0].scope.as_ref().unwrap();
        assert_eq!(
            scope
                .workspace_of(&lock(Backend::Azure, "x", "prod.tfstate"))
                .as_deref(),
            Some("default")
        );
        assert_eq!(
            scope
                .workspace_of(&lock(Backend::Azure, "x", "prod.tfstateenv:dev"))
                .as_deref(),
            Some("dev")
        );
        assert_eq!(
            scope.workspace_of(&lock(Backend::Azure, "x", "other.tfstate")),
            None
        );
    }

    #[test]
    fn azurerm_cloud_and_entra_settings_are_passed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("main.tf"),
            r#"terraform {
  backend "azurerm" {
    storage_account_name = "acct"
    container_name       = "tfstate"
    key                  = "prod.tfstate"
    environment          = "usgovernment"
    use_azuread_auth     = true
    access_key           = "c2VjcmV0LWFjY2Vzcy1rZXk="
    snapshot             = true
  }
}"#,
        )
        .unwrap();
        let t = &discover(dir.path()).unwrap().targets[0].target;
        assert_eq!(t.url, "azblob://acct/tfstate");
        assert_eq!(t.param("environment"), Some("usgovernment"));
        assert_eq!(t.param("use_azuread_auth"), Some("true"));
        assert_eq!(t.param("access_key"), Some("c2VjcmV0LWFjY2Vzcy1rZXk="));
        assert_eq!(t.param("metadata_host"), None);
        assert_eq!(t.param("snapshot"), None);
        // As `terraform init` records it: unset settings are null and are not passed, so
        // the crate falls back to ARM_USE_AZUREAD / ARM_ENVIRONMENT.
        let init: Map<String, Value> = serde_json::from_str(
            r#"{"storage_account_name":"acct","container_name":"c","key":"k","use_azuread_auth":null,"environment":null,"metadata_host":"m.example"}"#,
        )
        .unwrap();
        let t = &targets_for("azurerm", &init, dir.path(), "test").unwrap()[0].target;
        assert_eq!(t.param("use_azuread_auth"), None);
        assert_eq!(t.param("environment"), None);
        assert_eq!(t.param("metadata_host"), Some("m.example"));
    }

    #[test]
    fn no_backend_is_local_and_unknown_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("main.tf"),
            "resource \"terraform_data\" \"x\" {}\n",
        )
        .unwrap();
        assert_eq!(
            discover(dir.path()).unwrap().targets[0].target.scheme,
            "file"
        );
        std::fs::write(
            dir.path().join("main.tf"),
            "terraform {\n  backend \"consul\" {}\n}\n",
        )
        .unwrap();
        assert!(discover(dir.path())
            .err()
            .unwrap()
            .to_string()
            .contains("consul backend"));
    }
}
