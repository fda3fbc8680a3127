//! `s3://BUCKET[/PREFIX]`: the s3 backend's native lockfiles (`use_lockfile = true`),
//! `<state key>.tflock` objects holding LockInfo JSON.
//!
//! Only keys ending in `.tflock` are read or deleted; state objects are never fetched.
//! Unscoped, the bucket (or prefix) is listed page by page while the lockfiles already
//! seen are read, `--concurrency` at a time. Scoped to one configuration (`?key=`), only
//! `<workspace_key_prefix>/` is listed (where the other workspaces' lockfiles are) and the
//! default workspace's lockfile is read directly, beside that listing.
//! A break re-reads the lockfile's ETag (HEAD) and then sends `DeleteObject` with
//! `If-Match` on the ETag that was listed, once: a store that ignores `If-Match` is still
//! guarded by the re-check, and says so.

use crate::client::{once_s3, Aws};
use crate::error::{code, deleted, sdk_error, status, Call};
use crate::naming::{
    lockfile_state_key, workspace_of, StateKeys, LOCKFILE_SUFFIX, WORKSPACE_PREFIX,
};
use async_trait::async_trait;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::operation::delete_object::{DeleteObjectError, DeleteObjectOutput};
use aws_sdk_s3::primitives::DateTime as AwsDateTime;
use aws_sdk_s3::Client;
use chrono::{DateTime, Utc};
use futures::stream::{self, Stream, StreamExt, TryStreamExt};
use tflock_core::error::source_chain;
use tflock_core::{
    Backend, BreakOptions, Broken, ConnectOptions, Error, Guard, Handle, Kind, Lock, LockStore,
    Presence, Target,
};
use tokio::sync::OnceCell;

/// The backend name of lockfiles.
pub const S3: Backend = Backend::new("s3");

/// A lockfile is a few hundred bytes; anything much larger is not one, so it is not read.
const MAX_LOCKFILE_BYTES: i64 = 1 << 20;

pub(crate) struct S3Store {
    /// `tflock doctor` over this bucket: lockfiles whose state object is missing.
    doctor: crate::doctor::Doctor,
    target: String,
    bucket: String,
    prefix: String,
    /// Where lockfiles are listed and read.
    objects: Bucket,
    /// One backend configuration's states (discovery, `?key=`): only its lockfiles.
    keys: Option<StateKeys>,
    /// Not AWS itself: whether it honours `If-Match` on DELETE must be found out.
    custom_endpoint: bool,
    /// The probe's verdict and the status it saw, found out once.
    if_match_honoured: OnceCell<(bool, u16)>,
    concurrency: usize,
}

/// A bucket listed page by page: the lockfiles of an `s3://` target, and the workspaces
/// of one configuration for a `dynamodb://` target scoped to it.
pub(crate) struct Bucket {
    client: Client,
    name: String,
    target: String,
    region: String,
    endpoint: Option<String>,
}

impl Bucket {
    /// The state bucket `name`, for messages about `target`.
    pub fn new(target: &str, name: &str, aws: &Aws) -> Bucket {
        Bucket {
            client: aws.s3_client(),
            name: name.to_string(),
            target: target.to_string(),
            region: aws.region().to_string(),
            endpoint: aws.s3.shown.clone(),
        }
    }

