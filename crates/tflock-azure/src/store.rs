//! The `LockStore` over one container: list leased blobs, break a lock on its lease.
//!
//! A Terraform lock is broken by releasing its lease (the lease id is the lock ID),
//! conditioned on the ETag read, and only then removing `terraformlockid` from the now
//! unleased blob. That order never leaves a lease without lock metadata (which would look
//! foreign): if the clean-up fails, what is left is stale metadata on an unleased blob,
//! which Terraform ignores and overwrites.

use crate::client::Clients;
use crate::error;
use crate::naming::{self, LOCK_KEY};
use async_trait::async_trait;
use azure_core::http::Etag;
use azure_storage_blob::models::{
    BlobClientBreakLeaseOptions, BlobClientGetPropertiesOptions,
    BlobClientGetPropertiesResultHeaders, BlobClientReleaseLeaseOptions,
    BlobClientSetMetadataOptions, BlobContainerClientListBlobsOptions, BlobItem, LeaseState,
    LeaseStatus, ListBlobsIncludeItem,
};
use futures::TryStreamExt;
use std::collections::HashMap;
use tflock_core::{
    Backend, BreakOptions, Broken, Error, Finding, Handle, Lock, LockStore, Presence,
};

/// The backend name of Azure blob leases.
pub const AZURE: Backend = Backend::new("azure");

/// Blobs per listing page: the service maximum, so a container is one call per 5,000 blobs.
const PAGE_SIZE: i32 = 5000;

pub(crate) struct AzureStore {
    pub(crate) clients: Clients,
}

/// What a break of an Azure lock compares on.
struct AzureHandle {
    blob: String,
    etag: Option<String>,
    /// The lease id (= LockInfo.ID) when the lock metadata was readable.
    lease_id: Option<String>,
    /// The `terraformlockid` value read, if any.
    raw: Option<String>,
}

