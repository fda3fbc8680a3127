//! The s3 backend as a driver: its targets, and the `backend "s3"` block read the way
//! Terraform reads it, turned into targets that cover exactly that configuration's
//! workspaces (`?key=`, `?workspace_key_prefix=`).

use serde::Deserialize;
use tflock_core::block::de;
use tflock_core::target::query_value;
use tflock_core::{BackendBlock, Error, Scheme, Target};

pub const SCHEMES: &[Scheme] = &[
    Scheme {
        name: "s3",
        backend: "s3",
        form: "s3://BUCKET[/PREFIX]",
        about: "the s3 backend's native .tflock lockfiles (use_lockfile)",
    },
    Scheme {
        name: "dynamodb",
        backend: "dynamodb",
        form: "dynamodb://TABLE[/PREFIX]",
        about: "the s3 backend's DynamoDB lock table (dynamodb_table); -md5 digest rows are never touched",
    },
];

/// The settings of `backend "s3"` tflock uses, under Terraform's names.
#[derive(Deserialize, Default)]
struct Settings {
    #[serde(default, deserialize_with = "de::text")]
    bucket: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    key: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    workspace_key_prefix: Option<String>,
    #[serde(default, deserialize_with = "de::flag")]
    use_lockfile: Option<bool>,
    /// SSE-C: the state objects are encrypted with this key (used only with `encrypt`,
    /// as Terraform does); `tflock doctor` needs it to read them.
    #[serde(default, deserialize_with = "de::text")]
    sse_customer_key: Option<String>,
    #[serde(default, deserialize_with = "de::flag")]
    encrypt: Option<bool>,
    #[serde(default, deserialize_with = "de::text")]
    dynamodb_table: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    region: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    profile: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    access_key: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    secret_key: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    token: Option<String>,
    #[serde(default, deserialize_with = "de::list")]
    shared_config_files: Vec<String>,
    #[serde(default, deserialize_with = "de::list")]
    shared_credentials_files: Vec<String>,
    /// Legacy singular form.
    #[serde(default, deserialize_with = "de::text")]
    shared_credentials_file: Option<String>,
    #[serde(default, deserialize_with = "de::nested")]
    assume_role: Option<AssumeRole>,
    /// Legacy top-level role settings (`assume_role { ... }` wins).
    #[serde(flatten)]
    legacy_role: Role,
    #[serde(default, deserialize_with = "de::text")]
    assume_role_duration_seconds: Option<String>,
    #[serde(default, deserialize_with = "de::nested")]
    endpoints: Option<Endpoints>,
    /// Legacy endpoint settings (`endpoints { ... }` wins).
    #[serde(default, deserialize_with = "de::text")]
    endpoint: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    dynamodb_endpoint: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    sts_endpoint: Option<String>,
}

#[derive(Deserialize, Default)]
struct AssumeRole {
    #[serde(flatten)]
    role: Role,
    #[serde(default, deserialize_with = "de::text")]
    duration: Option<String>,
}

/// The role settings `assume_role { ... }` and (legacy) the block's top level both have.
#[derive(Deserialize, Default)]
struct Role {
    #[serde(default, deserialize_with = "de::text")]
    role_arn: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    session_name: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    external_id: Option<String>,
}

#[derive(Deserialize, Default)]
struct Endpoints {
    #[serde(default, deserialize_with = "de::text")]
    s3: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    dynamodb: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    sts: Option<String>,
}

fn joined(list: &[String]) -> Option<String> {
    (!list.is_empty()).then(|| list.join("\n"))
}

impl Settings {
    /// The region, credential and role settings every target of this block gets, as
    /// hidden options under Terraform's own names (never part of the shown URL).
    fn common(&self, target: Target) -> Target {
        let role = self.assume_role.as_ref();
        // A setting of `assume_role { ... }`, else its legacy top-level form.
        let pick = |setting: fn(&Role) -> &Option<String>| {
            role.and_then(|r| setting(&r.role).clone())
                .or(setting(&self.legacy_role).clone())
        };
        let legacy_duration = self
            .assume_role_duration_seconds
            .clone()
            .filter(|d| d != "0");
        target
            .with("region", self.region.clone())
            .with("profile", self.profile.clone())
            .with("access_key", self.access_key.clone())
            .with("secret_key", self.secret_key.clone())
            .with("token", self.token.clone())
            .with("shared_config_files", joined(&self.shared_config_files))
            .with(
                "shared_credentials_files",
                joined(&self.shared_credentials_files).or(self.shared_credentials_file.clone()),
            )
            .with("role_arn", pick(|r| &r.role_arn))
            .with("session_name", pick(|r| &r.session_name))
            .with("external_id", pick(|r| &r.external_id))
            .with(
                "assume_role_duration",
                role.and_then(|r| r.duration.clone()).or(legacy_duration),
            )
            .with(
                "sts_endpoint",
                self.endpoints
                    .as_ref()
                    .and_then(|e| e.sts.clone())
                    .or(self.sts_endpoint.clone()),
            )
    }
}

