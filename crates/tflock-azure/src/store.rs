//! The `LockStore` over one container: list leased blobs, break a lock on its lease.

use crate::client::Clients;
use crate::errors;
use crate::lockmeta::{self, LOCK_KEY};
use async_trait::async_trait;
use azure_core::http::Etag;
use azure_storage_blob::models::{
    BlobClientBreakLeaseOptions, BlobClientGetPropertiesOptions,
    BlobClientGetPropertiesResultHeaders, BlobClientSetMetadataOptions,
    BlobContainerClientListBlobsOptions, BlobItem, LeaseState, LeaseStatus, ListBlobsIncludeItem,
};
use futures::TryStreamExt;
use tflock_core::{check_breakable, Backend, BreakOptions, Broken, Error, Lock, LockStore};

/// Blobs per listing page: the service maximum, so a container is one call per 5,000 blobs.
const PAGE_SIZE: i32 = 5000;

pub(crate) struct AzureStore {
    pub(crate) clients: Clients,
}

impl AzureStore {
    fn lock_of(&self, item: BlobItem) -> Option<Lock> {
        let name = item.name?;
        let props = item.properties?;
        if props.lease_status != Some(LeaseStatus::Locked) {
            // Unleased blobs are not locks, even with stale terraformlockid metadata
            // (Terraform overwrites it on the next lock).
            return None;
        }
        let c = &self.clients;
        let location = c.location(&name);
        let mut lock = Lock::new(Backend::Azure, &c.target, &location);
        lock.path = format!("{}/{name}", c.container);
        lock.workspace = Some(lockmeta::workspace_of(&name));
        lock.stored_at = props
            .last_modified
            .and_then(|t| chrono::DateTime::from_timestamp(t.unix_timestamp(), t.nanosecond()));
        let lease_state = match props.lease_state {
            Some(LeaseState::Leased) => "leased",
            Some(LeaseState::Breaking) => "breaking",
            Some(LeaseState::Broken) => "broken",
            Some(LeaseState::Expired) => "expired",
            Some(LeaseState::Available) => "available",
            None => "unknown",
        };
        lock.holder = Some(format!("lease {lease_state}"));
        lock.details.insert("blob".into(), name.clone());
        lock.details
            .insert("lease_state".into(), lease_state.into());
        if let Some(d) = props.lease_duration {
            lock.details
                .insert("lease_duration".into(), format!("{d:?}").to_lowercase());
        }
        let etag = props.etag.map(|e| e.to_string());
        if let Some(e) = &etag {
            lock.details.insert("etag".into(), e.clone());
        }
        let metadata = item.metadata.and_then(|m| m.values).unwrap_or_default();
        let others: Vec<String> = {
            let mut keys: Vec<String> = lockmeta::other_metadata(&metadata).into_keys().collect();
            keys.sort();
            keys
        };
        if !others.is_empty() {
            lock.details
                .insert("other_metadata".into(), others.join(","));
        }
        lock.snapshot.etag = etag;
        match lockmeta::lock_value(&metadata) {
            None => {
                // A lease without Terraform's metadata: another tool's lease, or Terraform
                // died between acquiring the lease and writing the metadata. No lease id is
                // readable, so the blob's location is what names it.
                lock.foreign = true;
                lock.id = location;
            }
            Some(value) => {
                lock.snapshot.raw = Some(value.to_string());
                match lockmeta::decode(value) {
                    Ok(json) => {
                        lock = lock.with_info_text(&json);
                        if lock.info_error.is_none() {
                            // Terraform proposes LockInfo.ID as the lease id: they are one.
                            lock.snapshot.version = Some(lock.id.clone());
                        }
                    }
                    Err(why) => lock.info_error = Some(why),
                }
            }
        }
        Some(lock)
    }

