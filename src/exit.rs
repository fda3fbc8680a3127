//! Exit codes (docs/exit-codes.md): the one place outcomes become numbers scripts rely on.

use tflock_core::{Error, Kind};

pub const OK: i32 = 0;
pub const FAILED: i32 = 1;
pub const USAGE: i32 = 2;
pub const NO_SUCH_LOCK: i32 = 3;
pub const REFUSED: i32 = 4;
/// `list --exit-code` found a stale lock; `wait` timed out; `doctor` found problems.
pub const ATTENTION: i32 = 5;

pub fn of_kind(kind: Kind) -> i32 {
    match kind {
        Kind::Usage => USAGE,
        Kind::NotFound => NO_SUCH_LOCK,
        Kind::Changed | Kind::Refused => REFUSED,
        _ => FAILED,
    }
}

pub fn of(e: &Error) -> i32 {
    of_kind(e.kind())
}
