//! Test support, not part of the tool: takes and inspects locks exactly the way
//! Terraform's azurerm backend does (internal/backend/remote-state/azure/client.go), so
//! the conformance suite and the end-to-end tests can set up real leases without naming
//! SDK types. Nothing here is used by `list` or `break`.

use crate::client::Clients;
use crate::error;
use crate::naming::{self, LOCK_KEY};
use azure_core::http::RequestContent;
use azure_storage_blob::models::{
    BlobClientAcquireLeaseOptions, BlobClientBreakLeaseOptions, BlobClientGetPropertiesOptions,
    BlobClientGetPropertiesResultHeaders, BlobClientSetMetadataOptions,
    BlobContainerClientListBlobsOptions, BlockBlobClientUploadOptions, LeaseStatus,
    ListBlobsIncludeItem,
};
use azure_storage_blob::BlobClient;
use futures::TryStreamExt;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use tflock_core::{ConnectOptions, Error, LockInfo, Target};

/// SDK errors as one line with the storage error code.
fn msg(what: &str, e: &azure_core::Error) -> String {
    match error::code_of(e) {
        Some(code) => format!("{what}: {code}"),
        None => format!("{what}: {e}"),
    }
}

/// Metadata pairs as the SDK takes them.
fn owned(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A read that succeeds only while lease `id` holds.
fn read_under(id: &str) -> Option<BlobClientGetPropertiesOptions<'static>> {
    Some(BlobClientGetPropertiesOptions {
        lease_id: Some(id.to_string()),
        ..Default::default()
    })
}

/// A metadata write under lease `id` (a leased blob takes no other).
fn write_under(id: &str) -> Option<BlobClientSetMetadataOptions<'static>> {
    Some(BlobClientSetMetadataOptions {
        lease_id: Some(id.to_string()),
        ..Default::default()
    })
}

/// A direct client for one `azblob://` target.
pub struct Harness {
    clients: Clients,
}

impl Harness {
    /// Connects with credentials from the process environment, like the driver's open.
    pub fn connect(target: &Target, opts: &ConnectOptions) -> Result<Harness, Error> {
        Self::connect_with_env(target, opts, &|k| std::env::var(k).ok())
    }

