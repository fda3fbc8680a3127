//! `tflock doctor` for the s3 backend against moto: every finding (digest mismatch,
//! newer / older / versionless, digest row without state, orphan lockfile, SSE-C), and
//! every fix with its guards: the object or the digest changed since the check ->
//! `Changed` and nothing written; a lock held -> `Refused`; a lost reply settled by
//! reading again. Each fix test fingerprints the whole table: no other row changes.
//!
//! States, digest rows, locks and versions are written with plain SDK clients, the way
//! Terraform's s3 backend writes them.

mod support;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};
use md5::{Digest as _, Md5};
use std::sync::Arc;
use support::{ddb_client, lock_table, moto, s3_client, unique};
use tflock_core::testkit::relay::{Relay, Verdict};
use tflock_core::testkit::sample_info;
use tflock_core::{ConnectOptions, Finding, Kind, LockStore, Target};

const KEY: &str = "app/terraform.tfstate";

fn ws_key(ws: &str) -> String {
    if ws == "default" {
        KEY.to_string()
    } else {
        format!("env:/{ws}/{KEY}")
    }
}

fn md5_hex(bytes: &[u8]) -> String {
    Md5::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn state(serial: u64, lineage: &str) -> Vec<u8> {
    format!(
        "{{\n  \"version\": 4,\n  \"terraform_version\": \"1.11.4\",\n  \"serial\": {serial},\n  \"lineage\": \"{lineage}\",\n  \"outputs\": {{}},\n  \"resources\": []\n}}\n"
    )
    .into_bytes()
}

/// A bucket and a lock table on moto, with SDK clients that act as Terraform does.
struct Bed {
    moto: String,
    bucket: String,
    table: String,
    s3: aws_sdk_s3::Client,
    ddb: aws_sdk_dynamodb::Client,
}

impl Bed {
    async fn new(name: &str) -> Option<Bed> {
        let moto = moto()?;
        let (s3, ddb) = (s3_client(&moto).await, ddb_client(&moto).await);
        let (bucket, table) = (unique(name), unique(name));
        s3.create_bucket().bucket(&bucket).send().await.unwrap();
        lock_table(&ddb, &table).await;
        Some(Bed {
            moto,
            bucket,
            table,
            s3,
            ddb,
        })
    }

    async fn versioning(&self) {
        self.s3
            .put_bucket_versioning()
            .bucket(&self.bucket)
            .versioning_configuration(
                VersioningConfiguration::builder()
                    .status(BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await
            .unwrap();
    }

    /// PutObject of a state body; returns its version id, if any.
    async fn put_object(&self, key: &str, body: &[u8]) -> Option<String> {
        let out = self
            .s3
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("application/json")
            .body(body.to_vec().into())
            .send()
            .await
            .unwrap();
        out.version_id().map(str::to_string)
    }

    async fn delete_object(&self, key: &str) {
        self.s3
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .unwrap();
    }

    async fn put_digest_for(&self, bucket: &str, key: &str, digest: &str) {
        self.ddb
            .put_item()
            .table_name(&self.table)
            .item("LockID", AttributeValue::S(format!("{bucket}/{key}-md5")))
            .item("Digest", AttributeValue::S(digest.into()))
            .send()
            .await
            .unwrap();
    }

    async fn put_digest(&self, key: &str, digest: &str) {
        self.put_digest_for(&self.bucket.clone(), key, digest).await
    }

    /// Terraform's write of a state: the object, then its digest.
    async fn terraform_write(&self, key: &str, body: &[u8]) -> Option<String> {
        let v = self.put_object(key, body).await;
        self.put_digest(key, &md5_hex(body)).await;
        v
    }

    async fn digest(&self, key: &str) -> Option<String> {
        let out = self
            .ddb
            .get_item()
            .table_name(&self.table)
            .key(
                "LockID",
                AttributeValue::S(format!("{}/{key}-md5", self.bucket)),
            )
            .consistent_read(true)
            .send()
            .await
            .unwrap();
        Some(out.item()?.get("Digest")?.as_s().ok()?.clone())
    }

    async fn lock_row(&self, key: &str) {
        let info = sample_info("OperationTypeApply", &format!("{}/{key}", self.bucket));
        self.ddb
            .put_item()
            .table_name(&self.table)
            .item(
                "LockID",
                AttributeValue::S(format!("{}/{key}", self.bucket)),
            )
            .item("Info", AttributeValue::S(info.to_terraform_json()))
            .condition_expression("attribute_not_exists(LockID)")
            .send()
            .await
            .unwrap();
    }

    async fn lockfile(&self, key: &str) -> String {
        let info = sample_info("OperationTypeApply", &format!("{}/{key}", self.bucket));
        self.s3
            .put_object()
            .bucket(&self.bucket)
            .key(format!("{key}.tflock"))
            .content_type("application/json")
            .if_none_match("*")
            .body(info.to_terraform_json().into_bytes().into())
            .send()
            .await
            .unwrap();
        info.id
    }

    /// Every row of the table with every attribute: what a fix may change is one row.
    async fn table_rows(&self) -> Vec<String> {
        let out = self
            .ddb
            .scan()
            .table_name(&self.table)
            .consistent_read(true)
            .send()
            .await
            .unwrap();
        let mut rows: Vec<String> = out
            .items()
            .iter()
            .map(|i| {
                let mut attrs: Vec<String> = i.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
                attrs.sort();
                attrs.join(",")
            })
            .collect();
        rows.sort();
        rows
    }

    /// The table's rows, without the row of `key`'s digest.
    async fn rows_except_digest(&self, key: &str) -> Vec<String> {
        let row = format!("{}/{key}-md5", self.bucket);
        self.table_rows()
            .await
            .into_iter()
            .filter(|r| !r.contains(&format!("S(\"{row}\")")))
            .collect()
    }

    /// Every object version in the bucket (key, version, ETag).
    async fn objects(&self) -> Vec<String> {
        let out = self
            .s3
            .list_object_versions()
            .bucket(&self.bucket)
            .send()
            .await
            .unwrap();
        let mut all: Vec<String> = out
            .versions()
            .iter()
            .map(|v| format!("{:?} {:?} {:?}", v.key(), v.version_id(), v.e_tag()))
            .chain(
                out.delete_markers()
                    .iter()
                    .map(|m| format!("marker {:?} {:?}", m.key(), m.version_id())),
            )
            .collect();
        all.sort();
        all
    }

    fn scoped(&self, endpoint: &str) -> String {
        format!(
            "dynamodb://{}?bucket={}&key={KEY}&endpoint={endpoint}&s3_endpoint={endpoint}",
            self.table, self.bucket
        )
    }

    async fn table_store(&self) -> Arc<dyn LockStore> {
        open(&self.scoped(&self.moto), &[]).await
    }
}

async fn open(url: &str, hidden: &[(&str, &str)]) -> Arc<dyn LockStore> {
    let mut t = Target::parse(url).unwrap();
    for (k, v) in hidden {
        t.params.insert(k.to_string(), v.to_string());
    }
    tflock_aws::open(&t, &ConnectOptions::default())
        .await
        .unwrap_or_else(|e| panic!("open {url}: {e}"))
}

fn evidence<'a>(f: &'a Finding, name: &str) -> &'a str {
    f.evidence
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no evidence {name:?} in {f:#?}"))
}

async fn diagnose(store: &dyn LockStore) -> Vec<Finding> {
    store
        .diagnose()
        .await
        .unwrap_or_else(|e| panic!("diagnose: {e}"))
}

fn only(findings: Vec<Finding>) -> Finding {
    assert_eq!(findings.len(), 1, "{findings:#?}");
    findings.into_iter().next().unwrap()
}

/// Digests that match their state (default and a workspace), in one configuration,
/// are healthy: nothing to report.
#[tokio::test]
async fn matching_digests_are_healthy() {
    let Some(bed) = Bed::new("healthy").await else {
        return;
    };
    bed.terraform_write(KEY, &state(3, "l-1")).await;
    bed.terraform_write(&ws_key("dev"), &state(1, "l-2")).await;
    // A digest that is not an MD5 blocks nothing (Terraform skips the check).
    bed.put_digest(&ws_key("odd"), "not-an-md5").await;
    assert!(diagnose(bed.table_store().await.as_ref()).await.is_empty());
}

/// The state object overwritten outside Terraform (no versioning): found with the stored
/// digest and the MD5 of the object, fixed with a conditional update of that one row,
/// and healthy after. Digest rows of other configurations (even wrong ones), lock rows
/// and other rows are neither reported nor touched.
#[tokio::test]
async fn overwritten_state_is_found_and_fixed_and_nothing_else_changes() {
    let Some(bed) = Bed::new("mismatch").await else {
        return;
    };
    let v1 = state(4, "lin-a");
    bed.terraform_write(KEY, &v1).await;
    bed.terraform_write(&ws_key("dev"), &state(9, "lin-b"))
        .await;
    // Another configuration's state with a wrong digest: out of scope.
    bed.put_object("other/terraform.tfstate", &state(1, "x"))
        .await;
    bed.put_digest(
        "other/terraform.tfstate",
        "0123456789abcdef0123456789abcdef",
    )
    .await;
    bed.lock_row("other/terraform.tfstate").await;
    bed.ddb
        .put_item()
        .table_name(&bed.table)
        .item("LockID", AttributeValue::S("unrelated".into()))
        .item("Note", AttributeValue::S("keep me".into()))
        .send()
        .await
        .unwrap();
    let v2 = state(5, "lin-a");
    bed.put_object(KEY, &v2).await;

    let store = bed.table_store().await;
    let f = only(diagnose(store.as_ref()).await);
    assert_eq!(f.kind, "digest-mismatch");
    assert_eq!(f.subject, format!("{}/{KEY}", bed.bucket));
    assert_eq!(f.workspace.as_deref(), Some("default"));
    assert_eq!(f.target, store.target());
    assert_eq!(evidence(&f, "stored digest"), md5_hex(&v1));
    assert_eq!(evidence(&f, "MD5 of the state object"), md5_hex(&v2));
    assert!(evidence(&f, "its state").contains("serial 5, lineage lin-a"));
    assert!(
        evidence(&f, "version matching the stored digest").contains("versioning is off"),
        "{f:#?}"
    );
    assert_eq!(evidence(&f, "lock"), "none held");
    assert!(
        f.advice.contains("aws dynamodb update-item"),
        "{}",
        f.advice
    );
    assert!(f.advice.contains(&md5_hex(&v2)), "{}", f.advice);
    let fix = f.fix.clone().expect("a fix is offered");
    assert!(
        fix.description.contains(&md5_hex(&v2)),
        "{}",
        fix.description
    );

    let others = bed.rows_except_digest(KEY).await;
    let objects = bed.objects().await;
    let done = store
        .repair(&fix)
        .await
        .unwrap_or_else(|e| panic!("repair: {e}"));
    assert_eq!(done.done.len(), 1, "{done:?}");
    assert_eq!(
        bed.digest(KEY).await.as_deref(),
        Some(md5_hex(&v2).as_str())
    );
    assert_eq!(
        bed.rows_except_digest(KEY).await,
        others,
        "another row changed"
    );
    assert_eq!(bed.objects().await, objects, "an object changed");
    assert!(diagnose(store.as_ref()).await.is_empty());

    // The same fix again: the digest is no longer what was read.
    let again = store.repair(&fix).await.unwrap_err();
    assert_eq!(again.kind(), Kind::Changed, "{again}");
    assert_eq!(
        bed.digest(KEY).await.as_deref(),
        Some(md5_hex(&v2).as_str())
    );
}

/// With versioning, the version Terraform last wrote is named (by its ETag), with its
/// serial: the object is newer, the fix is offered, and restoring is the alternative.
#[tokio::test]
async fn versioned_newer_object_names_the_matching_version() {
    let Some(bed) = Bed::new("newer").await else {
        return;
    };
    bed.versioning().await;
    let key = ws_key("prod");
    let v1 = bed.terraform_write(&key, &state(6, "lin")).await.unwrap();
    bed.put_object(&key, &state(7, "lin")).await;
    let f = only(diagnose(bed.table_store().await.as_ref()).await);
    assert_eq!(f.kind, "digest-mismatch");
    assert_eq!(f.workspace.as_deref(), Some("prod"));
    let matching = evidence(&f, "version matching the stored digest");
    assert!(
        matching.contains(&v1) && matching.contains("serial 6"),
        "{matching}"
    );
    assert!(f.summary.contains("newer state"), "{}", f.summary);
    assert!(
        f.advice.contains("aws s3api copy-object") && f.advice.contains(&v1),
        "{}",
        f.advice
    );
    assert!(f.fix.is_some());
}

/// An object rolled back to an older state outside Terraform: said so, and no automatic
/// fix (it would make Terraform forget what it created since); restoring comes first.
#[tokio::test]
async fn rolled_back_object_is_older_and_not_fixed_automatically() {
    let Some(bed) = Bed::new("older").await else {
        return;
    };
    bed.versioning().await;
    bed.terraform_write(KEY, &state(1, "lin")).await;
    let last = bed.terraform_write(KEY, &state(2, "lin")).await.unwrap();
    bed.put_object(KEY, &state(1, "lin")).await;
    let f = only(diagnose(bed.table_store().await.as_ref()).await);
    assert!(
        f.summary.contains("OLDER state (serial 1)"),
        "{}",
        f.summary
    );
    assert!(evidence(&f, "version matching the stored digest").contains(&last));
    assert!(f.fix.is_none(), "{f:#?}");
    assert!(
        f.advice
            .starts_with("Restore the state Terraform last wrote")
            && f.advice.contains(&last),
        "{}",
        f.advice
    );
}

/// The object changed between the check and the fix: `Changed`, nothing written.
#[tokio::test]
async fn object_changed_since_the_check_is_changed_and_nothing_is_written() {
    let Some(bed) = Bed::new("objchanged").await else {
        return;
    };
    let v1 = state(1, "l");
    bed.terraform_write(KEY, &v1).await;
    bed.put_object(KEY, &state(2, "l")).await;
    let store = bed.table_store().await;
    let fix = only(diagnose(store.as_ref()).await).fix.unwrap();
    bed.put_object(KEY, &state(3, "l")).await;
    let rows = bed.table_rows().await;
    let err = store.repair(&fix).await.unwrap_err();
    assert_eq!(err.kind(), Kind::Changed, "{err}");
    assert!(err.to_string().contains("nothing was written"), "{err}");
    assert_eq!(bed.table_rows().await, rows);
    assert_eq!(
        bed.digest(KEY).await.as_deref(),
        Some(md5_hex(&v1).as_str())
    );
}

/// The digest changed between the check and the fix (a Terraform run wrote it): the
/// update's condition fails, `Changed`, and the new digest stays.
#[tokio::test]
async fn digest_changed_since_the_check_is_changed() {
    let Some(bed) = Bed::new("digchanged").await else {
        return;
    };
    bed.terraform_write(KEY, &state(1, "l")).await;
    bed.put_object(KEY, &state(2, "l")).await;
    let store = bed.table_store().await;
    let fix = only(diagnose(store.as_ref()).await).fix.unwrap();
    bed.put_digest(KEY, "ffffffffffffffffffffffffffffffff")
        .await;
    let rows = bed.table_rows().await;
    let err = store.repair(&fix).await.unwrap_err();
    assert_eq!(err.kind(), Kind::Changed, "{err}");
    assert_eq!(bed.table_rows().await, rows);
}

/// A lock on the state (a DynamoDB lock row, or a lockfile): shown as evidence, and the
/// fix is refused while it is held; nothing is written.
#[tokio::test]
async fn a_held_lock_refuses_the_fix() {
    let Some(bed) = Bed::new("locked").await else {
        return;
    };
    let v1 = state(1, "l");
    bed.terraform_write(KEY, &v1).await;
    bed.put_object(KEY, &state(2, "l")).await;
    let store = bed.table_store().await;
    let fix = only(diagnose(store.as_ref()).await).fix.unwrap();

    bed.lock_row(KEY).await;
    let f = only(diagnose(store.as_ref()).await);
    assert!(evidence(&f, "lock").contains("lock row"), "{f:#?}");
    assert!(f.advice.contains("A lock is held"), "{}", f.advice);
    let rows = bed.table_rows().await;
    let err = store.repair(&fix).await.unwrap_err();
    assert_eq!(err.kind(), Kind::Refused, "{err}");
    assert_eq!(bed.table_rows().await, rows);

    // A lockfile alone (use_lockfile) refuses it too.
    bed.ddb
        .delete_item()
        .table_name(&bed.table)
        .key("LockID", AttributeValue::S(format!("{}/{KEY}", bed.bucket)))
        .send()
        .await
        .unwrap();
    bed.lockfile(KEY).await;
    let rows = bed.table_rows().await;
    let err = store.repair(&fix).await.unwrap_err();
    assert_eq!(err.kind(), Kind::Refused, "{err}");
    assert!(err.to_string().contains(".tflock"), "{err}");
    assert_eq!(bed.table_rows().await, rows);
    assert_eq!(
        bed.digest(KEY).await.as_deref(),
        Some(md5_hex(&v1).as_str())
    );
}

/// A digest row whose state object is gone (no versioning): found, and removed with a
/// conditional delete of that row only; an object that appears before the fix makes it
/// `Changed`.
#[tokio::test]
async fn digest_row_without_state_is_found_and_removed() {
    let Some(bed) = Bed::new("nostate").await else {
        return;
    };
    bed.terraform_write(KEY, &state(1, "l")).await;
    let gone = ws_key("gone");
    bed.terraform_write(&gone, &state(2, "g")).await;
    bed.delete_object(&gone).await;
    let back = ws_key("back");
    bed.terraform_write(&back, &state(3, "b")).await;
    bed.delete_object(&back).await;

    let store = bed.table_store().await;
    let mut found = diagnose(store.as_ref()).await;
    assert_eq!(found.len(), 2, "{found:#?}");
    found.sort_by(|a, b| a.subject.cmp(&b.subject));
    let (back_f, gone_f) = (&found[0], &found[1]);
    assert_eq!(gone_f.kind, "digest-without-state");
    assert_eq!(gone_f.workspace.as_deref(), Some("gone"));
    assert!(evidence(gone_f, "state object").contains("does not exist"));
    assert!(gone_f.advice.contains("aws dynamodb delete-item"));

    let others = bed.rows_except_digest(&gone).await;
    store.repair(gone_f.fix.as_ref().unwrap()).await.unwrap();
    assert_eq!(bed.digest(&gone).await, None);
    assert_eq!(bed.rows_except_digest(&gone).await, others);

    // Someone puts the state back before the fix runs: nothing is removed.
    bed.put_object(&back, &state(3, "b")).await;
    let rows = bed.table_rows().await;
    let err = store
        .repair(back_f.fix.as_ref().unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), Kind::Changed, "{err}");
    assert_eq!(bed.table_rows().await, rows);
    assert!(diagnose(store.as_ref()).await.is_empty());
}

/// With versioning, a deleted state that S3 still has: the deletion and the restorable
/// version are named, and no automatic fix is offered (restoring comes first).
#[tokio::test]
async fn deleted_state_with_a_restorable_version_offers_restore_not_a_fix() {
    let Some(bed) = Bed::new("restorable").await else {
        return;
    };
    bed.versioning().await;
    let v = bed.terraform_write(KEY, &state(8, "l")).await.unwrap();
    bed.delete_object(KEY).await;
    let f = only(diagnose(bed.table_store().await.as_ref()).await);
    assert_eq!(f.kind, "digest-without-state");
    assert!(
        evidence(&f, "state object").contains("delete marker"),
        "{f:#?}"
    );
    assert!(evidence(&f, "version matching the stored digest").contains(&v));
    assert!(f.fix.is_none(), "{f:#?}");
    assert!(
        f.advice.contains("aws s3api copy-object") && f.advice.contains(&v),
        "{}",
        f.advice
    );
}

/// An empty state object is what Terraform reads as no state: reported as such.
#[tokio::test]
async fn empty_state_object_counts_as_no_state() {
    let Some(bed) = Bed::new("empty").await else {
        return;
    };
    bed.terraform_write(KEY, &state(1, "l")).await;
    bed.put_object(KEY, b"").await;
    let store = bed.table_store().await;
    let f = only(diagnose(store.as_ref()).await);
    assert_eq!(f.kind, "digest-without-state");
    assert!(evidence(&f, "state object").contains("empty"), "{f:#?}");
    store.repair(f.fix.as_ref().unwrap()).await.unwrap();
    assert_eq!(bed.digest(KEY).await, None);
}

/// A table target without a scope checks every digest row under it, in every bucket.
#[tokio::test]
async fn an_unscoped_table_checks_every_digest_row() {
    let Some(bed) = Bed::new("unscoped").await else {
        return;
    };
    bed.terraform_write(KEY, &state(1, "l")).await;
    bed.terraform_write("team-b/terraform.tfstate", &state(1, "m"))
        .await;
    bed.put_object("team-b/terraform.tfstate", &state(2, "m"))
        .await;
    let store = open(
        &format!(
            "dynamodb://{}?endpoint={}&s3_endpoint={}",
            bed.table, bed.moto, bed.moto
        ),
        &[],
    )
    .await;
    let f = only(diagnose(store.as_ref()).await);
    assert_eq!(
        f.subject,
        format!("{}/team-b/terraform.tfstate", bed.bucket)
    );
    assert_eq!(f.workspace.as_deref(), Some("default"));
}

/// The update's reply is lost: the fix is not sent again, and a second read confirms it.
/// Dropped before it reached the table: a failure saying nothing changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_reply_is_settled_by_reading_again() {
    let Some(bed) = Bed::new("lost").await else {
        return;
    };
    bed.terraform_write(KEY, &state(1, "l")).await;
    let v2 = state(2, "l");
    bed.put_object(KEY, &v2).await;
    let relay = Relay::start(&bed.moto).await;
    let store = open(&bed.scoped(&relay.url), &[("s3_endpoint", &bed.moto)]).await;
    let fix = only(diagnose(store.as_ref()).await).fix.unwrap();
    let is_update = |s: &tflock_core::testkit::relay::Seen| {
        s.header("x-amz-target")
            .is_some_and(|t| t.ends_with(".UpdateItem"))
    };

    let dropped = std::sync::Mutex::new(false);
    relay.set_rule(move |s| {
        if is_update(s) && !std::mem::replace(&mut *dropped.lock().unwrap(), true) {
            Verdict::Drop
        } else {
            Verdict::Forward
        }
    });
    let err = store.repair(&fix).await.unwrap_err();
    assert_ne!(err.kind(), Kind::OutcomeUnknown, "{err}");
    assert!(err.to_string().contains("unchanged"), "{err}");
    assert_ne!(
        bed.digest(KEY).await.as_deref(),
        Some(md5_hex(&v2).as_str())
    );

    let lost = std::sync::Mutex::new(false);
    relay.set_rule(move |s| {
        if is_update(s) && !std::mem::replace(&mut *lost.lock().unwrap(), true) {
            Verdict::LoseReply
        } else {
            Verdict::Forward
        }
    });
    relay.clear();
    let done = store
        .repair(&fix)
        .await
        .unwrap_or_else(|e| panic!("a lost reply must be confirmed by reading: {e}"));
    assert!(done.done[0].contains("second read confirmed"), "{done:?}");
    assert_eq!(
        bed.digest(KEY).await.as_deref(),
        Some(md5_hex(&v2).as_str())
    );
    let updates = relay.seen().into_iter().filter(|s| is_update(s)).count();
    assert_eq!(updates, 1, "the update was sent again");
}

