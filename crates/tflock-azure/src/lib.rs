//! tflock backend for Terraform's azurerm backend: state blobs locked by an infinite lease
//! whose id is the lock ID, with the LockInfo in the blob's `terraformlockid` metadata.
//!
//! Target: `azblob://ACCOUNT/CONTAINER[/PREFIX]` (options `endpoint=URL`; `key=KEY` for one
//! state's blobs, as discovery builds). One listing call per 5,000 blobs (metadata and
//! lease state included) finds every lock; a break releases the lease (its id is the lock
//! ID) on the ETag read, then removes the lock metadata from the unleased blob, or, only
//! with `--force-foreign`, breaks a lease whose holder is unknown. See
//! docs/backends/azure.md.
//!
//! The SDK types stay inside this crate: callers only see [`open`].
//!
//! Files: `store.rs` (list, break), `naming.rs` (metadata and blob names), `auth.rs`
//! (which credential and endpoint; `auth/shared_key.rs` signs with an account key),
//! `client.rs` (the SDK clients; `client/transport.rs`: HTTP client, timeouts, CAs),
//! `error.rs` (storage errors to tflock errors), `discover.rs` (the driver and the
//! `backend "azurerm"` block), `doctor.rs`
//! (leases without lock metadata).

mod auth;
mod client;
mod discover;
mod doctor;
mod error;
mod naming;
mod store;

/// Takes leases and writes lock metadata the way Terraform does, for tests and the
/// benchmark seeder: never in release builds.
#[cfg(feature = "testing")]
pub mod testing;

pub use naming::LOCK_KEY;
pub use store::AZURE;

/// Registered by the CLI.
pub static DRIVER: tflock_core::Driver = tflock_core::Driver::new(
    discover::SCHEMES,
    &["azurerm"],
    |t, o| tflock_core::opened(open(t, o)),
    discover::targets,
)
.with_target_for_path(discover::target_for_path);

use tflock_core::{ConnectOptions, Error, Target};

/// Opens `azblob://ACCOUNT/CONTAINER[/PREFIX]`, with credentials and endpoint from the
/// environment (see [`credentials`](crate) in the docs) and `?endpoint=` on the target.
/// Sends nothing.
fn open(target: &Target, opts: &ConnectOptions) -> Result<store::AzureStore, Error> {
    let clients = client::Clients::connect(target, opts, &|k| std::env::var(k).ok())?;
    Ok(store::AzureStore { clients })
}