/// `s3://b?key=k` with the scope options in the URL (shown: they say which state),
/// percent-encoded so a key with `&`, `#`, `%` or spaces stays one option.
fn scoped(url: String, key: &str, prefix: Option<&str>) -> Result<Target, Error> {
    let mut url = format!("{url}key={}", query_value(key));
    if let Some(p) = prefix {
        url.push_str(&format!("&workspace_key_prefix={}", query_value(p)));
    }
    Target::parse(&url)
}

/// The targets that cover every workspace of the block's configuration.
pub fn targets(block: &BackendBlock) -> Result<Vec<Target>, Error> {
    let s: Settings = block.settings()?;
    let (Some(bucket), Some(key)) = (&s.bucket, &s.key) else {
        let missing: Vec<&str> = [("bucket", &s.bucket), ("key", &s.key)]
            .iter()
            .filter(|(_, v)| v.is_none())
            .map(|(k, _)| *k)
            .collect();
        return Err(block.missing(&missing));
    };
    let prefix = s
        .workspace_key_prefix
        .as_deref()
        .map(|p| p.trim_end_matches('/'))
        .filter(|p| *p != crate::naming::WORKSPACE_PREFIX);
    let endpoints = s.endpoints.as_ref();
    let mut out = Vec::new();
    let s3_endpoint = endpoints.and_then(|e| e.s3.clone()).or(s.endpoint.clone());
    if s.use_lockfile == Some(true) {
        let t =
            scoped(format!("s3://{bucket}?"), key, prefix)?.with("endpoint", s3_endpoint.clone());
        out.push(s.common(t));
    }
    if let Some(table) = &s.dynamodb_table {
        let endpoint = endpoints
            .and_then(|e| e.dynamodb.clone())
            .or(s.dynamodb_endpoint.clone());
        // The table's rows are read by key: the workspaces are listed in the state
        // bucket, through the block's S3 endpoint.
        let t = scoped(format!("dynamodb://{table}?bucket={bucket}&"), key, prefix)?
            .with("endpoint", endpoint)
            .with("s3_endpoint", s3_endpoint)
            // The doctor reads the state objects the digest rows describe.
            .with(
                "sse_customer_key",
                s.sse_customer_key
                    .clone()
                    .filter(|_| s.encrypt == Some(true)),
            );
        out.push(s.common(t));
    }
    if out.is_empty() {
        return Err(Error::usage(
            "",
            format!(
                "the s3 backend ({}) has no locking configured (neither use_lockfile nor dynamodb_table): there are no locks to find",
                block.source
            ),
        ));
    }
    Ok(out)
}