/// A lockfile whose state object does not exist is reported with its lock ID and the
/// break command; lockfiles beside existing states are not.
#[tokio::test]
async fn orphan_lockfiles_are_found() {
    let Some(bed) = Bed::new("orphan").await else {
        return;
    };
    bed.put_object(KEY, &state(1, "l")).await;
    bed.lockfile(KEY).await;
    let id = bed.lockfile(&ws_key("feature")).await;
    // Another configuration's orphan is not this target's business.
    bed.lockfile("other/terraform.tfstate").await;
    let store = open(
        &format!("s3://{}?key={KEY}&endpoint={}", bed.bucket, bed.moto),
        &[],
    )
    .await;
    let f = only(diagnose(store.as_ref()).await);
    assert_eq!(f.kind, "orphan-lockfile");
    assert_eq!(f.workspace.as_deref(), Some("feature"));
    assert_eq!(evidence(&f, "lock ID"), id);
    assert!(
        f.advice.contains(&format!("tflock break --id {id}")),
        "{}",
        f.advice
    );
    assert!(f.fix.is_none());
    // The whole bucket, unscoped: both orphans.
    let all = open(&format!("s3://{}?endpoint={}", bed.bucket, bed.moto), &[]).await;
    assert_eq!(diagnose(all.as_ref()).await.len(), 2);
}