    fn call(&self, action: String) -> Call<'_> {
        Call::new(&self.target, &self.region, self.endpoint.as_deref(), action)
    }

    /// `ListObjectsV2` under `prefix`, one page (up to 1000 keys) at a time: the next page
    /// is asked for only when the consumer wants more, so reads of the keys already seen
    /// overlap it.
    pub fn pages<'a>(
        &'a self,
        prefix: &'a str,
    ) -> impl Stream<Item = Result<Vec<Listed>, Error>> + Send + 'a {
        stream::try_unfold(Some(None::<String>), move |state| async move {
            let Some(token) = state else { return Ok(None) };
            let mut req = self
                .client
                .list_objects_v2()
                .bucket(&self.name)
                .set_continuation_token(token);
            if !prefix.is_empty() {
                req = req.prefix(prefix);
            }
            let page = req.send().await.map_err(|e| {
                let what = if prefix.is_empty() {
                    format!("listing bucket {}", self.name)
                } else {
                    format!("listing {prefix} in bucket {}", self.name)
                };
                sdk_error(&self.call(what), &e)
            })?;
            let listed = page
                .contents()
                .iter()
                .filter_map(|o| {
                    Some(Listed {
                        key: o.key()?.to_string(),
                        etag: o.e_tag().map(str::to_string),
                        size: o.size(),
                        last_modified: o.last_modified().cloned(),
                    })
                })
                .collect();
            let next = match page.next_continuation_token() {
                Some(t) if page.is_truncated() == Some(true) && !t.is_empty() => {
                    Some(Some(t.to_string()))
                }
                _ => None,
            };
            Ok(Some((listed, next)))
        })
    }

    /// Keys under `<workspace_key_prefix>/` that belong to `keys`' configuration, as
    /// Terraform's `Workspaces()` lists them (one listing of that prefix). A listing
    /// refused under the default prefix gives none, as Terraform then only knows the
    /// default workspace.
    pub fn workspace_keys<'a>(
        &'a self,
        keys: &'a StateKeys,
        listing_prefix: &'a str,
    ) -> impl Stream<Item = Result<Listed, Error>> + Send + 'a {
        let tolerate_denied = keys.prefix == WORKSPACE_PREFIX;
        self.pages(listing_prefix)
            .take_while(move |page| {
                let denied = matches!(page, Err(e) if e.kind() == Kind::PermissionDenied);
                futures::future::ready(!(denied && tolerate_denied))
            })
            .map_ok(|page| stream::iter(page.into_iter().map(Ok)))
            .try_flatten()
    }

    /// The workspaces of `keys`: `default`, then every `<ws>` with a state object or a
    /// lockfile at `<workspace_key_prefix>/<ws>/<key>`.
    pub async fn workspaces(&self, keys: &StateKeys) -> Result<Vec<String>, Error> {
        let prefix = keys.listing_prefix();
        let mut found: Vec<String> = self
            .workspace_keys(keys, &prefix)
            .try_filter_map(|l| async move {
                let state = lockfile_state_key(&l.key).unwrap_or(&l.key);
                Ok(keys.workspace_of(state).filter(|ws| ws != "default"))
            })
            .try_collect()
            .await?;
        found.sort();
        found.dedup();
        found.insert(0, "default".to_string());
        Ok(found)
    }
}

/// What a break of a lockfile compares on.
struct S3Handle {
    key: String,
    etag: Option<String>,
}

/// One object as listed (or, for a lockfile read directly, only its key).
pub(crate) struct Listed {
    key: String,
    etag: Option<String>,
    size: Option<i64>,
    last_modified: Option<AwsDateTime>,
}

impl Listed {
    fn key_only(key: String) -> Listed {
        Listed {
            key,
            etag: None,
            size: None,
            last_modified: None,
        }
    }
}

impl S3Store {
    pub fn new(target: &Target, aws: &Aws, opts: &ConnectOptions) -> Result<Self, Error> {
        target.required_host("bucket name", "s3://BUCKET[/PREFIX]")?;
        let keys = StateKeys::from_target(target)?;
        if keys.is_some() && !target.path.is_empty() {
            return Err(Error::usage(
                &target.url,
                "?key= names the states itself: drop the /PREFIX from the target",
            ));
        }
        Ok(S3Store {
            doctor: crate::doctor::Doctor::for_bucket(target, aws)?,
            target: target.url.clone(),
            bucket: target.host.clone(),
            prefix: target.path.clone(),
            objects: Bucket::new(&target.url, &target.host, aws),
            keys,
            custom_endpoint: aws.s3.custom,
            if_match_honoured: OnceCell::new(),
            concurrency: opts.concurrency,
        })
    }

    fn call(&self, action: String) -> Call<'_> {
        self.objects.call(action)
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

    /// Every lockfile under the target's prefix, read while later pages are listed.
    async fn list_all(&self) -> Result<Vec<Lock>, Error> {
        let lockfiles = self
            .objects
            .pages(&self.prefix)
            .map_ok(|page| {
                // The server returns every key under the prefix: keep lockfiles only.
                let page: Vec<Result<Listed, Error>> = page
                    .into_iter()
                    .filter(|l| self.workspace(&l.key).is_some())
                    .map(Ok)
                    .collect();
                stream::iter(page)
            })
            .try_flatten();
        self.read_all(lockfiles).await
    }

    /// One configuration's lockfiles: the default workspace's read directly, the others
    /// found by one listing of `<workspace_key_prefix>/` (1 request per 1000 keys) and
    /// read as they are seen.
    async fn list_scoped(&self, keys: &StateKeys) -> Result<Vec<Lock>, Error> {
        let default = Listed::key_only(format!("{}{LOCKFILE_SUFFIX}", keys.key));
        let prefix = keys.listing_prefix();
        let others = self.objects.workspace_keys(keys, &prefix).try_filter(|l| {
            let ws = self.workspace(&l.key);
            futures::future::ready(ws.is_some_and(|ws| ws != "default"))
        });
        self.read_all(stream::iter([Ok(default)]).chain(others))
            .await
    }

