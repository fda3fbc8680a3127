//! The kubernetes backend as a driver: `k8s://` targets and the `backend "kubernetes"`
//! block, read with the settings and environment variables Terraform's backend.go reads.

use serde::Deserialize;
use std::collections::BTreeMap;
use tflock_core::block::de;
use tflock_core::{BackendBlock, Error, Scheme, Target};

/// The `exec` block of the backend (client-go's ExecConfig under Terraform's names).
#[derive(Deserialize, Default)]
struct ExecBlock {
    #[serde(default, deserialize_with = "de::text")]
    api_version: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    command: Option<String>,
    #[serde(default, deserialize_with = "de::list")]
    args: Vec<String>,
    #[serde(default)]
    env: Option<BTreeMap<String, Option<String>>>,
}

/// The settings of `backend "kubernetes"` tflock uses, under Terraform's names.
#[derive(Deserialize, Default)]
struct Settings {
    #[serde(default, deserialize_with = "de::text")]
    secret_suffix: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    namespace: Option<String>,
    #[serde(default, deserialize_with = "de::flag")]
    in_cluster_config: Option<bool>,
    #[serde(default, deserialize_with = "de::text")]
    config_path: Option<String>,
    #[serde(default, deserialize_with = "de::list")]
    config_paths: Vec<String>,
    #[serde(default, deserialize_with = "de::text")]
    config_context: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    config_context_auth_info: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    config_context_cluster: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    host: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    token: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    username: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    password: Option<String>,
    #[serde(default, deserialize_with = "de::flag")]
    insecure: Option<bool>,
    #[serde(default, deserialize_with = "de::text")]
    cluster_ca_certificate: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    client_certificate: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    client_key: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    proxy_url: Option<String>,
    #[serde(default, deserialize_with = "de::nested")]
    exec: Option<ExecBlock>,
}

/// A block setting, else its environment variable (Terraform's `SDKLikeDefaults`).
fn or_env(v: Option<String>, var: &str, env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    v.or_else(|| env(var))
}

