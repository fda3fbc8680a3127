//! How many requests a listing costs, and when they are sent, counted through a
//! recording relay in front of fake-gcs-server: one list call per 1,000 objects and one
//! media download per lock, nothing else; bodies are read while later pages are still
//! being listed. Also: a read's retries stay within `--request-timeout`.

mod support;

use futures::StreamExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{unique, GcsFixture, PREFIX};
use tflock_core::testkit::relay::{Relay, Verdict};
use tflock_core::{ConnectOptions, Kind, LockStore, Target};
use tflock_gcs::GcsStore;

fn is_list(target: &str) -> bool {
    target.contains("/o?") && !target.contains("alt=media")
}

fn is_download(target: &str) -> bool {
    target.contains("alt=media")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_list_call_per_thousand_objects_and_one_download_per_lock() {
    let Some(f) = GcsFixture::from_env() else {
        return;
    };
    let bucket = unique("count");
    f.emu.create_bucket(&bucket).await;
    const LOCKS: usize = 1100;
    let body = r#"{"ID":"x","Operation":"OperationTypePlan","Who":"count@test"}"#;
    let made: Vec<Result<String, u16>> = futures::stream::iter(0..LOCKS)
        .map(|i| {
            let (emu, bucket) = (&f.emu, &bucket);
            async move {
                emu.create(bucket, &format!("{PREFIX}ws{i:04}.tflock"), body)
                    .await
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    assert!(made.iter().all(Result::is_ok));

    let relay = Relay::start(&f.emu.base).await;
    // The second list page is held until a body download has been seen (at most 10 s):
    // a store that lists every page before reading any body never gets past it.
    let downloads = Arc::new(AtomicUsize::new(0));
    let seen_when_page_two_asked = Arc::new(AtomicUsize::new(usize::MAX));
    let (d, p) = (downloads.clone(), seen_when_page_two_asked.clone());
    relay.set_rule(move |seen| {
        if is_download(&seen.target) {
            d.fetch_add(1, Ordering::SeqCst);
        } else if is_list(&seen.target) && seen.target.contains("pageToken=") {
            tokio::task::block_in_place(|| {
                let until = Instant::now() + Duration::from_secs(10);
                while d.load(Ordering::SeqCst) == 0 && Instant::now() < until {
                    std::thread::sleep(Duration::from_millis(5));
                }
            });
            p.store(d.load(Ordering::SeqCst), Ordering::SeqCst);
        }
        Verdict::Forward
    });
    let target = Target::parse(&format!(
        "gs://{bucket}/{}?endpoint={}",
        PREFIX.trim_end_matches('/'),
        relay.url
    ))
    .unwrap();
    let store = GcsStore::open(&target, &ConnectOptions::default())
        .await
        .unwrap();
    let locks = store.list().await.unwrap();
    assert_eq!(locks.len(), LOCKS);
    assert!(locks.iter().all(|l| l.info_error.is_none()));
    assert!(locks.windows(2).all(|w| w[0].location < w[1].location));

    let seen = relay.seen();
    let lists = seen.iter().filter(|s| is_list(&s.target)).count();
    let bodies = seen.iter().filter(|s| is_download(&s.target)).count();
    assert_eq!(lists, LOCKS.div_ceil(1000), "list calls");
    assert_eq!(bodies, LOCKS, "media downloads");
    assert_eq!(seen.len(), lists + bodies, "other requests: {seen:#?}");
    let at_page_two = seen_when_page_two_asked.load(Ordering::SeqCst);
    assert!(
        at_page_two > 0 && at_page_two != usize::MAX,
        "no body was read while page two was being listed ({at_page_two})"
    );
}

/// A server failing every read with 503: the retries and their pauses stop within
/// `--request-timeout` (1 s here; the retry schedule alone would take 1.2 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_retries_stay_within_the_request_timeout() {
    let Some(f) = GcsFixture::from_env() else {
        return;
    };
    let relay = Relay::start(&f.emu.base).await;
    relay.set_rule(|_| Verdict::Answer(503, String::new()));
    let target = Target::parse(&format!("gs://bkt/env?endpoint={}", relay.url)).unwrap();
    let timeout = Duration::from_secs(1);
    let opts = ConnectOptions {
        timeout,
        ..ConnectOptions::default()
    };
    let store = GcsStore::open(&target, &opts).await.unwrap();
    let started = Instant::now();
    let err = store.list().await.unwrap_err();
    let took = started.elapsed();
    assert_eq!(err.kind(), Kind::Backend, "{err}");
    assert!(err.to_string().contains("HTTP 503"), "{err}");
    assert!(
        relay.seen().len() >= 2,
        "a 503 is retried: {:?}",
        relay.seen()
    );
    assert!(
        took < timeout + Duration::from_millis(150),
        "took {took:?} with a {timeout:?} request timeout: {err}"
    );
}
