//! `tflock doctor` for the s3 backend: what keeps Terraform from running besides a lock,
//! with its evidence and, where one conditional write can do it safely, the fix.
//!
//! - `dynamodb://` with a scope (`?bucket=&key=`, as discovery makes it) or without one
//!   (every digest row under the target): each digest row `<bucket>/<key>-md5` (`Digest`
//!   = hex MD5 of the state, written by Terraform after every state write) against the
//!   state object. A mismatch makes every plan fail with "state data in S3 does not have
//!   the expected content"; a digest row whose object is gone (or empty) does too. With
//!   versioning, the version whose MD5 is the stored digest is named, so the operator
//!   sees whether the object is newer or older than what Terraform last wrote.
//!   Fixes: `UpdateItem SET Digest = :new` and `DeleteItem`, both conditioned on
//!   `Digest = :old`, sent once, after re-reading the object (same ETag and VersionId, or
//!   still missing) and seeing no lock on that state. No other row is ever written.
//! - `s3://`: a `.tflock` lockfile whose state object does not exist: a killed first apply
//!   (whose resources no state records) or a deleted workspace (advice only: it is a
//!   lock, removed with `tflock break`).
//!
//! Advice puts each command on its own line, so the CLI can add the targets to the
//! `tflock` ones.

use crate::client::{once_dynamodb, Aws};
use crate::error::{code, destructive_error, sdk_error, status, Call};
use crate::naming::{lockfile_state_key, split_lock_id, workspace_of, StateKeys};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::DateTime as AwsDateTime;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use md5::{Digest as _, Md5};
use std::collections::{HashMap, HashSet};
use tflock_core::text::shell_quote;
use tflock_core::{Error, Finding, Fix, Handle, Kind, LockInfo, Repaired, Target};

/// Options a `dynamodb://` target takes for the doctor: where the state objects are read
/// (`s3_endpoint`, default: `AWS_ENDPOINT_URL_S3`, else the target's `endpoint`), and the
/// SSE-C key they are encrypted with (`sse_customer_key`, default: `AWS_SSE_CUSTOMER_KEY`).
pub(crate) const TABLE_PARAMS: [&str; 2] = ["s3_endpoint", "sse_customer_key"];

/// The suffix of a digest row's `LockID` (Terraform's `stateIDSuffix`).
const DIGEST_SUFFIX: &str = "-md5";
/// States checked at once: a check may download a whole state object.
const CONCURRENCY: usize = 8;
/// ListObjectVersions pages read when looking for the version that matches a digest.
const MAX_VERSION_PAGES: usize = 5;
/// Versions downloaded when their ETag cannot be taken as their MD5 (KMS, multipart).
const MAX_VERSION_DOWNLOADS: usize = 10;

pub(crate) struct Doctor {
    target: String,
    region: String,
    s3: S3,
    place: Place,
}

/// The state objects' bucket client, with what reading them needs.
struct S3 {
    client: aws_sdk_s3::Client,
    endpoint: Option<String>,
    sse: Option<SseKey>,
    /// A key that cannot be used: said when the doctor runs, so that `list` and `break`
    /// still work on this target.
    sse_error: Option<String>,
}

enum Place {
    /// `dynamodb://TABLE`: its digest rows.
    Table {
        table: String,
        ddb: aws_sdk_dynamodb::Client,
        ddb_endpoint: Option<String>,
        /// Only `LockID`s starting with this.
        prefix: String,
        scope: Option<(String, StateKeys)>,
    },
    /// `s3://BUCKET[/PREFIX]`: its lockfiles.
    Bucket {
        bucket: String,
        prefix: String,
        keys: Option<StateKeys>,
    },
}

/// An SSE-C key as S3 wants it on every read: the key and its MD5, both base64.
#[derive(Clone)]
struct SseKey {
    key: String,
    key_md5: String,
}

impl std::fmt::Debug for SseKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SseKey(***)")
    }
}

impl SseKey {
    /// `value`: 32 bytes, base64 (Terraform's `sse_customer_key`). Never echoed.
    fn parse(target: &str, value: &str, from: &str) -> Result<SseKey, Error> {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(value.trim())
            .ok()
            .filter(|k| k.len() == 32)
            .ok_or_else(|| {
                Error::usage(
                    target,
                    format!("{from} must be a 256-bit key, base64-encoded (44 characters)"),
                )
            })?;
        Ok(SseKey {
            key: base64::engine::general_purpose::STANDARD.encode(&raw),
            key_md5: base64::engine::general_purpose::STANDARD.encode(Md5::digest(&raw)),
        })
    }
}

/// Applies the SSE-C key, when there is one, to a read request.
macro_rules! with_sse {
    ($req:expr, $sse:expr) => {
        match $sse {
            Some(k) => $req
                .sse_customer_algorithm("AES256")
                .sse_customer_key(&k.key)
                .sse_customer_key_md5(&k.key_md5),
            None => $req,
        }
    };
}

/// Completes a write to the digest row of `$h` (a `DigestFix`): only if its `Digest` is
/// still the one read (a Terraform run that wrote the state meanwhile also wrote its
/// digest, and wins), and sent once.
macro_rules! once_if_digest_unchanged {
    ($req:expr, $h:expr) => {
        $req.table_name(&$h.table)
            .key("LockID", text(&$h.row))
            .condition_expression("#d = :old")
            .expression_attribute_names("#d", "Digest")
            .expression_attribute_values(":old", text(&$h.old))
            .customize()
            .config_override(once_dynamodb())
    };
}

/// A conditional write to a digest row and the words for its outcomes.
struct DigestWrite<'a> {
    /// `update` or `delete`: "no answer to the update of ...".
    verb: &'static str,
    /// `updating` or `deleting`: "updating digest row ...".
    doing: &'static str,
    /// What a read of the row shows once the write applied: `Some(Some(new digest))`, or
    /// `None` (no row).
    after: Option<Option<&'a str>>,
    done: String,
    /// Said when the row's condition failed.
    conflict: String,
    /// What a second read shows when the write did not apply.
    unchanged: &'static str,
    /// What a second read shows when someone else wrote the row.
    other: &'static str,
    /// What `tflock doctor` would tell, when the second read failed.
    check: &'static str,
}

/// An object as read: its identity now.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Head {
    etag: String,
    version: Option<String>,
    size: i64,
    modified: Option<DateTime<Utc>>,
}

/// What reading an object found.
enum Read<T> {
    Found(T),
    Missing,
    /// S3 refused to read it without an SSE-C key, and none is configured.
    NeedsKey,
}

/// What the repair of a digest row compares on, made by `diagnose`.
struct DigestFix {
    table: String,
    /// The digest row's `LockID`.
    row: String,
    /// The `Digest` read, exactly.
    old: String,
    bucket: String,
    key: String,
    action: DigestAction,
}

enum DigestAction {
    /// Set `Digest` to `new`, the MD5 of the object read as `seen`.
    Set { new: String, seen: Head },
    /// Delete the row: the object was missing (`None`) or empty (`Some`).
    Delete { seen: Option<Head> },
}

/// One digest row as scanned.
struct DigestRow {
    row: String,
    bucket: String,
    key: String,
    digest: String,
}

