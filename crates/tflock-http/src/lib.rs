//! Terraform's `http` backend, and GitLab-managed Terraform state (the http backend
//! pointed at GitLab's `/api/v4/projects/:id/terraform/state/:name`).
//!
//! Neither keeps a lock anywhere it can be read. The one way to learn a lock's ID is
//! to ask for the lock, as `terraform plan` does: tflock sends the lock request with a
//! LockInfo of its own (a *probe*). A held lock answers 409/423 with its holder's ID and
//! nothing changes; a free one is granted to the probe, and tflock releases it at once
//! with its own ID (see `probe.rs`). GitLab is only probed for states its GraphQL API
//! reports locked.
//!
//! Targets:
//! - `gitlab://HOST[:PORT]/GROUP/PROJECT[?state=NAME]` (or a numeric project ID): every
//!   locked state of the project, listed through GraphQL, IDs learned by probing.
//!   `?scheme=http` for a plain-HTTP server, `?probe=false` to list without learning IDs.
//! - `http(s)://LOCK_ADDRESS` with `unlock_address`, `lock_method`, `unlock_method`: the
//!   lock of one state, as Terraform's http backend takes it. A GitLab state address
//!   (`.../api/v4/projects/ID/terraform/state/NAME[/lock]`) is read as GitLab.
//!
//! Breaking sends the holder's ID, always: `DELETE .../lock?ID=<id>` on GitLab (which
//! compares and answers 409 otherwise), and the holder's LockInfo as the unlock body on a
//! plain http server, right after a probe confirmed the same holder.
//!
//! Files: `gitlab.rs` and `http.rs` (the two stores), `graphql.rs` (GitLab's listing),
//! `probe.rs` (learning an ID without keeping a lock), `naming.rs` (GitLab addresses,
//! state names, tflock's own LockInfo), `auth.rs` (credentials), `client.rs` (HTTP,
//! timeouts, TLS), `error.rs` (statuses to errors), `discover.rs` (the `backend "http"`
//! block), `testing/` (feature `testing`: a GitLab-compatible fake and Terraform's
//! reference http server, for tests).

mod auth;
mod client;
mod discover;
mod error;
mod gitlab;
mod graphql;
mod http;
mod naming;
mod probe;

#[cfg(feature = "testing")]
pub mod testing;

use std::sync::Arc;
use tflock_core::{ConnectOptions, Error, LockStore, Target};

pub use gitlab::{GitLabStore, GITLAB};
pub use http::{HttpStore, HTTP};

/// Registered by the CLI.
pub static DRIVER: tflock_core::Driver = tflock_core::Driver::new(
    discover::SCHEMES,
    &["http"],
    |t, o| Box::pin(open(t, o)),
    |block| discover::discover_with(block, &auth::process_env),
)
.with_id_hint(discover::id_hint)
.with_target_for_path(discover::target_for_path);

/// Opens a `gitlab://`, `http://` or `https://` target. Sends no request.
pub async fn open(target: &Target, opts: &ConnectOptions) -> Result<Arc<dyn LockStore>, Error> {
    match target.scheme.as_str() {
        "gitlab" => Ok(Arc::new(GitLabStore::open(target, opts)?)),
        "http" | "https" => match GitLabStore::open_address(target, opts)? {
            Some(store) => Ok(Arc::new(store)),
            None => Ok(Arc::new(HttpStore::open(target, opts)?)),
        },
        other => Err(Error::usage(
            &target.url,
            format!("not an http or gitlab target ({other}://)"),
        )),
    }
}
