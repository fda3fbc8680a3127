//! `s3://BUCKET[/PREFIX]`: the s3 backend's native lockfiles (`use_lockfile = true`),
//! `<state key>.tflock` objects holding LockInfo JSON.
//!
//! Only keys ending in `.tflock` are read or deleted; state objects are never fetched.
//! The ETag read is kept, and a break is `DeleteObject` with `If-Match` on it.

use crate::config::Aws;
use crate::error::{code, sdk_error, status, Call};
use crate::keys::{lockfile_state_key, workspace_of};
use async_trait::async_trait;
use aws_sdk_s3::primitives::DateTime as AwsDateTime;
use aws_sdk_s3::Client;
use chrono::{DateTime, Utc};
use tflock_core::error::source_chain;
use tflock_core::{
    bounded, check_breakable, Backend, BreakOptions, Broken, ConnectOptions, Error, Lock,
    LockStore, Target,
};

/// A lockfile is a few hundred bytes; anything much larger is not one, so it is not read.
const MAX_LOCKFILE_BYTES: i64 = 1 << 20;

pub(crate) struct S3Store {
    target: String,
    bucket: String,
    prefix: String,
    region: String,
    endpoint: Option<String>,
    concurrency: usize,
    client: Client,
}

/// One `.tflock` object as listed.
struct Listed {
    key: String,
    etag: Option<String>,
    size: Option<i64>,
    last_modified: Option<AwsDateTime>,
}

