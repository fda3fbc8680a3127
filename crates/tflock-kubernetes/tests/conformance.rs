//! The core conformance suite (with the network cases) against the fake API server in
//! `support/apiserver.rs`, locks taken the way Terraform's kubernetes backend takes them
//! (`client.go` `Lock`/`Unlock`), plus kubernetes-specific cases.

use async_trait::async_trait;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tflock_core::testkit::{sample_info, Fixture, Network, Place};
use tflock_core::{
    BackendBlock, BreakOptions, ConnectOptions, Error, Kind, LockInfo, LockStore, Target,
};
use tflock_kubernetes::testing::Fake;
use tflock_kubernetes::KubeStore;

const SUFFIX: &str = "app";
const ANNOTATION: &str = "app.terraform.io/lock-info";

/// Terraform's side: its requests, straight to the fake (not through the store).
#[derive(Clone)]
struct Tf {
    base: String,
    token: String,
    ns: String,
    http: reqwest::Client,
}

impl Tf {
    fn leases(&self) -> String {
        format!(
            "{}/apis/coordination.k8s.io/v1/namespaces/{}/leases",
            self.base, self.ns
        )
    }
    async fn call(
        &self,
        method: reqwest::Method,
        url: String,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self.http.request(method, url).bearer_auth(&self.token);
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
    async fn create_namespace(&self) {
        let (s, _) = self
            .call(
                reqwest::Method::POST,
                format!("{}/api/v1/namespaces", self.base),
                Some(json!({"metadata": {"name": self.ns}})),
            )
            .await;
        assert_eq!(s, 201);
    }
    fn labels(ws: &str, suffix: &str) -> Value {
        json!({"tfstate": "true", "tfstateSecretSuffix": suffix, "tfstateWorkspace": ws,
               "app.kubernetes.io/managed-by": "terraform"})
    }
    /// The state Secret Terraform writes (`Put`), once.
    async fn ensure_secret(&self, ws: &str, suffix: &str) {
        let secret = json!({
            "metadata": {"name": format!("tfstate-{ws}-{suffix}"), "labels": Self::labels(ws, suffix),
                         "annotations": {"encoding": "gzip"}},
            "type": "Opaque", "data": {"tfstate": "H4sIAAAAAAAA/6quBQQAAP//AQAAAAAAAAA="},
        });
        self.call(
            reqwest::Method::POST,
            format!("{}/api/v1/namespaces/{}/secrets", self.base, self.ns),
            Some(secret),
        )
        .await;
    }
    async fn get_lease(&self, ws: &str, suffix: &str) -> Option<Value> {
        let (s, v) = self
            .call(
                reqwest::Method::GET,
                format!("{}/lock-tfstate-{ws}-{suffix}", self.leases()),
                None,
            )
            .await;
        (s == 200).then_some(v)
    }
    /// `RemoteClient.Lock`: GET; 404 -> POST with labels, annotation and holder; no
    /// holder -> set both and PUT as read.
    async fn lock(&self, ws: &str, suffix: &str, id: &str, annotation: Option<&str>) {
        self.ensure_secret(ws, suffix).await;
        match self.get_lease(ws, suffix).await {
            None => {
                let mut lease = json!({
                    "metadata": {"name": format!("lock-tfstate-{ws}-{suffix}"), "labels": Self::labels(ws, suffix)},
                    "spec": {"holderIdentity": id},
                });
                if let Some(a) = annotation {
                    lease["metadata"]["annotations"] = json!({ ANNOTATION: a });
                }
                let (s, v) = self
                    .call(reqwest::Method::POST, self.leases(), Some(lease))
                    .await;
                assert_eq!(s, 201, "{v}");
            }
            Some(mut lease) => {
                assert!(
                    lease["spec"]["holderIdentity"].is_null(),
                    "already locked: {lease}"
                );
                lease["spec"]["holderIdentity"] = json!(id);
                if let Some(a) = annotation {
                    if lease["metadata"]["annotations"].is_null() {
                        lease["metadata"]["annotations"] = json!({});
                    }
                    lease["metadata"]["annotations"][ANNOTATION] = json!(a);
                }
                let (s, v) = self
                    .call(
                        reqwest::Method::PUT,
                        format!("{}/lock-tfstate-{ws}-{suffix}", self.leases()),
                        Some(lease),
                    )
                    .await;
                assert_eq!(s, 200, "{v}");
            }
        }
    }
    /// `RemoteClient.Unlock`: clear the holder and the annotation, PUT as read.
    async fn unlock(&self, ws: &str, suffix: &str) {
        let mut lease = self.get_lease(ws, suffix).await.expect("lease");
        lease["spec"]
            .as_object_mut()
            .unwrap()
            .remove("holderIdentity");
        if let Some(a) = lease["metadata"]["annotations"].as_object_mut() {
            a.remove(ANNOTATION);
        }
        let (s, v) = self
            .call(
                reqwest::Method::PUT,
                format!("{}/lock-tfstate-{ws}-{suffix}", self.leases()),
                Some(lease),
            )
            .await;
        assert_eq!(s, 200, "{v}");
    }
}

fn unique(name: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let name: String = name.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    format!(
        "t-{}-{}-{}",
        name.to_lowercase(),
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// A kubeconfig with one context, `fake`, pointing at `server` with the fake's token.
fn kubeconfig(dir: &Path, server: &str, token: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let path = dir.join(format!("kubeconfig-{}", N.fetch_add(1, Ordering::SeqCst)));
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: fake\nclusters:\n- name: fake\n  cluster:\n    server: {server}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: me\nusers:\n- name: me\n  user:\n    token: {token}\n"
        ),
    )
    .unwrap();
    path
}

struct KubePlace {
    tf: Tf,
    store: KubeStore,
}

#[async_trait]
impl Place for KubePlace {
    fn store(&self) -> &dyn LockStore {
        &self.store
    }
    fn path_of(&self, state: &str) -> String {
        format!("k8s://fake/{}/secrets/tfstate-{state}-{SUFFIX}", self.tf.ns)
    }
    async fn hold(&self, state: &str, info: &LockInfo) -> String {
        // Terraform leaves Path empty for this backend.
        let mut info = info.clone();
        info.path = String::new();
        self.tf
            .lock(state, SUFFIX, &info.id, Some(&info.to_terraform_json()))
            .await;
        info.id
    }
    async fn retake(&self, state: &str, info: &LockInfo) -> String {
        self.tf.unlock(state, SUFFIX).await;
        self.hold(state, info).await
    }
    async fn current(&self, state: &str) -> Option<String> {
        let lease = self.tf.get_lease(state, SUFFIX).await?;
        lease["spec"]["holderIdentity"].as_str().map(str::to_string)
    }
    async fn hold_garbage(&self, state: &str) {
        self.tf
            .lock(state, SUFFIX, "garbage-holder", Some("{not json"))
            .await;
    }
    async fn untouchables(&self) -> String {
        // Every Secret whole, and of every Lease what a break must keep.
        let (_, secrets) = self
            .tf
            .call(
                reqwest::Method::GET,
                format!("{}/api/v1/namespaces/{}/secrets", self.tf.base, self.tf.ns),
                None,
            )
            .await;
        let (_, leases) = self
            .tf
            .call(reqwest::Method::GET, self.tf.leases(), None)
            .await;
        let mut lines = Vec::new();
        for s in secrets["items"].as_array().cloned().unwrap_or_default() {
            lines.push(format!("secret {}", s));
        }
        for mut l in leases["items"].as_array().cloned().unwrap_or_default() {
            let meta = l["metadata"].as_object_mut().unwrap();
            meta.remove("resourceVersion");
            meta.remove("managedFields");
            if let Some(a) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
                a.remove(ANNOTATION);
            }
            l["spec"]
                .as_object_mut()
                .map(|s| s.remove("holderIdentity"));
            lines.push(format!("lease {l}"));
        }
        lines.sort();
        lines.join("\n")
    }
}

