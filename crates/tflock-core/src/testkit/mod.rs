//! The conformance suite: one set of cases every backend runs against its emulator.
//!
//! A backend crate implements [`Fixture`] (how to get a fresh, empty place) and [`Place`]
//! (how to take, re-take and read locks the way Terraform does, without going through the
//! store under test), then invokes [`conformance_suite!`](crate::conformance_suite). A
//! backend is done when every case passes.

pub mod http;
pub mod relay;
mod wire;

use crate::error::{Error, Kind};
use crate::lock::Lock;
use crate::lockinfo::LockInfo;
use crate::store::{BreakOptions, Broken, ConnectOptions, LockStore, Presence};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use relay::{Relay, Verdict};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One empty place (directory, table, bucket prefix, container) and the store over it.
#[async_trait]
pub trait Place: Send + Sync {
    /// The store under test, covering this place only.
    fn store(&self) -> &dyn LockStore;
    /// The state path `list` must report for `state` (a workspace name such as `default`).
    fn path_of(&self, state: &str) -> String;
    /// Takes a lock on `state` exactly as Terraform does (including the state object or
    /// digest row Terraform keeps next to it). Returns the ID `list` must show.
    async fn hold(&self, state: &str, info: &LockInfo) -> String;
    /// Unlocks `state` as Terraform would and locks it again with `info`: a new holder
    /// that raced the break. Returns the new ID.
    async fn retake(&self, state: &str, info: &LockInfo) -> String;
    /// The ID of the lock on `state` right now, read directly (not through the store).
    async fn current(&self, state: &str) -> Option<String>;
    /// Locks `state` with metadata that cannot be decoded (garbage JSON, bad base64).
    async fn hold_garbage(&self, state: &str);
    /// A fingerprint of everything tflock must never modify: state objects, digest rows,
    /// metadata other than the lock's. Must be equal before and after every break.
    async fn untouchables(&self) -> String;
    /// The LockInfo `list` can show for the lock `hold` took on `state` with `written`.
    /// By default all of it. A backend whose server keeps less (GitLab stores only the
    /// lock ID, its own user name and its own time) returns what it keeps, so the suite
    /// never asks a backend to show a requester's fields as the holder's.
    async fn read_back(&self, _state: &str, written: &LockInfo) -> LockInfo {
        written.clone()
    }

    /// Whether the backend keeps Terraform's LockInfo where tflock can read it. The pg
    /// backend keeps none (the lock is a session's advisory lock, the LockInfo lives in the
    /// holder's memory only): its cases check instead that no LockInfo is invented and
    /// that the lock still has an age.
    fn keeps_lock_info(&self) -> bool {
        true
    }
}

/// Makes fresh places. `name` is unique per case, for backends that need one.
#[async_trait]
pub trait Fixture: Send + Sync {
    async fn place(&self, name: &str) -> Box<dyn Place>;
    /// For a backend reached over the network: the failure cases every such backend
    /// shares (`conformance_suite!(fixture(); network)`). `None` for local ones.
    fn network(&self) -> Option<&dyn Network> {
        None
    }
}

/// What the shared network failure cases need from a backend's fixture.
#[async_trait]
pub trait Network: Send + Sync {
    /// Opens `url` with the backend's driver under `opts`.
    async fn open(&self, url: &str, opts: &ConnectOptions) -> Result<Arc<dyn LockStore>, Error>;
    /// Target URLs the driver must refuse as usage errors before sending anything.
    fn bad_targets(&self) -> Vec<String>;
    /// A target that talks to `endpoint` (`http://127.0.0.1:PORT`).
    fn target_at(&self, endpoint: &str) -> String;
    /// A target on the emulator whose bucket, table or container does not exist, and the
    /// name its error must mention.
    fn missing(&self) -> (String, String);
    /// The emulator's endpoint (`http://127.0.0.1:PORT`), which relays forward to. `None`
    /// for a backend that is not spoken over HTTP (no relay cases then).
    fn emulator(&self) -> Option<String>;
    /// A fresh place whose store talks to the emulator through `endpoint` (a relay),
    /// while the place sets up and reads locks directly.
    async fn place_via(&self, name: &str, endpoint: &str) -> Box<dyn Place>;
}