    /// Breaks a Terraform lock: removes `terraformlockid` under the lease (which is the
    /// lock ID) conditioned on the ETag read, keeping every other metadata key, then
    /// releases the lease.
    async fn break_terraform_lock(
        &self,
        lock: &Lock,
        name: &str,
        lease_id: &str,
        etag: &str,
    ) -> Result<Broken, Error> {
        let c = &self.clients;
        let blob = c.blob(name)?;
        let changed = |what: &str, e: &azure_core::Error| {
            Error::changed(
                &c.target,
                format!(
                    "lock {} on {}: {what} refused ({})",
                    lock.id,
                    lock.path,
                    errors::code_of(e).unwrap_or_default()
                ),
            )
        };
        // Re-read the metadata on the same ETag, so "every other key" is exactly what the
        // listing saw.
        let props = blob
            .get_properties(Some(BlobClientGetPropertiesOptions {
                if_match: Some(Etag::from(etag)),
                ..Default::default()
            }))
            .await
            .map_err(|e| {
                if errors::is_changed(&e) {
                    changed("reading the blob", &e)
                } else {
                    errors::storage(&c.target, &format!("reading blob {}", lock.path), &e)
                }
            })?;
        let metadata = props.metadata().map_err(|e| {
            Error::backend(&c.target, format!("reading metadata of {}: {e}", lock.path))
        })?;
        if lockmeta::lock_value(&metadata) != lock.snapshot.raw.as_deref() {
            return Err(Error::changed(
                &c.target,
                format!(
                    "lock {} on {}: the lock metadata differs from what was listed",
                    lock.id, lock.path
                ),
            ));
        }
        let keep = lockmeta::other_metadata(&metadata);
        blob.set_metadata(
            &keep,
            Some(BlobClientSetMetadataOptions {
                lease_id: Some(lease_id.to_string()),
                if_match: Some(Etag::from(etag)),
                ..Default::default()
            }),
        )
        .await
        .map_err(|e| {
            if errors::is_changed(&e) {
                changed("removing the lock metadata", &e)
            } else {
                errors::storage(
                    &c.target,
                    &format!("removing {LOCK_KEY} from {}", lock.path),
                    &e,
                )
            }
        })?;
        blob.release_lease(lease_id.to_string(), None)
            .await
            .map_err(|e| {
                errors::storage(
                    &c.target,
                    &format!(
                        "removed {LOCK_KEY} from {} but releasing lease {lease_id} failed",
                        lock.path
                    ),
                    &e,
                )
                .with_hint("the blob is now leased without lock metadata: list again and break it with --force-foreign")
            })?;
        Ok(Broken {
            removed: vec![
                format!("metadata {LOCK_KEY} on {}", lock.location),
                format!("lease {lease_id} on {}", lock.location),
            ],
        })
    }

    /// Breaks a lease whose id is unknown (foreign, or metadata that cannot be decoded):
    /// Break Lease with period 0, conditioned on the ETag read.
    async fn break_lease(&self, lock: &Lock, name: &str, etag: &str) -> Result<Broken, Error> {
        let c = &self.clients;
        let blob = c.blob(name)?;
        blob.break_lease(Some(BlobClientBreakLeaseOptions {
            break_period: Some(0),
            if_match: Some(Etag::from(etag)),
            ..Default::default()
        }))
        .await
        .map_err(|e| {
            if errors::is_changed(&e) {
                Error::changed(
                    &c.target,
                    format!(
                        "lease on {}: breaking it was refused ({})",
                        lock.location,
                        errors::code_of(&e).unwrap_or_default()
                    ),
                )
            } else {
                errors::storage(
                    &c.target,
                    &format!("breaking the lease on {}", lock.path),
                    &e,
                )
            }
        })?;
        Ok(Broken {
            removed: vec![format!("lease on {} (broken, period 0)", lock.location)],
        })
    }
}

#[async_trait]
impl LockStore for AzureStore {
    fn backend(&self) -> Backend {
        Backend::Azure
    }

    fn target(&self) -> &str {
        &self.clients.target
    }

    async fn list(&self) -> Result<Vec<Lock>, Error> {
        let c = &self.clients;
        let what = format!("listing container {} of account {}", c.container, c.account);
        let pager = c
            .container_client
            .list_blobs(Some(BlobContainerClientListBlobsOptions {
                include: Some(vec![ListBlobsIncludeItem::Metadata]),
                maxresults: Some(PAGE_SIZE),
                prefix: (!c.prefix.is_empty()).then(|| c.prefix.clone()),
                ..Default::default()
            }))
            .map_err(|e| errors::storage(&c.target, &what, &e))?;
        let mut pages = pager.into_pages();
        let mut locks = Vec::new();
        while let Some(page) = pages
            .try_next()
            .await
            .map_err(|e| errors::storage(&c.target, &what, &e))?
        {
            let page = page.into_model().map_err(|e| {
                Error::backend(&c.target, format!("{what}: unreadable listing: {e}"))
            })?;
            locks.extend(page.blob_items.into_iter().filter_map(|b| self.lock_of(b)));
        }
        Ok(locks)
    }

    async fn break_lock(&self, lock: &Lock, opts: &BreakOptions) -> Result<Broken, Error> {
        check_breakable(lock, opts)?;
        let c = &self.clients;
        let (Some(name), Some(etag)) = (lock.details.get("blob"), lock.snapshot.etag.as_deref())
        else {
            return Err(Error::usage(format!(
                "{}: lock {} was not listed from this target",
                c.target, lock.location
            )));
        };
        match (&lock.snapshot.version, lock.foreign) {
            (Some(lease_id), false) => self.break_terraform_lock(lock, name, lease_id, etag).await,
            (_, true) => self.break_lease(lock, name, etag).await,
            (None, false) => {
                if !opts.force_foreign {
                    return Err(Error::refused(
                        &c.target,
                        format!(
                            "{} is leased but its lock metadata cannot be decoded ({}), so its lease id is unknown; pass --force-foreign to break the lease",
                            lock.location,
                            lock.info_error.as_deref().unwrap_or("no lock ID")
                        ),
                    ));
                }
                self.break_lease(lock, name, etag).await
            }
        }
    }
}
