//! The gcs backend as a driver: `gs://` targets, the `backend "gcs"` block, and what
//! people get wrong about gcs lock IDs.

use crate::naming::normalize_prefix;
use async_trait::async_trait;
use serde::Deserialize;
use std::sync::Arc;
use tflock_core::block::de;
use tflock_core::{BackendBlock, ConnectOptions, Driver, Error, LockStore, Scheme, Target};

pub struct GcsDriver;

/// Registered by the CLI.
pub static DRIVER: GcsDriver = GcsDriver;

/// The settings of `backend "gcs"` tflock uses.
#[derive(Deserialize, Default)]
struct Settings {
    #[serde(default, deserialize_with = "de::text")]
    bucket: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    prefix: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    storage_custom_endpoint: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    access_token: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    credentials: Option<String>,
    /// Passed on so the store refuses it instead of ignoring it.
    #[serde(default, deserialize_with = "de::text")]
    impersonate_service_account: Option<String>,
}

#[async_trait]
impl Driver for GcsDriver {
    fn schemes(&self) -> &'static [Scheme] {
        &[Scheme {
            name: "gs",
            backend: "gcs",
            form: "gs://BUCKET[/PREFIX]",
            about: "the gcs backend's .tflock objects (lock ID = object generation)",
        }]
    }

    fn terraform_backends(&self) -> &'static [&'static str] {
        &["gcs"]
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
        let Some(bucket) = &s.bucket else {
            return Err(block.missing(&["bucket"]));
        };
        let prefix = normalize_prefix(s.prefix.as_deref().unwrap_or(""));
        let url = if prefix.is_empty() {
            format!("gs://{bucket}?nested=false")
        } else {
            format!(
                "gs://{bucket}/{}?nested=false",
                prefix.trim_end_matches('/')
            )
        };
        let endpoint = s.storage_custom_endpoint.clone().or_else(|| {
            std::env::var("GOOGLE_STORAGE_CUSTOM_ENDPOINT")
                .ok()
                .filter(|v| !v.trim().is_empty())
        });
        // access_token and credentials are hidden options: the shown target is the URL.
        Ok(vec![Target::parse(&url)?
            .with("endpoint", endpoint)
            .with("access_token", s.access_token)
            .with("credentials", s.credentials)
            .with(
                "impersonate_service_account",
                s.impersonate_service_account,
            )])
    }

    fn id_hint(&self, target: &Target, query: &str) -> Option<String> {
        // A gcs lock's ID is its object generation, a number; people paste the UUID.
        (target.scheme == "gs" && !query.bytes().all(|b| b.is_ascii_digit())).then(|| {
            "gcs lock IDs are object generations, numbers, as terraform force-unlock takes them; the LockInfo ID inside a lock works as an alias".to_string()
        })
    }

    fn target_for_path(&self, path: &str) -> Option<String> {
        // LockInfo.Path of the gcs backend: `gs://<bucket>/<prefix><ws>.tflock`.
        let rest = path.strip_prefix("gs://")?;
        let object_dir = rest.rsplit_once('/').map(|(dir, _)| dir)?;
        Some(format!("gs://{object_dir}"))
    }
}