/// `serial` and `lineage` of a Terraform state, when its JSON says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct StateInfo {
    serial: Option<u64>,
    lineage: Option<String>,
    json: bool,
}

impl StateInfo {
    fn of(bytes: &[u8]) -> StateInfo {
        match serde_json::from_slice::<serde_json::Value>(bytes) {
            Ok(v) => StateInfo {
                serial: v.get("serial").and_then(serde_json::Value::as_u64),
                lineage: v
                    .get("lineage")
                    .and_then(serde_json::Value::as_str)
                    .map(str::to_string),
                json: true,
            },
            Err(_) => StateInfo::default(),
        }
    }

    fn describe(&self) -> String {
        if !self.json {
            return "not Terraform state JSON".into();
        }
        format!(
            "serial {}, lineage {}",
            self.serial.map_or("?".into(), |s| s.to_string()),
            self.lineage.as_deref().unwrap_or("?")
        )
    }
}

/// How the object relates to what Terraform last wrote (the version matching the digest).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Relation {
    /// A higher serial, same lineage: written after Terraform's last write.
    Newer,
    /// The same serial and lineage with other content: edited by hand.
    Edited,
    /// A lower serial: rolled back.
    Older,
    /// Another lineage: a different state altogether.
    OtherState,
    /// Nothing to compare with (no version matches, or states unreadable).
    Unknown,
}

fn relation(now: &StateInfo, then: Option<&StateInfo>) -> Relation {
    let Some(then) = then else {
        return Relation::Unknown;
    };
    match (&now.lineage, &then.lineage) {
        (Some(a), Some(b)) if a != b => return Relation::OtherState,
        (Some(_), Some(_)) => {}
        _ => return Relation::Unknown,
    }
    match (now.serial, then.serial) {
        (Some(a), Some(b)) if a > b => Relation::Newer,
        (Some(a), Some(b)) if a < b => Relation::Older,
        (Some(_), Some(_)) => Relation::Edited,
        _ => Relation::Unknown,
    }
}

/// A `Digest` Terraform checks: 32 hex digits. Anything else makes Terraform skip the
/// check ("invalid md5"), so it blocks nothing.
fn valid_digest(d: &str) -> bool {
    d.len() == 32 && d.bytes().all(|b| b.is_ascii_hexdigit())
}

/// An ETag without quotes; `None` unless it is a single-part ETag (32 hex digits), which
/// for unencrypted and SSE-S3 objects is the MD5 of the content.
fn plain_etag(etag: &str) -> Option<String> {
    let e = etag.trim().trim_matches('"');
    valid_digest(e).then(|| e.to_ascii_lowercase())
}

fn md5_hex(bytes: &[u8]) -> String {
    Md5::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn to_chrono(t: Option<&AwsDateTime>) -> Option<DateTime<Utc>> {
    t.and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos()))
}

fn when(t: Option<DateTime<Utc>>) -> String {
    match t {
        Some(t) => format!(
            "{} ({} ago)",
            t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            tflock_core::duration::human((Utc::now() - t).max(chrono::Duration::zero()))
        ),
        None => "unknown time".into(),
    }
}

/// `B/K?versionId=V` for `--copy-source`, the key percent-encoded (S3 requires it).
fn copy_source(bucket: &str, key: &str, version: &str) -> String {
    let mut out = format!("{bucket}/");
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    format!("{out}?versionId={version}")
}

fn text(s: &str) -> AttributeValue {
    AttributeValue::S(s.to_string())
}

impl Doctor {
    /// The doctor of a `dynamodb://` target.
    pub(crate) fn for_table(target: &Target, aws: &Aws) -> Result<Doctor, Error> {
        let scope = match (target.param("bucket"), target.param("key")) {
            (Some(b), Some(k)) => Some((
                b.to_string(),
                StateKeys::new(k, target.param("workspace_key_prefix")),
            )),
            _ => None,
        };
        let prefix = match &scope {
            Some((bucket, _)) if target.path.is_empty() => format!("{bucket}/"),
            _ => target.path.clone(),
        };
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let sse = match (
            target.param("sse_customer_key"),
            env("AWS_SSE_CUSTOMER_KEY"),
        ) {
            (Some(k), _) => Some(SseKey::parse(&target.url, k, "sse_customer_key")),
            (None, Some(k)) => Some(SseKey::parse(&target.url, &k, "AWS_SSE_CUSTOMER_KEY")),
            (None, None) => None,
        }
        .transpose();
        let (sse, sse_error) = match sse {
            Ok(k) => (k, None),
            Err(e) => (None, Some(e.message().to_string())),
        };
        let place = Place::Table {
            table: target.host.clone(),
            ddb: aws.dynamodb_client(),
            ddb_endpoint: aws.dynamodb.shown.clone(),
            prefix,
            scope,
        };
        Ok(Doctor::new(target, aws, place, sse, sse_error))
    }

    /// The doctor of an `s3://` target.
    pub(crate) fn for_bucket(target: &Target, aws: &Aws) -> Result<Doctor, Error> {
        let place = Place::Bucket {
            bucket: target.host.clone(),
            prefix: target.path.clone(),
            keys: target
                .param("key")
                .map(|k| StateKeys::new(k, target.param("workspace_key_prefix"))),
        };
        Ok(Doctor::new(target, aws, place, None, None))
    }

    /// The doctor of `place`, reading its state objects with `sse` (or saying
    /// `sse_error` when it runs).
    fn new(
        target: &Target,
        aws: &Aws,
        place: Place,
        sse: Option<SseKey>,
        sse_error: Option<String>,
    ) -> Doctor {
        // The state objects may live behind another endpoint than the table
        // (`?s3_endpoint=`, `AWS_ENDPOINT_URL_S3`): the loaded configuration knows it.
        Doctor {
            target: target.url.clone(),
            region: aws.region().to_string(),
            s3: S3 {
                client: aws.s3_client(),
                endpoint: aws.s3.shown.clone(),
                sse,
                sse_error,
            },
            place,
        }
    }

    fn s3_call(&self, action: String) -> Call<'_> {
        Call::new(
            &self.target,
            &self.region,
            self.s3.endpoint.as_deref(),
            action,
        )
    }

    fn ddb_call(&self, action: String) -> Call<'_> {
        Call::new(&self.target, &self.region, self.ddb_endpoint(), action)
    }
}

#[async_trait::async_trait]
impl tflock_core::doctor::Doctor for Doctor {
    async fn diagnose(&self) -> Result<Vec<Finding>, Error> {
        if let Some(why) = &self.s3.sse_error {
            return Err(Error::usage(&self.target, why.clone()));
        }
        match &self.place {
            Place::Table { .. } => self.diagnose_digests().await,
            Place::Bucket {
                bucket,
                prefix,
                keys,
            } => self.diagnose_lockfiles(bucket, prefix, keys.as_ref()).await,
        }
    }

