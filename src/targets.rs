//! From a target URL to the backend that serves it.

use async_trait::async_trait;
use std::sync::Arc;
use tflock_core::{ConnectOptions, Error, LockStore, Target};

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
        match target.scheme.as_str() {
            "file" => {
                let store: Arc<dyn LockStore> = Arc::new(tflock_local::LocalStore::open(target)?);
                Ok(store)
            }
            "dynamodb" | "s3" => tflock_aws::open(target, opts).await,
            "azblob" => tflock_azure::open(target, opts).await,
            "gs" => tflock_gcs::open(target, opts).await,
            other => Err(Error::usage(format!(
                "{}: unknown target type {other}:// (use a directory, file://DIR, dynamodb://TABLE, s3://BUCKET, azblob://ACCOUNT/CONTAINER or gs://BUCKET)",
                target.url
            ))),
        }
    }
}