/// SSE-C: with the block's key, every read of the state carries it (and the check
/// works); without one, S3's refusal is reported as "cannot be checked", not as an error.
/// moto does not enforce SSE-C, so the relay records the headers, and answers the way S3
/// does (400 on HEAD without the key) for the second part.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_c_state_is_read_with_its_key_or_reported_uncheckable() {
    use base64::Engine as _;
    let Some(bed) = Bed::new("ssec").await else {
        return;
    };
    bed.terraform_write(KEY, &state(1, "l")).await;
    bed.put_object(KEY, &state(2, "l")).await;
    let relay = Relay::start(&bed.moto).await;
    let key = base64::engine::general_purpose::STANDARD.encode([42u8; 32]);
    let key_md5 = base64::engine::general_purpose::STANDARD.encode(Md5::digest([42u8; 32]));
    let store = open(
        &bed.scoped(&bed.moto),
        &[("s3_endpoint", &relay.url), ("sse_customer_key", &key)],
    )
    .await;
    let f = only(diagnose(store.as_ref()).await);
    assert_eq!(f.kind, "digest-mismatch");
    let text = format!("{f:?}");
    assert!(!text.contains(&key), "the key was shown: {text}");
    let reads: Vec<_> = relay
        .seen()
        .into_iter()
        .filter(|s| {
            matches!(s.method.as_str(), "GET" | "HEAD")
                && s.target.contains(KEY)
                && !s.target.contains('?')
        })
        .collect();
    assert!(!reads.is_empty());
    for r in &reads {
        assert_eq!(
            r.header("x-amz-server-side-encryption-customer-key-md5"),
            Some(key_md5.as_str()),
            "{r:?}"
        );
    }

    relay.set_rule(|s| {
        if s.method == "HEAD" && s.target.ends_with("terraform.tfstate") {
            Verdict::Answer(400, String::new())
        } else {
            Verdict::Forward
        }
    });
    let without = open(&bed.scoped(&bed.moto), &[("s3_endpoint", &relay.url)]).await;
    let f = only(diagnose(without.as_ref()).await);
    assert_eq!(f.kind, "digest-unchecked");
    assert!(f.summary.contains("SSE-C"), "{}", f.summary);
    assert!(f.fix.is_none());
}