    async fn repair(&self, fix: &Fix) -> Result<Repaired, Error> {
        let h = fix
            .handle()
            .get::<DigestFix>()
            .filter(|_| fix.handle().origin() == self.target)
            .ok_or_else(|| {
                Error::usage(
                    &self.target,
                    format!(
                        "this fix was not offered by this target: {}",
                        fix.description
                    ),
                )
            })?;
        match &h.action {
            DigestAction::Set { new, seen } => self.set_digest(h, new, seen).await,
            DigestAction::Delete { seen } => self.delete_digest(h, seen.as_ref()).await,
        }
    }

    // ------------------------------------------------------------ reading S3
}

impl Doctor {
    fn state_url(bucket: &str, key: &str) -> String {
        format!("s3://{bucket}/{key}")
    }

    /// The object's identity now (`HEAD`, with the SSE-C key when configured).
    async fn head(&self, bucket: &str, key: &str) -> Result<Read<Head>, Error> {
        let req = self.s3.client.head_object().bucket(bucket).key(key);
        match with_sse!(req, &self.s3.sse).send().await {
            Ok(out) => Ok(Read::Found(Head {
                etag: out.e_tag().unwrap_or_default().to_string(),
                version: out.version_id().map(str::to_string),
                size: out.content_length().unwrap_or(0),
                modified: to_chrono(out.last_modified()),
            })),
            Err(e) if status(&e) == Some(404) => Ok(Read::Missing),
            Err(e) if status(&e) == Some(400) && self.s3.sse.is_none() => Ok(Read::NeedsKey),
            Err(e) => Err(sdk_error(
                &self.s3_call(format!("reading {}", Self::state_url(bucket, key))),
                &e,
            )),
        }
    }

    /// The object's content (a version of it, or the current one) and identity.
    async fn get(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
    ) -> Result<Read<(Vec<u8>, Head)>, Error> {
        let what = match version {
            Some(v) => format!("reading {} version {v}", Self::state_url(bucket, key)),
            None => format!("reading {}", Self::state_url(bucket, key)),
        };
        let req = self
            .s3
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .set_version_id(version.map(str::to_string));
        let out = match with_sse!(req, &self.s3.sse).send().await {
            Ok(out) => out,
            Err(e) if status(&e) == Some(404) => return Ok(Read::Missing),
            Err(e)
                if status(&e) == Some(400)
                    && self.s3.sse.is_none()
                    && code(&e).as_deref() == Some("InvalidRequest") =>
            {
                return Ok(Read::NeedsKey)
            }
            Err(e) => return Err(sdk_error(&self.s3_call(what), &e)),
        };
        let head = Head {
            etag: out.e_tag().unwrap_or_default().to_string(),
            version: out.version_id().map(str::to_string),
            size: out.content_length().unwrap_or(0),
            modified: to_chrono(out.last_modified()),
        };
        let bytes = out.body.collect().await.map_err(|e| {
            Error::backend(
                &self.target,
                format!("{what}: {}", tflock_core::error::source_chain(&e)),
            )
        })?;
        Ok(Read::Found((bytes.into_bytes().to_vec(), head)))
    }

    /// The versions of exactly `key` (newest first) and its delete markers, as far as
    /// [`MAX_VERSION_PAGES`] pages go; `Err` with the reason when they cannot be listed.
    async fn versions(&self, bucket: &str, key: &str) -> Result<Versions, String> {
        let mut out = Versions::default();
        let (mut key_marker, mut version_marker) = (None, None);
        for _ in 0..MAX_VERSION_PAGES {
            let page = self
                .s3
                .client
                .list_object_versions()
                .bucket(bucket)
                .prefix(key)
                .set_key_marker(key_marker.take())
                .set_version_id_marker(version_marker.take())
                .send()
                .await
                .map_err(|e| {
                    sdk_error(&self.s3_call(format!("listing the versions of {key}")), &e)
                        .message()
                        .to_string()
                })?;
            for v in page.versions() {
                if v.key() == Some(key) {
                    out.versions.push(Version {
                        id: v.version_id().unwrap_or("null").to_string(),
                        etag: v.e_tag().unwrap_or_default().to_string(),
                        size: v.size().unwrap_or(0),
                        modified: to_chrono(v.last_modified()),
                    });
                }
            }
            for m in page.delete_markers() {
                if m.key() == Some(key) {
                    out.markers.push((
                        m.version_id().unwrap_or("null").to_string(),
                        to_chrono(m.last_modified()),
                    ));
                }
            }
            match (page.is_truncated(), page.next_key_marker()) {
                (Some(true), Some(k)) if k <= key => {
                    key_marker = Some(k.to_string());
                    version_marker = page.next_version_id_marker().map(str::to_string);
                }
                (Some(true), Some(_)) => return Ok(out),
                (Some(true), None) => {
                    out.truncated = true;
                    return Ok(out);
                }
                _ => return Ok(out),
            }
        }
        out.truncated = true;
        Ok(out)
    }

    /// The version of `key` whose content has MD5 `digest`, other than `skip` (the
    /// current one), with its state summary. By ETag first (single-part ETags are MD5s);
    /// then, when ETags here are not MD5s, by downloading a few.
    async fn matching_version(
        &self,
        bucket: &str,
        key: &str,
        digest: &str,
        versions: &Versions,
        skip: Option<&str>,
        etags_are_md5: bool,
    ) -> Option<(Version, StateInfo)> {
        let candidates = versions
            .versions
            .iter()
            .filter(|v| Some(v.id.as_str()) != skip && v.size > 0);
        let by_etag = candidates
            .clone()
            .find(|v| plain_etag(&v.etag).as_deref() == Some(digest));
        let found = match by_etag {
            Some(v) => {
                let info = match self.get(bucket, key, Some(&v.id)).await {
                    Ok(Read::Found((bytes, _))) => StateInfo::of(&bytes),
                    _ => StateInfo::default(),
                };
                Some((v.clone(), info))
            }
            None => {
                let mut found = None;
                let unsure = candidates
                    .filter(|v| !etags_are_md5 || plain_etag(&v.etag).is_none())
                    .take(MAX_VERSION_DOWNLOADS);
                for v in unsure {
                    if let Ok(Read::Found((bytes, _))) = self.get(bucket, key, Some(&v.id)).await {
                        if md5_hex(&bytes) == digest {
                            found = Some((v.clone(), StateInfo::of(&bytes)));
                            break;
                        }
                    }
                }
                found
            }
        };
        found
    }