/// Returns the value of `var` (an emulator endpoint), or `None` after printing why the
/// tests are skipped. With `TFLOCK_REQUIRE_EMULATORS=1` (the README's test command) a
/// missing emulator is a failure, not a skip.
pub fn require_env(var: &str, what: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            if std::env::var("TFLOCK_REQUIRE_EMULATORS").as_deref() == Ok("1") {
                panic!("{var} is not set but TFLOCK_REQUIRE_EMULATORS=1: {what} is required (run scripts/test)");
            }
            eprintln!("skipping: {var} is not set ({what} not running; scripts/test starts it)");
            None
        }
    }
}

/// An operational failure (exit 1): unreachable, timed out, refused credentials, a
/// missing bucket; not the user's usage mistake and not a lock decision.
pub fn is_operational(e: &crate::Error) -> bool {
    matches!(
        e.kind(),
        Kind::Unauthenticated
            | Kind::PermissionDenied
            | Kind::Unreachable
            | Kind::Timeout
            | Kind::OutcomeUnknown
            | Kind::Backend
    )
}

/// A LockInfo as Terraform 1.11 would write it, with a fresh random-looking ID.
pub fn sample_info(operation: &str, path: &str) -> LockInfo {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default() as u64;
    let seed = nanos
        ^ (COUNTER
            .fetch_add(1, Ordering::SeqCst)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15))
        ^ (std::process::id() as u64) << 32;
    LockInfo {
        id: lock_id_from(seed),
        operation: operation.into(),
        info: String::new(),
        who: "conformance@tflock-test".into(),
        version: "1.11.4".into(),
        created: Some(created_now()),
        path: path.into(),
    }
}

/// 16 pseudo-random bytes from `seed` as 8-4-4-4-12 hex, the shape of Terraform's lock
/// IDs (which carry no UUID version bits).
pub fn lock_id_from(seed: u64) -> String {
    crate::lockinfo::id_from_bytes(crate::lockinfo::seeded_bytes(seed))
}

fn created_now() -> DateTime<Utc> {
    // Terraform's clock has nanoseconds; keep them so round trips are exercised.
    Utc::now()
}

async fn list(place: &dyn Place) -> Vec<Lock> {
    match place.store().list().await {
        Ok(locks) => locks,
        Err(e) => panic!("list failed: {e}"),
    }
}

fn find<'a>(locks: &'a [Lock], id: &str) -> &'a Lock {
    let found: Vec<&Lock> = locks.iter().filter(|l| l.id == id).collect();
    assert_eq!(
        found.len(),
        1,
        "expected exactly one lock with ID {id}, got {locks:#?}"
    );
    found[0]
}

/// Takes a lock on `state` for `operation` as Terraform would; returns the ID.
async fn hold(place: &dyn Place, state: &str, operation: &str) -> String {
    place
        .hold(state, &sample_info(operation, &place.path_of(state)))
        .await
}

/// The lock with ID `id` as `list` shows it now (exactly one).
async fn listed(place: &dyn Place, id: &str) -> Lock {
    find(&list(place).await, id).clone()
}

/// Takes an apply lock on `default` and returns it as `list` shows it: the setup of
/// most break cases.
async fn lock_default(place: &dyn Place) -> Lock {
    let id = hold(place, "default", "OperationTypeApply").await;
    listed(place, &id).await
}

/// Breaks `lock` through the place's store with the default options.
async fn break_listed(place: &dyn Place, lock: &Lock) -> Result<Broken, Error> {
    place
        .store()
        .break_lock(lock, &BreakOptions::default())
        .await
}

/// A break that must succeed.
fn broke(result: Result<Broken, Error>) -> Broken {
    result.unwrap_or_else(|e| panic!("break failed: {e}"))
}

/// Breaking `lock` through `place` must fail with `kind`; `what` says why, for the
/// failure message.
async fn break_fails(place: &dyn Place, lock: &Lock, kind: Kind, what: &str) {
    match break_listed(place, lock).await {
        Err(e) if e.kind() == kind => {}
        other => panic!("{what}, got {other:?}"),
    }
}

/// What tflock must never modify is as it was `before` the break.
async fn assert_untouched(place: &dyn Place, before: &str) {
    assert_eq!(
        place.untouchables().await,
        before,
        "state or other metadata changed"
    );
}

/// The lock on `state`, read directly, is `want` (`None`: none); `what` says what it
/// means when not.
async fn assert_current(place: &dyn Place, state: &str, want: Option<&str>, what: &str) {
    assert_eq!(place.current(state).await.as_deref(), want, "{what}");
}

