//! Seeds the emulators started by `scripts/bench` with N locks per backend, written the
//! way Terraform writes them (docs/benchmarks.md). Not part of the tool.
//!
//! ```sh
//! cargo run --example bench_seed -- --locks 200 s3 dynamodb gcs azure
//! cargo run --example bench_seed -- --locks 10000 --aws-endpoint URL --table T --batch-write dynamodb
//! ```
//!
//! Endpoints come from the variables `scripts/emulators/*.sh` export: `TFLOCK_TEST_MOTO`
//! (S3 + DynamoDB; `--aws-endpoint` overrides it), `TFLOCK_TEST_GCS`, `TFLOCK_TEST_AZURITE`
//! with `TFLOCK_TEST_AZURE_ACCOUNT` / `TFLOCK_TEST_AZURE_KEY`. `--bucket` / `--table` name
//! the S3 bucket and the DynamoDB table (default `bench-state`, `bench-locks`).
//! `--batch-write` writes DynamoDB rows 25 at a time with `BatchWriteItem` instead of one
//! conditional `PutItem` each (same rows; for tens of thousands of them). Every lock sits beside the state
//! it protects (an S3 / GCS state object, a DynamoDB `-md5` digest row), as in a real
//! bucket or table, so a listing has to skip those without reading them.

use futures::{StreamExt, TryStreamExt};
use md5::{Digest, Md5};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tflock_core::testkit::lock_id_from as lock_id;
use tflock_core::{ConnectOptions, LockInfo, Target};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Names `scripts/bench` lists by default.
const BUCKET: &str = "bench-state";
const TABLE: &str = "bench-locks";
const CONTAINER: &str = "bench";
/// Items per `BatchWriteItem` request: DynamoDB's maximum.
const BATCH_WRITE: usize = 25;

/// Where and how AWS data is written.
struct Aws {
    endpoint: String,
    bucket: String,
    table: String,
    batch_write: bool,
}
/// Writes in flight at once while seeding.
const PARALLEL: usize = 16;

// moto checks that a credential scope is present, not the signature.
const S3_AUTH: &str = "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0";
const DDB_AUTH: &str = "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0";

fn env(name: &str) -> Result<String, BoxError> {
    std::env::var(name).map_err(|_| format!("{name} is not set (start the emulators first)").into())
}

fn info(i: usize, seed: u64, path: String) -> LockInfo {
    let created = chrono::Utc::now() - chrono::Duration::seconds(60 * i as i64);
    LockInfo {
        id: lock_id(seed.wrapping_add(i as u64)),
        operation: "OperationTypeApply".into(),
        info: String::new(),
        who: format!("bench{}@ci-runner-{}", i % 7, i % 3),
        version: "1.11.4".into(),
        created: Some(created),
        path,
    }
}

/// A small but real-looking Terraform state body.
fn state_body(i: usize) -> String {
    format!(
        "{{\"version\":4,\"terraform_version\":\"1.11.4\",\"serial\":{i},\"lineage\":\"{}\",\"outputs\":{{}},\"resources\":[],\"check_results\":null}}\n",
        lock_id(i as u64)
    )
}

/// State key of lock `i`: one backend block per stack, default workspace.
fn state_key(i: usize) -> String {
    format!("stacks/s{i:04}/terraform.tfstate")
}

async fn check(rsp: reqwest::Response, what: &str) -> Result<(), BoxError> {
    let status = rsp.status();
    if status.is_success() {
        return Ok(());
    }
    let body = rsp.text().await.unwrap_or_default();
    Err(format!(
        "{what}: HTTP {status}: {}",
        body.chars().take(300).collect::<String>()
    )
    .into())
}