    /// Who holds a lock on the state `bucket/key` now: the DynamoDB lock row (for a table
    /// target) and the lockfile. A lockfile S3 will not show without a key counts as held.
    async fn locks_on(&self, bucket: &str, key: &str) -> Result<Vec<String>, Error> {
        let mut held = Vec::new();
        if let Place::Table { table, ddb, .. } = &self.place {
            let lock_id = format!("{bucket}/{key}");
            let out = ddb
                .get_item()
                .table_name(table)
                .key("LockID", text(&lock_id))
                .consistent_read(true)
                .projection_expression("#i")
                .expression_attribute_names("#i", "Info")
                .send()
                .await
                .map_err(|e| {
                    sdk_error(
                        &self.ddb_call(format!("reading lock row {lock_id} of table {table}")),
                        &e,
                    )
                })?;
            if let Some(info) = out.item().and_then(|i| i.get("Info")) {
                let about = info
                    .as_s()
                    .ok()
                    .and_then(|s| LockInfo::parse(s).ok())
                    .map(|i| {
                        format!(
                            "ID {}, {} by {}, created {}",
                            i.id,
                            i.operation,
                            i.who,
                            when(i.created)
                        )
                    })
                    .unwrap_or_else(|| "unreadable Info".into());
                held.push(format!("lock row dynamodb://{table}/{lock_id} ({about})"));
            }
        }
        let lockfile = format!("{key}.tflock");
        match self.head(bucket, &lockfile).await? {
            Read::Missing => {}
            Read::Found(h) => held.push(format!(
                "lockfile {} (written {})",
                Self::state_url(bucket, &lockfile),
                when(h.modified)
            )),
            Read::NeedsKey => held.push(format!(
                "lockfile {} (encrypted)",
                Self::state_url(bucket, &lockfile)
            )),
        }
        Ok(held)
    }

    // ------------------------------------------------------------ digest rows

