//! What every gcs test file shares: raw emulator calls (independent of the store under
//! test), places written exactly as Terraform's gcs backend writes them, and the fixture
//! for the conformance suite (with its network cases).

#![allow(dead_code)]

use async_trait::async_trait;
use std::sync::Arc;
use tflock_core::testkit::{require_env, Fixture, Network, Place};
use tflock_core::{ConnectOptions, Error, LockInfo, LockStore, Target};
use tflock_gcs::GcsStore;

/// The prefix every place uses, as a `prefix = "env/app"` backend block would.
pub const PREFIX: &str = "env/app/";

/// Object names in URLs: everything but unreserved characters escaped (`/` too).
pub fn esc(name: &str) -> String {
    name.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Raw JSON API calls to the emulator, independent of the store under test.
#[derive(Clone)]
pub struct Emu {
    pub base: String,
    http: reqwest::Client,
}

impl Emu {
    pub fn new(base: &str) -> Emu {
        Emu {
            base: base.trim_end_matches('/').to_string(),
            http: reqwest::Client::new(),
        }
    }

    pub async fn create_bucket(&self, bucket: &str) {
        let res = self
            .http
            .post(format!("{}/storage/v1/b?project=tflock-test", self.base))
            .header("content-type", "application/json")
            .body(serde_json::json!({ "name": bucket }).to_string())
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success(), "create bucket: {}", res.status());
    }

    /// Terraform's write: Go's storage.Writer with `DoesNotExist: true`, i.e. a multipart
    /// upload with `ifGenerationMatch=0`. Returns the new generation, or the HTTP status.
    pub async fn create(
        &self,
        bucket: &str,
        object: &str,
        body: impl AsRef<[u8]>,
    ) -> Result<String, u16> {
        let boundary = "tflock-test-boundary-7d1e";
        let meta = serde_json::json!({ "bucket": bucket, "name": object });
        let mut payload = format!(
            "--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n{meta}\r\n\
             --{boundary}\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        .into_bytes();
        payload.extend_from_slice(body.as_ref());
        payload.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let res = self
            .http
            .post(format!(
                "{}/upload/storage/v1/b/{bucket}/o?uploadType=multipart&ifGenerationMatch=0",
                self.base
            ))
            .header(
                "content-type",
                format!("multipart/related; boundary={boundary}"),
            )
            .body(payload)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        if status != 200 {
            return Err(status);
        }
        let v: serde_json::Value = serde_json::from_str(&res.text().await.unwrap()).unwrap();
        Ok(generation_of(&v))
    }

    pub async fn get(&self, bucket: &str, object: &str) -> Option<serde_json::Value> {
        let res = self
            .http
            .get(format!(
                "{}/storage/v1/b/{bucket}/o/{}",
                self.base,
                esc(object)
            ))
            .send()
            .await
            .unwrap();
        if res.status().as_u16() == 404 {
            return None;
        }
        assert!(res.status().is_success(), "get {object}: {}", res.status());
        Some(serde_json::from_str(&res.text().await.unwrap()).unwrap())
    }

    /// Terraform's unlock: delete with `ifGenerationMatch=<id>`.
    pub async fn delete(&self, bucket: &str, object: &str, generation: &str) {
        let res = self
            .http
            .delete(format!(
                "{}/storage/v1/b/{bucket}/o/{}?ifGenerationMatch={generation}",
                self.base,
                esc(object)
            ))
            .send()
            .await
            .unwrap();
        assert!(
            res.status().is_success(),
            "delete {object}: {}",
            res.status()
        );
    }

    pub async fn list_all(&self, bucket: &str) -> Vec<serde_json::Value> {
        let res = self
            .http
            .get(format!("{}/storage/v1/b/{bucket}/o", self.base))
            .send()
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(&res.text().await.unwrap()).unwrap();
        v["items"].as_array().cloned().unwrap_or_default()
    }
}

pub fn generation_of(v: &serde_json::Value) -> String {
    match &v["generation"] {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub struct GcsPlace {
    pub emu: Emu,
    pub bucket: String,
    pub store: GcsStore,
}

impl GcsPlace {
    pub fn lock_object(&self, state: &str) -> String {
        format!("{PREFIX}{state}.tflock")
    }

    /// The state object Terraform keeps beside the lock (created once, never rewritten).
    pub async fn ensure_state(&self, state: &str) {
        let name = format!("{PREFIX}{state}.tfstate");
        let body = format!(
            r#"{{"version":4,"serial":1,"lineage":"{state}","outputs":{{}},"resources":[]}}"#
        );
        match self.emu.create(&self.bucket, &name, &body).await {
            Ok(_) | Err(412) => {}
            Err(code) => panic!("state object: HTTP {code}"),
        }
    }

    pub async fn write_lock(&self, state: &str, body: impl AsRef<[u8]>) -> String {
        self.ensure_state(state).await;
        self.emu
            .create(&self.bucket, &self.lock_object(state), body)
            .await
            .unwrap_or_else(|code| panic!("lock object already there or refused: HTTP {code}"))
    }
}

#[async_trait]
impl Place for GcsPlace {
    fn store(&self) -> &dyn LockStore {
        &self.store
    }
    fn path_of(&self, state: &str) -> String {
        format!("gs://{}/{}", self.bucket, self.lock_object(state))
    }
    async fn hold(&self, state: &str, info: &LockInfo) -> String {
        // Terraform overwrites Path with the lock object's URL before writing.
        let mut info = info.clone();
        info.path = self.path_of(state);
        self.write_lock(state, &info.to_terraform_json()).await
    }
    async fn retake(&self, state: &str, info: &LockInfo) -> String {
        if let Some(gen) = self.current(state).await {
            self.emu
                .delete(&self.bucket, &self.lock_object(state), &gen)
                .await;
        }
        self.hold(state, info).await
    }
    async fn current(&self, state: &str) -> Option<String> {
        self.emu
            .get(&self.bucket, &self.lock_object(state))
            .await
            .map(|v| generation_of(&v))
    }
    async fn hold_garbage(&self, state: &str) {
        self.write_lock(state, "{\"ID\": not json").await;
    }
    async fn untouchables(&self) -> String {
        let mut lines: Vec<String> = self
            .emu
            .list_all(&self.bucket)
            .await
            .into_iter()
            .filter_map(|o| {
                let name = o["name"].as_str()?.to_string();
                let is_lock = name.starts_with(PREFIX) && name.ends_with(".tflock");
                (!is_lock).then(|| {
                    format!(
                        "{name} gen={} meta={} md5={}",
                        generation_of(&o),
                        o["metageneration"],
                        o["md5Hash"]
                    )
                })
            })
            .collect();
        lines.sort();
        lines.join("\n")
    }
}

pub struct GcsFixture {
    pub emu: Emu,
}

pub fn unique(name: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "tflock-{name}-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
    .to_lowercase()
}

impl GcsFixture {
    /// A fresh bucket with the decoys every place carries: a lock outside the prefix, a
    /// sibling prefix that shares the text (`env/app-old/`), and a non-lock object.
    pub async fn gcs_place(&self, name: &str, endpoint: &str) -> GcsPlace {
        let bucket = unique(name);
        self.emu.create_bucket(&bucket).await;
        for (object, body) in [
            ("outside/default.tflock", r#"{"ID":"outside"}"#),
            ("outside/default.tfstate", "{}"),
            ("env/app-old/default.tflock", r#"{"ID":"sibling"}"#),
            ("env/app/notes.txt", "not a lock"),
        ] {
            self.emu.create(&bucket, object, body).await.unwrap();
        }
        let target = Target::parse(&format!(
            "gs://{bucket}/{}?endpoint={endpoint}",
            PREFIX.trim_end_matches('/')
        ))
        .unwrap();
        let store = GcsStore::open(&target, &ConnectOptions::default())
            .await
            .unwrap_or_else(|e| panic!("open: {e}"));
        GcsPlace {
            emu: self.emu.clone(),
            bucket,
            store,
        }
    }
}

#[async_trait]
impl Fixture for GcsFixture {
    async fn place(&self, name: &str) -> Box<dyn Place> {
        Box::new(self.gcs_place(name, &self.emu.base).await)
    }
    fn network(&self) -> Option<&dyn Network> {
        Some(self)
    }
}

impl GcsFixture {
    /// The fixture over `TFLOCK_TEST_GCS`, or `None` (skipped, said why) without it.
    pub fn from_env() -> Option<GcsFixture> {
        let base = require_env("TFLOCK_TEST_GCS", "fake-gcs-server")?;
        Some(GcsFixture {
            emu: Emu::new(&base),
        })
    }
}

#[async_trait]
impl Network for GcsFixture {
    async fn open(&self, url: &str, opts: &ConnectOptions) -> Result<Arc<dyn LockStore>, Error> {
        let target = Target::parse(url)?;
        tflock_gcs::DRIVER.open(&target, opts).await
    }
    fn bad_targets(&self) -> Vec<String> {
        [
            "gs://",
            "gs://b?region=x",
            "gs://b?endpoint=ftp://x",
            "gs://b?endpoint=http://",
            "gs://b?nested=maybe",
            // A token on the URL would be printed wherever the target is shown.
            "gs://b?access_token=c2VjcmV0",
            "gs://b?credentials=c2VjcmV0",
        ]
        .map(String::from)
        .to_vec()
    }
    fn target_at(&self, endpoint: &str) -> String {
        format!("gs://bkt/env?endpoint={endpoint}")
    }
    fn missing(&self) -> (String, String) {
        let bucket = unique("missing");
        (
            format!("gs://{bucket}/env?endpoint={}", self.emu.base),
            bucket,
        )
    }
    fn emulator(&self) -> Option<String> {
        Some(self.emu.base.clone())
    }
    async fn place_via(&self, name: &str, endpoint: &str) -> Box<dyn Place> {
        Box::new(self.gcs_place(name, endpoint).await)
    }
}
