//! `dynamodb://TABLE[/PREFIX]`: the lock rows of the s3 backend's `dynamodb_table`.
//!
//! A lock row has `Info` (LockInfo JSON); a digest row (`<bucket>/<key>-md5`) has `Digest`
//! and is never listed, read beyond its key, or touched. Rows are told apart by attribute,
//! server-side, so digest values never leave the table.
//!
//! Unscoped, the table is scanned (in `?segments=` parallel segments). Scoped to one
//! configuration (`?bucket=&key=`, as discovery makes it), nothing is scanned: the
//! workspaces come from one listing of `<workspace_key_prefix>/` in the state bucket, as
//! Terraform finds them, and their rows are read by key with `BatchGetItem` (100 keys a
//! call). A table of any size then costs one listing and one read per 100 workspaces.

use crate::client::{once_dynamodb, Aws};
use crate::error::{code, deleted, sdk_error, status, Call};
use crate::naming::{split_lock_id, workspace_of, StateKeys};
use crate::s3::Bucket;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use aws_sdk_dynamodb::Client;
use std::collections::HashMap;
use tflock_core::error::source_chain;
use tflock_core::{
    bounded, Backend, BreakOptions, Broken, ConnectOptions, Error, Handle, Lock, LockStore,
    Presence, Target,
};

/// The backend name of DynamoDB lock rows.
pub const DYNAMODB: Backend = Backend::new("dynamodb");

/// What a break of a lock row compares on: the row's key and the exact `Info` read.
struct DynamoHandle {
    lock_id: String,
    /// `None` when `Info` is not a string: such a row is not Terraform's and is kept.
    info: Option<String>,
}

type Item = HashMap<String, AttributeValue>;

/// Parallel scan segments allowed by `?segments=` (DynamoDB allows up to 1,000,000; more
/// than a few dozen requests at once only adds throttling).
const MAX_SEGMENTS: i32 = 64;

/// Keys one `BatchGetItem` may ask for.
const BATCH_GET_MAX: usize = 100;

/// How often keys DynamoDB leaves unprocessed (throttling) are asked for again.
const UNPROCESSED_ROUNDS: u32 = 8;

pub(crate) struct DynamoStore {
    /// `tflock doctor` over this table: its digest rows against the state objects.
    doctor: crate::doctor::Doctor,
    target: String,
    table: String,
    /// Only `LockID`s starting with this (a bucket, `bucket/env:/`), when the target has a
    /// path or names the state bucket.
    prefix: String,
    /// One backend configuration's states (`?bucket=&key=`, from discovery): only its
    /// rows, read by key; the bucket is where its workspaces are listed.
    scope: Option<(String, StateKeys, Bucket)>,
    concurrency: usize,
    /// Parallel scan segments (`?segments=`, default 1).
    segments: i32,
    region: String,
    endpoint: Option<String>,
    client: Client,
}

impl DynamoStore {
    pub fn new(target: &Target, aws: &Aws, opts: &ConnectOptions) -> Result<Self, Error> {
        target.required_host("table name", "dynamodb://TABLE")?;
        let segments = match target.param("segments") {
            None => 1,
            Some(n) => n
                .parse::<i32>()
                .ok()
                .filter(|n| (1..=MAX_SEGMENTS).contains(n))
                .ok_or_else(|| {
                    Error::usage(
                        &target.url,
                        format!("?segments={n} must be a number from 1 to {MAX_SEGMENTS}"),
                    )
                })?,
        };
        let keys = StateKeys::from_target(target)?;
        let scope = match (target.param("bucket"), keys) {
            (Some(b), Some(keys)) => Some((b.to_string(), keys, Bucket::new(&target.url, b, aws))),
            (None, None) => None,
            _ => {
                return Err(Error::usage(
                    &target.url,
                    "?bucket= and ?key= name one state configuration together; set both or neither",
                ))
            }
        };
        if scope.is_some() && target.param("segments").is_some() {
            return Err(Error::usage(
                &target.url,
                "?segments= splits a scan; a target with ?bucket= and ?key= reads its rows by key and scans nothing",
            ));
        }
        if scope.is_some() && !target.path.is_empty() {
            return Err(Error::usage(
                &target.url,
                "?bucket= and ?key= name the rows themselves: drop the /PREFIX from the target",
            ));
        }
        let prefix = target.path.clone();
        Ok(DynamoStore {
            doctor: crate::doctor::Doctor::for_table(target, aws)?,
            target: target.url.clone(),
            segments,
            table: target.host.clone(),
            prefix,
            scope,
            concurrency: opts.concurrency,
            region: aws.region().to_string(),
            endpoint: aws.dynamodb.shown.clone(),
            client: aws.dynamodb_client(),
        })
    }

