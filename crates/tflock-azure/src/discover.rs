//! The azurerm backend as a driver: `azblob://` targets and the `backend "azurerm"` block.

use serde::Deserialize;
use tflock_core::block::de;
use tflock_core::target::{percent_decode, query_value};
use tflock_core::{BackendBlock, Error, Scheme, Target};

/// The settings of `backend "azurerm"` tflock uses, under Terraform's names.
#[derive(Deserialize, Default)]
struct Settings {
    #[serde(default, deserialize_with = "de::text")]
    storage_account_name: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    container_name: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    key: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    access_key: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    sas_token: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    environment: Option<String>,
    /// Passed on so the store refuses it instead of ignoring it.
    #[serde(default, deserialize_with = "de::text")]
    metadata_host: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    use_azuread_auth: Option<String>,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

pub const SCHEMES: &[Scheme] = &[Scheme {
    name: "azblob",
    backend: "azure",
    form: "azblob://ACCOUNT/CONTAINER[/PREFIX]",
    about: "the azurerm backend's leased state blobs (lock ID = lease ID)",
}];

pub fn targets(block: &BackendBlock) -> Result<Vec<Target>, Error> {
    let s: Settings = block.settings()?;
    let account = s
        .storage_account_name
        .clone()
        .or_else(|| env("ARM_STORAGE_ACCOUNT_NAME"));
    let container = s
        .container_name
        .clone()
        .or_else(|| env("ARM_CONTAINER_NAME"));
    let (Some(account), Some(container)) = (&account, &container) else {
        let missing: Vec<&str> = [
            ("storage_account_name", &account),
            ("container_name", &container),
        ]
        .iter()
        .filter(|(_, v)| v.is_none())
        .map(|(k, _)| *k)
        .collect();
        return Err(block.missing(&missing));
    };
    let key = s.key.as_deref().unwrap_or("terraform.tfstate");
    // The cloud, and Entra ID for the data plane; unset ones fall back to
    // ARM_ENVIRONMENT / ARM_USE_AZUREAD in the store, as in Terraform.
    Ok(vec![Target::parse(&format!(
        "azblob://{account}/{container}?key={}",
        query_value(key)
    ))?
    .with("access_key", s.access_key)
    .with("sas_token", s.sas_token)
    .with("environment", s.environment)
    .with("metadata_host", s.metadata_host)
    .with("use_azuread_auth", s.use_azuread_auth)])
}

pub fn target_for_path(path: &str) -> Option<String> {
    // OpenTofu >= 1.11 writes the full blob URL as Path.
    let url = url::Url::parse(path).ok()?;
    let account = url.host_str()?.strip_suffix(".blob.core.windows.net")?;
    let mut segments = url.path_segments()?;
    let container = segments.next()?;
    let key: Vec<&str> = segments.collect();
    let key = percent_decode(&key.join("/"));
    Some(format!(
        "azblob://{account}/{container}?key={}",
        query_value(&key)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::Clients;
    use crate::DRIVER;
    use serde_json::{Map, Value};
    use tflock_core::ConnectOptions;

    fn block(json: &str) -> BackendBlock {
        let config: Map<String, Value> = serde_json::from_str(json).unwrap();
        BackendBlock {
            kind: "azurerm".into(),
            config,
            source: "backend \"azurerm\" block in ./main.tf".into(),
            dir: ".".into(),
        }
    }

    fn discover(json: &str) -> Target {
        let targets = DRIVER.discover(&block(json)).unwrap();
        assert_eq!(targets.len(), 1);
        targets.into_iter().next().unwrap()
    }

    /// The store's clients for a discovered target (an endpoint and a key added so no
    /// environment is read; nothing is sent).
    fn clients(t: &Target) -> Clients {
        let mut t = t.clone();
        t.params
            .insert("endpoint".into(), "http://127.0.0.1:1/acct".into());
        t.params.insert("access_key".into(), "a2V5".into());
        Clients::connect(&t, &ConnectOptions::default(), &|_| None).unwrap()
    }

    #[test]
    fn azurerm_and_json_configs() {
        // As main.tf.json gives it (and the CLI reads HCL to the same shape).
        let t = discover(
            r#"{"storage_account_name":"acct","container_name":"tfstate","key":"prod.tfstate"}"#,
        );
        assert_eq!(t.url, "azblob://acct/tfstate?key=prod.tfstate");
        assert_eq!(t.param("key"), Some("prod.tfstate"));
        let c = clients(&t);
        // One backend configuration's state blobs, and only those.
        assert!(c.covers("prod.tfstate") && c.covers("prod.tfstateenv:dev"));
        assert!(!c.covers("other.tfstate") && !c.covers("prod.tfstate.backup"));
        assert_eq!(c.workspace_of("prod.tfstate"), "default");
        assert_eq!(c.workspace_of("prod.tfstateenv:dev"), "dev");
        assert_eq!(c.prefix, "prod.tfstate");
        // Terraform's default key.
        let t = discover(r#"{"storage_account_name":"acct","container_name":"tfstate"}"#);
        assert_eq!(t.param("key"), Some("terraform.tfstate"));
        // Missing settings are named.
        let err = DRIVER
            .discover(&block(
                r#"{"storage_account_name":"acct","container_name":null}"#,
            ))
            .err()
            .unwrap();
        if std::env::var("ARM_CONTAINER_NAME").is_err() {
            assert!(
                err.to_string().contains("does not set container_name"),
                "{err}"
            );
        }
    }

    #[test]
    fn azurerm_cloud_and_entra_settings_are_passed() {
        let t = discover(
            r#"{"storage_account_name":"acct","container_name":"tfstate","key":"prod.tfstate","environment":"usgovernment","use_azuread_auth":true,"access_key":"c2VjcmV0LWFjY2Vzcy1rZXk=","snapshot":true}"#,
        );
        assert_eq!(t.url, "azblob://acct/tfstate?key=prod.tfstate");
        assert_eq!(t.param("environment"), Some("usgovernment"));
        assert_eq!(t.param("use_azuread_auth"), Some("true"));
        assert_eq!(t.param("access_key"), Some("c2VjcmV0LWFjY2Vzcy1rZXk="));
        assert_eq!(t.param("metadata_host"), None);
        assert_eq!(t.param("snapshot"), None);
        // Hidden options: never part of the name shown.
        assert!(!t.url.contains("c2VjcmV0"), "{}", t.url);
        // As `terraform init` records it: unset settings are null and are not passed, so
        // the store falls back to ARM_USE_AZUREAD / ARM_ENVIRONMENT.
        let t = discover(
            r#"{"storage_account_name":"acct","container_name":"c","key":"k","use_azuread_auth":null,"environment":null,"metadata_host":"m.example","sas_token":null}"#,
        );
        assert_eq!(t.param("use_azuread_auth"), None);
        assert_eq!(t.param("environment"), None);
        assert_eq!(t.param("sas_token"), None);
        assert_eq!(t.param("metadata_host"), Some("m.example"));
    }

    #[test]
    fn keys_survive_the_target_url() {
        for key in [
            "env:/team a/app.tfstate",
            "a&endpoint=http://evil/x.tfstate",
            "100%.tfstate",
            "k?x=1#y",
            "caf\u{e9}.tfstate",
        ] {
            let json = serde_json::json!({
                "storage_account_name": "acct",
                "container_name": "c",
                "key": key,
            });
            let t = discover(&json.to_string());
            assert_eq!(t.param("key"), Some(key), "{}", t.url);
            assert_eq!(t.param("endpoint"), None, "{}", t.url);
            assert!(!t.url.contains(' '), "{}", t.url);
        }
    }

    #[test]
    fn opentofu_paths_name_their_target() {
        assert_eq!(
            DRIVER
                .target_for_path(
                    "https://acct.blob.core.windows.net/tfstate/team/app.tfstateenv:dev"
                )
                .as_deref(),
            Some("azblob://acct/tfstate?key=team/app.tfstateenv:dev")
        );
        assert_eq!(
            DRIVER
                .target_for_path("https://acct.blob.core.windows.net/c/a%20b.tfstate")
                .as_deref(),
            Some("azblob://acct/c?key=a%20b.tfstate")
        );
        assert_eq!(
            DRIVER
                .target_for_path("https://acct.blob.core.windows.net/c/a+b%26c.tfstate")
                .as_deref(),
            Some("azblob://acct/c?key=a+b%26c.tfstate")
        );
        assert_eq!(DRIVER.target_for_path("tfstate/app.tfstate"), None);
    }
}
