//! The break's statement sent once through a PostgreSQL-protocol relay that loses its
//! reply or drops it: the conformance suite's lost-reply cases, which it runs for HTTP
//! backends only, for pg.

mod support;
use support::relay::{Fault, PgRelay};
use support::*;

use tflock_core::testkit::{sample_info, Network};
use tflock_core::{BreakOptions, Kind};

#[tokio::test]
async fn a_lost_reply_is_settled_by_reading_again_and_never_resent() {
    let Some(f) = fixture().await else { return };
    let relay = PgRelay::start(&format!("{}:{}", f.pg.host, f.pg.port)).await;
    let place = f.place_via("lost", &relay.url).await;
    let id = place.hold("default", &sample_info("apply", "")).await;
    let before = place.untouchables().await;
    let locks = place.store().list().await.unwrap();
    assert_eq!(locks.len(), 1);
    let lock = locks[0].clone();

    // Never applied, no answer: an operational failure that says the lock is still there.
    relay.next_terminate(Fault::Drop);
    let e = place
        .store()
        .break_lock(&lock, &BreakOptions::default())
        .await
        .unwrap_err();
    assert_ne!(e.kind(), Kind::OutcomeUnknown, "{e}");
    assert!(e.to_string().contains("still there"), "{e}");
    assert_eq!(place.current("default").await.as_deref(), Some(id.as_str()));
    assert_eq!(relay.terminates_seen(), 1);

    // Applied, answer lost: confirmed by a second read, the statement not sent again.
    relay.next_terminate(Fault::LoseReply);
    let broken = place
        .store()
        .break_lock(&lock, &BreakOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(broken.confirmed_by_reread, "{broken:?}");
    assert_eq!(place.current("default").await, None);
    assert_eq!(relay.terminates_seen(), 2, "the terminate was sent again");
    assert_eq!(place.untouchables().await, before);
}