    fn call(&self, action: String) -> Call<'_> {
        Call::new(&self.target, &self.region, self.endpoint.as_deref(), action)
    }

    fn location(&self, lock_id: &str) -> String {
        format!("dynamodb://{}/{lock_id}", self.table)
    }

    /// Every lock row, scanning `segments` segments in parallel. Each page becomes locks
    /// as it arrives: a large table's raw items are never all held at once.
    async fn scan(&self) -> Result<Vec<Lock>, Error> {
        if self.segments == 1 {
            return self.scan_segment(None).await;
        }
        let parts =
            futures::future::try_join_all((0..self.segments).map(|s| self.scan_segment(Some(s))))
                .await?;
        Ok(parts.into_iter().flatten().collect())
    }

    async fn scan_segment(&self, segment: Option<i32>) -> Result<Vec<Lock>, Error> {
        let mut locks = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let mut req = self
                .client
                .scan()
                .table_name(&self.table)
                .projection_expression("#id, #info")
                .expression_attribute_names("#id", "LockID")
                .expression_attribute_names("#info", "Info")
                .set_exclusive_start_key(start.take());
            if let Some(s) = segment {
                req = req.segment(s).total_segments(self.segments);
            }
            req = if self.prefix.is_empty() {
                req.filter_expression("attribute_exists(#info)")
            } else {
                req.filter_expression("attribute_exists(#info) AND begins_with(#id, :prefix)")
                    .expression_attribute_values(":prefix", AttributeValue::S(self.prefix.clone()))
            };
            let page = req
                .send()
                .await
                .map_err(|e| sdk_error(&self.call(format!("scanning table {}", self.table)), &e))?;
            locks.extend(page.items().iter().filter_map(|item| self.lock_from(item)));
            match page.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => return Ok(locks),
            }
        }
    }

    /// The lock rows of one configuration: its workspaces from the state bucket, then
    /// their rows by key.
    async fn read_scoped(
        &self,
        bucket: &str,
        keys: &StateKeys,
        objects: &Bucket,
    ) -> Result<Vec<Item>, Error> {
        let lock_ids: Vec<String> = objects
            .workspaces(keys)
            .await?
            .iter()
            .map(|ws| format!("{bucket}/{}", keys.state_key(ws)))
            .collect();
        let chunks: Vec<Vec<String>> = lock_ids
            .chunks(BATCH_GET_MAX)
            .map(<[String]>::to_vec)
            .collect();
        let mut items = Vec::new();
        for part in bounded(chunks, self.concurrency, |c| self.batch_get(c)).await {
            items.extend(part?);
        }
        Ok(items)
    }

    /// One `BatchGetItem` of up to 100 keys (strongly consistent, `LockID` and `Info`
    /// only), asked again for what DynamoDB leaves unprocessed when it throttles.
    async fn batch_get(&self, lock_ids: Vec<String>) -> Result<Vec<Item>, Error> {
        let mut wanted: Vec<Item> = lock_ids
            .into_iter()
            .map(|id| HashMap::from([("LockID".to_string(), AttributeValue::S(id))]))
            .collect();
        let mut items = Vec::new();
        let mut pause = std::time::Duration::from_millis(50);
        for round in 0..UNPROCESSED_ROUNDS {
            if round > 0 {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(std::time::Duration::from_secs(1));
            }
            let request = KeysAndAttributes::builder()
                .set_keys(Some(std::mem::take(&mut wanted)))
                .consistent_read(true)
                .projection_expression("#id, #info")
                .expression_attribute_names("#id", "LockID")
                .expression_attribute_names("#info", "Info")
                .build()
                .map_err(|e| Error::backend(&self.target, source_chain(&e)))?;
            let out = self
                .client
                .batch_get_item()
                .request_items(&self.table, request)
                .send()
                .await
                .map_err(|e| {
                    sdk_error(
                        &self.call(format!("reading rows of table {}", self.table)),
                        &e,
                    )
                })?;
            if let Some(rows) = out.responses().and_then(|r| r.get(&self.table)) {
                items.extend(rows.iter().cloned());
            }
            wanted = out
                .unprocessed_keys()
                .and_then(|u| u.get(&self.table))
                .map(|k| k.keys().to_vec())
                .unwrap_or_default();
            if wanted.is_empty() {
                return Ok(items);
            }
        }
        Err(Error::backend(
            &self.target,
            format!(
                "reading rows of table {}: DynamoDB left {} keys unprocessed after {UNPROCESSED_ROUNDS} rounds (throttled)",
                self.table,
                wanted.len()
            ),
        )
        .with_hint("try again shortly"))
    }

    /// The workspace of a row's `LockID`, and whether this target covers it.
    fn workspace(&self, lock_id: &str) -> Option<Option<String>> {
        let split = split_lock_id(lock_id);
        match (&self.scope, split) {
            (Some((bucket, keys, _)), Some((b, key))) if b == bucket => {
                keys.workspace_of(key).map(Some)
            }
            (Some(_), _) => None,
            (None, Some((_, key))) => Some(Some(workspace_of(key))),
            (None, None) => Some(None),
        }
    }

    /// A lock from one row, or `None` for a row that is not a lock row (or not covered).
    fn lock_from(&self, item: &Item) -> Option<Lock> {
        let lock_id = item.get("LockID")?.as_s().ok()?;
        let info = item.get("Info")?;
        let workspace = self.workspace(lock_id)?;
        let raw = info.as_s().ok().cloned();
        let handle = Handle::new(
            &self.target,
            DynamoHandle {
                lock_id: lock_id.clone(),
                info: raw.clone(),
            },
        );
        let mut lock = Lock::new(DYNAMODB, &self.target, self.location(lock_id), handle);
        match &raw {
            Some(raw) => lock = lock.with_info_text(raw),
            None => lock.info_error = Some("Info is not a string attribute".into()),
        }
        if lock.path.is_empty() {
            lock.path = lock_id.clone();
        }
        lock.workspace = workspace;
        lock.details.insert("table".into(), self.table.clone());
        lock.details.insert("lock_id".into(), lock_id.clone());
        if let Some((bucket, key)) = split_lock_id(lock_id) {
            lock.details.insert("bucket".into(), bucket.to_string());
            lock.details.insert("state_key".into(), key.to_string());
        }
        Some(lock)
    }
}

