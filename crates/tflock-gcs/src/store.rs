//! Listing `.tflock` objects and breaking one with a generation-conditioned delete.

use crate::client::Conn;
use crate::error::Failure;
use crate::naming::{parse_lock_name, LockName, LOCK_SUFFIX};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::channel::mpsc;
use futures::{SinkExt, StreamExt, TryStreamExt};
use gcloud_storage::http::objects::delete::DeleteObjectRequest;
use gcloud_storage::http::objects::download::Range;
use gcloud_storage::http::objects::get::GetObjectRequest;
use gcloud_storage::http::objects::list::ListObjectsRequest;
use gcloud_storage::http::objects::Object;
use tflock_core::error::may_have_applied;
use tflock_core::{
    Backend, BreakOptions, Broken, Error, Finding, Handle, Kind, Lock, LockStore, Presence,
};

/// The backend name of gcs locks.
pub const GCS: Backend = Backend::new("gcs");

/// What a break of a gcs lock compares on: the object and the generation read.
struct GcsHandle {
    object: String,
    generation: i64,
}

/// A Terraform lock is a few hundred bytes; anything bigger is not one and is not read.
const MAX_LOCK_BYTES: i64 = 1 << 20;
const PAGE_SIZE: i32 = 1000;

/// The `.tflock` objects under `gs://BUCKET/PREFIX`.
pub struct GcsStore {
    pub(crate) conn: Conn,
    pub(crate) bucket: String,
    /// Normalised like Terraform's `prefix`: empty or ending in `/`.
    pub(crate) prefix: String,
    /// Whether locks under deeper prefixes are listed too (`false`: one configuration's
    /// workspaces only).
    pub(crate) nested: bool,
    pub(crate) concurrency: usize,
}

/// A listed lock object: name, generation, creation time, size.
struct Found {
    object: String,
    name: LockName,
    generation: i64,
    metageneration: i64,
    created: Option<DateTime<Utc>>,
    size: i64,
}

fn created_of(obj: &Object) -> Option<DateTime<Utc>> {
    let nanos = obj.time_created?.unix_timestamp_nanos();
    i64::try_from(nanos)
        .ok()
        .map(DateTime::from_timestamp_nanos)
}

impl GcsStore {
    fn location(&self, object: &str) -> String {
        format!("gs://{}/{object}", self.bucket)
    }

    /// Every `<prefix>**/<ws>.tflock`, all pages, sent to `out` page by page so that their
    /// bodies are read while later pages are still being listed. The name filter is
    /// applied here as well as by `matchGlob`: emulators ignore the glob and return state
    /// objects too.
    async fn list_lock_objects(&self, mut out: mpsc::Sender<Found>) -> Result<(), Error> {
        let mut page_token: Option<String> = None;
        loop {
            let req = ListObjectsRequest {
                bucket: self.bucket.clone(),
                prefix: Some(self.prefix.clone()).filter(|p| !p.is_empty()),
                match_glob: Some(format!("**{LOCK_SUFFIX}")),
                max_results: Some(PAGE_SIZE),
                page_token: page_token.clone(),
                ..Default::default()
            };
            let page = self
                .conn
                .read(|| self.conn.client.list_objects(&req))
                .await
                .map_err(|e| {
                    self.conn
                        .error(&format!("listing objects in bucket {}", self.bucket), &e)
                })?;
            for obj in page.items.unwrap_or_default() {
                let Some(name) = self.lock_name(&obj.name) else {
                    continue;
                };
                let found = Found {
                    name,
                    generation: obj.generation,
                    metageneration: obj.metageneration,
                    size: obj.size,
                    created: created_of(&obj),
                    object: obj.name,
                };
                // The reader stopped (it failed): its error is the one to report.
                if out.send(found).await.is_err() {
                    return Ok(());
                }
            }
            match page.next_page_token.filter(|t| !t.is_empty()) {
                Some(t) if Some(&t) != page_token.as_ref() => page_token = Some(t),
                _ => return Ok(()),
            }
        }
    }

    /// The lock name of `object` when it is a lock this target covers.
    fn lock_name(&self, object: &str) -> Option<LockName> {
        parse_lock_name(&self.prefix, object).filter(|n| self.nested || !n.nested)
    }

