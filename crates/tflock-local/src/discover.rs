//! The local backend as a driver: plain directories and `file://DIR`, and the
//! `backend "local"` block (or no backend at all) of a working directory.

use crate::LocalStore;
use async_trait::async_trait;
use serde::Deserialize;
use std::path::Path;
use std::sync::Arc;
use tflock_core::block::de;
use tflock_core::{BackendBlock, ConnectOptions, Driver, Error, LockStore, Scheme, Target};

pub struct LocalDriver;

/// Registered by the CLI.
pub static DRIVER: LocalDriver = LocalDriver;

/// The settings of `backend "local"` tflock reads.
#[derive(Deserialize, Default)]
struct Settings {
    /// The default workspace's state file, relative to the working directory.
    #[serde(default, deserialize_with = "de::text")]
    path: Option<String>,
}

#[async_trait]
impl Driver for LocalDriver {
    fn schemes(&self) -> &'static [Scheme] {
        &[Scheme {
            name: "file",
            backend: "local",
            form: "DIR or file://DIR",
            about: "the local backend: terraform.tfstate locked with fcntl, .terraform.tfstate.lock.info beside it",
        }]
    }

    fn terraform_backends(&self) -> &'static [&'static str] {
        &["local"]
    }

    async fn open(
        &self,
        target: &Target,
        _opts: &ConnectOptions,
    ) -> Result<Arc<dyn LockStore>, Error> {
        Ok(Arc::new(LocalStore::open(target)?))
    }

    fn discover(&self, block: &BackendBlock) -> Result<Vec<Target>, Error> {
        let settings: Settings = block.settings()?;
        // `path = "states/prod.tfstate"` keeps the state (and its lock) in that directory.
        let dir = match settings
            .path
            .as_deref()
            .map(Path::new)
            .and_then(Path::parent)
        {
            Some(parent) if !parent.as_os_str().is_empty() => block.dir.join(parent),
            _ => block.dir.clone(),
        };
        Ok(vec![Target::directory(&dir.display().to_string())])
    }
}
