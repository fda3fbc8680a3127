//! The core conformance suite for `dynamodb://` and `s3://` against moto, plus the bad
//! inputs an operator meets: undecodable rows and lockfiles, missing tables and buckets,
//! rejected credentials and a dead endpoint.
//!
//! Locks are written here exactly as Terraform's s3 backend writes them, with the state
//! object and the `-md5` digest row beside them, through plain SDK clients (not the store
//! under test).

mod support;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{ddb_client, lock_table, moto, s3_client, unique};
use tflock_core::testkit::{sample_info, Fixture, Network, Place};
use tflock_core::{BreakOptions, ConnectOptions, Error, LockInfo, LockStore, Target};

/// The state key Terraform uses for a workspace (default `workspace_key_prefix`).
fn state_key(state: &str) -> String {
    if state == "default" {
        "terraform.tfstate".into()
    } else {
        format!("env:/{state}/terraform.tfstate")
    }
}

/// Direct SDK clients for setting up and inspecting, like Terraform's own.
#[derive(Clone)]
struct Clients {
    endpoint: String,
    s3: aws_sdk_s3::Client,
    ddb: aws_sdk_dynamodb::Client,
}

impl Clients {
    async fn new(endpoint: &str) -> Clients {
        Clients {
            endpoint: endpoint.to_string(),
            s3: s3_client(endpoint).await,
            ddb: ddb_client(endpoint).await,
        }
    }

    async fn bucket(&self, name: &str) {
        self.s3.create_bucket().bucket(name).send().await.unwrap();
    }

    async fn table(&self, name: &str) {
        lock_table(&self.ddb, name).await;
    }

    /// The state object Terraform keeps beside the lock (written once per state).
    async fn state_object(&self, bucket: &str, key: &str) {
        let exists = self.s3.head_object().bucket(bucket).key(key).send().await;
        if exists.is_err() {
            let body = format!("{{\"version\":4,\"serial\":1,\"lineage\":\"{key}\"}}");
            self.s3
                .put_object()
                .bucket(bucket)
                .key(key)
                .body(body.into_bytes().into())
                .send()
                .await
                .unwrap();
        }
    }

    /// Terraform's lockfile: `If-None-Match: *`, JSON body.
    async fn put_lockfile(&self, bucket: &str, key: &str, body: &str) {
        self.s3
            .put_object()
            .bucket(bucket)
            .key(format!("{key}.tflock"))
            .content_type("application/json")
            .if_none_match("*")
            .body(body.as_bytes().to_vec().into())
            .send()
            .await
            .unwrap();
    }

    /// Terraform's lock row: `PutItem` with `attribute_not_exists(LockID)`.
    async fn put_row(&self, table: &str, lock_id: &str, info: &str) {
        self.ddb
            .put_item()
            .table_name(table)
            .item("LockID", AttributeValue::S(lock_id.into()))
            .item("Info", AttributeValue::S(info.into()))
            .condition_expression("attribute_not_exists(LockID)")
            .send()
            .await
            .unwrap();
    }

    /// The digest row Terraform keeps for every state (`<bucket>/<key>-md5`).
    async fn put_digest(&self, table: &str, lock_id: &str) {
        let digest = format!("{:032x}", lock_id.len() as u128 * 0x9e37_79b9_7f4a_7c15);
        self.ddb
            .put_item()
            .table_name(table)
            .item("LockID", AttributeValue::S(format!("{lock_id}-md5")))
            .item("Digest", AttributeValue::S(digest))
            .send()
            .await
            .unwrap();
    }

    async fn row_info(&self, table: &str, lock_id: &str) -> Option<String> {
        let out = self
            .ddb
            .get_item()
            .table_name(table)
            .key("LockID", AttributeValue::S(lock_id.into()))
            .consistent_read(true)
            .send()
            .await
            .unwrap();
        out.item()?.get("Info")?.as_s().ok().cloned()
    }