    pub(crate) async fn metadata(&self, object: &str) -> Result<Option<Object>, Error> {
        let req = GetObjectRequest {
            bucket: self.bucket.clone(),
            object: object.to_string(),
            ..Default::default()
        };
        match self.conn.read(|| self.conn.client.get_object(&req)).await {
            Ok(o) => Ok(Some(o)),
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(self
                .conn
                .error(&format!("reading {}", self.location(object)), &e)),
        }
    }

    /// The body of exactly `generation`, at most [`MAX_LOCK_BYTES`]: `Ok(None)` when the
    /// object is larger (the listed size is checked first; this bounds a server that
    /// sends more than it said).
    async fn download(&self, object: &str, generation: i64) -> Result<Option<Vec<u8>>, Failure> {
        let req = GetObjectRequest {
            bucket: self.bucket.clone(),
            object: object.to_string(),
            generation: Some(generation),
            ..Default::default()
        };
        let whole = Range::default();
        self.conn
            .read(|| async {
                let mut body = Vec::new();
                let mut chunks = self
                    .conn
                    .client
                    .download_streamed_object(&req, &whole)
                    .await?;
                while let Some(chunk) = chunks.try_next().await? {
                    if body.len() + chunk.len() > MAX_LOCK_BYTES as usize {
                        return Ok(None);
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(Some(body))
            })
            .await
    }

    /// Reads the body of exactly the generation listed. If that generation is gone (the
    /// lock was released or re-taken since the listing), reads the current one once more;
    /// `None` when no lock object is left.
    async fn read_lock(&self, mut found: Found) -> Result<Option<Lock>, Error> {
        let too_big = |size: i64| {
            format!("object is {size} bytes, too big for Terraform lock info; not read")
        };
        for attempt in 0..2 {
            if found.size > MAX_LOCK_BYTES {
                return Ok(Some(self.lock_of(&found, Err(too_big(found.size)))));
            }
            match self.download(&found.object, found.generation).await {
                Ok(Some(body)) => {
                    let text = String::from_utf8_lossy(&body).into_owned();
                    return Ok(Some(self.lock_of(&found, Ok(text))));
                }
                Ok(None) => {
                    let reason = format!(
                        "object is larger than the {} bytes it was listed with and than Terraform lock info; not read",
                        found.size
                    );
                    return Ok(Some(self.lock_of(&found, Err(reason))));
                }
                Err(e) if e.status() == Some(404) && attempt == 0 => {
                    let Some(obj) = self.metadata(&found.object).await? else {
                        return Ok(None);
                    };
                    found.generation = obj.generation;
                    found.metageneration = obj.metageneration;
                    found.size = obj.size;
                    found.created = created_of(&obj);
                }
                Err(e) if e.status().is_some() => {
                    // Listed but unreadable (e.g. 403 on get): still shown, breakable by generation.
                    let err = self.conn.error("reading the lock", &e);
                    return Ok(Some(self.lock_of(&found, Err(err.to_string()))));
                }
                Err(e) => {
                    return Err(self
                        .conn
                        .error(&format!("reading {}", self.location(&found.object)), &e))
                }
            }
        }
        Ok(Some(self.lock_of(
            &found,
            Err("the lock object changed twice while being read; list again".into()),
        )))
    }

    fn lock_of(&self, found: &Found, body: Result<String, String>) -> Lock {
        let location = self.location(&found.object);
        let handle = Handle::new(
            &self.conn.target,
            GcsHandle {
                object: found.object.clone(),
                generation: found.generation,
            },
        );
        let mut lock = Lock::new(GCS, &self.conn.target, &location, handle);
        // Terraform's ID for a gcs lock is the generation; the body's ID is an alias.
        lock.id = found.generation.to_string();
        lock.path = location.clone();
        lock.workspace = Some(found.name.workspace.clone());
        lock.stored_at = found.created;
        lock.details.insert("object".into(), found.object.clone());
        lock.details
            .insert("generation".into(), found.generation.to_string());
        lock.details
            .insert("metageneration".into(), found.metageneration.to_string());
        lock.state = Some(self.location(&found.name.state_object));
        lock.details.insert("size".into(), found.size.to_string());
        match body {
            Ok(text) => {
                lock = lock.with_info_text(&text);
                if let Some(info) = &lock.info {
                    if !info.id.is_empty() && info.id != lock.id {
                        lock.aliases.push(info.id.clone());
                    }
                }
            }
            Err(reason) => lock.info_error = Some(reason),
        }
        lock
    }
}

#[async_trait]
impl LockStore for GcsStore {
    async fn list(&self) -> Result<Vec<Lock>, Error> {
        // Listing and reading overlap: bodies of the first page are read (at most
        // `concurrency` at once) while the next pages are still being listed.
        let (tx, rx) = mpsc::channel::<Found>(PAGE_SIZE as usize);
        let listing = self.list_lock_objects(tx);
        let reading = rx
            .map(|found| self.read_lock(found))
            .buffer_unordered(self.concurrency)
            .try_filter_map(|lock| futures::future::ready(Ok(lock)))
            .try_collect::<Vec<Lock>>();
        let ((), mut locks) = futures::future::try_join(listing, reading).await?;
        locks.sort_by(|a, b| a.location.cmp(&b.location));
        Ok(locks)
    }

    async fn delete_if_unchanged(&self, lock: &Lock, _: &BreakOptions) -> Result<Broken, Error> {
        let h = lock.handle_for::<GcsHandle>(&self.conn.target)?;
        // Never anything but a lock object under this target (the handle was made by the
        // listing, which only keeps those; checked again because deleting state is the
        // one thing that must never happen).
        if self.lock_name(&h.object).is_none() {
            return Err(Error::refused(
                &self.conn.target,
                format!(
                    "{} is not a .tflock object under this target; tflock deletes nothing else",
                    self.location(&h.object)
                ),
            ));
        }
        let (object, generation) = (&h.object, h.generation);
        let location = self.location(object);
        // Re-check first: the precondition below is what real GCS enforces, but emulators
        // ignore it on DELETE, and this makes the common race report cleanly.
        match self.metadata(object).await? {
            None => {
                return Err(Error::changed(
                    &self.conn.target,
                    format!("{location} (generation {generation}) is gone: someone unlocked it"),
                ))
            }
            Some(now) if now.generation != generation => {
                return Err(Error::changed(
                    &self.conn.target,
                    format!(
                        "{location} was re-taken: generation {} now, {generation} was read",
                        now.generation
                    ),
                ))
            }
            Some(_) => {}
        }
        let req = DeleteObjectRequest {
            bucket: self.bucket.clone(),
            object: object.clone(),
            if_generation_match: Some(generation),
            ..Default::default()
        };
        // Never retried: a lost reply followed by a retry would report a false conflict at
        // best; a lost reply is settled by reading the generation again.
        match self.conn.once(self.conn.client.delete_object(&req)).await {
            Ok(()) => Ok(Broken {
                removed: vec![format!("{location} (generation {generation})")],
                ..Broken::default()
            }),
            Err(e) if matches!(e.status(), Some(404 | 412)) => Err(Error::changed(
                &self.conn.target,
                format!(
                    "{location} is no longer generation {generation} (HTTP {})",
                    e.status().unwrap_or_default()
                ),
            )),
            Err(e) => {
                let err = self.conn.error(&format!("deleting {location}"), &e);
                // An answer below 500 applied nothing; no answer, or a 5xx, may have.
                match e.status() {
                    Some(s) if !may_have_applied(s) => Err(err),
                    _ if err.kind() == Kind::Unreachable => Err(err),
                    _ => Err(err.with_kind(Kind::OutcomeUnknown)),
                }
            }
        }
    }

    async fn recheck(&self, lock: &Lock) -> Result<Presence, Error> {
        let h = lock.handle_for::<GcsHandle>(&self.conn.target)?;
        let now = self.metadata(&h.object).await?;
        Ok(Presence::of(now.map(|m| m.generation), &h.generation))
    }

    async fn diagnose(&self) -> Result<Vec<Finding>, Error> {
        crate::doctor::diagnose(self).await
    }

    fn backend(&self) -> Backend {
        GCS
    }

    fn target(&self) -> &str {
        &self.conn.target
    }
}
