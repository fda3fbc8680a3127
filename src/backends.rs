//! The backends tflock knows: one registration line per backend crate. Everything else
//! about a backend (its URLs, its Terraform backend block, its hints) comes from its
//! [`Driver`].

use async_trait::async_trait;
use std::sync::Arc;
use tflock_core::{ConnectOptions, Driver, Error, LockStore, Target};

/// Every backend, in the order their halves of one lock are shown (Terraform writes the
/// s3 lockfile before the DynamoDB row).
static DRIVERS: &[&Driver] = &[
    &tflock_local::DRIVER,
    &tflock_aws::DRIVER,
    &tflock_azure::DRIVER,
    &tflock_gcs::DRIVER,
    &tflock_kubernetes::DRIVER,
    &tflock_consul::DRIVER,
    &tflock_http::DRIVER,
    &tflock_pg::DRIVER,
];

pub fn drivers() -> &'static [&'static Driver] {
    DRIVERS
}

/// The driver that opens `scheme`.
pub fn driver_for(scheme: &str) -> Option<&'static Driver> {
    drivers()
        .iter()
        .copied()
        .find(|d| d.schemes().iter().any(|s| s.name == scheme))
}

/// Every target form, for help texts and errors: `s3://BUCKET[/PREFIX], ...`.
pub fn forms() -> String {
    drivers()
        .iter()
        .flat_map(|d| d.schemes())
        .map(|s| s.form)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Where a backend's locks come in the order halves of one lock are shown.
pub fn rank(backend: tflock_core::Backend) -> usize {
    drivers()
        .iter()
        .flat_map(|d| d.schemes())
        .position(|s| s.backend == backend.as_str())
        .unwrap_or(usize::MAX)
}

/// Opens the store for a target. Tests substitute their own (in-memory stores).
#[async_trait]
pub trait Resolver: Send + Sync {
    async fn open(
        &self,
        target: &Target,
        opts: &ConnectOptions,
    ) -> Result<Arc<dyn LockStore>, Error>;
}

/// The real backends, chosen by URL scheme.
pub struct DefaultResolver;

#[async_trait]
impl Resolver for DefaultResolver {
    async fn open(
        &self,
        target: &Target,
        opts: &ConnectOptions,
    ) -> Result<Arc<dyn LockStore>, Error> {
        match driver_for(&target.scheme) {
            Some(d) => d.open(target, opts).await,
            None => Err(Error::usage(
                &target.url,
                format!("unknown target type {}:// (use {})", target.scheme, forms()),
            )),
        }
    }
}