/// An apply lock on `default` and a plan lock on `dev`, as the cases that break one of
/// two locks start: their IDs, the untouchables before any break, and both as `list`
/// shows them.
async fn two_locks(place: &dyn Place) -> (String, String, String, Vec<Lock>) {
    let id = hold(place, "default", "OperationTypeApply").await;
    let other = hold(place, "dev", "OperationTypePlan").await;
    let before = place.untouchables().await;
    (id, other, before, list(place).await)
}

/// Breaking `lock` through `via` fails with `kind` (`what` says why it must), and the
/// lock is still on `default` of `owner`, the place it was taken in.
async fn refused_and_kept(via: &dyn Place, owner: &dyn Place, lock: &Lock, kind: Kind, what: &str) {
    break_fails(via, lock, kind, what).await;
    let gone = format!("the lock was removed by a break that failed: {what}");
    assert_current(owner, "default", Some(&lock.id), &gone).await;
}

/// A new place holds no locks.
pub async fn empty_place_lists_nothing(f: &dyn Fixture) {
    let place = f.place("empty").await;
    let locks = list(place.as_ref()).await;
    assert!(locks.is_empty(), "fresh place listed {locks:#?}");
}

/// A held lock is listed once, with the ID, path and LockInfo Terraform wrote.
pub async fn hold_list_inspect(f: &dyn Fixture) {
    let place = f.place("inspect").await;
    let store = place.store();
    let info = sample_info("OperationTypeApply", &place.path_of("default"));
    let id = place.hold("default", &info).await;
    let locks = list(place.as_ref()).await;
    assert_eq!(locks.len(), 1, "{locks:#?}");
    let lock = find(&locks, &id);
    assert_eq!(lock.backend, store.backend());
    assert_eq!(lock.target, store.target());
    assert_eq!(lock.path, place.path_of("default"));
    assert!(lock.matches_id(&id));
    assert!(
        lock.info_error.is_none(),
        "decode error: {:?}",
        lock.info_error
    );
    assert!(!lock.foreign);
    assert_ne!(lock.held, Some(true), "no process holds this lock");
    if !place.keeps_lock_info() {
        assert!(lock.info.is_none(), "LockInfo invented: {lock:#?}");
        assert!(lock.created().is_some(), "no age: {lock:#?}");
        return;
    }
    let got = lock.info.as_ref().expect("decoded LockInfo");
    let want = place.read_back("default", &info).await;
    assert_eq!(got.operation, want.operation);
    assert_eq!(got.who, want.who);
    assert_eq!(got.version, want.version);
    assert_eq!(got.created, want.created);
    assert_eq!(lock.created(), want.created);
}

/// Breaking removes that lock and nothing else.
pub async fn break_removes_only_that_lock(f: &dyn Fixture) {
    let place = f.place("break").await;
    let place = place.as_ref();
    let (id, other, before, locks) = two_locks(place).await;
    assert_eq!(locks.len(), 2, "{locks:#?}");
    broke(break_listed(place, find(&locks, &id)).await);
    assert_current(place, "default", None, "lock still there after break").await;
    assert_current(place, "dev", Some(&other), "the other lock was touched").await;
    let after = list(place).await;
    assert_eq!(after.len(), 1, "{after:#?}");
    assert_eq!(after[0].id, other);
    assert_untouched(place, &before).await;
}

/// A lock re-taken after it was read survives the break of the old snapshot.
pub async fn retaken_lock_survives_break(f: &dyn Fixture) {
    let place = f.place("race").await;
    let place = place.as_ref();
    let old = lock_default(place).await;
    let old_id = old.id.clone();
    let new_info = sample_info("OperationTypePlan", &place.path_of("default"));
    let new_id = place.retake("default", &new_info).await;
    assert_ne!(new_id, old_id);
    let before = place.untouchables().await;
    break_fails(
        place,
        &old,
        Kind::Changed,
        "breaking a re-taken lock must report Changed",
    )
    .await;
    assert_current(place, "default", Some(&new_id), "the new lock was removed").await;
    let after = list(place).await;
    let new = find(&after, &new_id);
    if place.keeps_lock_info() {
        let want = place.read_back("default", &new_info).await;
        let got = new.info.as_ref().expect("decoded LockInfo");
        assert_eq!(
            (&got.operation, got.created),
            (&want.operation, want.created)
        );
    }
    assert_untouched(place, &before).await;
}

