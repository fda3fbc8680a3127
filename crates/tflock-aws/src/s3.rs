//! `s3://BUCKET[/PREFIX]`: the s3 backend's native lockfiles (`use_lockfile = true`),
//! `<state key>.tflock` objects holding LockInfo JSON.
//!
//! Only keys ending in `.tflock` are read or deleted; state objects are never fetched.
//! A break re-reads the lockfile's ETag (HEAD) and then sends `DeleteObject` with
//! `If-Match` on the ETag that was listed, once: a store that ignores `If-Match` is still
//! guarded by the re-check, and says so.

use crate::client::Aws;
use crate::error::{code, destructive_error, sdk_error, status, Call};
use crate::naming::{lockfile_state_key, workspace_of, StateKeys};
use async_trait::async_trait;
use aws_config::retry::RetryConfig;
use aws_sdk_s3::primitives::DateTime as AwsDateTime;
use aws_sdk_s3::Client;
use chrono::{DateTime, Utc};
use tflock_core::error::source_chain;
use tflock_core::{
    bounded, Backend, BreakOptions, Broken, ConnectOptions, Error, Guard, Handle, Lock, LockStore,
    Presence, Target,
};
use tokio::sync::OnceCell;

/// The backend name of lockfiles.
pub const S3: Backend = Backend::new("s3");

/// A lockfile is a few hundred bytes; anything much larger is not one, so it is not read.
const MAX_LOCKFILE_BYTES: i64 = 1 << 20;

pub(crate) struct S3Store {
    target: String,
    bucket: String,
    prefix: String,
    /// One backend configuration's states (discovery, `?key=`): only its lockfiles.
    keys: Option<StateKeys>,
    region: String,
    endpoint: Option<String>,
    /// Not AWS itself: whether it honours `If-Match` on DELETE must be found out.
    custom_endpoint: bool,
    /// The probe's verdict and the status it saw, found out once.
    if_match_honoured: OnceCell<(bool, u16)>,
    concurrency: usize,
    client: Client,
}

/// What a break of a lockfile compares on.
struct S3Handle {
    key: String,
    etag: Option<String>,
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
            return Err(Error::usage(
                &target.url,
                "missing bucket name (s3://BUCKET[/PREFIX])",
            ));
        }
        Ok(S3Store {
            target: target.url.clone(),
            bucket: target.host.clone(),
            prefix: target.path.clone(),
            keys: target
                .param("key")
                .map(|k| StateKeys::new(k, target.param("workspace_key_prefix"))),
            region: aws.region().to_string(),
            endpoint: aws.s3.shown.clone(),
            custom_endpoint: aws.s3.custom,
            if_match_honoured: OnceCell::new(),
            concurrency: opts.concurrency,
            client: aws.s3_client(),
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

    /// The workspace of a lockfile, and whether it is one this target covers.
    fn workspace(&self, key: &str) -> Option<String> {
        let state_key = lockfile_state_key(key)?;
        match &self.keys {
            Some(keys) => keys.workspace_of(state_key),
            None => Some(workspace_of(state_key)),
        }
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
                if self.workspace(key).is_none() {
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
        let location = self.location(&listed.key);
        let (mut etag, mut last_modified) = (listed.etag.clone(), listed.last_modified);
        let body: Result<String, String> = if listed.size.is_some_and(|s| s > MAX_LOCKFILE_BYTES) {
            Err(format!(
                "{} bytes is too large for a Terraform lockfile; not read",
                listed.size.unwrap_or_default()
            ))
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
                Err(e) => Err(sdk_error(&self.call(format!("reading {location}")), &e).to_string()),
                Ok(out) => {
                    etag = out.e_tag().map(str::to_string).or(etag);
                    last_modified = out.last_modified().cloned().or(last_modified);
                    match out.body.collect().await {
                        Ok(bytes) => Ok(String::from_utf8_lossy(&bytes.into_bytes()).into_owned()),
                        Err(e) => Err(format!("reading {location}: {}", source_chain(&e))),
                    }
                }
            }
        };
        let handle = Handle::new(
            &self.target,
            S3Handle {
                key: listed.key.clone(),
                etag: etag.clone(),
            },
        );
        let mut lock = Lock::new(S3, &self.target, &location, handle);
        match body {
            Ok(raw) => lock = lock.with_info_text(&raw),
            Err(why) => lock.info_error = Some(why),
        }
        if lock.path.is_empty() {
            lock.path = format!("{}/{state_key}", self.bucket);
        }
        lock.workspace = self.workspace(&listed.key);
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
        Ok(Some(lock))
    }

    fn mine<'a>(&self, lock: &'a Lock) -> Result<&'a S3Handle, Error> {
        lock.handle().get::<S3Handle>().ok_or_else(|| {
            Error::usage(
                &self.target,
                format!("{} is not a lockfile of this target", lock.location),
            )
        })
    }

    /// The lockfile's ETag now, or `None` when it is gone. Reads are retried by the SDK.
    async fn head(&self, key: &str) -> Result<Option<String>, Error> {
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => Ok(Some(out.e_tag().unwrap_or_default().to_string())),
            Err(e) if status(&e) == Some(404) => Ok(None),
            Err(e) => Err(sdk_error(
                &self.call(format!("reading {}", self.location(key))),
                &e,
            )),
        }
    }

    /// Sends `DeleteObject` with `If-Match: "tflock-probe"` for a key that cannot exist:
    /// a store that honours the precondition answers 412 (AWS, MinIO) or 404 (moto: it
    /// looked for the object before deleting), one that ignores it answers 204 as S3 does
    /// for any unconditional DELETE. Nothing can be deleted by it. Returns whether it is
    /// honoured and the status seen (kept in the audit record).
    async fn probe_if_match(&self) -> Result<(bool, u16), Error> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let key = format!(
            "{}.tflock-if-match-probe-{}-{nanos:x}",
            self.prefix,
            std::process::id()
        );
        let sent = self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(&key)
            .if_match("\"tflock-if-match-probe\"")
            .customize()
            .config_override(
                aws_sdk_s3::config::Builder::default().retry_config(RetryConfig::disabled()),
            )
            .send()
            .await;
        match sent {
            Ok(_) => Ok((false, 204)),
            Err(e) if matches!(status(&e), Some(404 | 412)) => {
                Ok((true, status(&e).unwrap_or_default()))
            }
            Err(e) => Err(sdk_error(
                &self.call(format!(
                    "checking whether {} honours If-Match on DELETE",
                    self.endpoint.as_deref().unwrap_or("the endpoint")
                )),
                &e,
            )),
        }
    }
}