struct KubeFixture {
    fake: Fake,
    dir: tempfile::TempDir,
    /// The kubeconfig that points at the fake itself.
    config: PathBuf,
}

impl KubeFixture {
    fn tf(&self, ns: &str) -> Tf {
        Tf {
            base: self.fake.url.clone(),
            token: self.fake.token.clone(),
            ns: ns.to_string(),
            http: reqwest::Client::new(),
        }
    }

    fn target(&self, ns: &str, config: &Path, query: &str) -> Target {
        Target::parse(&format!("k8s://fake/{ns}{query}"))
            .unwrap()
            .with("kubeconfig", Some(config.display().to_string()))
    }

    /// A fresh namespace with the decoys every place carries: a lock of another
    /// `secret_suffix`, an unlocked lock Lease, a held Lease that is not Terraform's.
    async fn kube_place(&self, name: &str, endpoint: &str) -> KubePlace {
        let ns = unique(name);
        let tf = self.tf(&ns);
        tf.create_namespace().await;
        tf.lock(
            "default",
            "other",
            "other-suffix-holder",
            Some(r#"{"ID":"other-suffix-holder"}"#),
        )
        .await;
        tf.lock("old", SUFFIX, "old-holder", Some(r#"{"ID":"old-holder"}"#))
            .await;
        tf.unlock("old", SUFFIX).await;
        let unrelated = json!({"metadata": {"name": "kube-controller-manager", "labels": {"app": "x"}},
                               "spec": {"holderIdentity": "node-1", "leaseDurationSeconds": 15}});
        tf.call(reqwest::Method::POST, tf.leases(), Some(unrelated))
            .await;
        let config = if endpoint == self.fake.url {
            self.config.clone()
        } else {
            kubeconfig(self.dir.path(), endpoint, &self.fake.token)
        };
        let target = self.target(&ns, &config, &format!("?secret_suffix={SUFFIX}"));
        let store = KubeStore::open(&target, &ConnectOptions::default())
            .unwrap_or_else(|e| panic!("open: {e}"));
        KubePlace { tf, store }
    }
}

#[async_trait]
impl Fixture for KubeFixture {
    async fn place(&self, name: &str) -> Box<dyn Place> {
        Box::new(self.kube_place(name, &self.fake.url).await)
    }
    fn network(&self) -> Option<&dyn Network> {
        Some(self)
    }
}

#[async_trait]
impl Network for KubeFixture {
    async fn open(&self, url: &str, opts: &ConnectOptions) -> Result<Arc<dyn LockStore>, Error> {
        tflock_kubernetes::DRIVER
            .open(&Target::parse(url)?, opts)
            .await
    }
    fn bad_targets(&self) -> Vec<String> {
        let k = self.config.display();
        vec![
            "k8s://".into(),
            format!("k8s://fake?kubeconfig={k}"),
            format!("k8s://fake/Not_A_Namespace?kubeconfig={k}"),
            format!("k8s://fake/ns?kubeconfig={k}&secret_suffix=app-2"),
            format!("k8s://fake/ns?kubeconfig={k}&region=x"),
            format!("k8s://no-such-context/ns?kubeconfig={k}"),
            format!("k8s://fake/ns?kubeconfig={k}&token=c2VjcmV0"),
            format!(
                "k8s://fake/ns?kubeconfig={}",
                self.dir.path().join("missing").display()
            ),
        ]
    }
    fn target_at(&self, endpoint: &str) -> String {
        let config = kubeconfig(self.dir.path(), endpoint, &self.fake.token);
        format!("k8s://fake/default?kubeconfig={}", config.display())
    }
    fn missing(&self) -> (String, String) {
        (
            format!(
                "k8s://fake/tflock-no-such-ns?kubeconfig={}",
                self.config.display()
            ),
            "namespace tflock-no-such-ns".into(),
        )
    }
    fn emulator(&self) -> Option<String> {
        Some(self.fake.url.clone())
    }
    async fn place_via(&self, name: &str, endpoint: &str) -> Box<dyn Place> {
        Box::new(self.kube_place(name, endpoint).await)
    }
}

async fn fixture() -> Option<KubeFixture> {
    let fake = Fake::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = kubeconfig(dir.path(), &fake.url, &fake.token);
    Some(KubeFixture { fake, dir, config })
}

tflock_core::conformance_suite!(fixture(); network);

fn opts() -> ConnectOptions {
    ConnectOptions {
        timeout: std::time::Duration::from_secs(5),
        ..ConnectOptions::default()
    }
}

#[tokio::test]
async fn a_lock_is_listed_with_its_lease_workspace_and_holder() {
    let f = fixture().await.unwrap();
    let place = f.kube_place("fields", &f.fake.url).await;
    let info = sample_info("OperationTypeApply", "");
    let id = place.hold("dev", &info).await;
    let locks = place.store.list().await.unwrap();
    assert_eq!(locks.len(), 1, "{locks:#?}");
    let l = &locks[0];
    assert_eq!(l.id, id);
    assert_eq!(l.workspace.as_deref(), Some("dev"));
    assert_eq!(
        l.location,
        format!("k8s://fake/{}/leases/lock-tfstate-dev-app", place.tf.ns)
    );
    assert_eq!(l.path, place.path_of("dev"));
    assert_eq!(l.held, None, "nothing tells a live holder from a dead one");
    assert_eq!(l.details.get("holderIdentity"), Some(&id));
    assert!(l.details.contains_key("resourceVersion") && l.details.contains_key("uid"));
    assert!(l.stored_at.is_some(), "managedFields time");
    // Without ?secret_suffix= every suffix of the namespace is listed.
    let all = f.target(&place.tf.ns, &f.config, "");
    let store = KubeStore::open(&all, &opts()).unwrap();
    let mut ids: Vec<String> = store
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.id)
        .collect();
    ids.sort();
    let mut want = vec![id.clone(), "other-suffix-holder".to_string()];
    want.sort();
    assert_eq!(ids, want);
}

#[tokio::test]
async fn a_break_puts_the_lease_as_read_minus_holder_and_annotation() {
    let f = fixture().await.unwrap();
    let place = f.kube_place("put", &f.fake.url).await;
    let id = place
        .hold("default", &sample_info("OperationTypeApply", ""))
        .await;
    // Someone else's annotation and spec fields must survive the break.
    let mut lease = place.tf.get_lease("default", SUFFIX).await.unwrap();
    lease["metadata"]["annotations"]["team"] = json!("platform");
    lease["spec"]["leaseDurationSeconds"] = json!(3600);
    let url = format!("{}/lock-tfstate-default-{SUFFIX}", place.tf.leases());
    assert_eq!(
        place
            .tf
            .call(reqwest::Method::PUT, url, Some(lease.clone()))
            .await
            .0,
        200
    );
    let read = place.tf.get_lease("default", SUFFIX).await.unwrap();
    let locks = place.store.list().await.unwrap();
    let lock = locks.iter().find(|l| l.id == id).unwrap();
    f.fake.state.lock().unwrap().puts.clear();
    let broken = place
        .store()
        .break_lock(lock, &BreakOptions::default())
        .await
        .unwrap();
    assert!(
        broken.removed[0].contains("the Lease is kept"),
        "{broken:?}"
    );
    let puts = f.fake.state.lock().unwrap().puts.clone();
    assert_eq!(puts.len(), 1, "one PUT, nothing else written");
    let sent = &puts[0];
    assert_eq!(
        sent["metadata"]["resourceVersion"],
        read["metadata"]["resourceVersion"]
    );
    assert_eq!(sent["metadata"]["uid"], read["metadata"]["uid"]);
    assert_eq!(sent["metadata"]["labels"], read["metadata"]["labels"]);
    assert_eq!(sent["metadata"]["annotations"], json!({"team": "platform"}));
    assert_eq!(sent["spec"], json!({"leaseDurationSeconds": 3600}));
    let after = place
        .tf
        .get_lease("default", SUFFIX)
        .await
        .expect("the Lease is never deleted");
    assert!(after["spec"]["holderIdentity"].is_null());
    assert_eq!(after["metadata"]["uid"], read["metadata"]["uid"]);
}

#[tokio::test]
async fn a_deleted_and_recreated_lease_is_changed_not_overwritten() {
    let f = fixture().await.unwrap();
    let place = f.kube_place("recreated", &f.fake.url).await;
    let id = place
        .hold("default", &sample_info("OperationTypeApply", ""))
        .await;
    let locks = place.store.list().await.unwrap();
    // `terraform workspace delete` removes the Lease; a new lock makes it again, with
    // the same holder text by coincidence, a new uid and resourceVersion.
    let url = format!("{}/lock-tfstate-default-{SUFFIX}", place.tf.leases());
    assert_eq!(
        place.tf.call(reqwest::Method::DELETE, url, None).await.0,
        200
    );
    place
        .tf
        .lock("default", SUFFIX, &id, Some(&format!(r#"{{"ID":"{id}"}}"#)))
        .await;
    let err = place
        .store()
        .break_lock(&locks[0], &BreakOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), Kind::Changed, "{err}");
    assert!(err.to_string().contains("409"), "{err}");
    assert_eq!(place.current("default").await.as_deref(), Some(id.as_str()));
}

#[tokio::test]
async fn a_holder_without_lock_info_is_foreign_and_needs_force_foreign() {
    let f = fixture().await.unwrap();
    let place = f.kube_place("foreign", &f.fake.url).await;
    place.tf.lock("default", SUFFIX, "someone-else", None).await;
    let locks = place.store.list().await.unwrap();
    assert_eq!(locks.len(), 1);
    assert!(locks[0].foreign, "{:#?}", locks[0]);
    assert_eq!(locks[0].id, "someone-else");
    let err = place
        .store()
        .break_lock(&locks[0], &BreakOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), Kind::Refused);
    place
        .store()
        .break_lock(
            &locks[0],
            &BreakOptions {
                force_foreign: true,
            },
        )
        .await
        .unwrap();
    assert_eq!(place.current("default").await, None);
}

#[tokio::test]
async fn many_pages_are_followed() {
    let f = fixture().await.unwrap();
    f.fake.state.lock().unwrap().page_cap = 3;
    let place = f.kube_place("pages", &f.fake.url).await;
    let mut ids = Vec::new();
    for i in 0..8 {
        ids.push(
            place
                .hold(&format!("ws{i}"), &sample_info("OperationTypePlan", ""))
                .await,
        );
    }
    let got: Vec<String> = place
        .store
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.id)
        .collect();
    assert_eq!(got.len(), 8, "{got:?}");
    let log = f.fake.state.lock().unwrap().log.clone();
    assert!(
        log.iter()
            .filter(|l| l.starts_with("GET /apis/") && l.ends_with("leases?…"))
            .count()
            >= 3,
        "{log:#?}"
    );
}

#[tokio::test]
async fn credentials_and_rbac_failures_say_what_to_do() {
    let f = fixture().await.unwrap();
    let place = f.kube_place("rbac", &f.fake.url).await;
    let wrong = kubeconfig(f.dir.path(), &f.fake.url, "not-the-token");
    let store = KubeStore::open(&f.target(&place.tf.ns, &wrong, ""), &opts()).unwrap();
    let err = store.list().await.unwrap_err();
    assert_eq!(err.kind(), Kind::Unauthenticated, "{err}");
    assert!(!err.to_string().contains("not-the-token"), "{err}");
    f.fake
        .state
        .lock()
        .unwrap()
        .forbidden
        .insert(place.tf.ns.clone());
    let err = place.store.list().await.unwrap_err();
    assert_eq!(err.kind(), Kind::PermissionDenied, "{err}");
    let text = err.to_string();
    assert!(
        text.contains("HTTP 403 Forbidden") && text.contains("update on leases"),
        "{text}"
    );
    assert!(!text.contains('\n'));
}

#[tokio::test]
async fn an_exec_plugin_token_is_used() {
    let f = fixture().await.unwrap();
    let place = f.kube_place("exec", &f.fake.url).await;
    let id = place
        .hold("default", &sample_info("OperationTypeApply", ""))
        .await;
    let plugin = f.dir.path().join("plugin.sh");
    std::fs::write(
        &plugin,
        format!("#!/bin/sh\necho '{{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\"status\":{{\"token\":\"{}\"}}}}'\n", f.fake.token),
    )
    .unwrap();
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&plugin)
        .status()
        .unwrap();
    let config = f.dir.path().join("exec-kubeconfig");
    std::fs::write(
        &config,
        format!("current-context: fake\nclusters:\n- name: fake\n  cluster: {{server: \"{}\"}}\ncontexts:\n- name: fake\n  context: {{cluster: fake, user: ex}}\nusers:\n- name: ex\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: ./plugin.sh\n", f.fake.url),
    )
    .unwrap();
    let store = KubeStore::open(
        &f.target(&place.tf.ns, &config, "?secret_suffix=app"),
        &opts(),
    )
    .unwrap();
    let locks = store.list().await.unwrap();
    assert_eq!(locks.len(), 1);
    assert_eq!(locks[0].id, id);
}

#[tokio::test]
async fn discovery_of_a_backend_block_lists_its_locks() {
    let f = fixture().await.unwrap();
    let place = f.kube_place("discover", &f.fake.url).await;
    let id = place
        .hold("staging", &sample_info("OperationTypeApply", ""))
        .await;
    let block = BackendBlock {
        kind: "kubernetes".into(),
        config: serde_json::from_value(json!({
            "secret_suffix": SUFFIX, "namespace": place.tf.ns,
            "config_path": f.config.display().to_string(), "config_context": "fake",
        }))
        .unwrap(),
        source: "test".into(),
        dir: ".".into(),
    };
    let targets = tflock_kubernetes::DRIVER.discover(&block).unwrap();
    assert_eq!(
        targets[0].url,
        format!("k8s://fake/{}?secret_suffix={SUFFIX}", place.tf.ns)
    );
    let store = tflock_kubernetes::DRIVER
        .open(&targets[0], &opts())
        .await
        .unwrap();
    let locks = store.list().await.unwrap();
    assert_eq!(locks.len(), 1);
    assert_eq!(
        (locks[0].id.as_str(), locks[0].workspace.as_deref()),
        (id.as_str(), Some("staging"))
    );
}