#[async_trait]
impl LockStore for DynamoStore {
    async fn list(&self) -> Result<Vec<Lock>, Error> {
        let mut locks: Vec<Lock> = match &self.scope {
            Some((bucket, keys, objects)) => self
                .read_scoped(bucket, keys, objects)
                .await?
                .iter()
                .filter_map(|item| self.lock_from(item))
                .collect(),
            None => self.scan().await?,
        };
        locks.sort_by(|a, b| a.location.cmp(&b.location));
        Ok(locks)
    }

    async fn delete_if_unchanged(&self, lock: &Lock, _: &BreakOptions) -> Result<Broken, Error> {
        let h = lock.handle_for::<DynamoHandle>(&self.target)?;
        let lock_id = &h.lock_id;
        let Some(expected) = &h.info else {
            return Err(Error::refused(
                &self.target,
                format!(
                    "row {lock_id} has no string Info attribute: it was not written by Terraform; not removing it"
                ),
            ));
        };
        // Delete only if Info is still exactly the text that was read: a lock re-taken in
        // between has a new ID and Created, so it survives. A missing row fails the same
        // way. Sent once: a retry after a lost reply would fail its condition and be
        // misreported as a change.
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("LockID", AttributeValue::S(lock_id.clone()))
            .condition_expression("#info = :info")
            .expression_attribute_names("#info", "Info")
            .expression_attribute_values(":info", AttributeValue::S(expected.clone()))
            .customize()
            .config_override(once_dynamodb())
            .send()
            .await;
        deleted(
            result,
            // DynamoDB says ConditionalCheckFailedException; a proxy or compatible store
            // may only say 412: both mean the condition on Info did not hold.
            |e| {
                code(e).as_deref() == Some("ConditionalCheckFailedException")
                    || status(e) == Some(412)
            },
            &format!("row {lock_id}"),
            format!("DynamoDB item LockID={lock_id} in table {}", self.table),
            &self.call(format!("deleting row {lock_id} from table {}", self.table)),
        )
    }

    fn doctor(&self) -> Option<&dyn tflock_core::doctor::Doctor> {
        Some(&self.doctor)
    }

    async fn recheck(&self, lock: &Lock) -> Result<Presence, Error> {
        let h = lock.handle_for::<DynamoHandle>(&self.target)?;
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("LockID", AttributeValue::S(h.lock_id.clone()))
            .consistent_read(true)
            .projection_expression("#info")
            .expression_attribute_names("#info", "Info")
            .send()
            .await
            .map_err(|e| {
                sdk_error(
                    &self.call(format!("reading row {} of table {}", h.lock_id, self.table)),
                    &e,
                )
            })?;
        let now = out
            .item()
            .and_then(|i| i.get("Info"))
            .map(|v| v.as_s().ok().cloned());
        Ok(Presence::of(now, &h.info))
    }

    fn backend(&self) -> Backend {
        DYNAMODB
    }

    fn target(&self) -> &str {
        &self.target
    }
}