/// The SSE-C key is a secret: refused on the URL (the target's name) without echo. A
/// key that is not 256 bits fails the doctor only (a usage error, not shown), never the
/// listing.
#[tokio::test]
async fn sse_key_on_the_url_is_refused_and_a_bad_key_fails_only_the_doctor() {
    let Some(bed) = Bed::new("badkey").await else {
        return;
    };
    let bad = "c2hvcnQta2V5";
    let store = open(&bed.scoped(&bed.moto), &[("sse_customer_key", bad)]).await;
    assert!(store.list().await.unwrap().is_empty());
    let err = store.diagnose().await.unwrap_err();
    assert_eq!(err.kind(), Kind::Usage);
    assert!(
        err.to_string().contains("256-bit") && !err.to_string().contains(bad),
        "{err}"
    );

    let key = "c2VjcmV0LWtleS1jMmVqY21WMExXdGxlUzFqTW1WcQ==";
    let t = Target::parse(&format!("dynamodb://t?sse_customer_key={key}")).unwrap();
    let err = match tflock_aws::open(&t, &ConnectOptions::default()).await {
        Err(e) => e,
        Ok(_) => panic!("opened"),
    };
    assert_eq!(err.kind(), Kind::Usage);
    assert!(!err.to_string().contains(key), "{err}");
}

