//! Issue 10 for gcs: lock bodies that are not Terraform lock info (binary, not JSON,
//! nested past any sane depth, huge, or bigger than the listing said) are listed as
//! unreadable with their generation, never panic and are never read past 1 MiB; servers
//! that echo the token in their error text never bring it to a message.

mod support;

use std::time::Duration;
use support::GcsFixture;
use tflock_core::testkit::relay::{Relay, Verdict};
use tflock_core::testkit::{sample_info, Place};
use tflock_core::{ConnectOptions, Kind, LockStore, Status, Target};
use tflock_gcs::GcsStore;

const TOKEN: &str = "ya29.TOPSECRET-token-0c9d";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_bodies_are_listed_as_unreadable() {
    let Some(f) = GcsFixture::from_env() else {
        return;
    };
    let relay = Relay::start(&f.emu.base).await;
    let place = f.gcs_place("hostile", &relay.url).await;
    let good = place
        .hold("default", &sample_info("OperationTypeApply", ""))
        .await;
    let binary: Vec<u8> = (0u8..=255).cycle().take(4096).collect();
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let huge = vec![b'{'; (2 << 20) + 1];
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("binary", binary, "not valid JSON"),
        ("text", b"hello\x1b[2J world".to_vec(), "not valid JSON"),
        ("array", br#"["ID","x"]"#.to_vec(), "not an object"),
        ("deep", deep.into_bytes(), "not valid JSON"),
        ("huge", huge, "too big for Terraform lock info; not read"),
    ];
    let mut generations = Vec::new();
    for (ws, body, _) in &cases {
        generations.push(place.write_lock(ws, body).await);
    }
    relay.clear();
    let locks = place.store().list().await.unwrap();
    assert_eq!(locks.len(), cases.len() + 1, "{locks:#?}");
    for ((ws, _, reason), generation) in cases.iter().zip(&generations) {
        let lock = locks
            .iter()
            .find(|l| l.workspace.as_deref() == Some(ws))
            .unwrap_or_else(|| panic!("{ws} not listed"));
        assert_eq!(&lock.id, generation, "{ws}: the generation is still the ID");
        let why = lock.info_error.as_deref().unwrap_or_default();
        assert!(why.contains(reason), "{ws}: {why}");
        assert!(!why.contains('\x1b'), "{ws}: {why}");
        assert_eq!(
            lock.status(chrono::Utc::now(), chrono::Duration::hours(1)),
            Status::Unreadable
        );
    }
    assert!(locks.iter().any(|l| l.id == good && l.info_error.is_none()));
    // The huge object is judged by its listed size: never downloaded.
    let downloads: Vec<_> = relay
        .seen()
        .into_iter()
        .filter(|s| s.target.contains("alt=media"))
        .collect();
    assert_eq!(downloads.len(), cases.len(), "{downloads:#?}");
    assert!(downloads.iter().all(|s| !s.target.contains("huge.tflock")));
}

/// A server that sends more than the listing said is cut off at 1 MiB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_bigger_than_listed_is_not_read_past_the_cap() {
    let Some(f) = GcsFixture::from_env() else {
        return;
    };
    let relay = Relay::start(&f.emu.base).await;
    let place = f.gcs_place("liar", &relay.url).await;
    let generation = place
        .hold("default", &sample_info("OperationTypeApply", ""))
        .await;
    let flood = "x".repeat(3 << 20);
    relay.set_rule(move |seen| {
        if seen.target.contains("alt=media") {
            Verdict::Answer(200, flood.clone())
        } else {
            Verdict::Forward
        }
    });
    let locks = place.store().list().await.unwrap();
    assert_eq!(locks.len(), 1);
    assert_eq!(locks[0].id, generation);
    let why = locks[0].info_error.as_deref().unwrap_or_default();
    assert!(why.contains("larger than"), "{why}");
}

/// Error bodies that repeat the bearer token (as a proxy or a misbehaving server may):
/// the message keeps the status and the hint, never the token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_echoing_the_token_never_brings_it_to_a_message() {
    let Some(f) = GcsFixture::from_env() else {
        return;
    };
    for (status, kind) in [
        (401, Kind::Unauthenticated),
        (403, Kind::PermissionDenied),
        (400, Kind::Backend),
        (503, Kind::Backend),
    ] {
        let relay = Relay::start(&f.emu.base).await;
        let body = format!(
            r#"{{"error":{{"code":{status},"message":"token Bearer {TOKEN} refused at https://x/?access_token={TOKEN}","errors":[{{"message":"m","domain":"global","reason":"{TOKEN}"}}]}}}}"#
        );
        relay.set_rule(move |_| Verdict::Answer(status, body.clone()));
        let mut target = Target::parse(&format!("gs://bkt/env?endpoint={}", relay.url)).unwrap();
        target.params.insert("access_token".into(), TOKEN.into());
        let opts = ConnectOptions {
            timeout: Duration::from_secs(2),
            ..ConnectOptions::default()
        };
        let store = GcsStore::open(&target, &opts).await.unwrap();
        let err = store.list().await.unwrap_err();
        let text = err.to_string();
        assert_eq!(err.kind(), kind, "{text}");
        assert!(text.contains(&format!("HTTP {status}")), "{text}");
        assert!(!text.contains("TOPSECRET"), "{text}");
        assert!(
            relay
                .seen()
                .iter()
                .all(|s| s.header("authorization") == Some(&format!("Bearer {TOKEN}"))),
            "the token was sent"
        );
    }
}