/// Breaking a snapshot whose lock is already gone is `Changed`, and removes nothing.
pub async fn vanished_lock_is_changed(f: &dyn Fixture) {
    let place = f.place("vanish").await;
    let place = place.as_ref();
    let lock = lock_default(place).await;
    broke(break_listed(place, &lock).await);
    let before = place.untouchables().await;
    break_fails(
        place,
        &lock,
        Kind::Changed,
        "a second break of the same snapshot must report Changed",
    )
    .await;
    assert_untouched(place, &before).await;
}

/// A lock whose metadata cannot be decoded is listed with the reason, not fatal.
pub async fn garbage_is_listed_with_reason(f: &dyn Fixture) {
    let place = f.place("garbage").await;
    let good = hold(place.as_ref(), "default", "OperationTypeApply").await;
    place.hold_garbage("bad").await;
    let locks = list(place.as_ref()).await;
    assert_eq!(locks.len(), 2, "{locks:#?}");
    find(&locks, &good);
    let bad: Vec<&Lock> = locks.iter().filter(|l| l.info_error.is_some()).collect();
    assert_eq!(bad.len(), 1, "{locks:#?}");
    assert!(bad[0].info.is_none());
    assert!(!bad[0].location.is_empty());
}

/// Many locks come back complete (exercises paging and bounded concurrent reads).
pub async fn many_locks_are_all_listed(f: &dyn Fixture) {
    let place = f.place("many").await;
    let mut ids = Vec::new();
    for i in 0..12 {
        ids.push(hold(place.as_ref(), &format!("ws{i}"), "OperationTypePlan").await);
    }
    let locks = list(place.as_ref()).await;
    assert_eq!(locks.len(), ids.len(), "{locks:#?}");
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(find(&locks, id).path, place.path_of(&format!("ws{i}")));
    }
}

/// A break is steered by the handle the backend made when it listed the lock, never by
/// `location`, `details` or `path`, which are for display: edited, they still break
/// exactly the listed lock and nothing else.
pub async fn edited_display_fields_do_not_steer_the_break(f: &dyn Fixture) {
    let place = f.place("steer").await;
    let place = place.as_ref();
    let (id, other, before, locks) = two_locks(place).await;
    let decoy = find(&locks, &other).clone();
    let mut lock = find(&locks, &id).clone();
    lock.location = decoy.location.clone();
    lock.path = decoy.path.clone();
    lock.details = decoy.details.clone();
    lock.workspace = decoy.workspace.clone();
    broke(break_listed(place, &lock).await);
    assert_current(place, "default", None, "the listed lock was not removed").await;
    assert_current(
        place,
        "dev",
        Some(&other),
        "the lock named by the edited display fields was touched",
    )
    .await;
    assert_untouched(place, &before).await;
}

/// A lock listed from one place is never broken through another place's store: the
/// same mistake gives the same answer on every backend (a usage error, exit 2).
pub async fn lock_from_another_target_is_refused(f: &dyn Fixture) {
    let a = f.place("origin").await;
    let b = f.place("elsewhere").await;
    let lock = lock_default(a.as_ref()).await;
    let what = "a lock of another target must be a usage error";
    refused_and_kept(b.as_ref(), a.as_ref(), &lock, Kind::Usage, what).await;
}

/// A lock whose holder is alive, or a foreign lease, is refused before the backend is
/// asked to delete anything, on every backend.
pub async fn held_and_foreign_locks_are_refused(f: &dyn Fixture) {
    let place = f.place("refuse").await;
    let place = place.as_ref();
    let lock = lock_default(place).await;
    let mut held = lock.clone();
    held.held = Some(true);
    let what = "a held lock must be refused";
    refused_and_kept(place, place, &held, Kind::Refused, what).await;
    let mut foreign = lock.clone();
    foreign.foreign = true;
    let what = "a foreign lock must be refused without --force-foreign";
    refused_and_kept(place, place, &foreign, Kind::Refused, what).await;
}

/// Reading a lock again tells gone, same and re-taken apart: what settles a lost reply.
pub async fn recheck_tells_same_other_and_gone(f: &dyn Fixture) {
    let place = f.place("recheck").await;
    let place = place.as_ref();
    let lock = lock_default(place).await;
    let store = place.store();
    assert_eq!(store.recheck(&lock).await.ok(), Some(Presence::Same));
    place
        .retake(
            "default",
            &sample_info("OperationTypePlan", &place.path_of("default")),
        )
        .await;
    assert_eq!(store.recheck(&lock).await.ok(), Some(Presence::Other));
    let now = list(place).await;
    let retaken = now[0].clone();
    broke(break_listed(place, &retaken).await);
    assert_eq!(store.recheck(&retaken).await.ok(), Some(Presence::Gone));
}