/// The same for removing a digest row without state: a lost reply is confirmed by a
/// second read (the row is gone), and the delete is sent once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_delete_reply_is_settled_by_reading_again() {
    let Some(bed) = Bed::new("lostdel").await else {
        return;
    };
    bed.terraform_write(KEY, &state(1, "l")).await;
    bed.delete_object(KEY).await;
    let relay = Relay::start(&bed.moto).await;
    let store = open(&bed.scoped(&relay.url), &[("s3_endpoint", &bed.moto)]).await;
    let f = only(diagnose(store.as_ref()).await);
    assert_eq!(f.kind, "digest-without-state");
    let is_delete = |s: &tflock_core::testkit::relay::Seen| {
        s.header("x-amz-target")
            .is_some_and(|t| t.ends_with(".DeleteItem"))
    };
    let lost = std::sync::Mutex::new(false);
    relay.set_rule(move |s| {
        if is_delete(s) && !std::mem::replace(&mut *lost.lock().unwrap(), true) {
            Verdict::LoseReply
        } else {
            Verdict::Forward
        }
    });
    let others = bed.rows_except_digest(KEY).await;
    let done = store
        .repair(f.fix.as_ref().unwrap())
        .await
        .unwrap_or_else(|e| panic!("a lost reply must be confirmed by reading: {e}"));
    assert!(done.done[0].contains("second read confirmed"), "{done:?}");
    assert_eq!(bed.digest(KEY).await, None);
    assert_eq!(bed.rows_except_digest(KEY).await, others);
    let deletes = relay.seen().into_iter().filter(|s| is_delete(s)).count();
    assert_eq!(deletes, 1, "the delete was sent again");
}
