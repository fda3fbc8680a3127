//! The core conformance suite (with the network cases) against the fake Consul agent in
//! `support/agent.rs`, locks taken the way Terraform's consul backend takes them
//! (`client.go` `lock`/`unlock`, hashicorp/consul `api/lock.go`), plus consul cases.

use async_trait::async_trait;
use serde_json::{json, Value};
use std::sync::Arc;
use tflock_consul::testing::Fake;
use tflock_consul::ConsulStore;
use tflock_core::testkit::{sample_info, Fixture, Network, Place};
use tflock_core::{
    BackendBlock, BreakOptions, ConnectOptions, Error, Kind, LockInfo, LockStore, Target,
};

const FLAGS: &str = "3304740253564472344";

/// Terraform's side: its requests, straight to the fake.
#[derive(Clone)]
struct Tf {
    base: String,
    token: String,
    path: String,
    http: reqwest::Client,
}

impl Tf {
    async fn call(
        &self,
        method: reqwest::Method,
        path_q: &str,
        body: Option<String>,
    ) -> (u16, String) {
        let mut req = self
            .http
            .request(method, format!("{}{path_q}", self.base))
            .header("x-consul-token", &self.token);
        if let Some(b) = body {
            req = req.body(b);
        }
        let res = req.send().await.unwrap();
        (res.status().as_u16(), res.text().await.unwrap())
    }
    fn state_key(&self, ws: &str) -> String {
        if ws == "default" {
            self.path.clone()
        } else {
            format!("{}-env:{ws}", self.path)
        }
    }
    async fn get(&self, key: &str) -> Option<Value> {
        let (s, body) = self
            .call(reqwest::Method::GET, &format!("/v1/kv/{key}"), None)
            .await;
        (s == 200).then(|| serde_json::from_str::<Value>(&body).unwrap()[0].clone())
    }
    async fn create_session(&self) -> String {
        let (s, body) = self
            .call(
                reqwest::Method::PUT,
                "/v1/session/create",
                Some(
                    json!({"Name": "Consul API Lock", "LockDelay": "5000ms", "TTL": "15s"})
                        .to_string(),
                ),
            )
            .await;
        assert_eq!(s, 200, "{body}");
        serde_json::from_str::<Value>(&body).unwrap()["ID"]
            .as_str()
            .unwrap()
            .to_string()
    }
    /// Acquires `<key>/.lock` with a new session; writes `.lockinfo` from `info(session)`.
    async fn lock_key(&self, stem: &str, info: Option<&(dyn Fn(&str) -> String + Sync)>) -> String {
        let session = self.create_session().await;
        let (s, ok) = self
            .call(
                reqwest::Method::PUT,
                &format!("/v1/kv/{stem}/.lock?acquire={session}&flags={FLAGS}"),
                Some(String::new()),
            )
            .await;
        assert_eq!((s, ok.trim()), (200, "true"), "acquire {stem}");
        if let Some(info) = info {
            self.call(
                reqwest::Method::PUT,
                &format!("/v1/kv/{stem}/.lockinfo"),
                Some(info(&session)),
            )
            .await;
        }
        session
    }
    /// `RemoteClient.lock`: the LockInfo ID becomes the session ID, Info names it, Path is
    /// the state key. The state key itself is written once (what a first apply leaves).
    async fn lock(&self, ws: &str, info: &LockInfo) -> String {
        let key = self.state_key(ws);
        self.call(
            reqwest::Method::PUT,
            &format!("/v1/kv/{key}?cas=0"),
            Some(format!(r#"{{"version":4,"serial":1,"lineage":"{ws}"}}"#)),
        )
        .await;
        let info = info.clone();
        let k = key.clone();
        self.lock_key(
            &key,
            Some(&move |session: &str| {
                let mut i = info.clone();
                i.id = session.to_string();
                i.info = format!("consul session: {session}");
                i.path = k.clone();
                i.to_terraform_json()
            }),
        )
        .await
    }
    /// `RemoteClient.unlock` of the holder: delete `.lockinfo`, release `.lock`, delete it
    /// if free (`Lock.Destroy`), destroy the session.
    async fn unlock(&self, ws: &str) {
        let stem = self.state_key(ws);
        let lock = self.get(&format!("{stem}/.lock")).await.expect(".lock");
        let session = lock["Session"].as_str().expect("held").to_string();
        self.call(
            reqwest::Method::DELETE,
            &format!("/v1/kv/{stem}/.lockinfo"),
            None,
        )
        .await;
        self.call(
            reqwest::Method::PUT,
            &format!("/v1/kv/{stem}/.lock?release={session}&flags={FLAGS}"),
            Some(String::new()),
        )
        .await;
        if let Some(l) = self.get(&format!("{stem}/.lock")).await {
            if l["Session"].is_null() {
                self.call(
                    reqwest::Method::DELETE,
                    &format!("/v1/kv/{stem}/.lock?cas={}", l["ModifyIndex"]),
                    None,
                )
                .await;
            }
        }
        self.call(
            reqwest::Method::PUT,
            &format!("/v1/session/destroy/{session}"),
            None,
        )
        .await;
    }
}

fn unique(name: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "t/{name}-{}-{}/app",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

struct ConsulPlace {
    tf: Tf,
    store: ConsulStore,
}

#[async_trait]
impl Place for ConsulPlace {
    fn store(&self) -> &dyn LockStore {
        &self.store
    }
    fn path_of(&self, state: &str) -> String {
        self.tf.state_key(state)
    }
    async fn hold(&self, state: &str, info: &LockInfo) -> String {
        self.tf.lock(state, info).await
    }
    async fn retake(&self, state: &str, info: &LockInfo) -> String {
        self.tf.unlock(state).await;
        self.hold(state, info).await
    }
    async fn current(&self, state: &str) -> Option<String> {
        let lock = self
            .tf
            .get(&format!("{}/.lock", self.tf.state_key(state)))
            .await?;
        lock["Session"].as_str().map(str::to_string)
    }
    async fn hold_garbage(&self, state: &str) {
        self.tf
            .lock_key(
                &self.tf.state_key(state),
                Some(&|_: &str| "{not json".to_string()),
            )
            .await;
    }
    async fn untouchables(&self) -> String {
        // Every key under the place but this path's own lock keys, with its value,
        // index and session.
        let root = self.tf.path.rsplit_once('/').unwrap().0.to_string();
        let (_, body) = self
            .tf
            .call(
                reqwest::Method::GET,
                &format!("/v1/kv/{root}?recurse"),
                None,
            )
            .await;
        let pairs: Vec<Value> = serde_json::from_str(&body).unwrap_or_default();
        let own = |k: &str| {
            let stem = k
                .strip_suffix("/.lock")
                .or_else(|| k.strip_suffix("/.lockinfo"));
            stem.is_some_and(|s| {
                s == self.tf.path || s.starts_with(&format!("{}-env:", self.tf.path))
            })
        };
        let mut lines: Vec<String> = pairs
            .iter()
            .filter(|p| !own(p["Key"].as_str().unwrap_or("")))
            .map(|p| {
                format!(
                    "{} {} {} {}",
                    p["Key"], p["Value"], p["ModifyIndex"], p["Session"]
                )
            })
            .collect();
        lines.sort();
        lines.join("\n")
    }
}

struct ConsulFixture {
    fake: Fake,
}

impl ConsulFixture {
    fn tf(&self, path: &str) -> Tf {
        Tf {
            base: self.fake.url.clone(),
            token: self.fake.token.clone(),
            path: path.to_string(),
            http: reqwest::Client::new(),
        }
    }

    fn target(&self, endpoint: &str, path: &str, token: &str) -> Target {
        Target::parse(&format!("consul://{}/{path}", Fake::addr(endpoint)))
            .unwrap()
            .with("access_token", Some(token))
    }

    /// A fresh path with decoys: a held lock of a sibling path sharing the text
    /// (`<path>le`), an orphaned `.lockinfo` of a workspace, a lock outside the path.
    async fn consul_place(&self, name: &str, endpoint: &str) -> ConsulPlace {
        let path = unique(name);
        let tf = self.tf(&path);
        let sibling = self.tf(&format!("{path}le"));
        sibling
            .lock("default", &sample_info("OperationTypeApply", ""))
            .await;
        tf.lock("old", &sample_info("OperationTypeApply", "")).await;
        let old = tf.get(&format!("{path}-env:old/.lock")).await.unwrap();
        // The old holder died: its session expired (invalidated), .lockinfo stays.
        tf.call(
            reqwest::Method::PUT,
            &format!("/v1/session/destroy/{}", old["Session"].as_str().unwrap()),
            None,
        )
        .await;
        self.tf(&format!("{path}-outside/x"))
            .lock("default", &sample_info("OperationTypePlan", ""))
            .await;
        let store = ConsulStore::open(
            &self.target(endpoint, &path, &self.fake.token),
            &ConnectOptions::default(),
        )
        .unwrap_or_else(|e| panic!("open: {e}"));
        ConsulPlace { tf, store }
    }
}

#[async_trait]
impl Fixture for ConsulFixture {
    async fn place(&self, name: &str) -> Box<dyn Place> {
        Box::new(self.consul_place(name, &self.fake.url).await)
    }
    fn network(&self) -> Option<&dyn Network> {
        Some(self)
    }
}

#[async_trait]
impl Network for ConsulFixture {
    async fn open(&self, url: &str, opts: &ConnectOptions) -> Result<Arc<dyn LockStore>, Error> {
        let t = Target::parse(url)?;
        // The token as tflock.toml would give it (a URL may not carry it).
        let t = if t.params.contains_key("access_token") {
            t
        } else {
            t.with("access_token", Some(self.fake.token.clone()))
        };
        tflock_consul::DRIVER.open(&t, opts).await
    }
    fn bad_targets(&self) -> Vec<String> {
        vec![
            "consul://".into(),
            "consul://127.0.0.1:1".into(),
            "consul://127.0.0.1:1/".into(),
            "consul://127.0.0.1:1/p?scheme=ftp".into(),
            "consul://127.0.0.1:1/p?region=x".into(),
            "consul://127.0.0.1:1/p?access_token=c2VjcmV0".into(),
            "consul://127.0.0.1:notaport/p".into(),
        ]
    }
    fn target_at(&self, endpoint: &str) -> String {
        format!("consul://{}/tf/app", Fake::addr(endpoint))
    }
    fn missing(&self) -> (String, String) {
        (
            format!(
                "consul://{}/tf/app?datacenter=nope",
                Fake::addr(&self.fake.url)
            ),
            "datacenter nope".into(),
        )
    }
    fn emulator(&self) -> Option<String> {
        Some(self.fake.url.clone())
    }
    async fn place_via(&self, name: &str, endpoint: &str) -> Box<dyn Place> {
        Box::new(self.consul_place(name, endpoint).await)
    }
}

async fn fixture() -> Option<ConsulFixture> {
    Some(ConsulFixture {
        fake: Fake::start().await,
    })
}

tflock_core::conformance_suite!(fixture(); network);

#[tokio::test]
async fn a_lock_is_the_session_on_lock_with_its_lockinfo() {
    let f = fixture().await.unwrap();
    let place = f.consul_place("fields", &f.fake.url).await;
    let id = place
        .hold("dev", &sample_info("OperationTypeApply", ""))
        .await;
    let locks = place.store.list().await.unwrap();
    assert_eq!(
        locks.len(),
        1,
        "only the live lock of this path: {locks:#?}"
    );
    let l = &locks[0];
    assert_eq!(l.id, id);
    assert_eq!(l.workspace.as_deref(), Some("dev"));
    assert_eq!(l.path, format!("{}-env:dev", place.tf.path));
    assert_eq!(
        l.location,
        format!(
            "consul://{}/{}-env:dev/.lock",
            Fake::addr(&f.fake.url),
            place.tf.path
        )
    );
    assert_eq!(l.held, None, "a young lock: its holder may have just died");
    assert_eq!(l.details.get("ttl").map(String::as_str), Some("15s"));
    assert_eq!(
        l.info.as_ref().unwrap().info,
        format!("consul session: {id}")
    );
    // One recursive read of the path, then one session read per held .lock.
    let log = f.fake.state.lock().unwrap().log.clone();
    let reads: Vec<&String> = log
        .iter()
        .filter(|l| l.starts_with("GET /v1/kv/"))
        .collect();
    assert!(!reads.is_empty());
}

#[tokio::test]
async fn an_old_lock_whose_session_lives_is_held_and_refused() {
    let f = fixture().await.unwrap();
    let place = f.consul_place("held", &f.fake.url).await;
    let mut info = sample_info("OperationTypeApply", "");
    info.created = Some(chrono::Utc::now() - chrono::Duration::hours(1));
    let id = place.hold("default", &info).await;
    let locks = place.store.list().await.unwrap();
    assert_eq!(
        locks[0].held,
        Some(true),
        "renewed for an hour: its holder lives"
    );
    assert!(locks[0].holder.as_deref().unwrap().contains(&id));
    let err = place
        .store()
        .break_lock(
            &locks[0],
            &BreakOptions {
                force_foreign: true,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), Kind::Refused, "{err}");
    assert_eq!(place.current("default").await, Some(id));
}

#[tokio::test]
async fn a_break_destroys_the_session_and_removes_only_its_lockinfo() {
    let f = fixture().await.unwrap();
    let place = f.consul_place("break", &f.fake.url).await;
    let id = place
        .hold("default", &sample_info("OperationTypeApply", ""))
        .await;
    let locks = place.store.list().await.unwrap();
    f.fake.state.lock().unwrap().log.clear();
    let broken = place
        .store()
        .break_lock(&locks[0], &BreakOptions::default())
        .await
        .unwrap();
    assert_eq!(broken.removed.len(), 2, "{broken:?}");
    assert!(
        broken.warnings.iter().any(|w| w.contains("lock-delay")),
        "{broken:?}"
    );
    let log = f.fake.state.lock().unwrap().log.clone();
    let writes: Vec<&String> = log.iter().filter(|l| !l.starts_with("GET")).collect();
    assert_eq!(
        writes,
        [
            &format!("PUT /v1/session/destroy/{id}"),
            &format!("DELETE /v1/kv/{}/.lockinfo", place.tf.path)
        ],
        "{log:#?}"
    );
    assert!(!f.fake.state.lock().unwrap().sessions.contains_key(&id));
    // The session's lock-delay keeps everyone out for a moment, as after any invalidation.
    let s = place.tf.create_session().await;
    let (_, ok) = place
        .tf
        .call(
            reqwest::Method::PUT,
            &format!("/v1/kv/{}/.lock?acquire={s}", place.tf.path),
            Some(String::new()),
        )
        .await;
    assert_eq!(ok.trim(), "false");
}

#[tokio::test]
async fn a_lock_without_its_lockinfo_is_foreign() {
    let f = fixture().await.unwrap();
    let place = f.consul_place("foreign", &f.fake.url).await;
    let s = place.tf.lock_key(&place.tf.path, None).await;
    let locks = place.store.list().await.unwrap();
    assert_eq!(locks.len(), 1);
    assert!(locks[0].foreign && locks[0].id == s, "{:#?}", locks[0]);
    let err = place
        .store()
        .break_lock(&locks[0], &BreakOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), Kind::Refused);
    let broken = place
        .store()
        .break_lock(
            &locks[0],
            &BreakOptions {
                force_foreign: true,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        broken.removed.len(),
        1,
        "no .lockinfo to remove: {broken:?}"
    );
    assert_eq!(place.current("default").await, None);
}

#[tokio::test]
async fn a_leftover_lockinfo_is_a_doctor_finding_not_a_lock() {
    let f = fixture().await.unwrap();
    let place = f.consul_place("orphan", &f.fake.url).await;
    // The place's `old` workspace: its holder's session ended, .lockinfo stayed.
    assert!(place.store.list().await.unwrap().is_empty());
    let findings = place.store().diagnose().await.unwrap();
    assert_eq!(findings.len(), 1, "{findings:#?}");
    let finding = &findings[0];
    assert_eq!(finding.kind, "orphan-lockinfo");
    assert_eq!(finding.workspace.as_deref(), Some("old"));
    assert!(
        finding.summary.contains("blocks nothing"),
        "{}",
        finding.summary
    );
    let fix = finding.fix.clone().unwrap();
    let key = format!("{}-env:old/.lockinfo", place.tf.path);
    // Locked again in between: the fix is refused, the new lock's info kept.
    f.fake.after_lock_delay();
    place
        .tf
        .lock("old", &sample_info("OperationTypePlan", ""))
        .await;
    let err = place.store().repair(&fix).await.unwrap_err();
    assert_eq!(err.kind(), Kind::Changed, "{err}");
    assert!(place.tf.get(&key).await.is_some());
    place.tf.unlock("old").await;
    // A fresh orphan is removed if unchanged, once.
    place
        .tf
        .lock("old", &sample_info("OperationTypePlan", ""))
        .await;
    let lock = place
        .tf
        .get(&format!("{}-env:old/.lock", place.tf.path))
        .await
        .unwrap();
    f.fake
        .state
        .lock()
        .unwrap()
        .invalidate(lock["Session"].as_str().unwrap());
    f.fake.after_lock_delay();
    let fix = place.store().diagnose().await.unwrap()[0]
        .fix
        .clone()
        .unwrap();
    let done = place.store().repair(&fix).await.unwrap();
    assert_eq!(done.done.len(), 1);
    assert!(place.tf.get(&key).await.is_none());
    assert_eq!(
        place.store().repair(&fix).await.unwrap_err().kind(),
        Kind::Changed
    );
}

#[tokio::test]
async fn acl_and_datacenter_failures_say_what_to_do() {
    let f = fixture().await.unwrap();
    let place = f.consul_place("acl", &f.fake.url).await;
    let id = place
        .hold("default", &sample_info("OperationTypeApply", ""))
        .await;
    let wrong = ConsulStore::open(
        &f.target(&f.fake.url, &place.tf.path, "not-a-token"),
        &ConnectOptions::default(),
    )
    .unwrap();
    let err = wrong.list().await.unwrap_err();
    assert_eq!(err.kind(), Kind::Unauthenticated, "{err}");
    assert!(!err.to_string().contains("not-a-token"));
    let read_only = ConsulStore::open(
        &f.target(&f.fake.url, &place.tf.path, &f.fake.read_token),
        &ConnectOptions::default(),
    )
    .unwrap();
    let locks = read_only.list().await.unwrap();
    let err = (&read_only as &dyn LockStore)
        .break_lock(&locks[0], &BreakOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), Kind::PermissionDenied, "{err}");
    assert!(err.to_string().contains("session:write"), "{err}");
    assert_eq!(place.current("default").await, Some(id));
}

#[tokio::test]
async fn discovery_of_a_backend_block_lists_its_locks() {
    let f = fixture().await.unwrap();
    let place = f.consul_place("discover", &f.fake.url).await;
    let id = place
        .hold("staging", &sample_info("OperationTypeApply", ""))
        .await;
    let block = BackendBlock {
        kind: "consul".into(),
        config: serde_json::from_value(json!({
            "path": place.tf.path, "address": Fake::addr(&f.fake.url), "scheme": "http",
            "access_token": f.fake.token, "datacenter": "dc1",
        }))
        .unwrap(),
        source: "test".into(),
        dir: ".".into(),
    };
    let targets = tflock_consul::DRIVER.discover(&block).unwrap();
    assert!(!targets[0].url.contains(&f.fake.token));
    let store = tflock_consul::DRIVER
        .open(&targets[0], &ConnectOptions::default())
        .await
        .unwrap();
    let locks = store.list().await.unwrap();
    assert_eq!(locks.len(), 1);
    assert_eq!(
        (locks[0].id.as_str(), locks[0].workspace.as_deref()),
        (id.as_str(), Some("staging"))
    );
}
