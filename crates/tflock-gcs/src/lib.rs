//! The gcs backend: `<prefix><workspace>.tflock` objects in a bucket.
//!
//! Terraform's lock ID for gcs is the lock object's GENERATION (what `terraform
//! force-unlock` accepts); the random ID inside the body is kept as an alias. A break
//! deletes with `ifGenerationMatch=<generation read>`, after re-reading the generation,
//! and never touches `.tfstate` objects.
//!
//! Target: `gs://BUCKET[/PREFIX][?endpoint=URL]`. Credentials: the target's `access_token`
//! option (the backend block's `access_token`, passed by discovery or set in tflock.toml),
//! else `GOOGLE_OAUTH_ACCESS_TOKEN`, else Application Default Credentials; `?endpoint=` or
//! `STORAGE_EMULATOR_HOST` point at an emulator (anonymous unless a token is given).
//!
//! `?nested=false` (what discovery sets) covers only `<prefix><ws>.tflock`, the
//! workspaces of one backend configuration, not deeper prefixes.
//!
//! Files: `store.rs` (list, break), `naming.rs` (object names and workspaces), `auth.rs`
//! (access token, credentials JSON, ADC), `client.rs` (endpoint, HTTP client, timeouts,
//! read retries), `error.rs` (statuses and transport failures -> error kinds and hints),
//! `discover.rs` (the `backend "gcs"` block), `doctor.rs` (lock
//! objects without their state).

mod auth;
mod client;
mod discover;
mod doctor;
mod error;
mod naming;
mod store;

use std::sync::Arc;
use tflock_core::{ConnectOptions, Error, LockStore, Target};

pub use store::{GcsStore, GCS};

/// Registered by the CLI.
pub static DRIVER: tflock_core::Driver = tflock_core::Driver::new(
    discover::SCHEMES,
    &["gcs"],
    |t, o| Box::pin(open(t, o)),
    discover::targets,
)
.with_id_hint(discover::id_hint)
.with_target_for_path(discover::target_for_path);

/// Opens `gs://BUCKET[/PREFIX]`.
pub async fn open(target: &Target, opts: &ConnectOptions) -> Result<Arc<dyn LockStore>, Error> {
    Ok(Arc::new(GcsStore::open(target, opts).await?))
}

impl GcsStore {
    pub async fn open(target: &Target, opts: &ConnectOptions) -> Result<GcsStore, Error> {
        if target.scheme != "gs" {
            return Err(Error::usage(&target.url, "not a gs:// target"));
        }
        target.refuse_secrets_in_url(
            &["access_token", "credentials"],
            "set it in tflock.toml (access_token = \"...\", credentials = \"KEY.json\") or use GOOGLE_OAUTH_ACCESS_TOKEN / GOOGLE_CREDENTIALS",
        )?;
        target.check_params(&[
            "endpoint",
            "access_token",
            "credentials",
            "impersonate_service_account",
            "nested",
        ])?;
        let nested = match target.param("nested") {
            None | Some("true") => true,
            Some("false") => false,
            Some(other) => {
                return Err(Error::usage(
                    &target.url,
                    format!("?nested={other} must be true or false"),
                ))
            }
        };
        let bucket = target.host.clone();
        if bucket.is_empty() {
            return Err(Error::usage(
                &target.url,
                "no bucket; use gs://BUCKET[/PREFIX]",
            ));
        }
        let conn = client::Conn::new(target, opts).await?;
        Ok(GcsStore {
            conn,
            bucket,
            prefix: naming::normalize_prefix(&target.path),
            nested,
            concurrency: opts.concurrency.max(1),
        })
    }
}
