//! The kubernetes backend: Terraform locks a workspace by holding a coordination.k8s.io/v1
//! Lease named `lock-tfstate-<workspace>-<secret_suffix>` in the backend's namespace:
//! `spec.holderIdentity` = LockInfo.ID (the lock ID) and the annotation
//! `app.terraform.io/lock-info` = the LockInfo JSON. Nothing renews or expires it, so a
//! live holder cannot be told from a dead one: status comes from the lock's age.
//!
//! A break does what Terraform's unlock does, made conditional: it PUTs the Lease as it
//! was listed, minus the holder and the annotation, with its `resourceVersion` and `uid`,
//! so the API server refuses it (409) if anything changed since. The Lease is never
//! deleted and the state Secrets are never touched.
//!
//! Target: `k8s://[CONTEXT]/NAMESPACE[?secret_suffix=S]`; the context and credentials come
//! from the kubeconfig as kubectl finds it (or the backend block's settings), see
//! `auth.rs`. Files: `store.rs` (list, break), `naming.rs` (Terraform's names and
//! labels), `auth.rs` (kubeconfig, in-cluster, exec plugins), `client.rs` (HTTP, TLS,
//! timeouts), `error.rs` (answers and failures as tflock errors), `discover.rs` (the
//! `backend "kubernetes"` block).

mod auth;
mod client;
mod discover;
mod error;
mod naming;
mod store;

/// A fake API server for tests (feature `testing`): never in release builds.
#[cfg(feature = "testing")]
pub mod testing;

use tflock_core::{ConnectOptions, Error, Target};

pub use store::{KubeStore, KUBERNETES};

/// Registered by the CLI.
pub static DRIVER: tflock_core::Driver = tflock_core::Driver::new(
    discover::SCHEMES,
    &["kubernetes"],
    |t, o| tflock_core::opened(KubeStore::open(t, o)),
    |block| discover::targets(block, &tflock_core::env_var),
);

/// Target options (`?key=` or hidden ones from the backend block / tflock.toml).
const OPTIONS: &[&str] = &[
    "secret_suffix",
    "kubeconfig",
    "context_cluster",
    "context_user",
    "in_cluster",
    "host",
    "token",
    "insecure",
    "cluster_ca_certificate",
    "client_certificate",
    "client_key",
    "username",
    "password",
    "proxy_url",
    "exec",
];
/// Options that hold secrets: refused on a `-t` URL, which is shown everywhere.
const SECRETS: &[&str] = &["token", "client_key", "password", "exec"];

impl KubeStore {
    /// Resolves the kubeconfig (reads files only); the first request runs any exec plugin.
    pub fn open(target: &Target, opts: &ConnectOptions) -> Result<KubeStore, Error> {
        if target.scheme != "k8s" {
            return Err(Error::usage(&target.url, "not a k8s:// target"));
        }
        target.refuse_secrets_in_url(
            SECRETS,
            "set it in tflock.toml, or let tflock read the backend block or the kubeconfig",
        )?;
        target.check_params(OPTIONS)?;
        let namespace = target.path.trim_end_matches('/').to_string();
        if namespace.is_empty() {
            return Err(Error::usage(
                &target.url,
                "no namespace; use k8s://[CONTEXT]/NAMESPACE (k8s:///NAMESPACE for the current context)",
            ));
        }
        if let Some(problem) = naming::namespace_problem(&namespace) {
            return Err(Error::usage(&target.url, problem));
        }
        let suffix = target.param("secret_suffix").map(str::to_string);
        if let Some(problem) = suffix.as_deref().and_then(naming::suffix_problem) {
            return Err(Error::usage(&target.url, problem));
        }
        let resolved = auth::resolve(target, &tflock_core::env_var)?;
        Ok(KubeStore {
            conn: client::Conn::new(&target.url, resolved, opts),
            namespace,
            suffix,
        })
    }
}