fn to_chrono(t: &AwsDateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

#[async_trait]
impl LockStore for S3Store {
    fn backend(&self) -> Backend {
        S3
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

    async fn break_guard(&self) -> Result<Guard, Error> {
        if !self.custom_endpoint {
            return Ok(Guard {
                facts: vec![("if_match".into(), "honoured (AWS S3)".into())],
                warning: None,
            });
        }
        let (honoured, seen) = *self
            .if_match_honoured
            .get_or_try_init(|| self.probe_if_match())
            .await?;
        let probe = ("if_match_probe".to_string(), format!("HTTP {seen}"));
        Ok(if honoured {
            Guard {
                facts: vec![("if_match".into(), "honoured".into()), probe],
                warning: None,
            }
        } else {
            Guard {
                facts: vec![("if_match".into(), "ignored".into()), probe],
                warning: Some(format!(
                    "{}: the S3 endpoint {} ignores If-Match on DELETE: a break is only guarded by re-reading the lockfile's ETag right before deleting it",
                    self.target,
                    self.endpoint.as_deref().unwrap_or("?")
                )),
            }
        })
    }

    async fn delete_if_unchanged(&self, lock: &Lock, _: &BreakOptions) -> Result<Broken, Error> {
        let h = self.mine(lock)?;
        let location = self.location(&h.key);
        let Some(etag) = &h.etag else {
            return Err(Error::refused(
                &self.target,
                format!("{location} was listed without an ETag; cannot remove it safely"),
            ));
        };
        // Re-check right before deleting: the window since the listing includes the time
        // the operator took to type `yes`, and some S3-compatible stores ignore If-Match.
        match self.head(&h.key).await? {
            None => {
                return Err(Error::changed(
                    &self.target,
                    format!("{location} is gone: someone unlocked it"),
                ))
            }
            Some(now) if &now != etag => {
                return Err(Error::changed(
                    &self.target,
                    format!("{location} was re-taken: ETag {now} now, {etag} was read"),
                ))
            }
            Some(_) => {}
        }
        // Delete only the exact object that was read: a re-taken lockfile has a new ETag
        // and the delete fails with 412; a vanished one with 404. Sent once: a retry after
        // a lost reply would fail its precondition and be misreported as a change.
        let result = self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(&h.key)
            .if_match(etag)
            .customize()
            .config_override(
                aws_sdk_s3::config::Builder::default().retry_config(RetryConfig::disabled()),
            )
            .send()
            .await;
        match result {
            Ok(_) => Ok(Broken {
                removed: vec![format!("S3 object {location}")],
                ..Broken::default()
            }),
            Err(e)
                if matches!(
                    code(&e).as_deref(),
                    Some("PreconditionFailed" | "NoSuchKey")
                ) || matches!(status(&e), Some(404 | 412)) =>
            {
                Err(Error::changed(
                    &self.target,
                    format!("{location} was removed or re-taken since it was read"),
                ))
            }
            Err(e) => Err(destructive_error(
                &self.call(format!("deleting {location}")),
                &e,
            )),
        }
    }

    async fn recheck(&self, lock: &Lock) -> Result<Presence, Error> {
        let h = self.mine(lock)?;
        Ok(match self.head(&h.key).await? {
            None => Presence::Gone,
            Some(now) if Some(&now) == h.etag.as_ref() => Presence::Same,
            Some(_) => Presence::Other,
        })
    }
}
