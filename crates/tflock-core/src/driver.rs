//! What a backend crate registers with the CLI: the target schemes it opens, the
//! Terraform backend types it reads from a working directory, and the hints only it can
//! give. The CLI iterates over drivers and knows nothing else about a backend.
//!
//! A driver is data (a table of functions), made once per crate with [`Driver::new`]:
//!
//! ```ignore
//! pub static DRIVER: Driver = Driver::new(
//!     discover::SCHEMES,                             // the URL schemes it opens
//!     &["consul"],                                   // the backend blocks it reads
//!     |t, o| tflock_core::opened(ConsulStore::open(t, o)),
//!     |block| discover::targets(block, &tflock_core::env_var),
//! );
//! ```

use crate::block::BackendBlock;
use crate::error::Error;
use crate::store::{ConnectOptions, LockStore};
use crate::target::Target;
use futures::future::BoxFuture;
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

/// The store a driver opened, or why not.
pub type Opened<'a> = BoxFuture<'a, Result<Arc<dyn LockStore>, Error>>;

/// Opens a target of one of the driver's schemes. Sends no request.
pub type OpenFn = for<'a> fn(&'a Target, &'a ConnectOptions) -> Opened<'a>;

/// A backend's registration: see the module docs.
#[derive(Clone, Copy)]
pub struct Driver {
    schemes: &'static [Scheme],
    terraform_backends: &'static [&'static str],
    open: OpenFn,
    discover: fn(&BackendBlock) -> Result<Vec<Target>, Error>,
    id_hint: Option<fn(&Target, &str) -> Option<String>>,
    target_for_path: Option<fn(&str) -> Option<String>>,
}

impl Driver {
    /// `schemes`: the URL schemes it opens (`file` is the plain-directory scheme).
    /// `terraform_backends`: the `backend "TYPE"` names whose blocks it reads (`s3`).
    /// `discover`: the targets that cover every workspace of such a block, each listing
    /// only the locks of this backend configuration (with their workspace set).
    pub const fn new(
        schemes: &'static [Scheme],
        terraform_backends: &'static [&'static str],
        open: OpenFn,
        discover: fn(&BackendBlock) -> Result<Vec<Target>, Error>,
    ) -> Driver {
        Driver {
            schemes,
            terraform_backends,
            open,
            discover,
            id_hint: None,
            target_for_path: None,
        }
    }

    /// What IDs look like here, said when an ID matched no lock in a target (gcs IDs
    /// are generations, not the UUID in the lock body).
    pub const fn with_id_hint(mut self, hint: fn(&Target, &str) -> Option<String>) -> Driver {
        self.id_hint = Some(hint);
        self
    }

    /// The target (a `-t` value) a lock with this `LockInfo.Path` would be in, when the
    /// path has this backend's shape (`gs://b/app/default.tflock` -> `gs://b/app`).
    pub const fn with_target_for_path(mut self, find: fn(&str) -> Option<String>) -> Driver {
        self.target_for_path = Some(find);
        self
    }

    pub fn schemes(&self) -> &'static [Scheme] {
        self.schemes
    }

    pub fn terraform_backends(&self) -> &'static [&'static str] {
        self.terraform_backends
    }

    /// Opens a target of one of [`schemes`](Driver::schemes). Sends no request.
    pub fn open<'a>(&self, target: &'a Target, opts: &'a ConnectOptions) -> Opened<'a> {
        (self.open)(target, opts)
    }

    pub fn discover(&self, block: &BackendBlock) -> Result<Vec<Target>, Error> {
        (self.discover)(block)
    }

    pub fn id_hint(&self, target: &Target, query: &str) -> Option<String> {
        self.id_hint.and_then(|f| f(target, query))
    }

    pub fn target_for_path(&self, path: &str) -> Option<String> {
        self.target_for_path.and_then(|f| f(path))
    }
}

/// [`OpenFn`]'s answer for a store that opens without awaiting anything.
pub fn opened<'a, S: LockStore + 'static>(store: Result<S, Error>) -> Opened<'a> {
    let store = store.map(|s| Arc::new(s) as Arc<dyn LockStore>);
    Box::pin(std::future::ready(store))
}
