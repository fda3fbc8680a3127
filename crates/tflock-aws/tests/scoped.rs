//! Scale (issue 11): what each kind of target costs in requests, counted by a relay in
//! front of moto, and which states a scoped target covers.
//! - A target discovery makes for one configuration never scans the table or lists the
//!   whole bucket: one listing of `<workspace_key_prefix>/`, then reads by key.
//!   `tflock break --id` on a dynamodb-only backend is 3 requests on a table of any size.
//! - An unscoped `s3://` target lists 1000 keys a request and reads each lockfile once,
//!   starting the reads while later pages are still being listed.

mod support;

use aws_sdk_dynamodb::types::AttributeValue;
use futures::stream::{self, StreamExt};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use support::{ddb_client, lock_table, moto, s3_client, unique};
use tflock_core::testkit::relay::{Relay, Seen, Verdict};
use tflock_core::testkit::sample_info;
use tflock_core::{BackendBlock, BreakOptions, ConnectOptions, Target};

async fn put_row(ddb: &aws_sdk_dynamodb::Client, table: &str, attrs: &[(&str, String)]) {
    let mut req = ddb.put_item().table_name(table);
    for (k, v) in attrs {
        req = req.item(*k, AttributeValue::S(v.clone()));
    }
    req.send().await.unwrap();
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

fn block(config: serde_json::Value) -> BackendBlock {
    BackendBlock::new("s3", config.as_object().unwrap().clone())
}

/// `GET /bucket?list-type=2...`
fn is_listing(s: &Seen) -> bool {
    s.method == "GET" && s.target.contains("list-type=2")
}

fn dynamo_action(s: &Seen) -> Option<&str> {
    s.header("x-amz-target")?.rsplit('.').next()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn break_by_id_on_a_dynamodb_backend_is_three_requests() {
    let Some(moto) = moto() else { return };
    let (s3, ddb) = (s3_client(&moto).await, ddb_client(&moto).await);
    let (bucket, tbl) = (unique("b"), unique("t"));
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    lock_table(&ddb, &tbl).await;
    let key = "app/terraform.tfstate";
    // Three workspaces of this configuration, and another configuration's states in the
    // same bucket and table.
    for state in [
        key.to_string(),
        format!("env:/dev/{key}"),
        format!("env:/prod/{key}"),
        "other/terraform.tfstate".to_string(),
        "env:/dev/other/terraform.tfstate".to_string(),
    ] {
        put(&s3, &bucket, &state, "{\"version\":4}".into()).await;
        put_row(
            &ddb,
            &tbl,
            &[
                ("LockID", format!("{bucket}/{state}-md5")),
                ("Digest", "0123456789abcdef0123456789abcdef".into()),
            ],
        )
        .await;
    }
    let mut ids = Vec::new();
    for state in [
        key.to_string(),
        format!("env:/dev/{key}"),
        "other/terraform.tfstate".to_string(),
    ] {
        let info = sample_info("OperationTypeApply", &format!("{bucket}/{state}"));
        put_row(
            &ddb,
            &tbl,
            &[
                ("LockID", format!("{bucket}/{state}")),
                ("Info", info.to_terraform_json()),
            ],
        )
        .await;
        ids.push(info.id);
    }
    // Rows of other buckets: the table's size must not matter.
    stream::iter(0..60)
        .for_each_concurrent(16, |i| {
            let (ddb, tbl) = (&ddb, &tbl);
            async move {
                let info = sample_info("OperationTypePlan", &format!("elsewhere/{i}"));
                put_row(
                    ddb,
                    tbl,
                    &[
                        ("LockID", format!("elsewhere-{i}/terraform.tfstate")),
                        ("Info", info.to_terraform_json()),
                    ],
                )
                .await
            }
        })
        .await;

    let relay = Relay::start(&moto).await;
    let targets = tflock_aws::DRIVER
        .discover(&block(serde_json::json!({
            "bucket": bucket,
            "key": key,
            "dynamodb_table": tbl,
            "region": "us-east-1",
            "endpoints": {"s3": relay.url, "dynamodb": relay.url},
        })))
        .unwrap();
    assert_eq!(targets.len(), 1, "{targets:?}");
    let opts = ConnectOptions::default();
    // What `tflock break --id ID` does: open, list, find, guard, break.
    let store = tflock_aws::DRIVER.open(&targets[0], &opts).await.unwrap();
    let locks = store.list().await.unwrap();
    let mut seen: Vec<(Option<String>, String)> = locks
        .iter()
        .map(|l| (l.workspace.clone(), l.id.clone()))
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            (Some("default".to_string()), ids[0].clone()),
            (Some("dev".to_string()), ids[1].clone())
        ],
        "{locks:#?}"
    );
    let dev = locks.iter().find(|l| l.matches_id(&ids[1])).unwrap();
    let guard = store.break_guard().await.unwrap();
    assert!(guard.warning.is_none());
    store
        .break_lock(dev, &BreakOptions::default())
        .await
        .unwrap();

    let requests = relay.seen();
    let summary: Vec<String> = requests
        .iter()
        .map(|s| format!("{} {} {:?}", s.method, s.target, dynamo_action(s)))
        .collect();
    assert_eq!(requests.len(), 3, "{summary:#?}");
    assert!(is_listing(&requests[0]), "{summary:#?}");
    assert!(
        requests[0].target.contains("prefix=env%3A%2F"),
        "{summary:#?}"
    );
    assert_eq!(
        dynamo_action(&requests[1]),
        Some("BatchGetItem"),
        "{summary:#?}"
    );
    assert_eq!(
        dynamo_action(&requests[2]),
        Some("DeleteItem"),
        "{summary:#?}"
    );

    // Only that row went.
    let left = ddb
        .scan()
        .table_name(&tbl)
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    let rows: Vec<&str> = left
        .items()
        .iter()
        .filter_map(|i| i.get("LockID")?.as_s().ok().map(String::as_str))
        .collect();
    assert_eq!(rows.len(), 5 + 2 + 60, "{rows:?}");
    assert!(!rows.contains(&format!("{bucket}/env:/dev/{key}").as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scoped_s3_target_lists_one_prefix_and_reads_its_lockfiles() {
    let Some(moto) = moto() else { return };
    let s3 = s3_client(&moto).await;
    let bucket = unique("s3");
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let key = "app/terraform.tfstate";
    let mut ids = Vec::new();
    // A custom workspace_key_prefix: `workspaces/<ws>/<key>`; the `env:/` ones are
    // another configuration's, as is `other/...`.
    for (state, mine) in [
        (key.to_string(), true),
        (format!("workspaces/dev/{key}"), true),
        (format!("workspaces/a/b/{key}"), false),
        (format!("env:/dev/{key}"), false),
        ("other/terraform.tfstate".to_string(), false),
    ] {
        put(&s3, &bucket, &state, "{\"version\":4}".into()).await;
        let info = sample_info("OperationTypeApply", &format!("{bucket}/{state}"));
        put(
            &s3,
            &bucket,
            &format!("{state}.tflock"),
            info.to_terraform_json(),
        )
        .await;
        if mine {
            ids.push(info.id);
        }
    }
    let relay = Relay::start(&moto).await;
    let targets = tflock_aws::DRIVER
        .discover(&block(serde_json::json!({
            "bucket": bucket,
            "key": key,
            "workspace_key_prefix": "workspaces",
            "use_lockfile": true,
            "endpoints": {"s3": relay.url},
        })))
        .unwrap();
    assert_eq!(targets.len(), 1);
    assert_eq!(
        targets[0].url,
        format!("s3://{bucket}?key={key}&workspace_key_prefix=workspaces")
    );
    let store = tflock_aws::DRIVER
        .open(&targets[0], &ConnectOptions::default())
        .await
        .unwrap();
    let locks = store.list().await.unwrap();
    let mut seen: Vec<(Option<String>, String)> = locks
        .iter()
        .map(|l| (l.workspace.clone(), l.id.clone()))
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            (Some("default".to_string()), ids[0].clone()),
            (Some("dev".to_string()), ids[1].clone())
        ],
        "{locks:#?}"
    );
    let requests = relay.seen();
    let listings: Vec<&Seen> = requests.iter().filter(|s| is_listing(s)).collect();
    assert_eq!(listings.len(), 1, "{requests:#?}");
    assert!(
        listings[0].target.contains("prefix=workspaces%2F"),
        "{requests:#?}"
    );
    let reads: Vec<&str> = requests
        .iter()
        .filter(|s| !is_listing(s))
        .map(|s| s.target.as_str())
        .collect();
    assert_eq!(reads.len(), 2, "one GET per lockfile: {requests:#?}");
    assert!(reads.iter().all(|r| r.contains(".tflock?")), "{reads:?}");

    // The default workspace's lockfile alone, read directly when nothing else is there.
    relay.clear();
    let bare = Target::parse(&format!(
        "s3://{bucket}?key=nothing/here.tfstate&endpoint={}",
        relay.url
    ))
    .unwrap();
    let store = tflock_aws::open(&bare, &ConnectOptions::default())
        .await
        .unwrap();
    assert!(store.list().await.unwrap().is_empty());
    assert_eq!(relay.seen().len(), 2, "{:#?}", relay.seen());
}

/// 1000 keys a page: a bucket with 1004 objects is 2 listings, and 1 GET per lockfile.
/// The GETs of the first page's lockfiles are sent while the second page is still held
/// back by the relay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unscoped_s3_reads_lockfiles_while_later_pages_are_listed() {
    let Some(moto) = moto() else { return };
    let s3 = s3_client(&moto).await;
    let bucket = unique("pages");
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    // Sorted order: two lockfiles first, 1000 state objects, two lockfiles last.
    let mut keys: Vec<String> = vec!["a/one.tfstate.tflock".into(), "a/two.tfstate.tflock".into()];
    keys.extend((0..1000).map(|i| format!("b/state-{i:04}.tfstate")));
    keys.extend([
        "c/three.tfstate.tflock".to_string(),
        "c/four.tfstate.tflock".to_string(),
    ]);
    stream::iter(keys.iter())
        .for_each_concurrent(32, |key| {
            let (s3, bucket) = (&s3, &bucket);
            async move {
                let info = sample_info("OperationTypePlan", &format!("{bucket}/{key}"));
                put(s3, bucket, key, info.to_terraform_json()).await
            }
        })
        .await;

    let relay = Relay::start(&moto).await;
    let second_page_released = Arc::new(AtomicBool::new(false));
    let early_gets = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (released, early) = (second_page_released.clone(), early_gets.clone());
    relay.set_rule(move |seen| {
        if is_listing(seen) && seen.target.contains("continuation-token") {
            // Hold the second page back long enough for reads to start.
            std::thread::sleep(std::time::Duration::from_millis(800));
            released.store(true, Ordering::SeqCst);
        } else if seen.method == "GET" && !released.load(Ordering::SeqCst) {
            early.lock().unwrap().push(seen.target.clone());
        }
        Verdict::Forward
    });
    let t = Target::parse(&format!("s3://{bucket}?endpoint={}", relay.url)).unwrap();
    let store = tflock_aws::open(&t, &ConnectOptions::default())
        .await
        .unwrap();
    let locks = store.list().await.unwrap();
    assert_eq!(locks.len(), 4, "{locks:#?}");
    assert!(locks.iter().all(|l| l.info_error.is_none()), "{locks:#?}");

    let requests = relay.seen();
    let listings = requests.iter().filter(|s| is_listing(s)).count();
    let gets: Vec<&str> = requests
        .iter()
        .filter(|s| !is_listing(s))
        .map(|s| s.target.as_str())
        .collect();
    assert_eq!(listings, 2, "1000 keys a listing");
    assert_eq!(gets.len(), 4, "one GET per lockfile: {gets:?}");
    let early = early_gets.lock().unwrap().clone();
    assert!(
        early.iter().filter(|g| g.contains("/a/")).count() == 2,
        "the first page's lockfiles were not read while the second page was listed: {early:?}"
    );
}