    async fn digest_rows(&self) -> Result<Vec<DigestRow>, Error> {
        let Place::Table {
            table,
            ddb,
            prefix,
            scope,
            ..
        } = &self.place
        else {
            return Ok(Vec::new());
        };
        let mut rows = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let mut req = ddb
                .scan()
                .table_name(table)
                .consistent_read(true)
                .projection_expression("#id, #d")
                .expression_attribute_names("#id", "LockID")
                .expression_attribute_names("#d", "Digest")
                .set_exclusive_start_key(start.take());
            // Digest rows are told apart by their attribute, on the server.
            req = if prefix.is_empty() {
                req.filter_expression("attribute_exists(#d)")
            } else {
                req.filter_expression("attribute_exists(#d) AND begins_with(#id, :p)")
                    .expression_attribute_values(":p", text(prefix))
            };
            let page = req.send().await.map_err(|e| {
                sdk_error(
                    &self.ddb_call(format!("scanning table {table} for digest rows")),
                    &e,
                )
            })?;
            for item in page.items() {
                let (Some(Ok(row)), Some(Ok(digest))) = (
                    item.get("LockID").map(AttributeValue::as_s),
                    item.get("Digest").map(AttributeValue::as_s),
                ) else {
                    continue;
                };
                let Some((bucket, key)) = row
                    .strip_suffix(DIGEST_SUFFIX)
                    .and_then(split_lock_id)
                    .map(|(b, k)| (b.to_string(), k.to_string()))
                else {
                    continue;
                };
                let covered = match scope {
                    Some((b, keys)) => *b == bucket && keys.workspace_of(&key).is_some(),
                    None => true,
                };
                // Terraform ignores a Digest that is not an MD5 ("invalid md5").
                if covered && valid_digest(digest.trim()) {
                    rows.push(DigestRow {
                        row: row.clone(),
                        bucket,
                        key,
                        digest: digest.clone(),
                    });
                }
            }
            match page.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => break,
            }
        }
        rows.sort_by(|a, b| a.row.cmp(&b.row));
        Ok(rows)
    }

    async fn diagnose_digests(&self) -> Result<Vec<Finding>, Error> {
        let rows = self.digest_rows().await?;
        let checked = tflock_core::bounded(rows, CONCURRENCY, |r| async move {
            match self.check_digest(&r).await {
                // A state that cannot be read must not hide the others; an endpoint that
                // cannot be reached fails the target.
                Err(e)
                    if !matches!(
                        e.kind(),
                        Kind::Unreachable | Kind::Timeout | Kind::Unauthenticated
                    ) =>
                {
                    Ok(Some(self.unchecked(&r, e.message(), "check the permissions tflock needs (s3:GetObject, s3:ListBucketVersions, dynamodb:GetItem) and run again")))
                }
                other => other,
            }
        })
        .await;
        let mut findings = Vec::new();
        for f in checked {
            findings.extend(f?);
        }
        Ok(findings)
    }

    fn workspace(&self, key: &str) -> Option<String> {
        match &self.place {
            Place::Table {
                scope: Some((_, keys)),
                ..
            }
            | Place::Bucket {
                keys: Some(keys), ..
            } => keys.workspace_of(key),
            _ => Some(workspace_of(key)),
        }
    }

    fn table(&self) -> &str {
        match &self.place {
            Place::Table { table, .. } => table,
            Place::Bucket { bucket, .. } => bucket,
        }
    }

    fn row_url(&self, row: &str) -> String {
        format!("dynamodb://{}/{row}", self.table())
    }

    fn finding(
        &self,
        kind: &'static str,
        (bucket, key): (&str, &str),
        summary: String,
        evidence: Vec<(String, String)>,
        advice: String,
        fix: Option<Fix>,
    ) -> Finding {
        Finding {
            kind,
            target: self.target.clone(),
            subject: format!("{bucket}/{key}"),
            workspace: self.workspace(key),
            summary,
            evidence,
            advice,
            fix,
        }
    }

    fn unchecked(&self, r: &DigestRow, why: &str, advice: &str) -> Finding {
        self.finding(
            "digest-unchecked",
            (&r.bucket, &r.key),
            format!(
                "the digest of {} cannot be checked: {why}",
                Self::state_url(&r.bucket, &r.key)
            ),
            vec![
                ("digest row".into(), self.row_url(&r.row)),
                ("stored digest".into(), r.digest.clone()),
            ],
            advice.to_string(),
            None,
        )
    }

    /// `--region` and `--endpoint-url` for a printed AWS CLI command.
    fn cli_args(&self, endpoint: Option<&str>) -> String {
        let mut s = format!(" --region {}", shell_quote(&self.region));
        if let Some(e) = endpoint {
            s.push_str(&format!(" --endpoint-url {}", shell_quote(e)));
        }
        s
    }

    fn ddb_endpoint(&self) -> Option<&str> {
        match &self.place {
            Place::Table { ddb_endpoint, .. } => ddb_endpoint.as_deref(),
            Place::Bucket { .. } => None,
        }
    }

    /// The `aws dynamodb` command that sets the Digest of row `r` to `new`, or deletes
    /// the row (`None`), only if its Digest is still the one read.
    fn digest_command(&self, r: &DigestRow, new: Option<&str>) -> String {
        let key = serde_json::json!({"LockID": {"S": r.row}}).to_string();
        let (verb, update, values) = match new {
            Some(new) => (
                "update-item",
                " --update-expression 'SET Digest = :new'",
                serde_json::json!({":new": {"S": new}, ":old": {"S": r.digest}}),
            ),
            None => (
                "delete-item",
                "",
                serde_json::json!({":old": {"S": r.digest}}),
            ),
        };
        format!(
            "aws dynamodb {verb} --table-name {} --key {}{update} --condition-expression 'Digest = :old' --expression-attribute-values {}{}",
            shell_quote(self.table()),
            shell_quote(&key),
            shell_quote(&values.to_string()),
            self.cli_args(self.ddb_endpoint())
        )
    }

    fn restore_command(&self, r: &DigestRow, version: &str) -> String {
        let sse = if self.s3.sse.is_some() {
            " --copy-source-sse-customer-algorithm AES256 --copy-source-sse-customer-key \"$SSE_CUSTOMER_KEY\" --sse-customer-algorithm AES256 --sse-customer-key \"$SSE_CUSTOMER_KEY\""
        } else {
            ""
        };
        format!(
            "aws s3api copy-object --bucket {} --key {} --copy-source {}{sse}{}",
            shell_quote(&r.bucket),
            shell_quote(&r.key),
            shell_quote(&copy_source(&r.bucket, &r.key, version)),
            self.cli_args(self.s3.endpoint.as_deref())
        )
    }

    /// One digest row against its state object: `None` when Terraform would accept it.
    async fn check_digest(&self, r: &DigestRow) -> Result<Option<Finding>, Error> {
        let digest = r.digest.trim().to_ascii_lowercase();
        let head = match self.head(&r.bucket, &r.key).await? {
            Read::NeedsKey => return Ok(Some(self.needs_key(r))),
            Read::Missing => None,
            Read::Found(h) => Some(h),
        };
        if let Some(h) = &head {
            // Single-part ETags are the MD5: the common healthy case costs one HEAD.
            if h.size > 0 && plain_etag(&h.etag).as_deref() == Some(digest.as_str()) {
                return Ok(None);
            }
        }
        let current = match &head {
            Some(h) if h.size > 0 => match self.get(&r.bucket, &r.key, None).await? {
                Read::Found(found) => Some(found),
                Read::Missing => None,
                Read::NeedsKey => return Ok(Some(self.needs_key(r))),
            },
            _ => None,
        };
        match current {
            Some((bytes, seen)) if !bytes.is_empty() => {
                let md5 = md5_hex(&bytes);
                if md5 == digest {
                    return Ok(None);
                }
                let etags_are_md5 = plain_etag(&seen.etag).as_deref() == Some(md5.as_str());
                Ok(Some(
                    self.mismatch(r, &digest, &md5, &bytes, seen, etags_are_md5)
                        .await?,
                ))
            }
            // Missing, or empty: Terraform reads both as "no state".
            Some((_, seen)) => Ok(Some(self.without_state(r, &digest, Some(seen)).await?)),
            None => {
                let empty = head.filter(|h| h.size == 0);
                Ok(Some(self.without_state(r, &digest, empty).await?))
            }
        }
    }

    fn needs_key(&self, r: &DigestRow) -> Finding {
        self.unchecked(
            r,
            "S3 will not read the state object without its SSE-C customer key, and none is configured",
            "give tflock the key Terraform uses: sse_customer_key in the backend block (with encrypt = true) or in tflock.toml, or AWS_SSE_CUSTOMER_KEY",
        )
    }

    fn lock_evidence(held: &[String]) -> String {
        if held.is_empty() {
            "none held".into()
        } else {
            held.join("; ")
        }
    }

    fn lock_advice(held: &[String]) -> &'static str {
        if held.is_empty() {
            ""
        } else {
            "\nA lock is held on this state: a run may be writing it right now (Terraform writes the object, then the digest). Wait for it to finish and run tflock doctor again; --fix refuses while the state is locked."
        }
    }

    async fn mismatch(
        &self,
        r: &DigestRow,
        digest: &str,
        md5: &str,
        bytes: &[u8],
        seen: Head,
        etags_are_md5: bool,
    ) -> Result<Finding, Error> {
        let url = Self::state_url(&r.bucket, &r.key);
        let now = StateInfo::of(bytes);
        let versions = self.versions(&r.bucket, &r.key).await;
        let matched = match &versions {
            Ok(v) => {
                self.matching_version(
                    &r.bucket,
                    &r.key,
                    digest,
                    v,
                    seen.version.as_deref(),
                    etags_are_md5,
                )
                .await
            }
            Err(_) => None,
        };
        let held = self.locks_on(&r.bucket, &r.key).await?;
        let rel = relation(&now, matched.as_ref().map(|(_, i)| i));

        let mut evidence = vec![
            ("digest row".to_string(), self.row_url(&r.row)),
            ("stored digest".to_string(), r.digest.clone()),
            ("MD5 of the state object".to_string(), md5.to_string()),
            (
                "state object".to_string(),
                format!(
                    "{url}: {} bytes, ETag {}, version {}, written {}",
                    seen.size,
                    seen.etag,
                    seen.version.as_deref().unwrap_or("none"),
                    when(seen.modified)
                ),
            ),
            ("its state".to_string(), now.describe()),
        ];
        evidence.push((
            "version matching the stored digest".to_string(),
            match (&matched, &versions) {
                (Some((v, info)), _) => v.describe(info),
                (None, Ok(v)) if !v.versioned() => {
                    "none: versioning is off, so S3 kept no earlier content".into()
                }
                (None, Ok(v)) => format!(
                    "none of the {}{} versions kept",
                    v.versions.len(),
                    if v.truncated { "+" } else { "" }
                ),
                (None, Err(why)) => format!("unknown: {why}"),
            },
        ));
        evidence.push(("lock".to_string(), Self::lock_evidence(&held)));

        let then = matched.as_ref().map(|(_, i)| i);
        let summary = match rel {
            Relation::Newer => format!(
                "{url} holds a newer state ({}) than the one Terraform last recorded ({}): it was written outside Terraform, or Terraform's digest write failed",
                now.describe(),
                then.map(StateInfo::describe).unwrap_or_default()
            ),
            Relation::Edited => format!(
                "{url} was edited outside Terraform after its last write (same serial {}, other content)",
                now.serial.unwrap_or_default()
            ),
            Relation::Older => format!(
                "{url} holds an OLDER state (serial {}) than the one Terraform last recorded (serial {}): it was rolled back outside Terraform",
                now.serial.unwrap_or_default(),
                then.and_then(|t| t.serial).unwrap_or_default()
            ),
            Relation::OtherState => format!(
                "{url} holds a different state (lineage {}) than the one Terraform last recorded (lineage {})",
                now.lineage.as_deref().unwrap_or("?"),
                then.and_then(|t| t.lineage.as_deref()).unwrap_or("?")
            ),
            Relation::Unknown => format!(
                "the MD5 of {url} does not match the digest Terraform stored: the object was changed outside Terraform"
            ),
        } + "; every plan fails with \"state data in S3 does not have the expected content\"";

        let update = self.digest_command(r, Some(md5));
        let restore = matched
            .as_ref()
            .map(|(v, _)| self.restore_command(r, &v.id));
        let (advice, offer) = match rel {
            Relation::Older | Relation::OtherState => (
                format!(
                    "Restore the state Terraform last wrote{}\nOnly if the object's content is really the state you want, set the digest by hand (tflock doctor --fix does not accept an older or different state):\n{update}",
                    match &restore {
                        Some(c) => format!(" (version {}):\n{c}", matched.as_ref().map_or("", |(v, _)| v.id.as_str())),
                        None => ".".into(),
                    }
                ),
                false,
            ),
            _ => (
                format!(
                    "Look at the object first ({}). If it is the state you want, set the digest to its MD5; tflock doctor --fix does exactly this, only if neither the object nor the digest changed since this check:\n{update}\n{}",
                    now.describe(),
                    match &restore {
                        Some(c) => format!(
                            "If it is not, restore version {}, whose content is what Terraform last wrote:\n{c}",
                            matched.as_ref().map_or("", |(v, _)| v.id.as_str())
                        ),
                        None => "If it is not, put back the state Terraform last wrote (no version of the object matches the stored digest).".into(),
                    }
                ),
                true,
            ),
        };
        let advice = advice + Self::lock_advice(&held);
        let fix = offer.then(|| {
            Fix::new(
                format!(
                    "set Digest of {} from {} to {} (the MD5 of {url}, ETag {}{})",
                    self.row_url(&r.row),
                    r.digest,
                    md5,
                    seen.etag,
                    seen.version
                        .as_deref()
                        .map(|v| format!(", version {v}"))
                        .unwrap_or_default()
                ),
                self.digest_fix(
                    r,
                    DigestAction::Set {
                        new: md5.to_string(),
                        seen,
                    },
                ),
            )
        });
        Ok(self.finding(
            "digest-mismatch",
            (&r.bucket, &r.key),
            summary,
            evidence,
            advice,
            fix,
        ))
    }

    async fn without_state(
        &self,
        r: &DigestRow,
        digest: &str,
        empty: Option<Head>,
    ) -> Result<Finding, Error> {
        let url = Self::state_url(&r.bucket, &r.key);
        let versions = self.versions(&r.bucket, &r.key).await;
        let matched = match &versions {
            Ok(v) => {
                let skip = empty.as_ref().and_then(|h| h.version.as_deref());
                self.matching_version(&r.bucket, &r.key, digest, v, skip, true)
                    .await
            }
            Err(_) => None,
        };
        let held = self.locks_on(&r.bucket, &r.key).await?;
        let state = match (&empty, &versions) {
            (Some(h), _) => format!(
                "{url} is empty (0 bytes, written {}), which Terraform reads as no state",
                when(h.modified)
            ),
            (None, Ok(v)) if !v.markers.is_empty() => format!(
                "{url} does not exist: deleted {} (delete marker {})",
                when(v.markers[0].1),
                v.markers[0].0
            ),
            _ => format!("{url} does not exist"),
        };
        let mut evidence = vec![
            ("digest row".to_string(), self.row_url(&r.row)),
            ("stored digest".to_string(), r.digest.clone()),
            ("state object".to_string(), state),
        ];
        if let Some((v, info)) = &matched {
            evidence.push((
                "version matching the stored digest".into(),
                v.describe(info),
            ));
        }
        evidence.push(("lock".into(), Self::lock_evidence(&held)));
        let delete = self.digest_command(r, None);
        let advice = match &matched {
            Some((v, _)) => format!(
                "S3 still has the state Terraform last wrote (version {}). If the state was removed by mistake, restore it:\n{}\nOnly if the workspace's state is meant to be gone, remove the digest row (tflock doctor --fix does not while a version can be restored); Terraform then starts this workspace from an EMPTY state:\n{delete}",
                v.id,
                self.restore_command(r, &v.id)
            ),
            None => format!(
                "If the state is meant to be gone, remove the digest row; tflock doctor --fix does exactly this, only if the row is unchanged and the object still missing. Terraform then starts this workspace from an EMPTY state (a plan would create everything again):\n{delete}\nIf the state was lost by mistake, put it back first (from a backup or another copy); then the digest row may match again."
            ),
        } + Self::lock_advice(&held);
        let fix = matched.is_none().then(|| {
            Fix::new(
                format!(
                    "delete digest row {} (Digest {}): {url} {}; Terraform will read workspace {} as having no state",
                    self.row_url(&r.row),
                    r.digest,
                    if empty.is_some() { "is empty" } else { "does not exist" },
                    self.workspace(&r.key).as_deref().unwrap_or("?")
                ),
                self.digest_fix(r, DigestAction::Delete { seen: empty.clone() }),
            )
        });
        Ok(self.finding(
            "digest-without-state",
            (&r.bucket, &r.key),
            format!(
                "the digest row {} is for a state object that {}: every plan fails with \"state data in S3 does not have the expected content\"",
                self.row_url(&r.row),
                if empty.is_some() { "is empty" } else { "does not exist" }
            ),
            evidence,
            advice,
            fix,
        ))
    }

    /// The handle of a fix to digest row `r`: what `repair` compares on.
    fn digest_fix(&self, r: &DigestRow, action: DigestAction) -> Handle {
        Handle::new(
            &self.target,
            DigestFix {
                table: self.table().to_string(),
                row: r.row.clone(),
                old: r.digest.clone(),
                bucket: r.bucket.clone(),
                key: r.key.clone(),
                action,
            },
        )
    }

    // ------------------------------------------------------------ repairs

    fn ddb(&self) -> Result<&aws_sdk_dynamodb::Client, Error> {
        match &self.place {
            Place::Table { ddb, .. } => Ok(ddb),
            Place::Bucket { .. } => Err(Error::usage(
                &self.target,
                "digest rows are repaired through their dynamodb:// target",
            )),
        }
    }

    /// Refuses when a lock is held on the state: a run may be writing it.
    async fn refuse_if_locked(&self, h: &DigestFix) -> Result<(), Error> {
        let held = self.locks_on(&h.bucket, &h.key).await?;
        if held.is_empty() {
            return Ok(());
        }
        Err(Error::refused(
            &self.target,
            format!(
                "{}/{} is locked ({}); a run may be writing it: nothing was written",
                h.bucket,
                h.key,
                held.join("; ")
            ),
        )
        .with_hint("wait until the lock is released (or break it if it is stale), then run tflock doctor again"))
    }

    fn changed(&self, what: String) -> Error {
        Error::changed(&self.target, format!("{what}; nothing was written"))
            .with_hint("run tflock doctor again to see what is there now")
    }

    /// The digest row's `Digest` now (`None`: no row), read consistently.
    async fn digest_now(&self, h: &DigestFix) -> Result<Option<Option<String>>, Error> {
        let out = self
            .ddb()?
            .get_item()
            .table_name(&h.table)
            .key("LockID", text(&h.row))
            .consistent_read(true)
            .projection_expression("#d")
            .expression_attribute_names("#d", "Digest")
            .send()
            .await
            .map_err(|e| sdk_error(&self.ddb_call(format!("reading digest row {}", h.row)), &e))?;
        Ok(out
            .item()
            .map(|i| i.get("Digest").and_then(|d| d.as_s().ok()).cloned()))
    }

    async fn set_digest(&self, h: &DigestFix, new: &str, seen: &Head) -> Result<Repaired, Error> {
        let url = Self::state_url(&h.bucket, &h.key);
        // The object must still be exactly the one whose MD5 is `new`.
        match self.head(&h.bucket, &h.key).await? {
            Read::Found(now) if now.etag == seen.etag && now.version == seen.version => {}
            Read::Found(now) => {
                return Err(self.changed(format!(
                    "{url} changed since it was checked (ETag {} version {} now, ETag {} version {} checked)",
                    now.etag,
                    now.version.as_deref().unwrap_or("none"),
                    seen.etag,
                    seen.version.as_deref().unwrap_or("none")
                )))
            }
            Read::Missing => {
                return Err(self.changed(format!("{url} was deleted since it was checked")))
            }
            Read::NeedsKey => {
                return Err(Error::refused(
                    &self.target,
                    format!("{url} cannot be read without its SSE-C key; nothing was written"),
                ))
            }
        }
        self.refuse_if_locked(h).await?;
        let row = self.row_url(&h.row);
        let done = format!("set Digest of {row} from {} to {new}", h.old);
        let set = self
            .ddb()?
            .update_item()
            .update_expression("SET #d = :new")
            .expression_attribute_values(":new", text(new));
        let sent = once_if_digest_unchanged!(set, h).send().await;
        let write = DigestWrite {
            verb: "update",
            doing: "updating",
            after: Some(Some(new)),
            done,
            conflict: format!(
                "the digest row {row} changed since it was checked (it is no longer {})",
                h.old
            ),
            unchanged: "the digest unchanged",
            other: "another digest (or none)",
            check: "the digest was set",
        };
        self.settle_digest_write(h, &row, sent, write).await
    }

    async fn delete_digest(&self, h: &DigestFix, seen: Option<&Head>) -> Result<Repaired, Error> {
        let url = Self::state_url(&h.bucket, &h.key);
        match (self.head(&h.bucket, &h.key).await?, seen) {
            (Read::Missing, None) => {}
            (Read::Found(now), Some(seen)) if now == *seen => {}
            (Read::NeedsKey, _) => {
                return Err(self.changed(format!(
                    "{url} exists now (S3 will not show it without its SSE-C key)"
                )))
            }
            (Read::Missing, Some(_)) => {
                return Err(self.changed(format!("{url} was deleted since it was checked")))
            }
            (Read::Found(now), _) => {
                return Err(self.changed(format!(
                    "{url} was written since it was checked ({} bytes, ETag {})",
                    now.size, now.etag
                )))
            }
        }
        self.refuse_if_locked(h).await?;
        let row = self.row_url(&h.row);
        let done = format!("deleted digest row {row} (Digest {})", h.old);
        let sent = once_if_digest_unchanged!(self.ddb()?.delete_item(), h)
            .send()
            .await;
        let write = DigestWrite {
            verb: "delete",
            doing: "deleting",
            after: None,
            done,
            conflict: format!("the digest row {row} changed or was removed since it was checked"),
            unchanged: "the row still there",
            other: "another digest",
            check: "the row is gone",
        };
        self.settle_digest_write(h, &row, sent, write).await
    }

    /// The outcome of a conditional write to a digest row, sent once. A lost reply is
    /// settled by reading the row again, never by sending the write again.
    async fn settle_digest_write<T, E>(
        &self,
        h: &DigestFix,
        row: &str,
        sent: Result<T, SdkError<E, HttpResponse>>,
        write: DigestWrite<'_>,
    ) -> Result<Repaired, Error>
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let DigestWrite {
            verb,
            doing,
            after,
            done,
            conflict,
            unchanged,
            other,
            check,
        } = write;
        let e = match sent {
            Ok(_) => return Ok(Repaired { done: vec![done] }),
            Err(e) if code(&e).as_deref() == Some("ConditionalCheckFailedException") => {
                return Err(self.changed(conflict))
            }
            Err(e) => e,
        };
        let err = destructive_error(&self.ddb_call(format!("{doing} digest row {}", h.row)), &e);
        if err.kind() != Kind::OutcomeUnknown {
            return Err(err);
        }
        match self.digest_now(h).await {
            Ok(now) if now.as_ref().map(|d| d.as_deref()) == after => Ok(Repaired {
                done: vec![format!(
                    "{done} (the reply was lost; a second read confirmed it)"
                )],
            }),
            Ok(Some(Some(d))) if d == h.old => Err(Error::backend(
                &self.target,
                format!(
                    "no answer to the {verb} of {row} ({}); a second read shows {unchanged}",
                    err.message()
                ),
            )
            .with_hint("nothing was changed: run the same command again")),
            Ok(_) => Err(self.changed(format!(
                "no answer to the {verb} of {row}, and a second read shows {other} there now"
            ))),
            Err(read) => Err(Error::outcome_unknown(
                &self.target,
                format!(
                    "no answer to the {verb} of {row} ({}), and reading it again failed: {}",
                    err.message(),
                    read.message()
                ),
            )
            .with_hint(format!("run tflock doctor to see whether {check}"))),
        }
    }

    // ------------------------------------------------------------ lockfiles

    /// Every key under `prefix`, all pages.
    async fn keys_under(&self, bucket: &str, prefix: &str) -> Result<Vec<Listed>, Error> {
        let mut found = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut req = self
                .s3
                .client
                .list_objects_v2()
                .bucket(bucket)
                .set_continuation_token(token.take());
            if !prefix.is_empty() {
                req = req.prefix(prefix);
            }
            let page = req
                .send()
                .await
                .map_err(|e| sdk_error(&self.s3_call(format!("listing bucket {bucket}")), &e))?;
            for obj in page.contents() {
                if let Some(key) = obj.key() {
                    found.push(Listed {
                        key: key.to_string(),
                        etag: obj.e_tag().unwrap_or_default().to_string(),
                        modified: to_chrono(obj.last_modified()),
                    });
                }
            }
            match page.next_continuation_token() {
                Some(t) if page.is_truncated() == Some(true) && !t.is_empty() => {
                    token = Some(t.to_string())
                }
                _ => return Ok(found),
            }
        }
    }

    async fn diagnose_lockfiles(
        &self,
        bucket: &str,
        prefix: &str,
        keys: Option<&StateKeys>,
    ) -> Result<Vec<Finding>, Error> {
        // One configuration: its default key and its workspaces' prefix; else the target.
        let prefixes: Vec<String> = match keys {
            Some(k) => vec![k.key.clone(), format!("{}/", k.prefix)],
            None => vec![prefix.to_string()],
        };
        let mut listed = Vec::new();
        for p in &prefixes {
            listed.extend(self.keys_under(bucket, p).await?);
        }
        let present: HashSet<&str> = listed.iter().map(|l| l.key.as_str()).collect();
        let mut orphans = Vec::new();
        let mut seen = HashSet::new();
        for l in &listed {
            let Some(state) = lockfile_state_key(&l.key) else {
                continue;
            };
            if self.workspace(state).is_none() || present.contains(state) || !seen.insert(&l.key) {
                continue;
            }
            orphans.push(l);
        }
        let mut findings = Vec::new();
        for l in orphans {
            let state = lockfile_state_key(&l.key).unwrap_or(&l.key);
            // The listing said no state object; ask once more before saying so.
            if !matches!(self.head(bucket, state).await?, Read::Missing) {
                continue;
            }
            findings.push(self.orphan(bucket, state, l).await?);
        }
        Ok(findings)
    }

    async fn orphan(&self, bucket: &str, state: &str, l: &Listed) -> Result<Finding, Error> {
        let lockfile = Self::state_url(bucket, &l.key);
        let info = match self.get(bucket, &l.key, None).await {
            Ok(Read::Found((bytes, _))) => LockInfo::parse(&String::from_utf8_lossy(&bytes)).ok(),
            _ => None,
        };
        let id = info
            .as_ref()
            .map(|i| i.id.clone())
            .filter(|id| !id.is_empty())
            .unwrap_or_else(|| lockfile.clone());
        let mut evidence = vec![
            (
                "lockfile".to_string(),
                format!("{lockfile} (ETag {})", l.etag),
            ),
            ("lock ID".to_string(), id.clone()),
        ];
        match &info {
            Some(i) => {
                evidence.push(("operation".into(), i.operation.clone()));
                evidence.push(("who".into(), i.who.clone()));
                evidence.push(("created".into(), when(i.created.or(l.modified))));
            }
            None => evidence.push((
                "lock info".into(),
                format!("unreadable; written {}", when(l.modified)),
            )),
        }
        evidence.push((
            "state object".into(),
            format!("{} does not exist", Self::state_url(bucket, state)),
        ));
        Ok(self.finding(
            "orphan-lockfile",
            (bucket, state),
            format!(
                "lockfile {lockfile} locks a state that does not exist: a run that never wrote its state (a first apply that was killed) or a deleted workspace left it, and it blocks every run of this workspace"
            ),
            evidence,
            format!(
                "If no run is still going (see who and created), remove it{}. A killed first apply may have created resources that no state records: look for them before the next apply (terraform import).\ntflock break --id {}",
                if self.workspace(state).as_deref() == Some("default") {
                    ""
                } else {
                    " (terraform force-unlock cannot: for a workspace without state it first tries to lock and create the state, and meets this lock)"
                },
                shell_quote(&id)
            ),
            None,
        ))
    }
}