async fn for_each<F, Fut>(n: usize, f: F) -> Result<(), BoxError>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Result<(), BoxError>>,
{
    futures::stream::iter((0..n).map(f))
        .buffer_unordered(PARALLEL)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

/// s3 backend with `use_lockfile = true`: the state object, then `<key>.tflock` created
/// with `If-None-Match: *`, body = LockInfo JSON, `Content-Type: application/json`.
async fn seed_s3(
    http: &reqwest::Client,
    aws: &Aws,
    n: usize,
    seed: u64,
) -> Result<String, BoxError> {
    let (endpoint, bucket) = (&aws.endpoint, &aws.bucket);
    let rsp = http
        .put(format!("{endpoint}/{bucket}"))
        .header("Authorization", S3_AUTH)
        .send()
        .await?;
    check(rsp, "creating the bucket").await?;
    for_each(n, |i| async move {
        let key = state_key(i);
        let rsp = http
            .put(format!("{endpoint}/{bucket}/{key}"))
            .header("Authorization", S3_AUTH)
            .header("Content-Type", "application/json")
            .body(state_body(i))
            .send()
            .await?;
        check(rsp, &format!("writing state {key}")).await?;
        let lock = info(i, seed, format!("{bucket}/{key}")).to_terraform_json();
        let rsp = http
            .put(format!("{endpoint}/{bucket}/{key}.tflock"))
            .header("Authorization", S3_AUTH)
            .header("Content-Type", "application/json")
            .header("If-None-Match", "*")
            .body(lock)
            .send()
            .await?;
        check(rsp, &format!("locking {key}")).await
    })
    .await?;
    Ok(format!("s3://{bucket}"))
}

async fn dynamodb(
    http: &reqwest::Client,
    aws: &Aws,
    op: &str,
    body: serde_json::Value,
) -> Result<(), BoxError> {
    let rsp = http
        .post(format!("{}/", aws.endpoint))
        .header("Authorization", DDB_AUTH)
        .header("X-Amz-Target", format!("DynamoDB_20120810.{op}"))
        .header("Content-Type", "application/x-amz-json-1.0")
        .body(body.to_string())
        .send()
        .await?;
    check(rsp, op).await
}

/// DynamoDB's item size: attribute names plus UTF-8 string values. A Scan page holds up
/// to 1 MB of items read (before the filter), so this sets the fewest pages possible.
fn item_bytes(item: &[(&str, &str)]) -> usize {
    item.iter().map(|(k, v)| k.len() + v.len()).sum()
}

/// s3 backend with `dynamodb_table`: per state, the digest row Terraform keeps
/// (`<bucket>/<key>-md5`, `Digest` = hex MD5 of the state) and the lock row
/// (`LockID = <bucket>/<key>`, `Info` = LockInfo JSON) put with `attribute_not_exists(LockID)`
/// (or both in one `BatchWriteItem` of up to 25 rows with `--batch-write`).
/// Returns the target and the table's size in bytes.
async fn seed_dynamodb(
    http: &reqwest::Client,
    aws: &Aws,
    n: usize,
    seed: u64,
) -> Result<(String, usize), BoxError> {
    let table = &aws.table;
    dynamodb(
        http,
        aws,
        "CreateTable",
        serde_json::json!({
            "TableName": table,
            "AttributeDefinitions": [{"AttributeName": "LockID", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "LockID", "KeyType": "HASH"}],
            "BillingMode": "PAY_PER_REQUEST",
        }),
    )
    .await?;
    // (digest row, lock row) of lock i, and their size by DynamoDB's rule.
    let rows = |i: usize| {
        let lock_id = format!("{}/{}", aws.bucket, state_key(i));
        let digest_id = format!("{lock_id}-md5");
        let digest: String = Md5::digest(state_body(i).as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let info = info(i, seed, lock_id.clone()).to_terraform_json();
        let bytes = item_bytes(&[("LockID", &digest_id), ("Digest", &digest)])
            + item_bytes(&[("LockID", &lock_id), ("Info", &info)]);
        (
            serde_json::json!({"LockID": {"S": digest_id}, "Digest": {"S": digest}}),
            serde_json::json!({"LockID": {"S": lock_id}, "Info": {"S": info}}),
            bytes,
        )
    };
    let bytes = std::sync::atomic::AtomicUsize::new(0);
    let bytes = &bytes;
    if aws.batch_write {
        let per_request = BATCH_WRITE / 2;
        for_each(n.div_ceil(per_request), |b| async move {
            let mut writes = Vec::new();
            for i in b * per_request..n.min((b + 1) * per_request) {
                let (digest, lock, size) = rows(i);
                bytes.fetch_add(size, std::sync::atomic::Ordering::Relaxed);
                writes.push(serde_json::json!({"PutRequest": {"Item": digest}}));
                writes.push(serde_json::json!({"PutRequest": {"Item": lock}}));
            }
            let body = serde_json::json!({"RequestItems": {table: writes}});
            dynamodb(http, aws, "BatchWriteItem", body).await
        })
        .await?;
    } else {
        for_each(n, |i| async move {
            let (digest, lock, size) = rows(i);
            bytes.fetch_add(size, std::sync::atomic::Ordering::Relaxed);
            let put = serde_json::json!({"TableName": table, "Item": digest});
            dynamodb(http, aws, "PutItem", put).await?;
            let put = serde_json::json!({
                "TableName": table,
                "Item": lock,
                "ConditionExpression": "attribute_not_exists(LockID)",
            });
            dynamodb(http, aws, "PutItem", put).await
        })
        .await?;
    }
    Ok((
        format!("dynamodb://{table}"),
        bytes.load(std::sync::atomic::Ordering::Relaxed),
    ))
}

/// gcs backend: `<prefix><ws>.tfstate`, and the lock `<prefix><ws>.tflock` created by a
/// multipart upload with `ifGenerationMatch=0`, body = LockInfo JSON.
async fn seed_gcs(http: &reqwest::Client, n: usize, seed: u64) -> Result<String, BoxError> {
    let gcs = env("TFLOCK_TEST_GCS")?;
    let rsp = http
        .post(format!("{gcs}/storage/v1/b?project=bench"))
        .header("Content-Type", "application/json")
        .body(serde_json::json!({ "name": BUCKET }).to_string())
        .send()
        .await?;
    check(rsp, "creating the bucket").await?;
    let upload = |name: String, body: String, precondition: bool| {
        let gcs = gcs.clone();
        async move {
            let boundary = "tflock-bench-boundary";
            let meta = serde_json::json!({ "name": name, "contentType": "application/json" });
            let multipart = format!(
                "--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n{meta}\r\n\
                 --{boundary}\r\nContent-Type: application/json\r\n\r\n{body}\r\n--{boundary}--\r\n"
            );
            let mut url = url::Url::parse(&format!("{gcs}/upload/storage/v1/b/{BUCKET}/o"))?;
            url.query_pairs_mut().append_pair("uploadType", "multipart");
            if precondition {
                url.query_pairs_mut().append_pair("ifGenerationMatch", "0");
            }
            let rsp = http
                .post(url)
                .header(
                    "Content-Type",
                    format!("multipart/related; boundary={boundary}"),
                )
                .body(multipart)
                .send()
                .await?;
            check(rsp, &format!("uploading {name}")).await
        }
    };
    for_each(n, |i| {
        let upload = &upload;
        async move {
            let prefix = format!("stacks/s{i:04}/");
            upload(format!("{prefix}default.tfstate"), state_body(i), false).await?;
            let object = format!("{prefix}default.tflock");
            let lock = info(i, seed, format!("gs://{BUCKET}/{object}")).to_terraform_json();
            upload(object, lock, true).await
        }
    })
    .await?;
    Ok(format!("gs://{BUCKET}"))
}

/// azurerm backend: the state blob, an infinite lease proposing LockInfo.ID, then
/// `terraformlockid` metadata under the lease (tflock_azure::testing does exactly what
/// Terraform's client.go does).
async fn seed_azure(n: usize, seed: u64) -> Result<String, BoxError> {
    let endpoint = env("TFLOCK_TEST_AZURITE")?;
    let account = env("TFLOCK_TEST_AZURE_ACCOUNT")?;
    let key = env("TFLOCK_TEST_AZURE_KEY")?;
    let target = Target::parse(&format!(
        "azblob://{account}/{CONTAINER}?endpoint={endpoint}/{account}"
    ))?;
    let opts = ConnectOptions {
        timeout: Duration::from_secs(30),
        concurrency: PARALLEL,
    };
    let harness =
        tflock_azure::testing::Harness::connect_with_env(&target, &opts, &|name| match name {
            "ARM_ACCESS_KEY" => Some(key.clone()),
            _ => None,
        })?;
    harness.create_container().await?;
    let harness = &harness;
    for_each(n, |i| async move {
        let blob = state_key(i);
        harness
            .put_state(&blob, state_body(i).as_bytes(), &[])
            .await?;
        let lock = info(i, seed, format!("{CONTAINER}/{blob}"));
        harness.lock_like_terraform(&blob, &lock).await?;
        Ok(())
    })
    .await?;
    Ok(format!("azblob://{account}/{CONTAINER}"))
}

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("bench_seed: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), BoxError> {
    let mut locks = 200usize;
    let mut backends = Vec::new();
    let mut aws_endpoint = None;
    let mut aws = Aws {
        endpoint: String::new(),
        bucket: BUCKET.into(),
        table: TABLE.into(),
        batch_write: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--locks" => {
                let n = value("--locks")?;
                locks = n
                    .parse()
                    .map_err(|_| format!("--locks {n}: not a number"))?;
            }
            "--aws-endpoint" => aws_endpoint = Some(value("--aws-endpoint")?),
            "--bucket" => aws.bucket = value("--bucket")?,
            "--table" => aws.table = value("--table")?,
            "--batch-write" => aws.batch_write = true,
            "s3" | "dynamodb" | "gcs" | "azure" => backends.push(arg),
            other => {
                return Err(format!(
                    "unknown argument {other} (usage: bench_seed [--locks N] [--aws-endpoint URL] \
                     [--bucket NAME] [--table NAME] [--batch-write] s3|dynamodb|gcs|azure...)"
                )
                .into())
            }
        }
    }
    if backends.iter().any(|b| b == "s3" || b == "dynamodb") {
        aws.endpoint = match aws_endpoint {
            Some(e) => e,
            None => env("TFLOCK_TEST_MOTO")?,
        };
    }
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    for backend in backends {
        let started = std::time::Instant::now();
        let (target, extra) = match backend.as_str() {
            "s3" => (seed_s3(&http, &aws, locks, seed).await?, String::new()),
            "dynamodb" => {
                let (target, bytes) = seed_dynamodb(&http, &aws, locks, seed).await?;
                (
                    target,
                    format!(", {} items, table_bytes={bytes}", 2 * locks),
                )
            }
            "gcs" => (seed_gcs(&http, locks, seed).await?, String::new()),
            _ => (seed_azure(locks, seed).await?, String::new()),
        };
        println!(
            "seeded {locks} locks in {target} ({:.1}s{extra})",
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}
