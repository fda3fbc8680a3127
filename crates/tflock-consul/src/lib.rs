//! The consul backend: Terraform locks a state by acquiring `<state key>/.lock` with a
//! Consul session of its own (TTL 15s, renewed every 7.5s, lock-delay 5s) and then writing
//! the LockInfo to `<state key>/.lockinfo`. The lock ID is the session ID. A dead
//! terraform's session expires within 2 x TTL and Consul releases `.lock` by itself,
//! leaving only a harmless `.lockinfo` behind.
//!
//! Listed: every `.lock` of the path's workspaces (`<path>` and `<path>-env:<ws>`) held
//! by a session that exists. A break destroys that session, after checking it still holds
//! `.lock`, and deletes `.lockinfo` only if unchanged (`?cas=`); see `store.rs`.
//! Leftover `.lockinfo` keys are `tflock doctor` findings (`doctor.rs`).
//!
//! Target: `consul://[HOST[:PORT]]/PATH[?scheme=http|https][&datacenter=DC]`; the address
//! defaults to `CONSUL_HTTP_ADDR`, then 127.0.0.1:8500. Files: `store.rs`, `naming.rs`
//! (Terraform's keys), `auth.rs` (token, basic auth, TLS files), `client.rs` (address,
//! HTTP, timeouts), `error.rs`, `doctor.rs`, `discover.rs` (the `backend "consul"` block).

mod auth;
mod client;
mod discover;
mod doctor;
mod error;
mod naming;
mod store;

/// A fake Consul agent for tests (feature `testing`): never in release builds.
#[cfg(feature = "testing")]
pub mod testing;

use tflock_core::{ConnectOptions, Error, Target};

pub use store::{ConsulStore, CONSUL};

/// Registered by the CLI.
pub static DRIVER: tflock_core::Driver = tflock_core::Driver::new(
    discover::SCHEMES,
    &["consul"],
    |t, o| tflock_core::opened(ConsulStore::open(t, o)),
    |block| discover::targets(block, &tflock_core::env_var),
);

const OPTIONS: &[&str] = &[
    "scheme",
    "datacenter",
    "access_token",
    "http_auth",
    "ca_file",
    "cert_file",
    "key_file",
];
/// Refused on a `-t` URL, which is shown everywhere.
const SECRETS: &[&str] = &["access_token", "http_auth"];

impl ConsulStore {
    /// Builds the client; sends nothing.
    pub fn open(target: &Target, opts: &ConnectOptions) -> Result<ConsulStore, Error> {
        if target.scheme != "consul" {
            return Err(Error::usage(&target.url, "not a consul:// target"));
        }
        target.refuse_secrets_in_url(
            SECRETS,
            "set it in tflock.toml or CONSUL_HTTP_TOKEN / CONSUL_HTTP_AUTH",
        )?;
        target.check_params(OPTIONS)?;
        let path = target.path.clone();
        if path.trim_matches('/').is_empty() {
            return Err(Error::usage(
                &target.url,
                "no state path; use consul://[HOST[:PORT]]/PATH (the backend's path)",
            ));
        }
        Ok(ConsulStore {
            conn: client::Conn::new(target, opts, &tflock_core::env_var)?,
            path,
            concurrency: opts.concurrency.max(1),
        })
    }
}