/// One blob's properties read again.
struct Now {
    leased: bool,
    etag: Option<String>,
    metadata: HashMap<String, String>,
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
        let metadata = item.metadata.and_then(|m| m.values).unwrap_or_default();
        let raw = naming::lock_value(&metadata).map(str::to_string);
        let decoded = raw.as_deref().map(naming::decode);
        let etag = props.etag.map(|e| e.to_string());
        let mut lock = Lock::new(AZURE, &c.target, &location, Handle::new(&c.target, ()));
        lock.path = format!("{}/{name}", c.container);
        lock.workspace = Some(c.workspace_of(&name));
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
        if let Some(e) = &etag {
            lock.details.insert("etag".into(), e.clone());
        }
        let others: Vec<String> = {
            let mut keys: Vec<String> = naming::other_metadata(&metadata).into_keys().collect();
            keys.sort();
            keys
        };
        if !others.is_empty() {
            lock.details
                .insert("other_metadata".into(), others.join(","));
        }
        let mut lease_id = None;
        match decoded {
            None => {
                // A lease without Terraform's metadata: another tool's lease, or Terraform
                // died between acquiring the lease and writing the metadata. No lease id is
                // readable, so the blob's location is what names it.
                lock.foreign = true;
                lock.id = location;
            }
            Some(Ok(json)) => {
                lock = lock.with_info_text(&json);
                if lock.info_error.is_none() {
                    if naming::is_lease_id(&lock.id) {
                        // Terraform proposes LockInfo.ID as the lease id: they are one.
                        lease_id = Some(lock.id.clone());
                    } else {
                        // Never sent as a lease id header: the lease is someone else's.
                        lock.info_error = Some(
                            "the lock ID is not a GUID, so it cannot be the lease id Terraform proposed; the lease holding this blob is unknown"
                                .into(),
                        );
                    }
                }
            }
            Some(Err(why)) => lock.info_error = Some(why),
        }
        lock.set_handle(Handle::new(
            &c.target,
            AzureHandle {
                blob: name,
                etag,
                lease_id,
                raw,
            },
        ));
        Some(lock)
    }

    /// The blob's lease, ETag and metadata now; `None` when the blob is gone.
    async fn now(&self, name: &str, location: &str) -> Result<Option<Now>, Error> {
        let c = &self.clients;
        let props = match c.blob(name, false)?.get_properties(None).await {
            Ok(p) => p,
            Err(e) if error::status_of(&e) == Some(404) => return Ok(None),
            Err(e) => return Err(c.fail(&format!("reading {location}"), &e)),
        };
        let metadata = props.metadata().map_err(|e| {
            Error::backend(
                &c.target,
                c.redact
                    .text(&format!("reading metadata of {location}: {e}")),
            )
        })?;
        Ok(Some(Now {
            leased: props.lease_status().ok().flatten() == Some(LeaseStatus::Locked),
            etag: props.etag().ok().flatten().map(|e| e.to_string()),
            metadata,
        }))
    }

    /// Whether lease `lease_id` still holds `name`: a read conditioned on the lease id
    /// succeeds only then; the service refuses it with `LeaseNotPresentWithBlobOperation`
    /// (412) when the blob has no active lease, `LeaseIdMismatchWithBlobOperation` when
    /// another lease holds it.
    async fn lease_presence(
        &self,
        name: &str,
        location: &str,
        lease_id: &str,
    ) -> Result<Presence, Error> {
        let c = &self.clients;
        match c
            .blob(name, false)?
            .get_properties(Some(BlobClientGetPropertiesOptions {
                lease_id: Some(lease_id.to_string()),
                ..Default::default()
            }))
            .await
        {
            Ok(_) => Ok(Presence::Same),
            Err(e) if error::is_other_lease(&e) => Ok(Presence::Other),
            Err(e) if matches!(error::status_of(&e), Some(404 | 412)) => Ok(Presence::Gone),
            Err(e) => Err(c.fail(&format!("reading {location}"), &e)),
        }
    }

    /// Breaks a Terraform lock: releases the lease (whose id is the lock ID) on the ETag
    /// read, after checking that lease still holds and the lock metadata is still what
    /// was listed; then removes `terraformlockid` from the unleased blob, keeping every
    /// other metadata key.
    async fn break_terraform_lock(
        &self,
        lock: &Lock,
        h: &AzureHandle,
        lease_id: &str,
        etag: &str,
        opts: &BreakOptions,
    ) -> Result<Broken, Error> {
        let c = &self.clients;
        let changed = |what: &str, e: &azure_core::Error| {
            Error::changed(
                &c.target,
                format!(
                    "lock {lease_id} on {}: {what} refused ({})",
                    lock.path,
                    error::code_of(e).unwrap_or_default()
                ),
            )
        };
        // Re-read on the listed ETag and under the lease id: the service answers only if
        // the blob is unchanged and lease `lease_id` still holds it.
        let props = match c
            .blob(&h.blob, false)?
            .get_properties(Some(BlobClientGetPropertiesOptions {
                if_match: Some(Etag::from(etag)),
                lease_id: Some(lease_id.to_string()),
                ..Default::default()
            }))
            .await
        {
            Ok(props) => props,
            Err(e) if error::is_other_lease(&e) && opts.force_foreign => {
                // The metadata names a lease that is not the blob's: whoever holds it is
                // unknown, as for a foreign lease, and the operator said to break it.
                return self.break_lease(lock, h, etag).await;
            }
            Err(e) if error::is_other_lease(&e) => {
                return Err(Error::changed(
                    &c.target,
                    format!(
                        "lock {lease_id} on {}: the blob's lease is not lease {lease_id} any more: it was re-taken, or {LOCK_KEY} is stale metadata of an earlier lock under someone else's lease",
                        lock.path
                    ),
                )
                .with_hint("list again; if the same ID is listed again, its metadata is stale: break the lease with --force-foreign after checking nothing holds it on purpose"));
            }
            Err(e) if error::is_changed(&e) => return Err(changed("reading the blob", &e)),
            Err(e) => return Err(c.fail(&format!("reading blob {}", lock.path), &e)),
        };
        let metadata = props.metadata().map_err(|e| {
            Error::backend(
                &c.target,
                c.redact
                    .text(&format!("reading metadata of {}: {e}", lock.path)),
            )
        })?;
        if naming::lock_value(&metadata) != h.raw.as_deref() {
            return Err(Error::changed(
                &c.target,
                format!(
                    "lock {lease_id} on {}: the lock metadata differs from what was listed",
                    lock.path
                ),
            ));
        }
        let once = c.blob(&h.blob, true)?;
        let released = once
            .release_lease(
                lease_id.to_string(),
                Some(BlobClientReleaseLeaseOptions {
                    if_match: Some(Etag::from(etag)),
                    ..Default::default()
                }),
            )
            .await;
        if let Err(e) = released {
            return Err(if error::is_changed(&e) {
                changed("releasing the lease", &e)
            } else {
                c.fail_once(&format!("releasing lease {lease_id} on {}", lock.path), &e)
            });
        }
        let mut broken = Broken {
            removed: vec![format!("lease {lease_id} on {}", lock.location)],
            ..Broken::default()
        };
        // Clean-up on the unleased blob, conditioned on the ETag read (a lease does not
        // change it): a terraform that locked it meanwhile has a lease, so this is refused
        // and its lock is untouched.
        let keep = naming::other_metadata(&metadata);
        match once
            .set_metadata(
                &keep,
                Some(BlobClientSetMetadataOptions {
                    if_match: Some(Etag::from(etag)),
                    ..Default::default()
                }),
            )
            .await
        {
            Ok(_) => broken
                .removed
                .push(format!("metadata {LOCK_KEY} on {}", lock.location)),
            Err(e) => broken.warnings.push(format!(
                "the lease is released, but removing the stale {LOCK_KEY} metadata from {} failed ({}); it is harmless: Terraform ignores it on an unleased blob and overwrites it",
                lock.location,
                error::code_of(&e).unwrap_or_else(|| c.redact.text(&e.to_string()))
            )),
        }
        Ok(broken)
    }

    /// Breaks a lease whose id is unknown (foreign, or metadata that cannot be decoded):
    /// Break Lease with period 0, conditioned on the ETag read.
    async fn break_lease(&self, lock: &Lock, h: &AzureHandle, etag: &str) -> Result<Broken, Error> {
        let c = &self.clients;
        c.blob(&h.blob, true)?
            .break_lease(Some(BlobClientBreakLeaseOptions {
                break_period: Some(0),
                if_match: Some(Etag::from(etag)),
                ..Default::default()
            }))
            .await
            .map_err(|e| {
                if error::is_changed(&e) {
                    Error::changed(
                        &c.target,
                        format!(
                            "lease on {}: breaking it was refused ({})",
                            lock.location,
                            error::code_of(&e).unwrap_or_default()
                        ),
                    )
                } else {
                    c.fail_once(&format!("breaking the lease on {}", lock.path), &e)
                }
            })?;
        Ok(Broken {
            removed: vec![format!("lease on {} (broken, period 0)", lock.location)],
            ..Broken::default()
        })
    }
}