impl S3Store {
    pub fn new(target: &Target, aws: &Aws, opts: &ConnectOptions) -> Result<Self, Error> {
        if target.host.is_empty() {
            return Err(Error::usage(format!(
                "{}: missing bucket name (s3://BUCKET[/PREFIX])",
                target.url
            )));
        }
        // Emulators and most private endpoints only serve path-style URLs.
        let config = aws_sdk_s3::config::Builder::from(&aws.sdk)
            .force_path_style(aws.custom_endpoint)
            .build();
        Ok(S3Store {
            target: target.url.clone(),
            bucket: target.host.clone(),
            prefix: target.path.clone(),
            region: aws.region().to_string(),
            endpoint: aws.endpoint.clone(),
            concurrency: opts.concurrency,
            client: Client::from_conf(config),
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

    fn location(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    async fn list_lockfiles(&self) -> Result<Vec<Listed>, Error> {
        let mut found = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut req = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .set_continuation_token(token.take());
            if !self.prefix.is_empty() {
                req = req.prefix(&self.prefix);
            }
            let page = req.send().await.map_err(|e| {
                sdk_error(&self.call(format!("listing bucket {}", self.bucket)), &e)
            })?;
            for obj in page.contents() {
                let Some(key) = obj.key() else { continue };
                // The server returns every key under the prefix: keep lockfiles only.
                if lockfile_state_key(key).is_none() {
                    continue;
                }
                found.push(Listed {
                    key: key.to_string(),
                    etag: obj.e_tag().map(str::to_string),
                    size: obj.size(),
                    last_modified: obj.last_modified().cloned(),
                });
            }
            match page.next_continuation_token() {
                Some(t) if page.is_truncated() == Some(true) && !t.is_empty() => {
                    token = Some(t.to_string())
                }
                _ => return Ok(found),
            }
        }
    }

    /// Reads one lockfile; `None` when it vanished between the listing and the read.
    async fn read(&self, listed: Listed) -> Result<Option<Lock>, Error> {
        let state_key = lockfile_state_key(&listed.key).unwrap_or(&listed.key);
        let mut lock = Lock::new(Backend::S3, &self.target, self.location(&listed.key));
        let (mut etag, mut last_modified) = (listed.etag.clone(), listed.last_modified);
        if listed.size.is_some_and(|s| s > MAX_LOCKFILE_BYTES) {
            lock.info_error = Some(format!(
                "{} bytes is too large for a Terraform lockfile; not read",
                listed.size.unwrap_or_default()
            ));
        } else {
            let got = self
                .client
                .get_object()
                .bucket(&self.bucket)
                .key(&listed.key)
                .send()
                .await;
            match got {
                Err(e) if code(&e).as_deref() == Some("NoSuchKey") || status(&e) == Some(404) => {
                    return Ok(None)
                }
                // One unreadable lockfile (SSE-C, a KMS key the caller may not use, a
                // flaky read) must not hide the others: list it with the reason. It can
                // still be broken by location, under If-Match on the listed ETag.
                Err(e) => {
                    let err = sdk_error(
                        &self.call(format!("reading {}", self.location(&listed.key))),
                        &e,
                    );
                    lock.info_error = Some(err.to_string());
                }
                Ok(out) => {
                    etag = out.e_tag().map(str::to_string).or(etag);
                    last_modified = out.last_modified().cloned().or(last_modified);
                    match out.body.collect().await {
                        Ok(bytes) => {
                            let raw = String::from_utf8_lossy(&bytes.into_bytes()).into_owned();
                            lock = lock.with_info_text(&raw);
                            lock.snapshot.raw = Some(raw);
                        }
                        Err(e) => {
                            lock.info_error = Some(format!(
                                "reading {}: {}",
                                self.location(&listed.key),
                                source_chain(&e)
                            ));
                        }
                    }
                }
            }
        }
        if lock.path.is_empty() {
            lock.path = format!("{}/{state_key}", self.bucket);
        }
        lock.workspace = Some(workspace_of(state_key));
        lock.stored_at = last_modified.as_ref().and_then(to_chrono);
        lock.details.insert("bucket".into(), self.bucket.clone());
        lock.details.insert("key".into(), listed.key.clone());
        if let Some(size) = listed.size {
            lock.details.insert("size".into(), size.to_string());
        }
        if let Some(t) = lock.stored_at {
            lock.details.insert("last_modified".into(), t.to_rfc3339());
        }
        if let Some(e) = &etag {
            lock.details.insert("etag".into(), e.clone());
        }
        lock.snapshot.etag = etag;
        Ok(Some(lock))
    }
}

fn to_chrono(t: &AwsDateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

#[async_trait]
impl LockStore for S3Store {
    fn backend(&self) -> Backend {
        Backend::S3
    }

    fn target(&self) -> &str {
        &self.target
    }

    async fn list(&self) -> Result<Vec<Lock>, Error> {
        let listed = self.list_lockfiles().await?;
        let read = bounded(listed, self.concurrency, |l| self.read(l)).await;
        let mut locks = Vec::new();
        for lock in read {
            locks.extend(lock?);
        }
        Ok(locks)
    }

    async fn break_lock(&self, lock: &Lock, opts: &BreakOptions) -> Result<Broken, Error> {
        check_breakable(lock, opts)?;
        let key = lock
            .location
            .strip_prefix(&format!("s3://{}/", self.bucket))
            .filter(|k| lockfile_state_key(k).is_some())
            .ok_or_else(|| {
                Error::usage(format!(
                    "{}: {} is not a lockfile in bucket {}",
                    self.target, lock.location, self.bucket
                ))
            })?;
        let Some(etag) = &lock.snapshot.etag else {
            return Err(Error::refused(
                &self.target,
                format!(
                    "{} was listed without an ETag; cannot remove it safely",
                    lock.location
                ),
            ));
        };
        // Delete only the exact object that was read: a re-taken lockfile has a new ETag
        // and the delete fails with 412; a vanished one with 404.
        let result = self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .if_match(etag)
            .send()
            .await;
        match result {
            Ok(_) => Ok(Broken {
                removed: vec![format!("S3 object {}", lock.location)],
            }),
            Err(e)
                if matches!(
                    code(&e).as_deref(),
                    Some("PreconditionFailed" | "NoSuchKey")
                ) || matches!(status(&e), Some(404 | 412)) =>
            {
                Err(Error::changed(
                    &self.target,
                    format!(
                        "{} was removed or re-taken since it was read",
                        lock.location
                    ),
                ))
            }
            Err(e) => Err(sdk_error(
                &self.call(format!("deleting {}", lock.location)),
                &e,
            )),
        }
    }
}
