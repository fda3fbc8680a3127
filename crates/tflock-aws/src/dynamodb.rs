//! `dynamodb://TABLE[/PREFIX]`: the lock rows of the s3 backend's `dynamodb_table`.
//!
//! A lock row has `Info` (LockInfo JSON); a digest row (`<bucket>/<key>-md5`) has `Digest`
//! and is never listed, read beyond its key, or touched. Rows are told apart by attribute,
//! server-side, so digest values never leave the table.

use crate::config::Aws;
use crate::error::{code, sdk_error, Call};
use crate::keys::{split_lock_id, workspace_of};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use std::collections::HashMap;
use tflock_core::{check_breakable, Backend, BreakOptions, Broken, Error, Lock, LockStore, Target};

type Item = HashMap<String, AttributeValue>;

/// Parallel scan segments allowed by `?segments=` (DynamoDB allows up to 1,000,000; more
/// than a few dozen requests at once only adds throttling).
const MAX_SEGMENTS: i32 = 64;

pub(crate) struct DynamoStore {
    target: String,
    table: String,
    /// Only `LockID`s starting with this (a bucket, `bucket/env:/`), when the target has a path.
    prefix: String,
    /// Parallel scan segments (`?segments=`, default 1).
    segments: i32,
    region: String,
    endpoint: Option<String>,
    client: Client,
}

impl DynamoStore {
    pub fn new(target: &Target, aws: &Aws) -> Result<Self, Error> {
        if target.host.is_empty() {
            return Err(Error::usage(format!(
                "{}: missing table name (dynamodb://TABLE)",
                target.url
            )));
        }
        let segments = match target.param("segments") {
            None => 1,
            Some(n) => n
                .parse::<i32>()
                .ok()
                .filter(|n| (1..=MAX_SEGMENTS).contains(n))
                .ok_or_else(|| {
                    Error::usage(format!(
                        "{}: ?segments={n} must be a number from 1 to {MAX_SEGMENTS}",
                        target.url
                    ))
                })?,
        };
        Ok(DynamoStore {
            target: target.url.clone(),
            segments,
            table: target.host.clone(),
            prefix: target.path.clone(),
            region: aws.region().to_string(),
            endpoint: aws.endpoint.clone(),
            client: Client::new(&aws.sdk),
        })
    }

    fn call(&self, action: String) -> Call<'_> {
        Call {
            target: &self.target,
            action,
            region: &self.region,
            endpoint: self.endpoint.as_deref(),
        }
    }

    fn location(&self, lock_id: &str) -> String {
        format!("dynamodb://{}/{lock_id}", self.table)
    }

    /// Every lock row, scanning `segments` segments in parallel.
    async fn scan(&self) -> Result<Vec<Item>, Error> {
        if self.segments == 1 {
            return self.scan_segment(None).await;
        }
        let parts =
            futures::future::try_join_all((0..self.segments).map(|s| self.scan_segment(Some(s))))
                .await?;
        Ok(parts.into_iter().flatten().collect())
    }

    async fn scan_segment(&self, segment: Option<i32>) -> Result<Vec<Item>, Error> {
        let mut items = Vec::new();
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
            items.extend(page.items().iter().cloned());
            match page.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => return Ok(items),
            }
        }
    }

    /// A lock from one row, or `None` for a row that is not a lock row.
    fn lock_from(&self, item: &Item) -> Option<Lock> {
        let lock_id = item.get("LockID")?.as_s().ok()?;
        let info = item.get("Info")?;
        let mut lock = Lock::new(Backend::Dynamodb, &self.target, self.location(lock_id));
        match info.as_s() {
            Ok(raw) => {
                lock = lock.with_info_text(raw);
                lock.snapshot.raw = Some(raw.clone());
            }
            Err(_) => lock.info_error = Some("Info is not a string attribute".into()),
        }
        if lock.path.is_empty() {
            lock.path = lock_id.clone();
        }
        lock.details.insert("table".into(), self.table.clone());
        lock.details.insert("lock_id".into(), lock_id.clone());
        if let Some((bucket, key)) = split_lock_id(lock_id) {
            lock.workspace = Some(workspace_of(key));
            lock.details.insert("bucket".into(), bucket.to_string());
            lock.details.insert("state_key".into(), key.to_string());
        }
        Some(lock)
    }
}

#[async_trait]
impl LockStore for DynamoStore {
    fn backend(&self) -> Backend {
        Backend::Dynamodb
    }

    fn target(&self) -> &str {
        &self.target
    }

    async fn list(&self) -> Result<Vec<Lock>, Error> {
        let mut locks: Vec<Lock> = self
            .scan()
            .await?
            .iter()
            .filter_map(|item| self.lock_from(item))
            .collect();
        locks.sort_by(|a, b| a.location.cmp(&b.location));
        Ok(locks)
    }

    async fn break_lock(&self, lock: &Lock, opts: &BreakOptions) -> Result<Broken, Error> {
        check_breakable(lock, opts)?;
        let lock_id = lock
            .location
            .strip_prefix(&format!("dynamodb://{}/", self.table))
            .filter(|id| !id.is_empty())
            .ok_or_else(|| {
                Error::usage(format!(
                    "{}: {} is not a row of table {}",
                    self.target, lock.location, self.table
                ))
            })?;
        let Some(expected) = &lock.snapshot.raw else {
            return Err(Error::refused(
                &self.target,
                format!(
                    "row {lock_id} has no string Info attribute: it was not written by Terraform; not removing it"
                ),
            ));
        };
        // Delete only if Info is still exactly the text that was read: a lock re-taken in
        // between has a new ID and Created, so it survives. A missing row fails the same way.
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("LockID", AttributeValue::S(lock_id.to_string()))
            .condition_expression("#info = :info")
            .expression_attribute_names("#info", "Info")
            .expression_attribute_values(":info", AttributeValue::S(expected.clone()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(Broken {
                removed: vec![format!(
                    "DynamoDB item LockID={lock_id} in table {}",
                    self.table
                )],
            }),
            Err(e) if code(&e).as_deref() == Some("ConditionalCheckFailedException") => {
                Err(Error::changed(
                    &self.target,
                    format!("row {lock_id} was removed or re-taken since it was read"),
                ))
            }
            Err(e) => Err(sdk_error(
                &self.call(format!("deleting row {lock_id} from table {}", self.table)),
                &e,
            )),
        }
    }
}