/// The targets of a `backend "kubernetes"` block, `env` standing for the environment.
pub fn targets(
    block: &BackendBlock,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<Target>, Error> {
    let s: Settings = block.settings()?;
    let Some(suffix) = s.secret_suffix.clone() else {
        return Err(block.missing(&["secret_suffix"]));
    };
    let namespace =
        or_env(s.namespace.clone(), "KUBE_NAMESPACE", env).unwrap_or_else(|| "default".into());
    let in_cluster = s
        .in_cluster_config
        .or_else(|| env("KUBE_IN_CLUSTER_CONFIG").map(|v| v == "true" || v == "1"))
        .unwrap_or(false);
    let context = if in_cluster {
        String::new()
    } else {
        or_env(s.config_context.clone(), "KUBE_CTX", env).unwrap_or_default()
    };
    // Terraform's order: config_path (or KUBE_CONFIG_PATH), else config_paths, else
    // KUBE_CONFIG_PATHS. None of them: tflock falls back to kubectl's rules.
    let kubeconfig = or_env(s.config_path.clone(), "KUBE_CONFIG_PATH", env)
        .or_else(|| (!s.config_paths.is_empty()).then(|| s.config_paths.join(":")))
        .or_else(|| env("KUBE_CONFIG_PATHS"));
    let exec = match &s.exec {
        Some(e) => {
            let Some(command) = &e.command else {
                return Err(block.missing(&["exec.command"]));
            };
            let env_list: Vec<serde_json::Value> = e
                .env
                .clone()
                .unwrap_or_default()
                .into_iter()
                .map(|(name, value)| {
                    serde_json::json!({ "name": name, "value": value.unwrap_or_default() })
                })
                .collect();
            Some(
                serde_json::json!({
                    "apiVersion": e.api_version.clone().unwrap_or_default(),
                    "command": command,
                    "args": e.args,
                    "env": env_list,
                })
                .to_string(),
            )
        }
        None => None,
    };
    let flag = |b: Option<bool>, var: &str| {
        b.map(|b| b.to_string())
            .or_else(|| env(var).map(|v| (v == "true" || v == "1").to_string()))
    };
    let url = format!("k8s://{context}/{namespace}?secret_suffix={suffix}");
    // Everything but the context, namespace and suffix is a hidden option: not shown, and
    // the secret ones never printable.
    let mut target = Target::parse(&url)?
        .with("in_cluster", in_cluster.then_some("true"))
        .with("kubeconfig", if in_cluster { None } else { kubeconfig })
        .with("insecure", flag(s.insecure, "KUBE_INSECURE"))
        .with("exec", exec);
    // The option, the block's setting, and the variable Terraform falls back to.
    #[rustfmt::skip]
    let settings = [
        ("context_user",           s.config_context_auth_info, "KUBE_CTX_AUTH_INFO"),
        ("context_cluster",        s.config_context_cluster,   "KUBE_CTX_CLUSTER"),
        ("host",                   s.host,                     "KUBE_HOST"),
        ("token",                  s.token,                    "KUBE_TOKEN"),
        ("username",               s.username,                 "KUBE_USER"),
        ("password",               s.password,                 "KUBE_PASSWORD"),
        ("cluster_ca_certificate", s.cluster_ca_certificate,   "KUBE_CLUSTER_CA_CERT_DATA"),
        ("client_certificate",     s.client_certificate,       "KUBE_CLIENT_CERT_DATA"),
        ("client_key",             s.client_key,               "KUBE_CLIENT_KEY_DATA"),
        ("proxy_url",              s.proxy_url,                "KUBE_PROXY_URL"),
    ];
    for (option, setting, var) in settings {
        target = target.with(option, or_env(setting, var, env));
    }
    Ok(vec![target])
}

pub const SCHEMES: &[Scheme] = &[Scheme {
    name: "k8s",
    backend: "kubernetes",
    form: "k8s://[CONTEXT]/NAMESPACE",
    about: "the kubernetes backend's lock-tfstate-* Leases (lock ID = holderIdentity)",
}];

#[cfg(test)]
mod tests {
    use super::*;
    use tflock_core::Kind;

    fn block(json: &str) -> BackendBlock {
        BackendBlock::new("kubernetes", serde_json::from_str(json).unwrap())
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn a_minimal_block_is_the_default_namespace_and_current_context() {
        let t = targets(&block(r#"{"secret_suffix":"app"}"#), &no_env).unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].url, "k8s:///default?secret_suffix=app");
        assert_eq!(t[0].host, "");
        assert_eq!(t[0].path, "default");
        assert_eq!(t[0].param("secret_suffix"), Some("app"));
        assert_eq!(t[0].param("kubeconfig"), None);
    }

    #[test]
    fn block_settings_become_the_target_and_hidden_options() {
        // As `terraform init` records it: unset settings are null, exec a list of one.
        let b = block(
            r#"{"secret_suffix":"state","namespace":"infra","config_context":"prod",
                "config_paths":["~/a.yaml","/b.yaml"],"config_path":null,
                "config_context_auth_info":"admin","config_context_cluster":"c1",
                "token":"s3cr3t-token","insecure":true,"host":null,
                "exec":[{"api_version":"client.authentication.k8s.io/v1","command":"aws",
                         "args":["eks","get-token"],"env":{"AWS_PROFILE":"ops"}}],
                "labels":null,"in_cluster_config":null}"#,
        );
        let t = &targets(&b, &no_env).unwrap()[0];
        assert_eq!(t.url, "k8s://prod/infra?secret_suffix=state");
        assert!(!t.url.contains("s3cr3t"));
        assert_eq!(t.param("kubeconfig"), Some("~/a.yaml:/b.yaml"));
        assert_eq!(t.param("context_user"), Some("admin"));
        assert_eq!(t.param("context_cluster"), Some("c1"));
        assert_eq!(t.param("token"), Some("s3cr3t-token"));
        assert_eq!(t.param("insecure"), Some("true"));
        let exec: serde_json::Value = serde_json::from_str(t.param("exec").unwrap()).unwrap();
        assert_eq!(exec["command"], "aws");
        assert_eq!(exec["args"], serde_json::json!(["eks", "get-token"]));
        assert_eq!(
            exec["env"],
            serde_json::json!([{"name": "AWS_PROFILE", "value": "ops"}])
        );
        assert!(!format!("{t:?}").contains("s3cr3t"));
    }

    #[test]
    fn terraforms_environment_variables_fill_unset_settings() {
        let env = |k: &str| {
            match k {
                "KUBE_NAMESPACE" => Some("from-env"),
                "KUBE_CTX" => Some("ctx-env"),
                "KUBE_CONFIG_PATHS" => Some("/x:/y"),
                "KUBE_TOKEN" => Some("tok"),
                _ => None,
            }
            .map(str::to_string)
        };
        let t = &targets(&block(r#"{"secret_suffix":"s"}"#), &env).unwrap()[0];
        assert_eq!(t.url, "k8s://ctx-env/from-env?secret_suffix=s");
        assert_eq!(t.param("kubeconfig"), Some("/x:/y"));
        assert_eq!(t.param("token"), Some("tok"));
        // config_path wins over config_paths and the environment.
        let t = &targets(
            &block(r#"{"secret_suffix":"s","namespace":"n","config_path":"/only","config_paths":["/a"]}"#),
            &env,
        )
        .unwrap()[0];
        assert_eq!(t.url, "k8s://ctx-env/n?secret_suffix=s");
        assert_eq!(t.param("kubeconfig"), Some("/only"));
    }

    #[test]
    fn in_cluster_config_drops_the_kubeconfig() {
        let t = &targets(
            &block(r#"{"secret_suffix":"s","in_cluster_config":true,"config_path":"/k","config_context":"c"}"#),
            &no_env,
        )
        .unwrap()[0];
        assert_eq!(t.url, "k8s:///default?secret_suffix=s");
        assert_eq!(t.param("in_cluster"), Some("true"));
        assert_eq!(t.param("kubeconfig"), None);
    }

    #[test]
    fn a_block_without_secret_suffix_is_a_usage_error() {
        let err = targets(&block(r#"{"namespace":"n"}"#), &no_env).unwrap_err();
        assert_eq!(err.kind(), Kind::Usage);
        assert!(err.to_string().contains("secret_suffix"), "{err}");
    }
}
