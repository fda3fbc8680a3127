//! tflock-core: the Terraform lock model, the [`LockStore`] trait every backend
//! implements, the error type with its exit codes, and (feature `testkit`) the conformance
//! suite each backend runs against its emulator.

pub mod error;
pub mod lock;
pub mod lockinfo;
pub mod pasted;
pub mod store;

#[cfg(feature = "memory")]
pub mod memory;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use error::Error;
pub use lock::{Backend, Lock, Snapshot, Status};
pub use lockinfo::LockInfo;
pub use store::{check_breakable, BreakOptions, Broken, ConnectOptions, LockStore, Target};

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
