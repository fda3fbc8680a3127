//! `tflock doctor` for the azurerm backend: a leased blob without `terraformlockid`.
//!
//! Terraform locks in two steps (an infinite lease, then the metadata), so a lease
//! without metadata is either a Terraform run that died between them or another tool's
//! lease. What the blob shows says which is likely: Terraform's lease is always infinite,
//! and for a new state it first creates an empty blob. No automatic fix: breaking a lease
//! someone else holds is a person's decision (`tflock break --force-foreign`).

use crate::error;
use crate::store::AzureStore;
use azure_storage_blob::models::{BlobClientGetPropertiesResultHeaders, LeaseDuration};
use tflock_core::text::shell_quote;
use tflock_core::{Error, Finding, LockStore};

/// Who probably holds a lease without Terraform's metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Likely {
    /// Infinite lease on an empty blob: Terraform's first lock of a new state, cut short.
    TerraformCrash,
    /// A fixed-duration lease, or a blob that is not a state: another tool.
    Foreign,
    /// An infinite lease on a state with content: either.
    Either,
}

fn likely(infinite: bool, size: u64, looks_like_state: bool) -> Likely {
    match (infinite, size, looks_like_state) {
        (false, _, _) | (_, _, false) => Likely::Foreign,
        (true, 0, true) => Likely::TerraformCrash,
        (true, _, true) => Likely::Either,
    }
}

/// Whether a blob name is one Terraform's azurerm backend would use for a state.
fn looks_like_state(store: &AzureStore, blob: &str) -> bool {
    store.clients.key.is_some() || blob.contains(".tfstate") || blob.contains("env:")
}

pub(crate) async fn diagnose(store: &AzureStore) -> Result<Vec<Finding>, Error> {
    let c = &store.clients;
    let mut found = Vec::new();
    for lock in store.list().await?.into_iter().filter(|l| l.foreign) {
        // The listing made this lock: its blob name is the one it read.
        let Some(blob) = lock.details.get("blob").cloned() else {
            continue;
        };
        let props = match c.blob(&blob, false)?.get_properties(None).await {
            Ok(p) => p,
            // Released or gone since the listing: nothing to report.
            Err(e) if error::status_of(&e) == Some(404) => continue,
            Err(e) => {
                return Err(error::storage(
                    &c.target,
                    &format!("reading {}", lock.location),
                    &e,
                    &c.redact,
                ))
            }
        };
        let infinite = props.duration().ok().flatten() == Some(LeaseDuration::Infinite);
        let size = props.content_length().ok().flatten().unwrap_or(0);
        let modified = props
            .last_modified()
            .ok()
            .flatten()
            .map(|t| t.to_string())
            .unwrap_or_else(|| "?".into());
        let other: Vec<String> = {
            let mut keys: Vec<String> = props
                .metadata()
                .map(|m| crate::naming::other_metadata(&m).into_keys().collect())
                .unwrap_or_default();
            keys.sort();
            keys
        };
        let guess = likely(infinite, size, looks_like_state(store, &blob));
        let summary = format!(
            "{} is leased without Terraform's lock metadata ({}): {}",
            lock.location,
            crate::naming::LOCK_KEY,
            match guess {
                Likely::TerraformCrash => "most likely a Terraform run died between taking the lease and writing its metadata (it leases a new, empty state blob first)",
                Likely::Foreign if !infinite => "most likely another tool's lease (Terraform's leases never expire; this one has a fixed duration)",
                Likely::Foreign => "most likely another tool's lease (the blob is not a Terraform state)",
                Likely::Either => "a Terraform run that died between taking the lease and writing its metadata, or another tool holding an infinite lease; nothing on the blob tells them apart",
            }
        );
        let evidence = vec![
            ("blob".to_string(), lock.location.clone()),
            (
                "lease".to_string(),
                format!(
                    "{}, {}",
                    lock.details
                        .get("lease_state")
                        .map_or("leased", String::as_str),
                    if infinite {
                        "infinite"
                    } else {
                        "fixed duration"
                    }
                ),
            ),
            ("size".to_string(), format!("{size} bytes")),
            ("last modified".to_string(), modified),
            (
                "metadata".to_string(),
                if other.is_empty() {
                    "none".to_string()
                } else {
                    format!("{} (no {})", other.join(", "), crate::naming::LOCK_KEY)
                },
            ),
        ];
        let advice = format!(
            "Find out what holds it first: a backup, sync or copy job, or a person in Storage Explorer{}. Only when nothing uses it (or it is a crashed Terraform run), break the lease (its id is unknown, so the break is on the blob):\ntflock break --id {} --force-foreign",
            if guess == Likely::TerraformCrash {
                "; a Terraform run that died leaves no process behind"
            } else {
                ""
            },
            shell_quote(&lock.location)
        );
        found.push(Finding {
            kind: "lease-without-metadata",
            target: c.target.clone(),
            subject: lock.location.clone(),
            workspace: lock.workspace.clone(),
            summary,
            evidence,
            advice,
            fix: None,
        });
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_likely_holder_follows_the_lease_and_the_blob() {
        assert_eq!(likely(true, 0, true), Likely::TerraformCrash);
        assert_eq!(likely(true, 120, true), Likely::Either);
        assert_eq!(likely(false, 0, true), Likely::Foreign);
        assert_eq!(likely(true, 0, false), Likely::Foreign);
    }
}
