//! Listing `.tflock` objects and breaking one with a generation-conditioned delete.

use crate::client::{status, Conn};
use crate::names::{parse_lock_name, LockName, LOCK_SUFFIX};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use gcloud_storage::http::objects::delete::DeleteObjectRequest;
use gcloud_storage::http::objects::download::Range;
use gcloud_storage::http::objects::get::GetObjectRequest;
use gcloud_storage::http::objects::list::ListObjectsRequest;
use gcloud_storage::http::objects::Object;
use tflock_core::{
    check_breakable, Backend, BreakOptions, Broken, Error, Lock, LockStore, Snapshot,
};

/// A Terraform lock is a few hundred bytes; anything bigger is not one and is not read.
const MAX_LOCK_BYTES: i64 = 1 << 20;
const PAGE_SIZE: i32 = 1000;

/// The `.tflock` objects under `gs://BUCKET/PREFIX`.
pub struct GcsStore {
    pub(crate) conn: Conn,
    pub(crate) bucket: String,
    /// Normalised like Terraform's `prefix`: empty or ending in `/`.
    pub(crate) prefix: String,
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

    /// Every `<prefix>**/<ws>.tflock`, all pages. The name filter is applied here as well
    /// as by `matchGlob`: emulators ignore the glob and return state objects too.
    async fn list_lock_objects(&self) -> Result<Vec<Found>, Error> {
        let mut found = Vec::new();
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
                let Some(name) = parse_lock_name(&self.prefix, &obj.name) else {
                    continue;
                };
                found.push(Found {
                    name,
                    generation: obj.generation,
                    metageneration: obj.metageneration,
                    size: obj.size,
                    created: created_of(&obj),
                    object: obj.name,
                });
            }
            match page.next_page_token.filter(|t| !t.is_empty()) {
                Some(t) if Some(&t) != page_token.as_ref() => page_token = Some(t),
                _ => break,
            }
        }
        found.sort_by(|a, b| a.object.cmp(&b.object));
        Ok(found)
    }

    async fn metadata(&self, object: &str) -> Result<Option<Object>, Error> {
        let req = GetObjectRequest {
            bucket: self.bucket.clone(),
            object: object.to_string(),
            ..Default::default()
        };
        match self.conn.read(|| self.conn.client.get_object(&req)).await {
            Ok(o) => Ok(Some(o)),
            Err(e) if status(&e) == Some(404) => Ok(None),
            Err(e) => Err(self
                .conn
                .error(&format!("reading {}", self.location(object)), &e)),
        }
    }

    /// Reads the body of exactly the generation listed. If that generation is gone (the
    /// lock was released or re-taken since the listing), reads the current one once more;
    /// `None` when no lock object is left.
    async fn read_lock(&self, mut found: Found) -> Result<Option<Lock>, Error> {
        for attempt in 0..2 {
            if found.size > MAX_LOCK_BYTES {
                return Ok(Some(self.lock_of(
                    &found,
                    Err(format!(
                        "object is {} bytes, too big for Terraform lock info; not read",
                        found.size
                    )),
                )));
            }
            let req = GetObjectRequest {
                bucket: self.bucket.clone(),
                object: found.object.clone(),
                generation: Some(found.generation),
                ..Default::default()
            };
            let whole = Range::default();
            match self
                .conn
                .read(|| self.conn.client.download_object(&req, &whole))
                .await
            {
                Ok(body) => {
                    let text = String::from_utf8_lossy(&body).into_owned();
                    return Ok(Some(self.lock_of(&found, Ok(text))));
                }
                Err(e) if status(&e) == Some(404) && attempt == 0 => {
                    let Some(obj) = self.metadata(&found.object).await? else {
                        return Ok(None);
                    };
                    found.generation = obj.generation;
                    found.metageneration = obj.metageneration;
                    found.size = obj.size;
                    found.created = created_of(&obj);
                }
                Err(e) if status(&e).is_some() => {
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
        let mut lock = Lock::new(Backend::Gcs, &self.conn.target, &location);
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
        lock.details.insert(
            "state_object".into(),
            self.location(&found.name.state_object),
        );
        lock.details.insert("size".into(), found.size.to_string());
        lock.snapshot = Snapshot {
            raw: body.as_ref().ok().cloned(),
            etag: None,
            version: Some(found.generation.to_string()),
        };
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

    /// The object a listed lock names, only if it is a `.tflock` under this prefix.
    fn object_of(&self, lock: &Lock) -> Result<String, Error> {
        let object = lock
            .location
            .strip_prefix(&format!("gs://{}/", self.bucket))
            .filter(|o| parse_lock_name(&self.prefix, o).is_some())
            .ok_or_else(|| {
                Error::refused(
                    &self.conn.target,
                    format!(
                        "{} is not a .tflock object under this target; tflock deletes nothing else",
                        lock.location
                    ),
                )
            })?;
        Ok(object.to_string())
    }
}

#[async_trait]
impl LockStore for GcsStore {
    fn backend(&self) -> Backend {
        Backend::Gcs
    }

    fn target(&self) -> &str {
        &self.conn.target
    }

    async fn list(&self) -> Result<Vec<Lock>, Error> {
        let found = self.list_lock_objects().await?;
        let read = tflock_core::bounded(found, self.concurrency, |f| self.read_lock(f)).await;
        let mut locks = Vec::new();
        for lock in read {
            if let Some(lock) = lock? {
                locks.push(lock);
            }
        }
        Ok(locks)
    }

    async fn break_lock(&self, lock: &Lock, opts: &BreakOptions) -> Result<Broken, Error> {
        check_breakable(lock, opts)?;
        let object = self.object_of(lock)?;
        let location = self.location(&object);
        let generation: i64 = lock
            .snapshot
            .version
            .as_deref()
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| {
                Error::backend(
                    &self.conn.target,
                    format!("{location} was not read with its generation; list it again"),
                )
            })?;
        // Re-check first: the precondition below is what real GCS enforces, but emulators
        // ignore it on DELETE, and this makes the common race report cleanly.
        match self.metadata(&object).await? {
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
        // best; the caller lists again instead.
        match self.conn.client.delete_object(&req).await {
            Ok(()) => Ok(Broken {
                removed: vec![format!("{location} (generation {generation})")],
            }),
            Err(e) if matches!(status(&e), Some(404 | 412)) => Err(Error::changed(
                &self.conn.target,
                format!(
                    "{location} is no longer generation {generation} (HTTP {})",
                    status(&e).unwrap_or_default()
                ),
            )),
            Err(e) => Err(self.conn.error(&format!("deleting {location}"), &e)),
        }
    }
}
