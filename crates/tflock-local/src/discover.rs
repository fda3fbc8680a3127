//! The local backend as a driver: plain directories and `file://DIR`, and the
//! `backend "local"` block (or no backend at all) of a working directory.

use serde::Deserialize;
use std::path::Path;
use tflock_core::block::de;
use tflock_core::{BackendBlock, Error, Scheme, Target};

pub const SCHEMES: &[Scheme] = &[Scheme {
    name: "file",
    backend: "local",
    form: "DIR or file://DIR",
    about: "the local backend: terraform.tfstate locked with fcntl, .terraform.tfstate.lock.info beside it",
}];

/// The settings of `backend "local"` tflock reads.
#[derive(Deserialize, Default)]
struct Settings {
    /// The default workspace's state file, relative to the working directory.
    #[serde(default, deserialize_with = "de::text")]
    path: Option<String>,
}

/// The directory holding the block's state files (and their locks).
pub fn targets(block: &BackendBlock) -> Result<Vec<Target>, Error> {
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
