//! What a backend crate registers with the CLI: the target schemes it opens, the
//! Terraform backend types it reads from a working directory, and the hints only it can
//! give. The CLI iterates over drivers and knows nothing else about a backend.

use crate::block::BackendBlock;
use crate::error::Error;
use crate::store::{ConnectOptions, LockStore};
use crate::target::Target;
use async_trait::async_trait;
use std::sync::Arc;

/// One URL scheme a driver opens, and its form for help texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scheme {
    /// `s3`
    pub name: &'static str,
    /// The name of the [`Backend`](crate::Backend) its locks carry: `s3`, `gcs`.
    pub backend: &'static str,
    /// `s3://BUCKET[/PREFIX]`
    pub form: &'static str,
    /// What it covers: `the s3 backend's native .tflock lockfiles`
    pub about: &'static str,
}

#[async_trait]
pub trait Driver: Send + Sync {
    /// The schemes this driver opens. `file` is the plain-directory scheme.
    fn schemes(&self) -> &'static [Scheme];
    /// The `backend "TYPE"` names whose blocks this driver reads (`s3`, `azurerm`).
    fn terraform_backends(&self) -> &'static [&'static str];
    /// Opens a target of one of [`schemes`](Driver::schemes). Sends no request.
    async fn open(
        &self,
        target: &Target,
        opts: &ConnectOptions,
    ) -> Result<Arc<dyn LockStore>, Error>;
    /// The targets that cover every workspace of this backend block, each listing only
    /// the locks of this backend configuration (with their workspace set).
    fn discover(&self, block: &BackendBlock) -> Result<Vec<Target>, Error>;
    /// Said when an ID matched no lock in `target`: what IDs look like here (gcs IDs are
    /// generations, not the UUID in the lock body).
    fn id_hint(&self, _target: &Target, _query: &str) -> Option<String> {
        None
    }
    /// The target a lock with this `LockInfo.Path` would be in, as a `-t` value, when
    /// the path has this backend's shape (`gs://b/app/default.tflock` -> `gs://b/app`).
    fn target_for_path(&self, _path: &str) -> Option<String> {
        None
    }
}