fn network(f: &dyn Fixture) -> &dyn Network {
    f.network()
        .expect("this backend runs the network cases: its Fixture must provide network()")
}

fn quick(secs: u64) -> ConnectOptions {
    ConnectOptions {
        timeout: Duration::from_secs(secs),
        ..ConnectOptions::default()
    }
}

/// Opens and lists `url`, returning the error and how long it took.
async fn list_err(n: &dyn Network, url: &str, opts: &ConnectOptions) -> (Error, Duration) {
    let started = Instant::now();
    let result = match n.open(url, opts).await {
        Ok(store) => store.list().await.map(|_| ()),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => panic!("{url}: listing succeeded, an error was expected"),
        Err(e) => (e, started.elapsed()),
    }
}

/// Malformed targets are usage errors (exit 2), before anything is sent.
pub async fn network_bad_targets_are_usage_errors(f: &dyn Fixture) {
    let n = network(f);
    let bad = n.bad_targets();
    assert!(!bad.is_empty(), "name at least one bad target");
    for url in bad {
        let (e, _) = list_err(n, &url, &quick(2)).await;
        assert_eq!(e.kind(), Kind::Usage, "{url}: {e}");
        assert!(!e.to_string().contains('\n'), "{e}");
    }
}

/// Nothing listens: unreachable, said in one line, within the request timeout.
pub async fn network_closed_port_fails_fast(f: &dyn Fixture) {
    let n = network(f);
    let url = n.target_at(&relay::closed_port());
    let (e, took) = list_err(n, &url, &quick(2)).await;
    assert_eq!(e.kind(), Kind::Unreachable, "{e}");
    assert!(took < Duration::from_secs(3), "took {took:?}: {e}");
    assert!(!e.to_string().contains('\n'), "{e}");
}

/// An endpoint that accepts and never answers: a timeout within the request timeout
/// (retries included) plus a second.
pub async fn network_silent_endpoint_times_out(f: &dyn Fixture) {
    let n = network(f);
    let silent = relay::silent_endpoint().await;
    let url = n.target_at(&silent.url);
    let (e, took) = list_err(n, &url, &quick(1)).await;
    assert_eq!(e.kind(), Kind::Timeout, "{e}");
    assert!(took < Duration::from_secs(2), "took {took:?}: {e}");
}

/// A missing bucket, table or container: an operational error that names it.
pub async fn network_missing_place_is_named(f: &dyn Fixture) {
    let n = network(f);
    let (url, name) = n.missing();
    let (e, _) = list_err(n, &url, &quick(5)).await;
    assert!(is_operational(&e), "{e:?}");
    assert!(e.to_string().contains(&name), "{e}");
}

/// A fresh place `name` whose store reaches the emulator through a relay, and the relay;
/// `None` for a backend not spoken over HTTP (no relay cases then).
async fn via_relay(f: &dyn Fixture, name: &str) -> Option<(Relay, Box<dyn Place>)> {
    let n = network(f);
    let relay = Relay::start(&n.emulator()?).await;
    let place = n.place_via(name, &relay.url).await;
    Some((relay, place))
}

/// The delete was applied and its reply lost: never sent again; a second read proves the
/// lock gone. Not applied and no reply: a failure saying the lock is still there.
pub async fn http_lost_reply_is_settled_by_reading_again(f: &dyn Fixture) {
    let Some((relay, place)) = via_relay(f, "lost").await else {
        return;
    };
    let place = place.as_ref();
    let lock = lock_default(place).await;
    let before = place.untouchables().await;

    relay.next_write(Verdict::Drop);
    match break_listed(place, &lock).await {
        Err(e) if is_operational(&e) && e.kind() != Kind::OutcomeUnknown => {
            assert!(e.to_string().contains("still there"), "{e}")
        }
        other => panic!("an unanswered delete that was not applied must fail, got {other:?}"),
    }
    assert_current(
        place,
        "default",
        Some(&lock.id),
        "a delete never applied removed the lock",
    )
    .await;

    relay.next_write(Verdict::LoseReply);
    relay.clear();
    let broken = break_listed(place, &lock)
        .await
        .unwrap_or_else(|e| panic!("a delete whose reply was lost must be confirmed: {e}"));
    assert!(broken.confirmed_by_reread, "{broken:?}");
    assert_current(
        place,
        "default",
        None,
        "the lock outlived its confirmed delete",
    )
    .await;
    let writes: Vec<_> = relay.seen().into_iter().filter(|s| s.is_write()).collect();
    assert_eq!(
        writes.len(),
        1,
        "the destructive request was sent again: {writes:?}"
    );
    assert_untouched(place, &before).await;
}

