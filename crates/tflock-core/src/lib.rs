//! tflock-core: the Terraform lock model, the [`LockStore`] trait every backend
//! implements, the [`Driver`] each backend crate registers (its targets and what it knows
//! of Terraform's backend block), the error type, and (feature `testkit`) the conformance
//! suite each backend runs against its emulator.

pub mod block;
pub mod doctor;
pub mod driver;
pub mod duration;
pub mod error;
pub mod fsread;
pub mod lock;
pub mod lockinfo;
pub mod pasted;
pub mod redact;
pub mod store;
pub mod target;
pub mod text;

#[cfg(feature = "exchange")]
pub mod exchange;
#[cfg(feature = "memory")]
pub mod memory;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use block::BackendBlock;
pub use doctor::{Finding, Fix, Repaired};
pub use driver::{opened, Driver, Opened, Scheme};
pub use error::{Error, Kind};
pub use lock::{Backend, Handle, Lock, Status};
pub use lockinfo::LockInfo;
pub use store::{
    check_breakable, BreakOptions, Broken, ConnectOptions, Guard, LockStore, Presence,
};
pub use target::Target;

/// An environment variable's value, trimmed; `None` when unset, not UTF-8 or blank.
pub fn env_var(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// Runs `f` over `items` with at most `limit` in flight, keeping the input order.
/// Backends use it for per-lock reads after one listing call.
pub async fn bounded<T, R, F, Fut>(items: Vec<T>, limit: usize, f: F) -> Vec<R>
where
    F: Fn(T) -> Fut,
    Fut: std::future::Future<Output = R>,
{
    use futures::stream::{self, StreamExt};
    stream::iter(items.into_iter().map(f))
        .buffered(limit.max(1))
        .collect()
        .await
}