    /// Connects with credentials from `env` (tests pass the emulator's key this way).
    pub fn connect_with_env(
        target: &Target,
        opts: &ConnectOptions,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Harness, Error> {
        Ok(Harness {
            clients: Clients::connect(target, opts, env)?,
        })
    }

    /// A client of `blob` (read requests retried, as a test wants).
    fn blob(&self, blob: &str) -> Result<BlobClient, String> {
        self.clients.blob(blob, false).map_err(|e| e.to_string())
    }

    pub async fn create_container(&self) -> Result<(), String> {
        match self.clients.container_client.create(None).await {
            Ok(_) => Ok(()),
            Err(e) if error::code_of(&e).as_deref() == Some("ContainerAlreadyExists") => Ok(()),
            Err(e) => Err(msg("creating the container", &e)),
        }
    }

    /// Writes a state blob with `content` and `metadata` (overwrites).
    pub async fn put_state(
        &self,
        blob: &str,
        content: &[u8],
        metadata: &[(&str, &str)],
    ) -> Result<(), String> {
        let client = self.blob(blob)?;
        let metadata = owned(metadata);
        client
            .upload(
                RequestContent::from(content.to_vec()),
                Some(BlockBlobClientUploadOptions {
                    blob_content_type: Some("application/json".into()),
                    metadata: (!metadata.is_empty()).then_some(metadata),
                    ..Default::default()
                }),
            )
            .await
            .map_err(|e| msg(&format!("uploading {blob}"), &e))?;
        Ok(())
    }

    /// Terraform's `Lock`: create an empty blob if missing, refuse if leased, acquire an
    /// infinite lease proposing `info.ID`, then add `terraformlockid` to the metadata
    /// read under the lease. Returns the lease id (= lock ID).
    pub async fn lock_like_terraform(&self, blob: &str, info: &LockInfo) -> Result<String, String> {
        let client = self.blob(blob)?;
        match client.get_properties(None).await {
            Ok(p) => {
                if p.lease_status().ok().flatten() == Some(LeaseStatus::Locked) {
                    return Err(format!("{blob}: state blob is already locked"));
                }
            }
            Err(e) if e.http_status().map(u16::from) == Some(404) => {
                client
                    .upload(
                        RequestContent::from(Vec::new()),
                        Some(BlockBlobClientUploadOptions {
                            blob_content_type: Some("application/json".into()),
                            ..Default::default()
                        }),
                    )
                    .await
                    .map_err(|e| msg(&format!("creating {blob}"), &e))?;
            }
            Err(e) => return Err(msg(&format!("reading {blob}"), &e)),
        }
        self.lease(
            blob,
            &info.id,
            Some(&naming::encode(&info.to_terraform_json())),
        )
        .await?;
        Ok(info.id.clone())
    }

    /// Terraform's `Unlock`: remove `terraformlockid` under the lease, then release it.
    pub async fn unlock_like_terraform(&self, blob: &str, id: &str) -> Result<(), String> {
        let client = self.blob(blob)?;
        let props = client
            .get_properties(read_under(id))
            .await
            .map_err(|e| msg(&format!("reading {blob}"), &e))?;
        let metadata = props.metadata().map_err(|e| e.to_string())?;
        client
            .set_metadata(&naming::other_metadata(&metadata), write_under(id))
            .await
            .map_err(|e| msg(&format!("clearing the lock on {blob}"), &e))?;
        client
            .release_lease(id.to_string(), None)
            .await
            .map_err(|e| msg(&format!("releasing the lease on {blob}"), &e))?;
        Ok(())
    }

    /// Acquires an infinite lease `lease_id` on `blob` (created empty if missing) and,
    /// with `lock_value`, writes it verbatim as `terraformlockid`, keeping other metadata.
    /// `None` leaves a lease with no Terraform metadata: a foreign lease.
    pub async fn lease(
        &self,
        blob: &str,
        lease_id: &str,
        lock_value: Option<&str>,
    ) -> Result<(), String> {
        let client = self.acquire(blob, lease_id, -1).await?;
        let Some(value) = lock_value else {
            return Ok(());
        };
        let props = client
            .get_properties(read_under(lease_id))
            .await
            .map_err(|e| msg(&format!("reading {blob}"), &e))?;
        let mut metadata = naming::other_metadata(&props.metadata().map_err(|e| e.to_string())?);
        metadata.insert(LOCK_KEY.to_string(), value.to_string());
        client
            .set_metadata(&metadata, write_under(lease_id))
            .await
            .map_err(|e| msg(&format!("writing the lock metadata on {blob}"), &e))?;
        Ok(())
    }

    /// Whether `blob`'s active lease is `lease_id` (the service answers a read conditioned
    /// on a lease id only when that lease holds).
    pub async fn holds(&self, blob: &str, lease_id: &str) -> Result<bool, String> {
        let client = self.blob(blob)?;
        match client.get_properties(read_under(lease_id)).await {
            Ok(_) => Ok(true),
            Err(e) if matches!(e.http_status().map(u16::from), Some(409 | 412)) => Ok(false),
            Err(e) => Err(msg(&format!("reading {blob}"), &e)),
        }
    }

    /// Breaks whatever lease `blob` has, at once (`az storage blob lease break`).
    pub async fn break_lease(&self, blob: &str) -> Result<(), String> {
        let client = self.blob(blob)?;
        client
            .break_lease(Some(BlobClientBreakLeaseOptions {
                break_period: Some(0),
                ..Default::default()
            }))
            .await
            .map_err(|e| msg(&format!("breaking the lease on {blob}"), &e))?;
        Ok(())
    }

    /// A lease of `seconds` (15-60) on `blob` (created empty if missing), without any
    /// metadata: another tool's lease, as a backup or copy job takes it.
    pub async fn lease_for(&self, blob: &str, lease_id: &str, seconds: i32) -> Result<(), String> {
        self.acquire(blob, lease_id, seconds).await?;
        Ok(())
    }

    /// Acquires lease `lease_id` for `seconds` (-1: infinite) on `blob`, created empty if
    /// missing; returns the blob's client.
    async fn acquire(
        &self,
        blob: &str,
        lease_id: &str,
        seconds: i32,
    ) -> Result<BlobClient, String> {
        let client = self.blob(blob)?;
        if client.get_properties(None).await.is_err() {
            self.put_state(blob, b"", &[]).await?;
        }
        client
            .acquire_lease(
                seconds,
                Some(BlobClientAcquireLeaseOptions {
                    proposed_lease_id: Some(lease_id.to_string()),
                    ..Default::default()
                }),
            )
            .await
            .map_err(|e| msg(&format!("acquiring a lease on {blob}"), &e))?;
        Ok(client)
    }

    /// The lock on `blob` right now: `Some(LockInfo.ID)` when leased with decodable
    /// metadata, `Some("leased")` when leased without it, `None` when not leased or missing.
    pub async fn current(&self, blob: &str) -> Result<Option<String>, String> {
        let client = self.blob(blob)?;
        let props = match client.get_properties(None).await {
            Ok(p) => p,
            Err(e) if e.http_status().map(u16::from) == Some(404) => return Ok(None),
            Err(e) => return Err(msg(&format!("reading {blob}"), &e)),
        };
        if props.lease_status().ok().flatten() != Some(LeaseStatus::Locked) {
            return Ok(None);
        }
        let metadata = props.metadata().map_err(|e| e.to_string())?;
        let id = naming::lock_value(&metadata)
            .and_then(|v| naming::decode(v).ok())
            .and_then(|json| LockInfo::parse(&json).ok())
            .map(|info| info.id);
        Ok(Some(id.unwrap_or_else(|| "leased".to_string())))
    }

    /// Replaces the metadata of an unleased blob (an operator tagging the state blob).
    pub async fn set_metadata(&self, blob: &str, metadata: &[(&str, &str)]) -> Result<(), String> {
        let client = self.blob(blob)?;
        client
            .set_metadata(&owned(metadata), None)
            .await
            .map_err(|e| msg(&format!("setting metadata on {blob}"), &e))?;
        Ok(())
    }

    /// The blob's metadata, keys lowercased.
    pub async fn metadata(&self, blob: &str) -> Result<BTreeMap<String, String>, String> {
        let client = self.blob(blob)?;
        let props = client
            .get_properties(None)
            .await
            .map_err(|e| msg(&format!("reading {blob}"), &e))?;
        Ok(props
            .metadata()
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect())
    }

    /// Everything a break must not modify, for every blob in the container: the name,
    /// a SHA-256 of the content, its length and content type, and every metadata pair
    /// except `terraformlockid` (keys lowercased: Azure compares them case-insensitively).
    pub async fn fingerprint(&self) -> Result<String, String> {
        let mut pages = self
            .clients
            .container_client
            .list_blobs(Some(BlobContainerClientListBlobsOptions {
                include: Some(vec![ListBlobsIncludeItem::Metadata]),
                ..Default::default()
            }))
            .map_err(|e| msg("listing", &e))?
            .into_pages();
        let mut out = Vec::new();
        while let Some(page) = pages.try_next().await.map_err(|e| msg("listing", &e))? {
            for item in page.into_model().map_err(|e| e.to_string())?.blob_items {
                let Some(name) = item.name else { continue };
                let props = item.properties.unwrap_or_default();
                let content = if props.content_length.unwrap_or(0) == 0 {
                    Vec::new()
                } else {
                    let client = self.blob(&name)?;
                    let rsp = client
                        .download(None)
                        .await
                        .map_err(|e| msg(&format!("downloading {name}"), &e))?;
                    rsp.body
                        .collect()
                        .await
                        .map_err(|e| msg(&format!("downloading {name}"), &e))?
                        .to_vec()
                };
                let mut metadata: Vec<(String, String)> = naming::other_metadata(
                    &item.metadata.and_then(|m| m.values).unwrap_or_default(),
                )
                .into_iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v))
                .collect();
                metadata.sort();
                let digest: String = Sha256::digest(&content)
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                out.push(format!(
                    "{name} len={} sha256={digest} type={:?} meta={metadata:?}",
                    content.len(),
                    props.content_type
                ));
            }
        }
        out.sort();
        Ok(out.join("\n"))
    }
}

/// The driver's open with credentials from `env` instead of the process environment, so
/// tests never mutate the environment of a multi-threaded test binary.
pub fn open_with_env(
    target: &Target,
    opts: &ConnectOptions,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<std::sync::Arc<dyn tflock_core::LockStore>, Error> {
    let clients = Clients::connect(target, opts, env)?;
    Ok(std::sync::Arc::new(crate::store::AzureStore { clients }))
}
