//! S3-compatible stores that ignore `If-Match` on DELETE (issue 9): the probe finds out
//! once per store and says so, and the HEAD re-check right before the DELETE is what
//! keeps a re-taken lockfile alive there. Against moto directly, the precondition is
//! honoured and the probe deletes nothing.

mod support;

use support::{moto, s3_client, unique};
use tflock_core::testkit::relay::{Relay, Verdict};
use tflock_core::testkit::sample_info;
use tflock_core::{BreakOptions, ConnectOptions, Kind, LockStore, Target};

async fn open(bucket: &str, endpoint: &str) -> std::sync::Arc<dyn LockStore> {
    let t = Target::parse(&format!(
        "s3://{bucket}?endpoint={endpoint}&region=us-east-1"
    ))
    .unwrap();
    tflock_aws::open(&t, &ConnectOptions::default())
        .await
        .unwrap()
}

/// Every object in the bucket with its ETag.
async fn objects(s3: &aws_sdk_s3::Client, bucket: &str) -> Vec<String> {
    let out = s3.list_objects_v2().bucket(bucket).send().await.unwrap();
    let mut all: Vec<String> = out
        .contents()
        .iter()
        .map(|o| format!("{} {}", o.key().unwrap_or(""), o.e_tag().unwrap_or("")))
        .collect();
    all.sort();
    all
}

async fn put(s3: &aws_sdk_s3::Client, bucket: &str, key: &str, body: String) {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(body.into_bytes().into())
        .send()
        .await
        .unwrap();
}

const LOCKFILE: &str = "app/terraform.tfstate.tflock";

/// A bucket with a state object and a Terraform lockfile beside it.
async fn locked_bucket(s3: &aws_sdk_s3::Client, what: &str) -> String {
    let bucket = unique(what);
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    put(
        s3,
        &bucket,
        "app/terraform.tfstate",
        "{\"version\":4}".into(),
    )
    .await;
    let info = sample_info(
        "OperationTypeApply",
        &format!("{bucket}/app/terraform.tfstate"),
    );
    put(s3, &bucket, LOCKFILE, info.to_terraform_json()).await;
    bucket
}

fn is_probe(target: &str) -> bool {
    target.contains("tflock-if-match-probe")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_ignoring_if_match_is_named_and_the_recheck_keeps_a_retaken_lock() {
    let Some(moto) = moto() else { return };
    let s3 = s3_client(&moto).await;
    let bucket = locked_bucket(&s3, "ignored").await;
    // An ignoring store: the precondition never reaches moto, and deleting a key that does
    // not exist answers 204 as S3 does without a precondition.
    let relay = Relay::start(&moto).await;
    relay.set_rule(|seen| match seen.method.as_str() {
        "DELETE" if is_probe(&seen.target) => Verdict::Answer(204, String::new()),
        "DELETE" => Verdict::ForwardWithout(vec!["if-match".into()]),
        _ => Verdict::Forward,
    });
    let store = open(&bucket, &relay.url).await;
    let locks = store.list().await.unwrap();
    assert_eq!(locks.len(), 1, "{locks:#?}");
    let old = locks[0].clone();

    let guard = store.break_guard().await.unwrap();
    assert_eq!(
        guard.facts,
        [
            ("if_match".to_string(), "ignored".to_string()),
            ("if_match_probe".to_string(), "HTTP 204".to_string())
        ],
        "{guard:?}"
    );
    let warning = guard.warning.expect("a warning for an ignoring store");
    assert!(
        warning.contains("ignores If-Match") && warning.contains("re-reading"),
        "{warning}"
    );
    assert!(!warning.chars().any(char::is_control), "{warning:?}");

    // Re-taken between the listing and the break, as Terraform's unlock + lock does.
    s3.delete_object()
        .bucket(&bucket)
        .key(LOCKFILE)
        .send()
        .await
        .unwrap();
    let new = sample_info(
        "OperationTypePlan",
        &format!("{bucket}/app/terraform.tfstate"),
    );
    put(&s3, &bucket, LOCKFILE, new.to_terraform_json()).await;
    let before = objects(&s3, &bucket).await;
    relay.clear();

    match store.break_lock(&old, &BreakOptions::default()).await {
        Err(e) if e.kind() == Kind::Changed => {}
        other => panic!("a re-taken lockfile must survive as Changed, got {other:?}"),
    }
    assert_eq!(objects(&s3, &bucket).await, before, "something was deleted");
    let body = s3
        .get_object()
        .bucket(&bucket)
        .key(LOCKFILE)
        .send()
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap()
        .into_bytes();
    assert!(String::from_utf8_lossy(&body).contains(&new.id));
    let deletes: Vec<_> = relay
        .seen()
        .into_iter()
        .filter(|s| s.method == "DELETE")
        .collect();
    assert!(deletes.is_empty(), "a DELETE was sent: {deletes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_honours_if_match_and_the_probe_deletes_nothing() {
    let Some(moto) = moto() else { return };
    let s3 = s3_client(&moto).await;
    let bucket = locked_bucket(&s3, "honoured").await;
    let before = objects(&s3, &bucket).await;
    // Forwards everything, to see what the probe sends and what moto answers.
    let relay = Relay::start(&moto).await;
    let store = open(&bucket, &relay.url).await;

    let guard = store.break_guard().await.unwrap();
    assert_eq!(
        guard.facts,
        [
            ("if_match".to_string(), "honoured".to_string()),
            ("if_match_probe".to_string(), "HTTP 404".to_string())
        ],
        "{guard:?}"
    );
    assert_eq!(guard.warning, None);
    // Found out once per store.
    assert_eq!(store.break_guard().await.unwrap(), guard);
    let deletes: Vec<_> = relay
        .seen()
        .into_iter()
        .filter(|s| s.method == "DELETE")
        .collect();
    assert_eq!(deletes.len(), 1, "{deletes:?}");
    assert!(is_probe(&deletes[0].target), "{deletes:?}");
    assert!(deletes[0].header("if-match").is_some(), "{deletes:?}");
    assert_eq!(
        objects(&s3, &bucket).await,
        before,
        "the probe deleted something"
    );

    // What moto answers for the probe: a conditional DELETE of a missing key.
    let answer = s3
        .delete_object()
        .bucket(&bucket)
        .key("app/no-such-key.tflock")
        .if_match("\"tflock-if-match-probe\"")
        .send()
        .await;
    let status = answer
        .as_ref()
        .err()
        .and_then(|e| e.raw_response())
        .map(|r| r.status().as_u16());
    eprintln!("moto answers a conditional DELETE of a missing key with {status:?}");
    assert!(matches!(status, Some(404 | 412)), "{answer:?}");

    // And AWS itself (no custom endpoint) is taken as honouring, with nothing sent.
    let aws = Target::parse(&format!("s3://{bucket}?region=us-east-1")).unwrap();
    let aws = tflock_aws::open(&aws, &ConnectOptions::default())
        .await
        .unwrap();
    let guard = aws.break_guard().await.unwrap();
    assert_eq!(guard.facts[0].1, "honoured (AWS S3)");
}