/// The target a lock with this `LockInfo.Path` (`<bucket>/<state key>`) is in.
pub fn target_for_path(path: &str) -> Option<String> {
    let (bucket, key) = crate::naming::split_lock_id(path)?;
    (!path.contains("://")).then(|| format!("s3://{bucket}?key={key}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::naming::StateKeys;
    use crate::DRIVER;
    use serde_json::{json, Value};

    fn block(config: Value) -> BackendBlock {
        BackendBlock::new("s3", config.as_object().cloned().unwrap_or_default())
    }

    /// The workspace a scoped target gives a state key (`None`: not this configuration's).
    fn ws(t: &Target, state_key: &str) -> Option<String> {
        StateKeys::from_target(t)
            .unwrap()
            .unwrap()
            .workspace_of(state_key)
    }

    #[test]
    fn s3_scope_covers_every_workspace_of_one_key() {
        let targets = DRIVER
            .discover(&block(json!({
                "bucket": "state",
                "key": "app/terraform.tfstate",
                "region": "eu-west-1",
                "dynamodb_table": "locks",
                "use_lockfile": true,
                "endpoints": {"s3": "http://127.0.0.1:1", "dynamodb": "http://127.0.0.1:2"},
            })))
            .unwrap();
        assert_eq!(targets.len(), 2);
        let s3 = &targets[0];
        assert_eq!(s3.url, "s3://state?key=app/terraform.tfstate");
        assert_eq!(s3.param("endpoint"), Some("http://127.0.0.1:1"));
        assert_eq!(s3.param("region"), Some("eu-west-1"));
        assert_eq!(ws(s3, "app/terraform.tfstate").as_deref(), Some("default"));
        assert_eq!(
            ws(s3, "env:/dev/app/terraform.tfstate").as_deref(),
            Some("dev")
        );
        assert_eq!(ws(s3, "other/terraform.tfstate"), None);
        assert_eq!(ws(s3, "env:/a/b/app/terraform.tfstate"), None);
        assert_eq!(ws(s3, "env:/dev/other/terraform.tfstate"), None);

        let ddb = &targets[1];
        assert_eq!(
            ddb.url,
            "dynamodb://locks?bucket=state&key=app/terraform.tfstate"
        );
        assert_eq!(ddb.param("endpoint"), Some("http://127.0.0.1:2"));
        // Its workspaces are listed in the state bucket, through the S3 endpoint.
        assert_eq!(ddb.param("s3_endpoint"), Some("http://127.0.0.1:1"));
        assert_eq!(ddb.param("bucket"), Some("state"));
        assert_eq!(
            ws(ddb, "env:/dev/app/terraform.tfstate").as_deref(),
            Some("dev")
        );
        assert_eq!(ws(ddb, "other/terraform.tfstate"), None);

        // A custom workspace_key_prefix is part of the scope, and of the name shown.
        let targets = DRIVER
            .discover(&block(json!({
                "bucket": "state",
                "key": "app/terraform.tfstate",
                "workspace_key_prefix": "workspaces/",
                "use_lockfile": "true",
            })))
            .unwrap();
        let t = &targets[0];
        assert_eq!(
            t.url,
            "s3://state?key=app/terraform.tfstate&workspace_key_prefix=workspaces"
        );
        assert_eq!(
            ws(t, "workspaces/prod/app/terraform.tfstate").as_deref(),
            Some("prod")
        );
        assert_eq!(ws(t, "env:/prod/app/terraform.tfstate"), None);
        assert_eq!(ws(t, "app/terraform.tfstate").as_deref(), Some("default"));

        // The default prefix is not repeated; odd characters in a key stay one option.
        let targets = DRIVER
            .discover(&block(json!({
                "bucket": "state",
                "key": "team a&b/x#1 100%.tfstate",
                "workspace_key_prefix": "env:",
                "use_lockfile": true,
            })))
            .unwrap();
        let t = &targets[0];
        assert!(!t.url.contains("workspace_key_prefix"), "{}", t.url);
        assert_eq!(t.param("key"), Some("team a&b/x#1 100%.tfstate"));
        assert_eq!(t.params.len(), 1, "{t:?}");
    }

    #[test]
    fn s3_credentials_files_and_assume_role_are_hidden_options() {
        let targets = DRIVER
            .discover(&block(json!({
                "bucket": "state",
                "key": "terraform.tfstate",
                "use_lockfile": true,
                "dynamodb_table": "locks",
                "access_key": "AKIDBLOCK",
                "secret_key": "s3cr3t-from-block",
                "token": "t0ken-from-block",
                "shared_config_files": ["/etc/aws/config", "~/.aws/team"],
                "shared_credentials_files": ["/etc/aws/credentials"],
                "use_path_style": true,
                "skip_credentials_validation": true,
                "role_arn": "arn:aws:iam::1:role/legacy",
                "assume_role": {
                    "role_arn": "arn:aws:iam::123456789012:role/oncall",
                    "session_name": "tflock",
                    "external_id": "ext",
                    "duration": "30m",
                },
                "endpoints": {"sts": "http://127.0.0.1:3"},
            })))
            .unwrap();
        assert_eq!(targets.len(), 2);
        for t in &targets {
            for secret in ["AKIDBLOCK", "s3cr3t-from-block", "t0ken-from-block"] {
                assert!(!t.url.contains(secret), "{}", t.url);
                assert!(!format!("{t:?}").contains(secret), "{t:?}");
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
            assert_eq!(t.param("endpoint"), None);
        }

        // The legacy top-level role settings, as `terraform init` records them.
        let legacy = DRIVER
            .discover(&block(
                serde_json::from_str(
                    r#"{"bucket":"b","key":"k","use_lockfile":true,"assume_role":null,"role_arn":"arn:aws:iam::1:role/legacy","assume_role_duration_seconds":900,"shared_config_files":null,"access_key":null,"dynamodb_table":null}"#,
                )
                .unwrap(),
            ))
            .unwrap();
        assert_eq!(legacy.len(), 1);
        let t = &legacy[0];
        assert_eq!(t.param("role_arn"), Some("arn:aws:iam::1:role/legacy"));
        assert_eq!(t.param("assume_role_duration"), Some("900"));
        assert_eq!(t.param("access_key"), None);
        assert_eq!(t.param("shared_config_files"), None);
    }

    #[test]
    fn partial_block_names_what_is_missing() {
        let err = DRIVER
            .discover(&block(json!({"region": "us-east-1"})))
            .unwrap_err();
        let text = err.to_string();
        assert_eq!(err.kind(), tflock_core::Kind::Usage);
        assert!(
            text.contains("does not set bucket, key") && text.contains("backend \"s3\" block"),
            "{text}"
        );
        let err = DRIVER
            .discover(&block(json!({"bucket": "b", "key": "k"})))
            .unwrap_err();
        assert!(err.to_string().contains("no locking configured"), "{err}");
    }
}
