//! Faults S3 produces that moto does not: a relay in front of moto answers some requests
//! itself, as S3 does under those conditions.
//! - One lockfile that cannot be read (SSE-C, a KMS key the caller may not use) must not
//!   hide the others: it is listed as unreadable with the service's reason, and can still
//!   be broken by its location under If-Match on the listed ETag.
//! - Throttling (503 SlowDown) is retried by the SDK; when it persists, the error names it.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use support::{bucket_with_lockfiles, moto, relay, s3_client, s3_error};
use tflock_core::testkit::sample_info;
use tflock_core::{BreakOptions, ConnectOptions, Target};

fn target(bucket: &str, relay: &str) -> Target {
    Target::parse(&format!("s3://{bucket}?endpoint={relay}&region=us-east-1")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_lockfile_is_listed_with_the_reason_and_still_breakable() {
    let Some(moto) = moto() else { return };
    let s3 = s3_client(&moto).await;
    let bucket = format!("tflock-denied-{}", std::process::id());
    let ok = sample_info(
        "OperationTypeApply",
        &format!("{bucket}/ok/terraform.tfstate"),
    );
    let hidden = sample_info(
        "OperationTypeApply",
        &format!("{bucket}/deny/terraform.tfstate"),
    );
    bucket_with_lockfiles(
        &s3,
        &bucket,
        &[
            ("ok/terraform.tfstate.tflock", &ok),
            ("deny/terraform.tfstate.tflock", &hidden),
        ],
    )
    .await;

    let url = relay(moto.clone(), |head| {
        let line = head.lines().next().unwrap_or("");
        (line.starts_with("GET ") && line.contains("/deny/") && !line.contains("list-type"))
            .then(|| s3_error("403 Forbidden", "AccessDenied", "Access Denied"))
    })
    .await;
    let store = tflock_aws::open(&target(&bucket, &url), &ConnectOptions::default())
        .await
        .unwrap();
    let locks = store.list().await.unwrap();
    assert_eq!(locks.len(), 2, "{locks:#?}");
    let good = locks
        .iter()
        .find(|l| l.id == ok.id)
        .expect("the readable lock");
    assert!(good.info_error.is_none());
    let bad = locks
        .iter()
        .find(|l| l.location.ends_with("/deny/terraform.tfstate.tflock"))
        .unwrap();
    let reason = bad.info_error.as_deref().unwrap_or_default();
    assert!(reason.contains("AccessDenied"), "{reason}");
    assert!(bad.id.is_empty() && bad.info.is_none());
    assert!(
        bad.details.contains_key("etag"),
        "the listing's ETag guards the break"
    );

    store
        .break_lock(bad, &BreakOptions::default())
        .await
        .unwrap();
    let left = s3.list_objects_v2().bucket(&bucket).send().await.unwrap();
    let keys: Vec<&str> = left.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, ["ok/terraform.tfstate.tflock"]);
}

/// A relay that answers the first `n` bucket listings with 503 SlowDown.
async fn throttling(moto: &str, n: usize) -> (String, Arc<AtomicUsize>) {
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    let url = relay(moto.to_string(), move |head| {
        let listing = head.lines().next().unwrap_or("").contains("list-type=2");
        (listing && seen.load(Ordering::SeqCst) < n).then(|| {
            seen.fetch_add(1, Ordering::SeqCst);
            s3_error(
                "503 Slow Down",
                "SlowDown",
                "Please reduce your request rate.",
            )
        })
    })
    .await;
    (url, count)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_is_retried_and_named_when_it_persists() {
    let Some(moto) = moto() else { return };
    let s3 = s3_client(&moto).await;
    let bucket = format!("tflock-throttle-{}", std::process::id());
    let info = sample_info("OperationTypeApply", &format!("{bucket}/terraform.tfstate"));
    bucket_with_lockfiles(&s3, &bucket, &[("terraform.tfstate.tflock", &info)]).await;

    // Two throttled listings, then the third attempt succeeds.
    let (url, throttled) = throttling(&moto, 2).await;
    let store = tflock_aws::open(&target(&bucket, &url), &ConnectOptions::default())
        .await
        .unwrap();
    let locks = store.list().await.unwrap();
    assert_eq!(throttled.load(Ordering::SeqCst), 2);
    assert_eq!(locks.len(), 1);
    assert_eq!(locks[0].id, info.id);

    // Throttled for good: a clear error naming the code, nothing changed.
    let (url, throttled) = throttling(&moto, usize::MAX).await;
    let store = tflock_aws::open(&target(&bucket, &url), &ConnectOptions::default())
        .await
        .unwrap();
    let err = store.list().await.unwrap_err();
    assert!(tflock_core::testkit::is_operational(&err), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("SlowDown") && text.contains(&bucket),
        "{text}"
    );
    assert!(!text.contains('\n'), "one line: {text}");
    assert_eq!(
        throttled.load(Ordering::SeqCst),
        3,
        "the SDK's 3 attempts, then it gives up"
    );
    let left = s3.list_objects_v2().bucket(&bucket).send().await.unwrap();
    assert_eq!(left.contents().len(), 1);
}
