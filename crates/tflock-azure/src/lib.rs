//! tflock backend for Terraform's azurerm backend: state blobs locked by an infinite lease
//! whose id is the lock ID, with the LockInfo in the blob's `terraformlockid` metadata.
//!
//! Target: `azblob://ACCOUNT/CONTAINER[/PREFIX][?endpoint=URL]`. One listing call per
//! 5,000 blobs (metadata and lease state included) finds every lock; a break removes the
//! lock metadata under the lease and releases it, or, only with `--force-foreign`, breaks a
//! lease that carries no Terraform metadata. See docs/backends/azure.md.
//!
//! The SDK types stay inside this crate: callers only see [`open`].

//!
//! Files: `store.rs` (list, break), `naming.rs` (metadata and blob names), `client.rs`,
//! `credentials.rs`, `shared_key.rs` and `transport.rs` (endpoint, auth, timeouts),
//! `error.rs`, `discover.rs` (the `backend "azurerm"` block), `doctor.rs` (leases without
//! lock metadata).

mod client;
mod credentials;
mod discover;
mod doctor;
mod error;
mod naming;
mod shared_key;
mod store;
mod transport;

/// Takes leases and writes lock metadata the way Terraform does, for tests and the
/// benchmark seeder: never in release builds.
#[cfg(feature = "testing")]
pub mod testing;

pub use discover::DRIVER;
pub use naming::LOCK_KEY;
pub use store::AZURE;

use std::sync::Arc;
use tflock_core::{ConnectOptions, Error, LockStore, Target};

/// Opens `azblob://ACCOUNT/CONTAINER[/PREFIX]`, with credentials and endpoint from the
/// environment (see [`credentials`](crate) in the docs) and `?endpoint=` on the target.
pub async fn open(target: &Target, opts: &ConnectOptions) -> Result<Arc<dyn LockStore>, Error> {
    let clients = client::Clients::connect(target, opts, &|k| std::env::var(k).ok())?;
    Ok(Arc::new(store::AzureStore { clients }))
}
