//! The core conformance suite against fake-gcs-server (`TFLOCK_TEST_GCS`), locks written
//! exactly as Terraform's gcs backend writes them, plus GCS-specific cases: the DELETE
//! precondition really sent (recording proxy), 412 reported as Changed, bad input, and a
//! dead endpoint failing fast.

use async_trait::async_trait;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tflock_core::testkit::{require_env, sample_info, Fixture, Place};
use tflock_core::{BreakOptions, ConnectOptions, LockInfo, LockStore, Target};
use tflock_gcs::GcsStore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The prefix every place uses, as a `prefix = "env/app"` backend block would.
const PREFIX: &str = "env/app/";

/// Object names in URLs: everything but unreserved characters escaped (`/` too).
fn esc(name: &str) -> String {
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
struct Emu {
    base: String,
    http: reqwest::Client,
}

impl Emu {
    fn new(base: &str) -> Emu {
        Emu {
            base: base.trim_end_matches('/').to_string(),
            http: reqwest::Client::new(),
        }
    }

    async fn create_bucket(&self, bucket: &str) {
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
    async fn create(&self, bucket: &str, object: &str, body: &str) -> Result<String, u16> {
        let boundary = "tflock-test-boundary";
        let meta = serde_json::json!({ "bucket": bucket, "name": object });
        let payload = format!(
            "--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n{meta}\r\n\
             --{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n--{boundary}--\r\n"
        );
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

    async fn get(&self, bucket: &str, object: &str) -> Option<serde_json::Value> {
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
    async fn delete(&self, bucket: &str, object: &str, generation: &str) {
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

    async fn list_all(&self, bucket: &str) -> Vec<serde_json::Value> {
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

fn generation_of(v: &serde_json::Value) -> String {
    match &v["generation"] {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

struct GcsPlace {
    emu: Emu,
    bucket: String,
    store: GcsStore,
}

impl GcsPlace {
    fn lock_object(&self, state: &str) -> String {
        format!("{PREFIX}{state}.tflock")
    }

    /// The state object Terraform keeps beside the lock (created once, never rewritten).
    async fn ensure_state(&self, state: &str) {
        let name = format!("{PREFIX}{state}.tfstate");
        let body = format!(
            r#"{{"version":4,"serial":1,"lineage":"{state}","outputs":{{}},"resources":[]}}"#
        );
        match self.emu.create(&self.bucket, &name, &body).await {
            Ok(_) | Err(412) => {}
            Err(code) => panic!("state object: HTTP {code}"),
        }
    }

    async fn write_lock(&self, state: &str, body: &str) -> String {
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

struct GcsFixture {
    emu: Emu,
}

fn unique(name: &str) -> String {
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
    async fn gcs_place(&self, name: &str, endpoint: &str) -> GcsPlace {
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
}

async fn fixture() -> Option<GcsFixture> {
    let base = require_env("TFLOCK_TEST_GCS", "fake-gcs-server")?;
    Some(GcsFixture {
        emu: Emu::new(&base),
    })
}

tflock_core::conformance_suite!(fixture());

#[tokio::test]
async fn lock_id_is_the_generation_and_the_body_id_an_alias() {
    let Some(f) = fixture().await else { return };
    let place = f.gcs_place("ids", &f.emu.base).await;
    let info = sample_info("OperationTypeApply", &place.path_of("dev"));
    let generation = place.hold("dev", &info).await;
    let locks = place.store().list().await.unwrap();
    assert_eq!(locks.len(), 1, "{locks:#?}");
    let lock = &locks[0];
    assert_eq!(lock.id, generation);
    assert!(lock.id.parse::<i64>().is_ok());
    assert_eq!(lock.aliases, vec![info.id.clone()]);
    assert!(lock.matches_id(&info.id));
    assert_eq!(lock.workspace.as_deref(), Some("dev"));
    assert_eq!(
        lock.location,
        format!("gs://{}/env/app/dev.tflock", place.bucket)
    );
    assert_eq!(lock.path, lock.location);
    assert_eq!(lock.details.get("generation"), Some(&generation));
    assert!(lock.stored_at.is_some(), "timeCreated missing");
    assert_eq!(
        lock.state.as_deref(),
        Some(format!("gs://{}/env/app/dev.tfstate", place.bucket).as_str())
    );
}

#[tokio::test]
async fn nested_prefixes_and_empty_prefix_are_listed_state_objects_never() {
    let Some(f) = fixture().await else { return };
    let place = f.gcs_place("nested", &f.emu.base).await;
    place
        .hold("default", &sample_info("OperationTypeApply", ""))
        .await;
    // The whole bucket: every .tflock at any depth (including the decoys), no .tfstate.
    let target = Target::parse(&format!("gs://{}?endpoint={}", place.bucket, f.emu.base)).unwrap();
    let store = GcsStore::open(&target, &ConnectOptions::default())
        .await
        .unwrap();
    let locks = store.list().await.unwrap();
    let mut names: Vec<(&str, Option<&str>)> = locks
        .iter()
        .map(|l| (l.location.as_str(), l.workspace.as_deref()))
        .collect();
    names.sort();
    let b = &place.bucket;
    assert_eq!(
        names,
        vec![
            (
                format!("gs://{b}/env/app-old/default.tflock").as_str(),
                Some("default")
            ),
            (
                format!("gs://{b}/env/app/default.tflock").as_str(),
                Some("default")
            ),
            (
                format!("gs://{b}/outside/default.tflock").as_str(),
                Some("default")
            ),
        ]
    );
    // `gs://b/env` covers env/app/ and env/app-old/, not outside/.
    let target = Target::parse(&format!(
        "gs://{}/env/?endpoint={}",
        place.bucket, f.emu.base
    ))
    .unwrap();
    let store = GcsStore::open(&target, &ConnectOptions::default())
        .await
        .unwrap();
    assert_eq!(store.list().await.unwrap().len(), 2);
}

#[tokio::test]
async fn empty_body_is_listed_and_breakable_by_generation() {
    let Some(f) = fixture().await else { return };
    let place = f.gcs_place("emptybody", &f.emu.base).await;
    let generation = place.write_lock("default", "").await;
    let before = place.untouchables().await;
    let locks = place.store().list().await.unwrap();
    assert_eq!(locks.len(), 1);
    assert_eq!(locks[0].id, generation);
    assert_eq!(locks[0].info_error.as_deref(), Some("lock info is empty"));
    place
        .store()
        .break_lock(&locks[0], &BreakOptions::default())
        .await
        .unwrap();
    assert_eq!(place.current("default").await, None);
    assert_eq!(place.untouchables().await, before);
}

#[tokio::test]
async fn missing_bucket_names_bucket_status_and_hint() {
    let Some(f) = fixture().await else { return };
    let target = Target::parse(&format!(
        "gs://tflock-no-such-bucket/env?endpoint={}",
        f.emu.base
    ))
    .unwrap();
    let store = GcsStore::open(&target, &ConnectOptions::default())
        .await
        .unwrap();
    let err = store.list().await.unwrap_err();
    let text = err.to_string();
    assert!(tflock_core::testkit::is_operational(&err), "{err}");
    assert!(
        text.starts_with("gs://tflock-no-such-bucket/env?endpoint="),
        "{text}"
    );
    assert!(text.contains("HTTP 404"), "{text}");
    assert!(
        text.contains("bucket tflock-no-such-bucket does not exist"),
        "{text}"
    );
    assert!(!text.contains('\n'), "{text}");
}

#[tokio::test]
async fn a_forged_location_cannot_aim_a_break_at_the_state_object() {
    let Some(f) = fixture().await else { return };
    let place = f.gcs_place("foreign", &f.emu.base).await;
    let gen = place
        .hold("default", &sample_info("OperationTypeApply", ""))
        .await;
    let locks = place.store().list().await.unwrap();
    let mut forged = locks[0].clone();
    forged.location = format!("gs://{}/env/app/default.tfstate", place.bucket);
    forged
        .details
        .insert("object".into(), "env/app/default.tfstate".into());
    let before = place.untouchables().await;
    // The break goes by the handle the listing made: the lock object it read.
    place
        .store()
        .break_lock(&forged, &BreakOptions::default())
        .await
        .unwrap();
    assert_eq!(
        place.untouchables().await,
        before,
        "the state object changed"
    );
    assert_eq!(
        place.current("default").await,
        None,
        "lock {gen} still there"
    );
}

// ---------------------------------------------------------------------------------------
// A recording proxy in front of the emulator: one request per upstream connection, so
// every request line is seen; it can also answer DELETEs itself (412) to play real GCS.

#[derive(Clone, Default)]
struct Recorder {
    lines: Arc<Mutex<Vec<String>>>,
    /// The `Authorization` header of each request, if any.
    auths: Arc<Mutex<Vec<Option<String>>>>,
}

async fn read_request(conn: &mut TcpStream) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = conn.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = conn.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some(buf)
}

/// Forces `Connection: close` so the upstream reply ends at EOF.
fn close_after(request: &[u8]) -> Vec<u8> {
    let text_end = request
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(0);
    let head = String::from_utf8_lossy(&request[..text_end]);
    let mut out: Vec<String> = head
        .split("\r\n")
        .filter(|l| !l.to_lowercase().starts_with("connection:"))
        .map(str::to_string)
        .collect();
    out.push("Connection: close".into());
    let mut bytes = out.join("\r\n").into_bytes();
    bytes.extend_from_slice(&request[text_end..]);
    bytes
}

async fn start_proxy(upstream: String, reject_deletes: bool) -> (String, Recorder) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let rec = Recorder::default();
    let lines = rec.lines.clone();
    let auths = rec.auths.clone();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let upstream = upstream.clone();
            let lines = lines.clone();
            let auths = auths.clone();
            tokio::spawn(async move {
                // One request per client connection: the reply closes it.
                let Some(request) = read_request(&mut client).await else {
                    return;
                };
                let line = String::from_utf8_lossy(&request)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_string();
                lines.lock().unwrap().push(line.clone());
                let auth = String::from_utf8_lossy(&request)
                    .lines()
                    .take_while(|l| !l.is_empty())
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("authorization")
                            .then(|| v.trim().to_string())
                    });
                auths.lock().unwrap().push(auth);
                if reject_deletes && line.starts_with("DELETE ") {
                    let body = r#"{"error":{"code":412,"message":"At least one of the pre-conditions you specified did not hold.","errors":[{"message":"At least one of the pre-conditions you specified did not hold.","domain":"global","reason":"conditionNotMet"}]}}"#;
                    let reply = format!(
                        "HTTP/1.1 412 Precondition Failed\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = client.write_all(reply.as_bytes()).await;
                    return;
                }
                let Ok(mut up) = TcpStream::connect(&upstream).await else {
                    return;
                };
                if up.write_all(&close_after(&request)).await.is_err() {
                    return;
                }
                let mut reply = Vec::new();
                if up.read_to_end(&mut reply).await.is_err() {
                    return;
                }
                // The reply carries `Connection: close` from upstream: end here too.
                let _ = client.write_all(&reply).await;
            });
        }
    });
    (format!("http://{addr}"), rec)
}

fn host_port(base: &str) -> String {
    base.trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string()
}

#[tokio::test]
async fn delete_carries_if_generation_match_and_rechecks_first() {
    let Some(f) = fixture().await else { return };
    let (proxy, rec) = start_proxy(host_port(&f.emu.base), false).await;
    let place = f.gcs_place("precondition", &proxy).await;
    let gen = place
        .hold("default", &sample_info("OperationTypeApply", ""))
        .await;
    let before = place.untouchables().await;
    let locks = place.store().list().await.unwrap();
    rec.lines.lock().unwrap().clear();
    place
        .store()
        .break_lock(&locks[0], &BreakOptions::default())
        .await
        .unwrap();
    let lines = rec.lines.lock().unwrap().clone();
    let object = format!(
        "/storage/v1/b/{}/o/env%2Fapp%2Fdefault.tflock",
        place.bucket
    );
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert!(
        lines[0].starts_with(&format!("GET {object} ")),
        "re-read first: {lines:#?}"
    );
    assert_eq!(
        lines[1],
        format!("DELETE {object}?ifGenerationMatch={gen} HTTP/1.1"),
        "{lines:#?}"
    );
    assert_eq!(place.current("default").await, None);
    assert_eq!(place.untouchables().await, before);
}

/// The backend block's `access_token` (a target option set by discovery or tflock.toml)
/// is sent as a bearer token, to a custom endpoint too, as Terraform sends it; without
/// one, an emulator is called anonymously.
#[tokio::test]
async fn access_token_option_is_sent_as_bearer() {
    let Some(f) = fixture().await else { return };
    if std::env::var_os("GOOGLE_OAUTH_ACCESS_TOKEN").is_some() {
        eprintln!("skipping: GOOGLE_OAUTH_ACCESS_TOKEN is set in this environment");
        return;
    }
    let (proxy, rec) = start_proxy(host_port(&f.emu.base), false).await;
    let bucket = unique("token");
    f.emu.create_bucket(&bucket).await;
    let mut target = Target::parse(&format!("gs://{bucket}?endpoint={proxy}")).unwrap();
    let anonymous = GcsStore::open(&target, &opts(5)).await.unwrap();
    assert!(anonymous.list().await.unwrap().is_empty());
    assert_eq!(*rec.auths.lock().unwrap(), [None]);
    rec.auths.lock().unwrap().clear();
    target
        .params
        .insert("access_token".into(), "ya29.from-the-block".into());
    let with_token = GcsStore::open(&target, &opts(5)).await.unwrap();
    assert!(with_token.list().await.unwrap().is_empty());
    assert_eq!(
        *rec.auths.lock().unwrap(),
        [Some("Bearer ya29.from-the-block".to_string())]
    );
    assert!(
        !with_token.target().contains("ya29"),
        "{}",
        with_token.target()
    );
}

/// A token endpoint that answers every POST with `access_token`, and counts the JWT
/// assertions it received (what a service-account key exchange sends).
async fn start_token_server(access_token: &'static str) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let grants = Arc::new(Mutex::new(Vec::new()));
    let seen = grants.clone();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let Some(request) = read_request(&mut client).await else {
                    return;
                };
                let text = String::from_utf8_lossy(&request).into_owned();
                if let Some(body) = text.split("\r\n\r\n").nth(1) {
                    seen.lock().unwrap().push(body.to_string());
                }
                let body = format!(
                    r#"{{"access_token":"{access_token}","expires_in":3600,"token_type":"Bearer"}}"#
                );
                let reply = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = client.write_all(reply.as_bytes()).await;
            });
        }
    });
    (format!("http://{addr}/token"), grants)
}

/// The backend block's `credentials` (a service-account key: the JSON itself, or a path to
/// it) is used as Terraform uses it: the key is exchanged for an access token at its
/// `token_uri` (a local token server here), and that token is sent to the (custom)
/// endpoint. Errors about it never show the key.
#[tokio::test]
async fn credentials_option_exchanges_the_key_for_a_token() {
    let Some(f) = fixture().await else { return };
    if std::env::var_os("GOOGLE_OAUTH_ACCESS_TOKEN").is_some() {
        eprintln!("skipping: GOOGLE_OAUTH_ACCESS_TOKEN is set in this environment");
        return;
    }
    let dir = std::env::temp_dir().join(format!("tflock-gcs-sa-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pem = dir.join("key.pem");
    let made = std::process::Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&pem)
        .output()
        .expect("run openssl");
    assert!(made.status.success(), "{made:?}");
    let private_key = std::fs::read_to_string(&pem).unwrap();
    let (token_uri, grants) = start_token_server("ya29.from-the-key").await;
    let json = serde_json::json!({
        "type": "service_account",
        "project_id": "tflock-test",
        "private_key_id": "k1",
        "private_key": private_key,
        "client_email": "tflock@tflock-test.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": token_uri,
    })
    .to_string();
    let key_file = dir.join("sa.json");
    std::fs::write(&key_file, &json).unwrap();

    let (proxy, rec) = start_proxy(host_port(&f.emu.base), false).await;
    let bucket = unique("sa-key");
    f.emu.create_bucket(&bucket).await;
    for value in [json.clone(), key_file.display().to_string()] {
        rec.auths.lock().unwrap().clear();
        let mut target = Target::parse(&format!("gs://{bucket}?endpoint={proxy}")).unwrap();
        target.params.insert("credentials".into(), value);
        let store = GcsStore::open(&target, &opts(5)).await.unwrap();
        assert!(store.list().await.unwrap().is_empty());
        assert_eq!(
            *rec.auths.lock().unwrap(),
            [Some("Bearer ya29.from-the-key".to_string())]
        );
    }
    let exchanges = grants.lock().unwrap().clone();
    assert_eq!(exchanges.len(), 2, "{exchanges:?}");
    assert!(
        exchanges[0].contains("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer"),
        "{exchanges:?}"
    );

    // The block's access_token still wins over its credentials, as in Terraform.
    rec.auths.lock().unwrap().clear();
    let mut target = Target::parse(&format!("gs://{bucket}?endpoint={proxy}")).unwrap();
    target.params.insert("credentials".into(), json.clone());
    target
        .params
        .insert("access_token".into(), "ya29.token-wins".into());
    let store = GcsStore::open(&target, &opts(5)).await.unwrap();
    store.list().await.unwrap();
    assert_eq!(
        *rec.auths.lock().unwrap(),
        [Some("Bearer ya29.token-wins".to_string())]
    );

    // A key that cannot be used: one line, the key never in it.
    let key_body: String = private_key
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let broken = json.replace("BEGIN PRIVATE KEY", "BEGIN NOTHING");
    let mut target = Target::parse(&format!("gs://{bucket}?endpoint={proxy}")).unwrap();
    target.params.insert("credentials".into(), broken);
    let text = match GcsStore::open(&target, &opts(5)).await {
        Ok(store) => store.list().await.unwrap_err().to_string(),
        Err(e) => e.to_string(),
    };
    eprintln!("{text}");
    assert!(!text.contains('\n'), "{text}");
    assert!(!text.contains(&key_body[..40]), "{text}");
    assert!(!text.contains("ya29"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn precondition_failed_is_changed_exit_4() {
    let Some(f) = fixture().await else { return };
    let (proxy, rec) = start_proxy(host_port(&f.emu.base), true).await;
    let place = f.gcs_place("status412", &proxy).await;
    let gen = place
        .hold("default", &sample_info("OperationTypeApply", ""))
        .await;
    let locks = place.store().list().await.unwrap();
    let err = place
        .store()
        .break_lock(&locks[0], &BreakOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), tflock_core::Kind::Changed, "{err:?}");
    assert_eq!(err.kind(), tflock_core::Kind::Changed);
    assert!(err.to_string().contains("HTTP 412"), "{err}");
    assert!(rec
        .lines
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.starts_with("DELETE ")));
    assert_eq!(
        place.current("default").await,
        Some(gen),
        "lock must survive"
    );
}

// ---------------------------------------------------------------------------------------
// No emulator needed.

fn opts(secs: u64) -> ConnectOptions {
    ConnectOptions {
        timeout: Duration::from_secs(secs),
        ..ConnectOptions::default()
    }
}

#[tokio::test]
async fn closed_port_fails_in_seconds_with_a_clear_error() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let target = Target::parse(&format!("gs://bkt/env?endpoint=http://127.0.0.1:{port}")).unwrap();
    let store = GcsStore::open(&target, &opts(5)).await.unwrap();
    let start = Instant::now();
    let err = store.list().await.unwrap_err();
    let took = start.elapsed();
    eprintln!("closed port failed after {took:?}: {err}");
    assert!(took < Duration::from_secs(3), "took {took:?}");
    assert!(tflock_core::testkit::is_operational(&err), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("cannot connect to http://127.0.0.1:"),
        "{text}"
    );
    assert!(text.contains("bucket bkt"), "{text}");
}

#[tokio::test]
async fn silent_endpoint_times_out_per_connect_options() {
    // Accepts connections and never answers: only the request timeout can end this.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let held = Arc::new(Mutex::new(Vec::new()));
    let keep = held.clone();
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            keep.lock().unwrap().push(conn);
        }
    });
    let target = Target::parse(&format!("gs://bkt?endpoint=http://{addr}")).unwrap();
    let store = GcsStore::open(&target, &opts(1)).await.unwrap();
    let start = Instant::now();
    let err = store.list().await.unwrap_err();
    let took = start.elapsed();
    eprintln!("silent endpoint failed after {took:?}: {err}");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(3),
        "took {took:?}"
    );
    assert!(err.to_string().contains("no answer from"), "{err}");
}

#[tokio::test]
async fn bad_targets_are_usage_errors() {
    let cases = [
        ("gs://", "no bucket"),
        ("gs://b?region=x", "unknown option ?region="),
        ("gs://b?endpoint=ftp://x", "http:// or https://"),
        // A token on the URL would be printed wherever the target is shown.
        ("gs://b?access_token=c2VjcmV0", "GOOGLE_OAUTH_ACCESS_TOKEN"),
    ];
    for (url, want) in cases {
        let err = GcsStore::open(&Target::parse(url).unwrap(), &opts(1))
            .await
            .err()
            .unwrap_or_else(|| panic!("{url} opened"));
        assert_eq!(err.kind(), tflock_core::Kind::Usage, "{url}: {err}");
        assert!(err.to_string().contains(want), "{url}: {err}");
        assert!(!err.to_string().contains("c2VjcmV0"), "{url}: {err}");
    }
}
