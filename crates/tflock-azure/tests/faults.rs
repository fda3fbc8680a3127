//! The break order and its faults, against Azurite through the fault relay. A Terraform
//! lock is broken by releasing its lease (id = lock ID) on the ETag read, then removing
//! `terraformlockid` from the unleased blob. The relay loses replies, or lets another
//! terraform act between two requests of the break (before the relay forwards the second).

mod support;

use std::future::Future;
use std::sync::Mutex;
use support::{base64_of, fixture, meanwhile, Azurite, STATE};
use tflock_azure::testing::{open_with_env, Harness};
use tflock_core::testkit::relay::{Relay, Seen, Verdict};
use tflock_core::testkit::sample_info;
use tflock_core::{BreakOptions, Kind, Lock, LockInfo, LockStore};

const BLOB: &str = "app.tfstate";

fn lease_action(s: &Seen) -> Option<&str> {
    if s.method == "PUT" && s.target.contains("comp=lease") {
        s.header("x-ms-lease-action")
    } else {
        None
    }
}

fn is_release(s: &Seen) -> bool {
    lease_action(s) == Some("release")
}

fn is_break(s: &Seen) -> bool {
    lease_action(s) == Some("break")
}

fn is_metadata_write(s: &Seen) -> bool {
    s.method == "PUT" && s.target.contains("comp=metadata")
}

/// A container with one state blob (an operator's `owner` tag on it), a store that talks
/// to the emulator through a relay, and a direct harness.
struct Case {
    az: Azurite,
    container: String,
    relay: Relay,
    store: std::sync::Arc<dyn LockStore>,
    h: Harness,
}

impl Case {
    async fn new(name: &str) -> Option<Case> {
        let az = fixture().await?;
        let container = az.container(name).await;
        let relay = Relay::start(&az.endpoint).await;
        let store = open_with_env(
            &az.target_via(&container, &relay.url),
            &Azurite::opts(),
            &az.env(),
        )
        .unwrap();
        let h = az.harness(&container);
        h.put_state(BLOB, STATE, &[("owner", "team-a")])
            .await
            .unwrap();
        Some(Case {
            az,
            container,
            relay,
            store,
            h,
        })
    }

    fn info(&self, operation: &str) -> LockInfo {
        sample_info(operation, &format!("{}/{BLOB}", self.container))
    }

    async fn only_lock(&self) -> Lock {
        let locks = self.store.list().await.unwrap();
        assert_eq!(locks.len(), 1, "{locks:#?}");
        locks[0].clone()
    }

    /// Before the relay forwards the first request `when` matches, `change` runs against
    /// the emulator (another terraform acting meanwhile); then the request goes on.
    fn before_first<F, Fut>(&self, when: fn(&Seen) -> bool, change: F)
    where
        F: FnOnce(Harness) -> Fut + Send + 'static,
        Fut: Future<Output = ()>,
    {
        let (az, container) = (self.az.clone(), self.container.clone());
        let change = Mutex::new(Some(change));
        self.relay.set_rule(move |seen| {
            if when(seen) {
                if let Some(f) = change.lock().unwrap().take() {
                    meanwhile(&az, &container, f);
                }
            }
            Verdict::Forward
        });
    }

    async fn metadata(&self) -> std::collections::BTreeMap<String, String> {
        self.h.metadata(BLOB).await.unwrap()
    }
}

/// The lock metadata Terraform writes for `info`.
fn lock_value(info: &LockInfo) -> String {
    base64_of(&info.to_terraform_json())
}