/// A precondition failure without an error code is "changed", never a plain failure.
pub async fn http_bare_412_is_changed(f: &dyn Fixture) {
    let Some((relay, place)) = via_relay(f, "bare412").await else {
        return;
    };
    let place = place.as_ref();
    let lock = lock_default(place).await;
    relay.next_write(Verdict::Answer(412, String::new()));
    refused_and_kept(
        place,
        place,
        &lock,
        Kind::Changed,
        "a bare 412 must be Changed",
    )
    .await;
}

/// Generates one `#[tokio::test]` per conformance case. `$fixture` is an async
/// expression giving `Option<impl Fixture>` (`None` = emulator absent, already reported).
/// `; network` adds the cases every backend reached over the network must pass.
#[macro_export]
macro_rules! conformance_suite {
    ($fixture:expr; network) => {
        $crate::conformance_suite!($fixture);
        mod network_conformance {
            use super::*;
            $crate::conformance_suite!(@cases $fixture;
                network_bad_targets_are_usage_errors, network_closed_port_fails_fast,
                network_silent_endpoint_times_out, network_missing_place_is_named,
                http_lost_reply_is_settled_by_reading_again, http_bare_412_is_changed);
        }
    };
    ($fixture:expr) => {
        mod conformance {
            use super::*;
            $crate::conformance_suite!(@cases $fixture;
                empty_place_lists_nothing, hold_list_inspect, break_removes_only_that_lock,
                retaken_lock_survives_break, vanished_lock_is_changed,
                garbage_is_listed_with_reason, many_locks_are_all_listed,
                edited_display_fields_do_not_steer_the_break,
                lock_from_another_target_is_refused, held_and_foreign_locks_are_refused,
                recheck_tells_same_other_and_gone);
        }
    };
    (@cases $fixture:expr; $($case:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                if let Some(fixture) = $fixture.await {
                    $crate::testkit::$case(&fixture).await;
                }
            }
        )*
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryStore;
    use std::sync::Arc;

    /// The suite run against the in-memory store: proves the suite itself is coherent.
    struct MemPlace(Arc<MemoryStore>, std::sync::Mutex<Vec<String>>);

    #[async_trait]
    impl Place for MemPlace {
        fn store(&self) -> &dyn LockStore {
            self.0.as_ref()
        }
        fn path_of(&self, state: &str) -> String {
            format!("mem/{state}")
        }
        async fn hold(&self, state: &str, info: &LockInfo) -> String {
            self.0
                .hold(&self.path_of(state), &info.to_terraform_json())
                .id
        }
        async fn retake(&self, state: &str, info: &LockInfo) -> String {
            self.hold(state, info).await
        }
        async fn current(&self, state: &str) -> Option<String> {
            self.0
                .locks()
                .into_iter()
                .find(|l| l.location == self.path_of(state))
                .map(|l| l.id)
        }
        async fn hold_garbage(&self, state: &str) {
            self.0.hold(&self.path_of(state), "{not json");
        }
        async fn untouchables(&self) -> String {
            self.1.lock().unwrap().join(",")
        }
    }

    struct MemFixture;

    #[async_trait]
    impl Fixture for MemFixture {
        async fn place(&self, name: &str) -> Box<dyn Place> {
            Box::new(MemPlace(
                Arc::new(MemoryStore::new(format!("memory://{name}"))),
                Default::default(),
            ))
        }
    }

    async fn fixture() -> Option<MemFixture> {
        Some(MemFixture)
    }

    crate::conformance_suite!(fixture());

    #[test]
    fn sample_ids_look_like_terraform_ids() {
        let a = sample_info("x", "p").id;
        let b = sample_info("x", "p").id;
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(a.matches('-').count(), 4);
    }
}