#[async_trait]
impl LockStore for AzureStore {
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
            .map_err(|e| c.fail(&what, &e))?;
        let mut pages = pager.into_pages();
        let mut locks = Vec::new();
        while let Some(page) = pages.try_next().await.map_err(|e| c.fail(&what, &e))? {
            let page = page.into_model().map_err(|e| {
                Error::backend(
                    &c.target,
                    c.redact.text(&format!("{what}: unreadable listing: {e}")),
                )
            })?;
            locks.extend(
                page.blob_items
                    .into_iter()
                    // `prefix=<key>` also returns `<key>.backup` and the like.
                    .filter(|b| b.name.as_deref().is_some_and(|n| c.covers(n)))
                    .filter_map(|b| self.lock_of(b)),
            );
        }
        Ok(locks)
    }

    async fn delete_if_unchanged(&self, lock: &Lock, opts: &BreakOptions) -> Result<Broken, Error> {
        let c = &self.clients;
        let h = lock.handle_for::<AzureHandle>(&self.clients.target)?;
        let Some(etag) = h.etag.as_deref() else {
            return Err(Error::refused(
                &c.target,
                format!(
                    "{} was listed without an ETag; cannot break it safely",
                    lock.location
                ),
            ));
        };
        match (&h.lease_id, lock.foreign) {
            (Some(lease_id), false) => {
                self.break_terraform_lock(lock, h, lease_id, etag, opts)
                    .await
            }
            (_, true) => self.break_lease(lock, h, etag).await,
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
                self.break_lease(lock, h, etag).await
            }
        }
    }

    async fn recheck(&self, lock: &Lock) -> Result<Presence, Error> {
        let h = lock.handle_for::<AzureHandle>(&self.clients.target)?;
        if let Some(lease_id) = &h.lease_id {
            // A Terraform lock is its lease: ask the service whether that lease still
            // holds. Its metadata cannot tell: a release leaves it on the blob until the
            // clean-up, and a new holder writes its own only after taking the lease.
            return self.lease_presence(&h.blob, &lock.location, lease_id).await;
        }
        let Some(now) = self.now(&h.blob, &lock.location).await? else {
            return Ok(Presence::Gone);
        };
        if !now.leased {
            return Ok(Presence::Gone);
        }
        let same = match &h.raw {
            // Undecodable metadata: the same while it is.
            Some(raw) => now.etag == h.etag && naming::lock_value(&now.metadata) == Some(raw),
            // A foreign lease: the same while the blob is unchanged (its lease id cannot be
            // read, so a new lease taken without writing the blob looks the same).
            None => now.etag == h.etag && naming::lock_value(&now.metadata).is_none(),
        };
        Ok(if same {
            Presence::Same
        } else {
            Presence::Other
        })
    }

    async fn diagnose(&self) -> Result<Vec<Finding>, Error> {
        crate::doctor::diagnose(self).await
    }

    fn backend(&self) -> Backend {
        AZURE
    }

    fn target(&self) -> &str {
        &self.clients.target
    }
}