/// The release is refused when the lease is no longer the listed lock's: nothing else is
/// sent, and the new holder's lease and metadata are untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_refused_when_the_lease_was_retaken() {
    for (i, what) in [
        "terraform unlocked and locked again",
        "the lease was broken and re-taken by a terraform that died before writing metadata",
    ]
    .into_iter()
    .enumerate()
    {
        let Some(c) = Case::new(&format!("retaken{i}")).await else {
            return;
        };
        let old = c.info("OperationTypeApply");
        c.h.lock_like_terraform(BLOB, &old).await.unwrap();
        let lock = c.only_lock().await;
        let new = c.info("OperationTypePlan");
        let (old_id, taker) = (old.id.clone(), new.clone());
        if i == 0 {
            c.before_first(is_release, move |h| async move {
                h.unlock_like_terraform(BLOB, &old_id).await.unwrap();
                h.lock_like_terraform(BLOB, &taker).await.unwrap();
            });
        } else {
            // `az storage blob lease break`, then a new lease: the blob itself was not
            // written, so its ETag is still the listed one and only the lease id differs.
            c.before_first(is_release, move |h| async move {
                h.break_lease(BLOB).await.unwrap();
                h.lease(BLOB, &taker.id, None).await.unwrap();
            });
        }
        c.relay.clear();
        match c.store.break_lock(&lock, &BreakOptions::default()).await {
            Err(e) if e.kind() == Kind::Changed => {}
            other => panic!("{what}: expected Changed, got {other:?}"),
        }
        let seen = c.relay.seen();
        assert!(seen.iter().any(is_release), "{what}: {seen:#?}");
        assert!(
            !seen.iter().any(is_metadata_write),
            "{what}: the metadata was written after a refused release: {seen:#?}"
        );
        assert!(c.h.holds(BLOB, &new.id).await.unwrap(), "{what}");
        let meta = c.metadata().await;
        let want = if i == 0 {
            lock_value(&new)
        } else {
            lock_value(&old)
        };
        assert_eq!(
            meta.get(tflock_azure::LOCK_KEY),
            Some(&want),
            "{what}: {meta:?}"
        );
        assert_eq!(meta.get("owner").map(String::as_str), Some("team-a"));
    }
}

/// A terraform locks the blob right after the release, before the clean-up: the clean-up
/// is refused, the break still succeeds with a warning, and the new lock is untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_refused_when_terraform_locks_right_after_the_release() {
    for (i, what) in [
        "a terraform took the lease and wrote its metadata",
        "a terraform took the lease and has not written its metadata yet",
    ]
    .into_iter()
    .enumerate()
    {
        let Some(c) = Case::new(&format!("cleanup{i}")).await else {
            return;
        };
        let old = c.info("OperationTypeApply");
        c.h.lock_like_terraform(BLOB, &old).await.unwrap();
        let lock = c.only_lock().await;
        let new = c.info("OperationTypePlan");
        let taker = new.clone();
        c.before_first(is_metadata_write, move |h| async move {
            if i == 0 {
                h.lock_like_terraform(BLOB, &taker).await.unwrap();
            } else {
                h.lease(BLOB, &taker.id, None).await.unwrap();
            }
        });
        let broken = c
            .store
            .break_lock(&lock, &BreakOptions::default())
            .await
            .unwrap_or_else(|e| panic!("{what}: the release went through, so the break did: {e}"));
        assert!(!broken.confirmed_by_reread, "{what}: {broken:?}");
        assert_eq!(broken.removed.len(), 1, "{what}: {broken:?}");
        assert!(broken.removed[0].contains(&old.id), "{what}: {broken:?}");
        assert_eq!(broken.warnings.len(), 1, "{what}: {broken:?}");
        assert!(
            broken.warnings[0].contains("harmless"),
            "{what}: {:?}",
            broken.warnings
        );
        assert!(c.h.holds(BLOB, &new.id).await.unwrap(), "{what}");
        if i == 1 {
            // The new terraform now writes its metadata, under its lease.
            c.h.lease(BLOB, &new.id, Some(&lock_value(&new)))
                .await
                .unwrap();
        }
        let meta = c.metadata().await;
        assert_eq!(
            meta.get(tflock_azure::LOCK_KEY),
            Some(&lock_value(&new)),
            "{what}"
        );
        assert_eq!(meta.get("owner").map(String::as_str), Some("team-a"));
        let now = c.only_lock().await;
        assert_eq!(now.id, new.id, "{what}");
        assert!(!now.foreign, "{what}");
    }
}

/// The release was applied and its reply lost: not sent again, confirmed by a second read.
/// The stale metadata left on the unleased blob is harmless: not listed, and Terraform
/// locks over it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_release_reply_is_confirmed_by_a_second_read() {
    let Some(c) = Case::new("lostrelease").await else {
        return;
    };
    let info = c.info("OperationTypeApply");
    c.h.lock_like_terraform(BLOB, &info).await.unwrap();
    let lock = c.only_lock().await;
    c.relay.set_rule(|s| {
        if is_release(s) {
            Verdict::LoseReply
        } else {
            Verdict::Forward
        }
    });
    c.relay.clear();
    let broken = c
        .store
        .break_lock(&lock, &BreakOptions::default())
        .await
        .unwrap_or_else(|e| panic!("an applied release whose reply was lost: {e}"));
    assert!(broken.confirmed_by_reread, "{broken:?}");
    assert!(
        broken.warnings.iter().any(|w| w.contains("second read")),
        "{broken:?}"
    );
    let seen = c.relay.seen();
    assert_eq!(seen.iter().filter(|s| s.is_write()).count(), 1, "{seen:#?}");
    assert_eq!(c.h.current(BLOB).await.unwrap(), None);
    assert!(c.store.list().await.unwrap().is_empty());
    let next = c.info("OperationTypePlan");
    c.h.lock_like_terraform(BLOB, &next).await.unwrap();
    assert_eq!(c.only_lock().await.id, next.id);
}

