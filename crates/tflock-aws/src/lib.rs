//! tflock-aws: the locks of Terraform's s3 backend.
//!
//! - `dynamodb://TABLE[/PREFIX][?segments=N]`: lock rows of a `dynamodb_table` (never its
//!   digest rows); `segments` splits the scan into N parallel segments for large tables.
//! - `s3://BUCKET[/PREFIX]`: native lockfiles, `<state key>.tflock` (`use_lockfile`).
//! - `?key=` (and `?workspace_key_prefix=`, `?bucket=` and `?s3_endpoint=` for a table):
//!   one backend configuration's states only, as discovery makes them, read directly: one
//!   listing of `<workspace_key_prefix>/` finds the workspaces, then reads by key.
//!
//! Credentials, region and endpoints come from the standard AWS chain (environment,
//! profiles, SSO, web identity, instance metadata), overridden per target with
//! `?region=`, `?profile=` and `?endpoint=`. Breaking is always compare-and-delete, sent
//! once: `DeleteItem` conditioned on the exact `Info` read, `DeleteObject` with `If-Match`
//! after a HEAD re-check; a lost reply is settled by reading again (docs/backends/aws.md).
//! No SDK type appears in this API: the CLI only sees [`DRIVER`].
//!
//! Files: `s3.rs` and `dynamodb.rs` (the stores; `s3.rs` also lists a state bucket for
//! both), `naming.rs` (keys and workspaces), `auth.rs` (credentials, checked; region),
//! `client.rs` (endpoints, timeouts, retries, HTTP clients), `error.rs` (SDK errors to
//! kinds), `discover.rs` (the `backend "s3"` block), `doctor.rs` (`tflock doctor`:
//! digest rows, orphan lockfiles).

mod auth;
mod client;
mod discover;
mod doctor;
mod dynamodb;
mod error;
mod naming;
mod s3;

pub use dynamodb::DYNAMODB;
pub use s3::S3;

use client::Endpoint;
use std::sync::Arc;
use tflock_core::{ConnectOptions, Error, LockStore, Target};

/// Registered by the CLI.
pub static DRIVER: tflock_core::Driver = tflock_core::Driver::new(
    discover::SCHEMES,
    &["s3"],
    |t, o| Box::pin(open(t, o)),
    discover::targets,
)
.with_target_for_path(discover::target_for_path);

/// Options of one state configuration, for both services.
const SCOPE_PARAMS: [&str; 2] = ["key", "workspace_key_prefix"];

/// Opens a `dynamodb://` or `s3://` target. Loads the AWS configuration but sends no
/// request: errors about the table or bucket come from the first `list`.
pub async fn open(target: &Target, opts: &ConnectOptions) -> Result<Arc<dyn LockStore>, Error> {
    match target.scheme.as_str() {
        "dynamodb" => {
            let params = [
                &["segments", "bucket", "s3_endpoint"][..],
                &SCOPE_PARAMS,
                &doctor::TABLE_PARAMS,
            ]
            .concat();
            let aws = auth::load(target, opts, &params, |t| {
                Ok((
                    Endpoint::from_option(t, "s3_endpoint", "AWS_ENDPOINT_URL_S3")?,
                    Endpoint::from_option(t, "endpoint", "AWS_ENDPOINT_URL_DYNAMODB")?,
                ))
            })
            .await?;
            Ok(Arc::new(dynamodb::DynamoStore::new(target, &aws, opts)?))
        }
        "s3" => {
            let aws = auth::load(target, opts, &SCOPE_PARAMS, |t| {
                Ok((
                    Endpoint::from_option(t, "endpoint", "AWS_ENDPOINT_URL_S3")?,
                    Endpoint::default(),
                ))
            })
            .await?;
            Ok(Arc::new(s3::S3Store::new(target, &aws, opts)?))
        }
        other => Err(Error::usage(
            &target.url,
            format!("scheme {other}:// is not an AWS target (use dynamodb://TABLE or s3://BUCKET)"),
        )),
    }
}