    async fn lockfile(&self, bucket: &str, key: &str) -> Option<String> {
        let out = self
            .s3
            .get_object()
            .bucket(bucket)
            .key(format!("{key}.tflock"))
            .send()
            .await
            .ok()?;
        let bytes = out.body.collect().await.unwrap().into_bytes();
        Some(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Every object but lockfiles: key, ETag, last modified, bytes.
    async fn objects_fingerprint(&self, bucket: &str) -> Vec<String> {
        let list = self
            .s3
            .list_objects_v2()
            .bucket(bucket)
            .send()
            .await
            .unwrap();
        let mut out = Vec::new();
        for obj in list.contents() {
            let key = obj.key().unwrap().to_string();
            if key.ends_with(".tflock") {
                continue;
            }
            let got = self
                .s3
                .get_object()
                .bucket(bucket)
                .key(&key)
                .send()
                .await
                .unwrap();
            let etag = got.e_tag().unwrap_or_default().to_string();
            let modified = format!("{:?}", got.last_modified());
            let bytes = got.body.collect().await.unwrap().into_bytes();
            out.push(format!("s3 {key} {etag} {modified} {bytes:?}"));
        }
        out.sort();
        out
    }

    /// Every row that is not a lock row, with all its attributes.
    async fn digest_fingerprint(&self, table: &str) -> Vec<String> {
        let out = self
            .ddb
            .scan()
            .table_name(table)
            .consistent_read(true)
            .send()
            .await
            .unwrap();
        let mut rows: Vec<String> = out
            .items()
            .iter()
            .filter(|i| !i.contains_key("Info"))
            .map(|i| {
                let mut attrs: Vec<String> = i.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
                attrs.sort();
                format!("row {}", attrs.join(","))
            })
            .collect();
        rows.sort();
        rows
    }
}

async fn open(url: &str) -> Arc<dyn LockStore> {
    open_with(url, &ConnectOptions::default()).await.unwrap()
}

async fn open_with(url: &str, opts: &ConnectOptions) -> Result<Arc<dyn LockStore>, Error> {
    tflock_aws::open(&Target::parse(url)?, opts).await
}

// ---------------------------------------------------------------- dynamodb://

struct DynamoPlace {
    c: Clients,
    table: String,
    bucket: String,
    store: Arc<dyn LockStore>,
}

impl DynamoPlace {
    fn lock_id(&self, state: &str) -> String {
        format!("{}/{}", self.bucket, state_key(state))
    }

    /// State object and digest row first, as `terraform init`/`apply` leave them.
    async fn beside(&self, state: &str) {
        self.c.state_object(&self.bucket, &state_key(state)).await;
        if self
            .c
            .ddb
            .get_item()
            .table_name(&self.table)
            .key(
                "LockID",
                AttributeValue::S(format!("{}-md5", self.lock_id(state))),
            )
            .send()
            .await
            .unwrap()
            .item()
            .is_none()
        {
            self.c.put_digest(&self.table, &self.lock_id(state)).await;
        }
    }
}

#[async_trait]
impl Place for DynamoPlace {
    fn store(&self) -> &dyn LockStore {
        self.store.as_ref()
    }
    fn path_of(&self, state: &str) -> String {
        self.lock_id(state)
    }
    async fn hold(&self, state: &str, info: &LockInfo) -> String {
        self.beside(state).await;
        self.c
            .put_row(&self.table, &self.lock_id(state), &info.to_terraform_json())
            .await;
        info.id.clone()
    }
    async fn retake(&self, state: &str, info: &LockInfo) -> String {
        // Terraform's unlock: an unconditional DeleteItem; then a new lock.
        self.c
            .ddb
            .delete_item()
            .table_name(&self.table)
            .key("LockID", AttributeValue::S(self.lock_id(state)))
            .send()
            .await
            .unwrap();
        self.hold(state, info).await
    }
    async fn current(&self, state: &str) -> Option<String> {
        let info = self.c.row_info(&self.table, &self.lock_id(state)).await?;
        Some(LockInfo::parse(&info).ok()?.id)
    }
    async fn hold_garbage(&self, state: &str) {
        self.beside(state).await;
        self.c
            .put_row(&self.table, &self.lock_id(state), "{\"ID\": not json")
            .await;
    }
    async fn untouchables(&self) -> String {
        let mut all = self.c.digest_fingerprint(&self.table).await;
        all.extend(self.c.objects_fingerprint(&self.bucket).await);
        all.join("\n")
    }
}

struct DynamoFixture(Clients);

impl DynamoFixture {
    async fn fresh(&self, name: &str) -> DynamoPlace {
        self.fresh_via(name, &self.0.endpoint).await
    }

    /// A place whose store talks to `endpoint` (moto, or a relay in front of it).
    async fn fresh_via(&self, name: &str, endpoint: &str) -> DynamoPlace {
        let (table, bucket) = (unique(name), unique(name));
        self.0.table(&table).await;
        self.0.bucket(&bucket).await;
        let store = open(&format!("dynamodb://{table}?endpoint={endpoint}")).await;
        DynamoPlace {
            c: self.0.clone(),
            table,
            bucket,
            store,
        }
    }
}

#[async_trait]
impl Fixture for DynamoFixture {
    async fn place(&self, name: &str) -> Box<dyn Place> {
        Box::new(self.fresh(name).await)
    }
    fn network(&self) -> Option<&dyn Network> {
        Some(self)
    }
}

#[async_trait]
impl Network for DynamoFixture {
    async fn open(&self, url: &str, opts: &ConnectOptions) -> Result<Arc<dyn LockStore>, Error> {
        open_with(url, opts).await
    }
    fn bad_targets(&self) -> Vec<String> {
        let ep = &self.0.endpoint;
        let mut bad = common_bad_targets("dynamodb", ep);
        bad.extend([
            format!("dynamodb://?endpoint={ep}"),
            format!("dynamodb://t?segments=0&endpoint={ep}"),
            format!("dynamodb://t?segments=65&endpoint={ep}"),
            format!("dynamodb://t?bucket=b&endpoint={ep}"),
            format!("dynamodb://t?bucket=b&key=k&segments=2&endpoint={ep}"),
            format!("dynamodb://t/b/?bucket=b&key=k&endpoint={ep}"),
            format!("dynamodb://t?s3_endpoint=ftp://x&endpoint={ep}"),
        ]);
        bad
    }
    fn target_at(&self, endpoint: &str) -> String {
        format!("dynamodb://tflock-nowhere?endpoint={endpoint}")
    }
    fn missing(&self) -> (String, String) {
        let table = unique("missing-table");
        (
            format!("dynamodb://{table}?endpoint={}", self.0.endpoint),
            table,
        )
    }
    fn emulator(&self) -> Option<String> {
        Some(self.0.endpoint.clone())
    }
    async fn place_via(&self, name: &str, endpoint: &str) -> Box<dyn Place> {
        Box::new(self.fresh_via(name, endpoint).await)
    }
}

/// Targets every AWS scheme refuses before sending anything.
fn common_bad_targets(scheme: &str, ep: &str) -> Vec<String> {
    vec![
        format!("{scheme}://x?regoin=us-east-1&endpoint={ep}"),
        format!(
            "{scheme}://x?endpoint=ftp://{}",
            ep.trim_start_matches("http://")
        ),
        format!("{scheme}://x?endpoint=not-a-url"),
        format!("{scheme}://x?secret_key=s3cr3t&endpoint={ep}"),
        format!("{scheme}://x?region=us%0Aeast-1&endpoint={ep}"),
        format!("{scheme}://x?role_arn=r&assume_role_duration=1s&endpoint={ep}"),
        format!("{scheme}://x?key=k&workspace_key_prefix=p&workspace=dev&endpoint={ep}"),
    ]
}

async fn dynamo_fixture() -> Option<DynamoFixture> {
    Some(DynamoFixture(Clients::new(&moto()?).await))
}

mod dynamodb {
    use super::*;
    tflock_core::conformance_suite!(dynamo_fixture(); network);
}

// ---------------------------------------------------------------- s3://

struct S3Place {
    c: Clients,
    bucket: String,
    store: Arc<dyn LockStore>,
}

#[async_trait]
impl Place for S3Place {
    fn store(&self) -> &dyn LockStore {
        self.store.as_ref()
    }
    fn path_of(&self, state: &str) -> String {
        format!("{}/{}", self.bucket, state_key(state))
    }
    async fn hold(&self, state: &str, info: &LockInfo) -> String {
        self.c.state_object(&self.bucket, &state_key(state)).await;
        self.c
            .put_lockfile(&self.bucket, &state_key(state), &info.to_terraform_json())
            .await;
        info.id.clone()
    }
    async fn retake(&self, state: &str, info: &LockInfo) -> String {
        // Terraform's unlock: an unconditional DeleteObject; then a new lock.
        self.c
            .s3
            .delete_object()
            .bucket(&self.bucket)
            .key(format!("{}.tflock", state_key(state)))
            .send()
            .await
            .unwrap();
        self.hold(state, info).await
    }
    async fn current(&self, state: &str) -> Option<String> {
        let body = self.c.lockfile(&self.bucket, &state_key(state)).await?;
        Some(LockInfo::parse(&body).ok()?.id)
    }
    async fn hold_garbage(&self, state: &str) {
        self.c.state_object(&self.bucket, &state_key(state)).await;
        self.c
            .put_lockfile(&self.bucket, &state_key(state), "{\"ID\": not json")
            .await;
    }
    async fn untouchables(&self) -> String {
        self.c.objects_fingerprint(&self.bucket).await.join("\n")
    }
}

struct S3Fixture(Clients);

impl S3Fixture {
    async fn fresh(&self, name: &str) -> S3Place {
        self.fresh_via(name, &self.0.endpoint).await
    }

    /// A place whose store talks to `endpoint` (moto, or a relay in front of it).
    async fn fresh_via(&self, name: &str, endpoint: &str) -> S3Place {
        let bucket = unique(name);
        self.0.bucket(&bucket).await;
        let store = open(&format!("s3://{bucket}?endpoint={endpoint}")).await;
        S3Place {
            c: self.0.clone(),
            bucket,
            store,
        }
    }
}

#[async_trait]
impl Fixture for S3Fixture {
    async fn place(&self, name: &str) -> Box<dyn Place> {
        Box::new(self.fresh(name).await)
    }
    fn network(&self) -> Option<&dyn Network> {
        Some(self)
    }
}

#[async_trait]
impl Network for S3Fixture {
    async fn open(&self, url: &str, opts: &ConnectOptions) -> Result<Arc<dyn LockStore>, Error> {
        open_with(url, opts).await
    }
    fn bad_targets(&self) -> Vec<String> {
        let ep = &self.0.endpoint;
        let mut bad = common_bad_targets("s3", ep);
        bad.extend([
            format!("s3://?endpoint={ep}"),
            format!("s3://b?segments=2&endpoint={ep}"),
            format!("s3://b?s3_endpoint={ep}&endpoint={ep}"),
            format!("s3://b/team/?key=k&endpoint={ep}"),
            format!("s3://b?workspace_key_prefix=w&endpoint={ep}"),
        ]);
        bad
    }
    fn target_at(&self, endpoint: &str) -> String {
        format!("s3://tflock-nowhere?endpoint={endpoint}")
    }
    fn missing(&self) -> (String, String) {
        let bucket = unique("missing-bucket");
        (
            format!("s3://{bucket}?endpoint={}", self.0.endpoint),
            bucket,
        )
    }
    fn emulator(&self) -> Option<String> {
        Some(self.0.endpoint.clone())
    }
    async fn place_via(&self, name: &str, endpoint: &str) -> Box<dyn Place> {
        Box::new(self.fresh_via(name, endpoint).await)
    }
}

async fn s3_fixture() -> Option<S3Fixture> {
    Some(S3Fixture(Clients::new(&moto()?).await))
}

mod s3 {
    use super::*;
    tflock_core::conformance_suite!(s3_fixture(); network);
}

// ---------------------------------------------------------------- beyond the suite

/// Info rows that are not JSON, empty, or lack an ID are listed with the reason, and can
/// be broken by location with the same exact-string condition.
#[tokio::test]
async fn dynamodb_undecodable_rows_are_listed_and_breakable_by_location() {
    let Some(f) = dynamo_fixture().await else {
        return;
    };
    let p = f.fresh("badinfo").await;
    let cases = [
        ("notjson", "this is not json"),
        ("empty", ""),
        ("noid", r#"{"Operation":"OperationTypeApply","Who":"a@b"}"#),
    ];
    for (ws, info) in cases {
        p.beside(ws).await;
        p.c.put_row(&p.table, &p.lock_id(ws), info).await;
    }
    let before = p.untouchables().await;
    let locks = p.store.list().await.unwrap();
    assert_eq!(locks.len(), 3, "{locks:#?}");
    for lock in &locks {
        assert!(lock.id.is_empty(), "{lock:#?}");
        assert!(lock.info_error.is_some(), "{lock:#?}");
        assert!(lock
            .location
            .starts_with(&format!("dynamodb://{}/", p.table)));
        assert!(lock.matches_id(&lock.location));
        assert_eq!(lock.path, lock.details["lock_id"]);
    }
    let reasons: Vec<&str> = locks
        .iter()
        .filter_map(|l| l.info_error.as_deref())
        .collect();
    assert!(
        reasons.iter().any(|r| r.contains("not valid JSON")),
        "{reasons:?}"
    );
    assert!(reasons.iter().any(|r| r.contains("empty")), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.contains("no ID")), "{reasons:?}");

    // One of them is rewritten after the listing: its break must be refused.
    let rewritten = locks
        .iter()
        .find(|l| l.details["lock_id"] == p.lock_id("notjson"))
        .unwrap();
    p.c.ddb
        .put_item()
        .table_name(&p.table)
        .item("LockID", AttributeValue::S(p.lock_id("notjson")))
        .item(
            "Info",
            AttributeValue::S("still not json, but different".into()),
        )
        .send()
        .await
        .unwrap();
    match p
        .store
        .break_lock(rewritten, &BreakOptions::default())
        .await
    {
        Err(e) if e.kind() == tflock_core::Kind::Changed => {}
        other => panic!("expected Changed, got {other:?}"),
    }
    for lock in locks.iter().filter(|l| l.location != rewritten.location) {
        p.store
            .break_lock(lock, &BreakOptions::default())
            .await
            .unwrap();
    }
    let left = p.store.list().await.unwrap();
    assert_eq!(left.len(), 1, "{left:#?}");
    assert_eq!(left[0].location, rewritten.location);
    assert_eq!(p.untouchables().await, before);
}

/// Digest rows never show up, even alone; workspaces come from `env:/<ws>/` keys; a
/// `dynamodb://TABLE/PREFIX` target only sees LockIDs under that prefix.
#[tokio::test]
async fn dynamodb_digest_rows_workspaces_and_prefix() {
    let Some(f) = dynamo_fixture().await else {
        return;
    };
    let p = f.fresh("digest").await;
    p.beside("default").await;
    p.beside("dev").await;
    assert!(p.store.list().await.unwrap().is_empty());
    let info = sample_info("OperationTypeApply", &p.lock_id("dev"));
    p.hold("dev", &info).await;
    let other_bucket = format!("other/{}", state_key("default"));
    p.c.put_row(
        &p.table,
        &other_bucket,
        &sample_info("OperationTypePlan", &other_bucket).to_terraform_json(),
    )
    .await;
    let locks = p.store.list().await.unwrap();
    assert_eq!(locks.len(), 2, "{locks:#?}");
    let dev = locks.iter().find(|l| l.id == info.id).unwrap();
    assert_eq!(dev.workspace.as_deref(), Some("dev"));
    assert_eq!(dev.details["bucket"], p.bucket);
    assert_eq!(dev.details["state_key"], "env:/dev/terraform.tfstate");
    assert_eq!(
        dev.location,
        format!(
            "dynamodb://{}/{}/env:/dev/terraform.tfstate",
            p.table, p.bucket
        )
    );
    let scoped = open(&format!(
        "dynamodb://{}/{}/?endpoint={}",
        p.table, p.bucket, p.c.endpoint
    ))
    .await;
    let locks = scoped.list().await.unwrap();
    assert_eq!(locks.len(), 1, "{locks:#?}");
    assert_eq!(locks[0].id, info.id);
}

/// `?segments=N` scans in parallel and still finds every lock row once.
#[tokio::test]
async fn dynamodb_parallel_scan_segments() {
    let Some(f) = dynamo_fixture().await else {
        return;
    };
    let p = f.fresh("segments").await;
    let mut ids = Vec::new();
    for i in 0..20 {
        let ws = format!("ws{i}");
        ids.push(
            p.hold(&ws, &sample_info("OperationTypePlan", &p.lock_id(&ws)))
                .await,
        );
    }
    let store = open(&format!(
        "dynamodb://{}?segments=4&endpoint={}",
        p.table, p.c.endpoint
    ))
    .await;
    let mut got: Vec<String> = store
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.id)
        .collect();
    got.sort();
    ids.sort();
    assert_eq!(got, ids);
    for bad in ["0", "65", "x"] {
        let err = open_with(
            &format!(
                "dynamodb://{}?segments={bad}&endpoint={}",
                p.table, p.c.endpoint
            ),
            &ConnectOptions::default(),
        )
        .await
        .err()
        .unwrap();
        assert_eq!(err.kind(), tflock_core::Kind::Usage, "{err}");
    }
}

/// Objects that are not `.tflock` are never listed; a prefix scopes the listing; a
/// lockfile without an ID is listed with the reason and breakable by location.
#[tokio::test]
async fn s3_only_lockfiles_under_the_prefix() {
    let Some(f) = s3_fixture().await else {
        return;
    };
    let p = f.fresh("prefix").await;
    for key in [
        "a/terraform.tfstate",
        "a/notes.tflock.bak",
        "b/terraform.tfstate",
    ] {
        p.c.state_object(&p.bucket, key).await;
    }
    let info = sample_info(
        "OperationTypeApply",
        &format!("{}/a/terraform.tfstate", p.bucket),
    );
    p.c.put_lockfile(&p.bucket, "a/terraform.tfstate", &info.to_terraform_json())
        .await;
    p.c.put_lockfile(&p.bucket, "b/terraform.tfstate", r#"{"Who":"x@y"}"#)
        .await;
    let before = p.untouchables().await;

    let all = p.store.list().await.unwrap();
    assert_eq!(all.len(), 2, "{all:#?}");
    let a = all.iter().find(|l| l.id == info.id).unwrap();
    assert_eq!(a.path, format!("{}/a/terraform.tfstate", p.bucket));
    assert_eq!(
        a.location,
        format!("s3://{}/a/terraform.tfstate.tflock", p.bucket)
    );
    assert_eq!(a.workspace.as_deref(), Some("default"));
    assert!(
        a.details.contains_key("etag") && a.stored_at.is_some(),
        "{a:#?}"
    );
    let b = all.iter().find(|l| l.id.is_empty()).unwrap();
    assert_eq!(b.info_error.as_deref(), Some("lock info has no ID"));
    assert_eq!(b.path, format!("{}/b/terraform.tfstate", p.bucket));

    let scoped = open(&format!("s3://{}/a/?endpoint={}", p.bucket, p.c.endpoint)).await;
    let locks = scoped.list().await.unwrap();
    assert_eq!(locks.len(), 1, "{locks:#?}");
    assert_eq!(locks[0].id, info.id);

    p.store
        .break_lock(b, &BreakOptions::default())
        .await
        .unwrap();
    assert!(p
        .c
        .lockfile(&p.bucket, "b/terraform.tfstate")
        .await
        .is_none());
    assert_eq!(p.untouchables().await, before);
}

/// Migration mode: the same LockInfo in the table and the lockfile gives the same ID and
/// path from both stores, so the CLI can merge the two halves.
#[tokio::test]
async fn migration_mode_halves_share_id_and_path() {
    let Some(f) = dynamo_fixture().await else {
        return;
    };
    let p = f.fresh("both").await;
    let info = sample_info("OperationTypeApply", &p.lock_id("dev"));
    p.c.put_lockfile(&p.bucket, &state_key("dev"), &info.to_terraform_json())
        .await;
    p.hold("dev", &info).await;
    let s3 = open(&format!("s3://{}?endpoint={}", p.bucket, p.c.endpoint)).await;
    let from_s3 = s3.list().await.unwrap();
    let from_ddb = p.store.list().await.unwrap();
    assert_eq!(from_s3.len(), 1);
    assert_eq!(from_ddb.len(), 1);
    assert_eq!(from_s3[0].id, from_ddb[0].id);
    assert_eq!(from_s3[0].path, from_ddb[0].path);
    assert_eq!(from_s3[0].workspace, from_ddb[0].workspace);
}

/// moto accepts any credentials unless started with `INITIAL_NO_AUTH_ACTION_COUNT=0`:
/// this test starts its own such moto (from `TFLOCK_MOTO_SERVER`, set by
/// scripts/emulators/moto.sh) and checks that rejected credentials are named.
#[tokio::test]
async fn rejected_credentials_are_named() {
    if moto().is_none() {
        return;
    }
    let Some(server) = std::env::var("TFLOCK_MOTO_SERVER")
        .ok()
        .filter(|s| !s.is_empty())
    else {
        eprintln!("skipping: TFLOCK_MOTO_SERVER is not set (scripts/emulators/moto.sh sets it)");
        return;
    };
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let child = std::process::Command::new(&server)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .env("INITIAL_NO_AUTH_ACTION_COUNT", "0")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start moto_server");
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _guard = Kill(child);
    let endpoint = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "moto_server did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for url in [
        format!("s3://b?endpoint={endpoint}"),
        format!("dynamodb://t?endpoint={endpoint}"),
    ] {
        let err = open(&url).await.list().await.unwrap_err();
        let text = err.to_string();
        eprintln!("{text}");
        assert!(tflock_core::testkit::is_operational(&err), "{err}");
        assert!(
            [
                "InvalidAccessKeyId",
                "UnrecognizedClientException",
                "InvalidClientTokenId"
            ]
            .iter()
            .any(|c| text.contains(c)),
            "{text}"
        );
        assert!(text.contains("access key is not known"), "{text}");
    }
}