/// The release's reply was lost and, before the second read, another terraform took the
/// lease (its metadata not written yet, so the old lock's is still there): the second
/// read must see another lease, not the listed lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_release_reply_then_retaken_is_changed() {
    let Some(c) = Case::new("lostretaken").await else {
        return;
    };
    let old = c.info("OperationTypeApply");
    c.h.lock_like_terraform(BLOB, &old).await.unwrap();
    let lock = c.only_lock().await;
    let new = c.info("OperationTypePlan");
    let (az, container, taker) = (c.az.clone(), c.container.clone(), new.id.clone());
    let released = Mutex::new(false);
    let change = Mutex::new(Some(taker));
    c.relay.set_rule(move |s| {
        let mut released = released.lock().unwrap();
        if is_release(s) {
            *released = true;
            return Verdict::LoseReply;
        }
        if *released && !s.is_write() {
            if let Some(id) = change.lock().unwrap().take() {
                meanwhile(&az, &container, move |h| async move {
                    h.lease(BLOB, &id, None).await.unwrap();
                });
            }
        }
        Verdict::Forward
    });
    match c.store.break_lock(&lock, &BreakOptions::default()).await {
        Err(e) if e.kind() == Kind::Changed => {
            assert!(e.to_string().contains("another lock"), "{e}")
        }
        other => panic!("a lease re-taken after a lost release must be Changed, got {other:?}"),
    }
    assert!(c.h.holds(BLOB, &new.id).await.unwrap());
}

/// A foreign lease broken with --force-foreign whose Break Lease reply was lost: not sent
/// again, settled by a second read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_break_lease_reply_is_settled() {
    let Some(c) = Case::new("lostbreak").await else {
        return;
    };
    c.h.lease(BLOB, &sample_info("x", "x").id, None)
        .await
        .unwrap();
    let lock = c.only_lock().await;
    assert!(lock.foreign);
    c.relay.set_rule(|s| {
        if is_break(s) {
            Verdict::LoseReply
        } else {
            Verdict::Forward
        }
    });
    c.relay.clear();
    let force = BreakOptions {
        force_foreign: true,
    };
    let broken = c.store.break_lock(&lock, &force).await.unwrap();
    assert!(broken.confirmed_by_reread, "{broken:?}");
    let seen = c.relay.seen();
    assert_eq!(seen.iter().filter(|s| s.is_write()).count(), 1, "{seen:#?}");
    assert_eq!(c.h.current(BLOB).await.unwrap(), None);
    assert_eq!(
        c.metadata().await.get("owner").map(String::as_str),
        Some("team-a")
    );
}

/// `terraformlockid` left on the blob by a lease broken with the az CLI, then a new lease
/// taken by a terraform that died before writing its own: the metadata names a lock whose
/// lease is gone. A break by that ID is refused (its lease is another) and says how to
/// proceed; with --force-foreign the lease is broken on the listed ETag.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_naming_another_lease() {
    let Some(c) = Case::new("stalemeta").await else {
        return;
    };
    let stale = c.info("OperationTypeApply");
    c.h.lock_like_terraform(BLOB, &stale).await.unwrap();
    c.h.break_lease(BLOB).await.unwrap();
    let holder = sample_info("x", "x").id;
    c.h.lease(BLOB, &holder, None).await.unwrap();
    let lock = c.only_lock().await;
    assert_eq!(lock.id, stale.id, "listed under the ID its metadata names");
    match c.store.break_lock(&lock, &BreakOptions::default()).await {
        Err(e) if e.kind() == Kind::Changed => {
            let text = e.to_string();
            assert!(text.contains("--force-foreign"), "{text}");
        }
        other => panic!("expected Changed, got {other:?}"),
    }
    assert!(c.h.holds(BLOB, &holder).await.unwrap());
    let force = BreakOptions {
        force_foreign: true,
    };
    let broken = c.store.break_lock(&lock, &force).await.unwrap();
    assert!(!broken.confirmed_by_reread, "{broken:?}");
    assert_eq!(c.h.current(BLOB).await.unwrap(), None);
    assert!(c.store.list().await.unwrap().is_empty());
    assert_eq!(
        c.metadata().await.get("owner").map(String::as_str),
        Some("team-a")
    );
}