    /// Reads lockfiles as they come, `concurrency` at a time, in the order listed.
    async fn read_all(
        &self,
        lockfiles: impl Stream<Item = Result<Listed, Error>> + Send,
    ) -> Result<Vec<Lock>, Error> {
        let read: Vec<Option<Lock>> = lockfiles
            .map(|l| async move { self.read(l?).await })
            .buffered(self.concurrency.max(1))
            .try_collect()
            .await?;
        Ok(read.into_iter().flatten().collect())
    }

    /// Reads one lockfile; `None` when it vanished between the listing and the read.
    async fn read(&self, listed: Listed) -> Result<Option<Lock>, Error> {
        let state_key = lockfile_state_key(&listed.key).unwrap_or(&listed.key);
        let location = self.location(&listed.key);
        let (mut etag, mut last_modified) = (listed.etag.clone(), listed.last_modified);
        let mut size = listed.size;
        let body: Result<String, String> = if listed.size.is_some_and(|s| s > MAX_LOCKFILE_BYTES) {
            Err(format!(
                "{} bytes is too large for a Terraform lockfile; not read",
                listed.size.unwrap_or_default()
            ))
        } else {
            let got = self
                .objects
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
                Ok(out) if out.content_length().is_some_and(|n| n > MAX_LOCKFILE_BYTES) => {
                    etag = out.e_tag().map(str::to_string).or(etag);
                    size = out.content_length();
                    Err(format!(
                        "{} bytes is too large for a Terraform lockfile; not read",
                        size.unwrap_or_default()
                    ))
                }
                Ok(out) => {
                    etag = out.e_tag().map(str::to_string).or(etag);
                    last_modified = out.last_modified().cloned().or(last_modified);
                    size = size.or(out.content_length());
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
        if let Some(size) = size {
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

    /// The lockfile's ETag now, or `None` when it is gone. Reads are retried by the SDK.
    async fn head(&self, key: &str) -> Result<Option<String>, Error> {
        match self
            .objects
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

    /// `DeleteObject` of `key` with `If-Match: etag`, sent once.
    async fn delete_if_match(
        &self,
        key: &str,
        etag: &str,
    ) -> Result<DeleteObjectOutput, SdkError<DeleteObjectError, HttpResponse>> {
        self.objects
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .if_match(etag)
            .customize()
            .config_override(once_s3())
            .send()
            .await
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
            .delete_if_match(&key, "\"tflock-if-match-probe\"")
            .await;
        match sent {
            Ok(_) => Ok((false, 204)),
            Err(e) if matches!(status(&e), Some(404 | 412)) => {
                Ok((true, status(&e).unwrap_or_default()))
            }
            Err(e) => Err(sdk_error(
                &self.call(format!(
                    "checking whether {} honours If-Match on DELETE",
                    self.objects.endpoint.as_deref().unwrap_or("the endpoint")
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
    async fn list(&self) -> Result<Vec<Lock>, Error> {
        match &self.keys {
            Some(keys) => self.list_scoped(keys).await,
            None => self.list_all().await,
        }
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
                    self.objects.endpoint.as_deref().unwrap_or("?")
                )),
            }
        })
    }

    async fn delete_if_unchanged(&self, lock: &Lock, _: &BreakOptions) -> Result<Broken, Error> {
        let h = lock.handle_for::<S3Handle>(&self.target)?;
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
        // and the delete fails with 412; a vanished one with 404.
        let result = self.delete_if_match(&h.key, etag).await;
        deleted(
            result,
            |e| {
                matches!(code(e).as_deref(), Some("PreconditionFailed" | "NoSuchKey"))
                    || matches!(status(e), Some(404 | 412))
            },
            &location,
            format!("S3 object {location}"),
            &self.call(format!("deleting {location}")),
        )
    }

    fn doctor(&self) -> Option<&dyn tflock_core::doctor::Doctor> {
        Some(&self.doctor)
    }

    async fn recheck(&self, lock: &Lock) -> Result<Presence, Error> {
        let h = lock.handle_for::<S3Handle>(&self.target)?;
        let now = self.head(&h.key).await?;
        Ok(Presence::of(now.map(Some), &h.etag))
    }

    fn backend(&self) -> Backend {
        S3
    }

    fn target(&self) -> &str {
        &self.target
    }
}