/// One object as listed.
struct Listed {
    key: String,
    etag: String,
    modified: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
struct Version {
    id: String,
    etag: String,
    size: i64,
    modified: Option<DateTime<Utc>>,
}

impl Version {
    /// `<id> (written <when>, <what its state says>)`, for evidence.
    fn describe(&self, state: &StateInfo) -> String {
        format!(
            "{} (written {}, {})",
            self.id,
            when(self.modified),
            state.describe()
        )
    }
}

#[derive(Debug, Default)]
struct Versions {
    /// Newest first.
    versions: Vec<Version>,
    /// Delete markers, newest first: `(version id, when)`.
    markers: Vec<(String, Option<DateTime<Utc>>)>,
    /// More versions exist than were read.
    truncated: bool,
}

impl Versions {
    /// Whether the bucket ever kept versions of this key (an unversioned object's id is
    /// `null`).
    fn versioned(&self) -> bool {
        !self.markers.is_empty() || self.versions.iter().any(|v| v.id != "null")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(serial: u64, lineage: &str) -> StateInfo {
        StateInfo::of(
            format!(r#"{{"version":4,"serial":{serial},"lineage":"{lineage}"}}"#).as_bytes(),
        )
    }

    #[test]
    fn relation_follows_serial_and_lineage() {
        let now = info(7, "a");
        assert_eq!(relation(&now, Some(&info(6, "a"))), Relation::Newer);
        assert_eq!(relation(&now, Some(&info(8, "a"))), Relation::Older);
        assert_eq!(relation(&now, Some(&info(7, "a"))), Relation::Edited);
        assert_eq!(relation(&now, Some(&info(6, "b"))), Relation::OtherState);
        assert_eq!(relation(&now, None), Relation::Unknown);
        assert_eq!(
            relation(&StateInfo::of(b"garbage"), Some(&info(1, "a"))),
            Relation::Unknown
        );
        assert_eq!(now.describe(), "serial 7, lineage a");
        assert_eq!(StateInfo::of(b"[").describe(), "not Terraform state JSON");
    }

    #[test]
    fn digests_and_etags() {
        assert!(valid_digest("4ee6f7a2e1b41571618bac65d852e7d7"));
        assert!(valid_digest("4EE6F7A2E1B41571618BAC65D852E7D7"));
        assert!(!valid_digest("4ee6f7a2e1b41571618bac65d852e7d"));
        assert!(!valid_digest(""));
        assert!(!valid_digest("zee6f7a2e1b41571618bac65d852e7d7"));
        assert_eq!(
            plain_etag("\"4EE6F7A2E1B41571618BAC65D852E7D7\"").as_deref(),
            Some("4ee6f7a2e1b41571618bac65d852e7d7")
        );
        assert_eq!(plain_etag("\"4ee6f7a2e1b41571618bac65d852e7d7-2\""), None);
        assert_eq!(md5_hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
    }

    #[test]
    fn copy_source_encodes_the_key() {
        assert_eq!(
            copy_source("b", "env:/dev/app/terraform.tfstate", "v1"),
            "b/env%3A/dev/app/terraform.tfstate?versionId=v1"
        );
        assert_eq!(
            copy_source("b", "a b+c", "null"),
            "b/a%20b%2Bc?versionId=null"
        );
    }

    #[test]
    fn sse_keys_are_checked_and_never_shown() {
        let key = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        let k = SseKey::parse("t", &key, "sse_customer_key").unwrap();
        assert_eq!(k.key, key);
        assert_eq!(
            k.key_md5,
            base64::engine::general_purpose::STANDARD.encode(Md5::digest([7u8; 32]))
        );
        assert_eq!(format!("{k:?}"), "SseKey(***)");
        let short = base64::engine::general_purpose::STANDARD.encode([7u8; 16]);
        let err = SseKey::parse("t", &short, "sse_customer_key").unwrap_err();
        assert_eq!(err.kind(), Kind::Usage);
        assert!(!err.to_string().contains(&short), "{err}");
        assert!(SseKey::parse("t", "not base64!", "x").is_err());
    }

    #[test]
    fn discovery_gives_the_table_target_its_s3_endpoint_and_sse_key() {
        use tflock_core::BackendBlock;
        let key = base64::engine::general_purpose::STANDARD.encode([1u8; 32]);
        let block = |encrypt: bool| BackendBlock {
            kind: "s3".into(),
            config: serde_json::from_value(serde_json::json!({
                "bucket": "b", "key": "k", "dynamodb_table": "t", "encrypt": encrypt,
                "sse_customer_key": key,
                "endpoints": {"s3": "http://127.0.0.1:1", "dynamodb": "http://127.0.0.1:2"}
            }))
            .unwrap(),
            source: "test".into(),
            dir: ".".into(),
        };
        let targets = crate::DRIVER.discover(&block(true)).unwrap();
        let t = targets.iter().find(|t| t.scheme == "dynamodb").unwrap();
        assert_eq!(t.param("s3_endpoint"), Some("http://127.0.0.1:1"));
        assert_eq!(t.param("endpoint"), Some("http://127.0.0.1:2"));
        assert_eq!(t.param("sse_customer_key"), Some(key.as_str()));
        assert!(!t.url.contains(&key), "{}", t.url);
        // Terraform uses the key only with encrypt = true.
        let targets = crate::DRIVER.discover(&block(false)).unwrap();
        let t = targets.iter().find(|t| t.scheme == "dynamodb").unwrap();
        assert_eq!(t.param("sse_customer_key"), None);
    }
}
