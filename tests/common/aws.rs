//! moto (S3 + DynamoDB) for the end-to-end tests: buckets and tables are created and read
//! with plain HTTP (curl) against moto, which checks no signatures by default: the root
//! package has no AWS SDK dependency.

use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

/// The moto endpoint, or `None` (skip) unless emulators are required.
pub fn moto() -> Option<String> {
    match std::env::var("TFLOCK_TEST_MOTO") {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            if std::env::var("TFLOCK_REQUIRE_EMULATORS").as_deref() == Ok("1") {
                panic!(
                    "TFLOCK_TEST_MOTO is not set but TFLOCK_REQUIRE_EMULATORS=1 (run scripts/test)"
                );
            }
            eprintln!(
                "skipping: TFLOCK_TEST_MOTO is not set (moto not running; scripts/test starts it)"
            );
            None
        }
    }
}

/// A bucket or table name no other test uses.
pub fn unique(what: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!(
        "tflock-e2e-{what}-{}-{nanos}",
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// curl against moto; returns (status line + headers, body).
pub fn curl(args: &[&str]) -> (String, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let headers = dir.path().join("h");
    let out = Command::new("curl")
        .args(["-s", "--max-time", "10", "-D"])
        .arg(&headers)
        .args(args)
        .output()
        .expect("curl is needed for the AWS end-to-end tests");
    assert!(out.status.success(), "curl {args:?} failed: {out:?}");
    (
        std::fs::read_to_string(&headers).unwrap_or_default(),
        out.stdout,
    )
}

/// moto checks no signature by default, but needs a credential scope to serve private
/// objects and to pick the region.
pub const S3_AUTH: &str = "Authorization: AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0";
pub const DDB_AUTH: &str = "Authorization: AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0";

/// Writes a lockfile body to `<endpoint>/<bucket>/<key>` as JSON (moto stores an empty
/// body without the content type).
pub fn put_lockfile(endpoint: &str, bucket: &str, key: &str, body: &str) {
    let (head, _) = curl(&[
        "-H",
        S3_AUTH,
        "-X",
        "PUT",
        "-H",
        "Content-Type: application/json",
        "--data-binary",
        body,
        &format!("{endpoint}/{bucket}/{key}"),
    ]);
    assert!(
        head.starts_with("HTTP/1.1 200"),
        "put {bucket}/{key}: {head}"
    );
}

pub fn dynamodb(endpoint: &str, op: &str, body: &str) -> serde_json::Value {
    let (head, out) = curl(&[
        "-X",
        "POST",
        "-H",
        &format!("X-Amz-Target: DynamoDB_20120810.{op}"),
        "-H",
        "Content-Type: application/x-amz-json-1.0",
        "-H",
        DDB_AUTH,
        "-d",
        body,
        endpoint,
    ]);
    assert!(
        head.starts_with("HTTP/1.1 200"),
        "{op}: {head}{}",
        String::from_utf8_lossy(&out)
    );
    serde_json::from_slice(&out).unwrap()
}

/// A fresh bucket (and lock table) on moto.
pub struct Moto {
    pub endpoint: String,
    pub bucket: String,
    pub table: Option<String>,
}

impl Moto {
    pub fn new(endpoint: &str, with_table: bool) -> Moto {
        let bucket = unique("b");
        let (head, _) = curl(&["-H", S3_AUTH, "-X", "PUT", &format!("{endpoint}/{bucket}")]);
        assert!(head.starts_with("HTTP/1.1 200"), "create bucket: {head}");
        let table = with_table.then(|| {
            let t = unique("t");
            dynamodb(
                endpoint,
                "CreateTable",
                &format!(
                    r#"{{"TableName":"{t}","AttributeDefinitions":[{{"AttributeName":"LockID","AttributeType":"S"}}],"KeySchema":[{{"AttributeName":"LockID","KeyType":"HASH"}}],"BillingMode":"PAY_PER_REQUEST"}}"#
                ),
            );
            t
        });
        Moto {
            endpoint: endpoint.to_string(),
            bucket,
            table,
        }
    }

    /// `backend "s3"` for this bucket (and table), key `app/terraform.tfstate`.
    pub fn backend_block(&self, use_lockfile: bool) -> String {
        let e = &self.endpoint;
        let table = self
            .table
            .as_ref()
            .map(|t| format!("    dynamodb_table = \"{t}\"\n"))
            .unwrap_or_default();
        let lockfile = if use_lockfile {
            "    use_lockfile = true\n"
        } else {
            ""
        };
        format!(
            r#"  backend "s3" {{
    bucket = "{}"
    key    = "app/terraform.tfstate"
    region = "us-east-1"
    endpoints = {{
      s3       = "{e}"
      dynamodb = "{e}"
    }}
    use_path_style              = true
    skip_credentials_validation = true
    skip_requesting_account_id  = true
    skip_metadata_api_check     = true
    skip_region_validation      = true
{table}{lockfile}  }}"#,
            self.bucket
        )
    }

    /// Every object that is not a lockfile (key, ETag, bytes) and every row that is not a
    /// lock row (all attributes): what tflock must never change.
    pub fn untouchables(&self) -> String {
        let mut out = Vec::new();
        let (head, listing) = curl(&[
            "-H",
            S3_AUTH,
            &format!("{}/{}?list-type=2", self.endpoint, self.bucket),
        ]);
        assert!(head.starts_with("HTTP/1.1 200"), "list: {head}");
        let listing = String::from_utf8_lossy(&listing).into_owned();
        for part in listing.split("<Key>").skip(1) {
            let key = &part[..part.find("</Key>").unwrap()];
            if key.ends_with(".tflock") {
                continue;
            }
            let (head, body) = curl(&[
                "-H",
                S3_AUTH,
                &format!("{}/{}/{key}", self.endpoint, self.bucket),
            ]);
            assert!(head.starts_with("HTTP/1.1 200"), "get {key}: {head}");
            let etag = head
                .lines()
                .find(|l| l.to_ascii_lowercase().starts_with("etag:"))
                .unwrap_or("")
                .trim()
                .to_string();
            // State JSON is text; show it as such (any byte difference still shows).
            let text = String::from_utf8_lossy(&body);
            out.push(format!("object {key} {etag} {} {text:?}", body.len()));
        }
        if let Some(t) = &self.table {
            let scan = dynamodb(
                &self.endpoint,
                "Scan",
                &format!(r#"{{"TableName":"{t}","ConsistentRead":true}}"#),
            );
            for item in scan["Items"].as_array().unwrap() {
                if item.get("Info").is_none() {
                    out.push(format!("row {item}"));
                }
            }
        }
        out.sort();
        out.join("\n")
    }

    pub fn lock_rows(&self) -> usize {
        let Some(t) = &self.table else { return 0 };
        let scan = dynamodb(
            &self.endpoint,
            "Scan",
            &format!(r#"{{"TableName":"{t}","ConsistentRead":true}}"#),
        );
        scan["Items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i.get("Info").is_some())
            .count()
    }

    pub fn lockfile_exists(&self, key: &str) -> bool {
        let (head, _) = curl(&[
            "-H",
            S3_AUTH,
            "-I",
            &format!("{}/{}/{key}.tflock", self.endpoint, self.bucket),
        ]);
        head.starts_with("HTTP/1.1 200")
    }
}
