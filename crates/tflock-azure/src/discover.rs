//! The azurerm backend as a driver: `azblob://` targets and the `backend "azurerm"` block.

use async_trait::async_trait;
use serde::Deserialize;
use std::sync::Arc;
use tflock_core::block::de;
use tflock_core::{BackendBlock, ConnectOptions, Driver, Error, LockStore, Scheme, Target};

pub struct AzureDriver;

/// Registered by the CLI.
pub static DRIVER: AzureDriver = AzureDriver;

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

#[async_trait]
impl Driver for AzureDriver {
    fn schemes(&self) -> &'static [Scheme] {
        &[Scheme {
            name: "azblob",
            backend: "azure",
            form: "azblob://ACCOUNT/CONTAINER[/PREFIX]",
            about: "the azurerm backend's leased state blobs (lock ID = lease ID)",
        }]
    }

    fn terraform_backends(&self) -> &'static [&'static str] {
        &["azurerm"]
    }

    async fn open(
        &self,
        target: &Target,
        opts: &ConnectOptions,
    ) -> Result<Arc<dyn LockStore>, Error> {
        crate::open(target, opts).await
    }

    fn discover(&self, block: &BackendBlock) -> Result<Vec<Target>, Error> {
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
            "azblob://{account}/{container}?key={key}"
        ))?
        .with("access_key", s.access_key)
        .with("sas_token", s.sas_token)
        .with("environment", s.environment)
        .with("metadata_host", s.metadata_host)
        .with("use_azuread_auth", s.use_azuread_auth)])
    }

    fn target_for_path(&self, path: &str) -> Option<String> {
        // OpenTofu >= 1.11 writes the full blob URL as Path.
        let url = url::Url::parse(path).ok()?;
        let account = url.host_str()?.strip_suffix(".blob.core.windows.net")?;
        let mut segments = url.path_segments()?;
        let container = segments.next()?;
        let key: Vec<&str> = segments.collect();
        Some(format!(
            "azblob://{account}/{container}?key={}",
            key.join("/")
        ))
    }
}
