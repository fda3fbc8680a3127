//! The local backend: `terraform.tfstate` (and `terraform.tfstate.d/<ws>/terraform.tfstate`)
//! locked with a POSIX `fcntl` write lock, plus `.terraform.tfstate.lock.info` beside it.
//!
//! Held vs leftover: `fcntl(F_GETLK)` on the state file names the holder's PID. A
//! `.lock.info` without a holder is a crash leftover: stale, and safe to remove.
//!
//! Nothing in a working directory is trusted to be a regular file: every read is bounded
//! and non-blocking (a FIFO, a device or a huge file is listed as unreadable, never
//! waited on).
//!
//! Files: `store.rs` (list, break), `naming.rs` (state, info and workspace file names),
//! `fcntl.rs` (the POSIX locks and opening a state file safely), `discover.rs` (the
//! `backend "local"` block).

mod discover;
mod fcntl;
mod naming;
mod store;

pub use store::{LocalStore, LOCAL};

/// Registered by the CLI.
pub static DRIVER: tflock_core::Driver = tflock_core::Driver::new(
    discover::SCHEMES,
    &["local"],
    |target, _| tflock_core::opened(LocalStore::open(target)),
    discover::targets,
);
