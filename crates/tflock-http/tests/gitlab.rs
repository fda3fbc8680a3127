//! GitLab cases beyond the shared suite, against the fake: the probe that learns a lock
//! ID never keeps a lock (also when answers are lost), the requester's fields are never
//! shown as the holder's, a DELETE always carries the ID, roles and tokens, read-only
//! listing, numeric project IDs, state-scoped targets, and secrets never shown.

use std::sync::Arc;
use tflock_core::testkit::relay::{Relay, Seen, Verdict};
use tflock_core::{BreakOptions, ConnectOptions, Kind, LockInfo, LockStore, Target};
use tflock_http::testing::{Access, GitLabFake, Request};

const MAINTAINER: &str = "glpat-maintainer-secret-0001";
const DEVELOPER: &str = "glpat-developer-secret-0002";
const READ_ONLY: &str = "glpat-readapi-secret-0003";
const PROJECT: &str = "infra/app";

struct Lab {
    fake: Arc<GitLabFake>,
    http: reqwest::Client,
    project_id: u64,
}

impl Lab {
    fn new() -> Lab {
        let fake = GitLabFake::start();
        fake.add_user("alice", false);
        fake.add_token("alice", MAINTAINER, &["api"]);
        fake.add_token("alice", READ_ONLY, &["read_api"]);
        fake.add_user("dave", false);
        fake.add_token("dave", DEVELOPER, &["api"]);
        let project_id = fake.add_project(PROJECT);
        fake.add_member(PROJECT, "alice", Access::Maintainer);
        fake.add_member(PROJECT, "dave", Access::Developer);
        Lab {
            fake: Arc::new(fake),
            http: reqwest::Client::new(),
            project_id,
        }
    }

    fn host(&self) -> &str {
        self.fake.url().trim_start_matches("http://")
    }

    fn lock_url(&self, state: &str) -> String {
        format!(
            "{}/api/v4/projects/infra%2Fapp/terraform/state/{state}/lock",
            self.fake.url()
        )
    }

    /// Terraform's lock request (the LockInfo it sends, Basic auth with the token).
    async fn terraform_lock(&self, state: &str, info: &LockInfo) {
        let res = self
            .http
            .post(self.lock_url(state))
            .basic_auth("alice", Some(MAINTAINER))
            .header("content-type", "application/json")
            .body(info.to_terraform_json())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 200, "{}", res.text().await.unwrap());
    }

    async fn open(
        &self,
        url: &str,
        token: Option<&str>,
    ) -> Result<Arc<dyn LockStore>, tflock_core::Error> {
        let target = Target::parse(url)?.with("token", token);
        tflock_http::open(&target, &ConnectOptions::default()).await
    }

    async fn store(&self, token: &str) -> Arc<dyn LockStore> {
        self.open(
            &format!("gitlab://{}/{PROJECT}?scheme=http", self.host()),
            Some(token),
        )
        .await
        .unwrap()
    }

    /// What tflock sent (its User-Agent), leaving out the fake's own setup traffic.
    fn tflock_requests(&self) -> Vec<Request> {
        self.fake
            .requests()
            .into_iter()
            .filter(|r| {
                r.header("user-agent")
                    .is_some_and(|u| u.starts_with("tflock/"))
            })
            .collect()
    }
}

fn apply_info() -> LockInfo {
    LockInfo {
        id: "f6a84ed3-79ea-b3c0-08ab-c22df0694108".into(),
        operation: "OperationTypeApply".into(),
        info: "holder's info".into(),
        who: "root@ci-runner".into(),
        version: "1.11.4".into(),
        created: Some(chrono::Utc::now()),
        path: String::new(),
    }
}

fn body_id(r: &Request) -> Option<String> {
    serde_json::from_slice::<serde_json::Value>(&r.body)
        .ok()?
        .get("ID")?
        .as_str()
        .map(str::to_string)
}

fn is_lock_post(s: &Seen) -> bool {
    s.method == "POST" && s.target.ends_with("/lock")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_holder_is_id_user_and_time_never_the_requesters_fields() {
    let lab = Lab::new();
    lab.terraform_lock("prod", &apply_info()).await;
    let locks = lab.store(MAINTAINER).await.list().await.unwrap();
    assert_eq!(locks.len(), 1, "{locks:#?}");
    let lock = &locks[0];
    let held = lab.fake.lock(PROJECT, "prod").unwrap();
    assert_eq!(lock.id, apply_info().id);
    assert_eq!(lock.backend.as_str(), "gitlab");
    let info = lock.info.as_ref().unwrap();
    // Who is GitLab's user, Created GitLab's time (ms); nothing else is known.
    assert_eq!(info.who, "alice");
    assert_eq!(
        info.created.map(|t| t.timestamp_millis()),
        Some(held.locked_at.timestamp_millis())
    );
    assert_eq!(
        (
            info.operation.as_str(),
            info.version.as_str(),
            info.info.as_str()
        ),
        ("", "", "")
    );
    let shown = format!("{lock:?}");
    assert!(
        !shown.contains("tflock-probe") && !shown.contains("tflock is reading"),
        "{shown}"
    );
    assert_eq!(
        lock.path,
        format!(
            "{}/api/v4/projects/infra%2Fapp/terraform/state/prod",
            lab.fake.url()
        )
    );
    assert_eq!(
        lock.details.get("locked_by").map(String::as_str),
        Some("alice")
    );
    assert_eq!(
        lock.stored_at.map(|t| t.timestamp()),
        Some(held.locked_at.timestamp())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_unlocked_between_listing_and_probe_is_released_at_once() {
    let lab = Lab::new();
    lab.terraform_lock("prod", &apply_info()).await;
    let before = lab.fake.fingerprint(PROJECT);
    let relay = Relay::start(lab.fake.url()).await;
    let fake = lab.fake.clone();
    // Someone unlocks the state after GraphQL said it was locked, before the probe.
    relay.set_rule(move |s| {
        if is_lock_post(s) {
            fake.unlock(PROJECT, "prod");
        }
        Verdict::Forward
    });
    let store = lab
        .open(
            &format!(
                "gitlab://{}/{PROJECT}?scheme=http",
                relay.url.trim_start_matches("http://")
            ),
            Some(MAINTAINER),
        )
        .await
        .unwrap();
    assert!(store.list().await.unwrap().is_empty());
    assert_eq!(
        lab.fake.lock(PROJECT, "prod"),
        None,
        "the probe's lock was kept"
    );
    let sent = lab.tflock_requests();
    let posts: Vec<&Request> = sent.iter().filter(|r| r.method == "POST").collect();
    let deletes: Vec<&Request> = sent.iter().filter(|r| r.method == "DELETE").collect();
    assert_eq!((posts.len(), deletes.len()), (1, 1), "{sent:#?}");
    let probe_id = body_id(posts[0]).unwrap();
    assert_ne!(probe_id, apply_info().id);
    assert_eq!(deletes[0].query_param("ID"), Some(probe_id));
    assert_eq!(lab.fake.fingerprint(PROJECT), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_probe_answer_is_settled_by_asking_again_and_nothing_is_kept() {
    let lab = Lab::new();
    lab.terraform_lock("prod", &apply_info()).await;
    let relay = Relay::start(lab.fake.url()).await;
    let fake = lab.fake.clone();
    let first = std::sync::Mutex::new(true);
    // The state is freed, the probe is granted the lock, and its answer is lost.
    relay.set_rule(move |s| {
        if is_lock_post(s) && std::mem::take(&mut *first.lock().unwrap()) {
            fake.unlock(PROJECT, "prod");
            return Verdict::LoseReply;
        }
        Verdict::Forward
    });
    let store = lab
        .open(
            &format!(
                "gitlab://{}/{PROJECT}?scheme=http",
                relay.url.trim_start_matches("http://")
            ),
            Some(MAINTAINER),
        )
        .await
        .unwrap();
    assert!(store.list().await.unwrap().is_empty());
    assert_eq!(
        lab.fake.lock(PROJECT, "prod"),
        None,
        "a lock granted to the probe was kept"
    );
    let sent = lab.tflock_requests();
    let posts: Vec<String> = sent
        .iter()
        .filter(|r| r.method == "POST")
        .filter_map(body_id)
        .collect();
    assert_eq!(posts.len(), 2, "{sent:#?}");
    assert_eq!(posts[0], posts[1], "asked again with another ID");
    let deletes: Vec<&Request> = sent.iter().filter(|r| r.method == "DELETE").collect();
    assert_eq!(deletes.len(), 1);
    assert_eq!(
        deletes[0].query_param("ID").as_deref(),
        Some(posts[0].as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_error_to_the_probe_is_asked_again() {
    let lab = Lab::new();
    lab.terraform_lock("prod", &apply_info()).await;
    let relay = Relay::start(lab.fake.url()).await;
    let fake = lab.fake.clone();
    let first = std::sync::Mutex::new(true);
    // Freed meanwhile, and the first lock request fails upstream of GitLab.
    relay.set_rule(move |s| {
        if is_lock_post(s) && std::mem::take(&mut *first.lock().unwrap()) {
            fake.unlock(PROJECT, "prod");
            return Verdict::Answer(502, String::new());
        }
        Verdict::Forward
    });
    let store = lab
        .open(
            &format!(
                "gitlab://{}/{PROJECT}?scheme=http",
                relay.url.trim_start_matches("http://")
            ),
            Some(MAINTAINER),
        )
        .await
        .unwrap();
    assert!(store.list().await.unwrap().is_empty());
    assert_eq!(lab.fake.lock(PROJECT, "prod"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_release_answer_is_settled_and_the_lock_released() {
    let lab = Lab::new();
    lab.terraform_lock("prod", &apply_info()).await;
    let relay = Relay::start(lab.fake.url()).await;
    let fake = lab.fake.clone();
    let (first_post, first_delete) = (std::sync::Mutex::new(true), std::sync::Mutex::new(true));
    relay.set_rule(move |s| {
        if is_lock_post(s) && std::mem::take(&mut *first_post.lock().unwrap()) {
            fake.unlock(PROJECT, "prod");
        }
        if s.method == "DELETE" && std::mem::take(&mut *first_delete.lock().unwrap()) {
            return Verdict::LoseReply;
        }
        Verdict::Forward
    });
    let store = lab
        .open(
            &format!(
                "gitlab://{}/{PROJECT}?scheme=http",
                relay.url.trim_start_matches("http://")
            ),
            Some(MAINTAINER),
        )
        .await
        .unwrap();
    assert!(store.list().await.unwrap().is_empty());
    assert_eq!(lab.fake.lock(PROJECT, "prod"), None);
    // Released, answer lost; asked again (granted again), released again.
    let methods: Vec<String> = lab
        .tflock_requests()
        .iter()
        .filter(|r| r.path.ends_with("/lock"))
        .map(|r| r.method.clone())
        .collect();
    assert_eq!(methods, ["POST", "DELETE", "POST", "DELETE"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_delete_tflock_sends_carries_an_id() {
    let lab = Lab::new();
    lab.terraform_lock("prod", &apply_info()).await;
    lab.terraform_lock(
        "dev",
        &LockInfo {
            id: "dev-lock".into(),
            ..apply_info()
        },
    )
    .await;
    let store = lab.store(MAINTAINER).await;
    let locks = store.list().await.unwrap();
    let prod = locks
        .iter()
        .find(|l| l.id == apply_info().id)
        .unwrap()
        .clone();
    store
        .break_lock(&prod, &BreakOptions::default())
        .await
        .unwrap();
    // Breaking the same snapshot again: GitLab answers 409, a second read explains.
    let again = store
        .break_lock(&prod, &BreakOptions::default())
        .await
        .unwrap_err();
    assert_eq!(again.kind(), Kind::Changed);
    assert!(again.to_string().contains("no longer locked"), "{again}");
    assert_eq!(
        lab.fake.lock(PROJECT, "dev").map(|l| l.id).as_deref(),
        Some("dev-lock")
    );
    let deletes: Vec<Request> = lab
        .tflock_requests()
        .into_iter()
        .filter(|r| r.method == "DELETE")
        .collect();
    assert!(!deletes.is_empty());
    for d in &deletes {
        assert!(
            d.query_param("ID").is_some_and(|id| !id.is_empty()),
            "DELETE without ID: {d:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_taken_again_is_reported_as_taken_again() {
    let lab = Lab::new();
    lab.terraform_lock("prod", &apply_info()).await;
    let store = lab.store(MAINTAINER).await;
    let old = store.list().await.unwrap().remove(0);
    lab.fake.unlock(PROJECT, "prod");
    lab.terraform_lock(
        "prod",
        &LockInfo {
            id: "bob-lock-2".into(),
            ..apply_info()
        },
    )
    .await;
    let e = store
        .break_lock(&old, &BreakOptions::default())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), Kind::Changed);
    assert!(
        e.to_string().contains("locked again by someone else"),
        "{e}"
    );
    assert_eq!(lab.fake.lock(PROJECT, "prod").unwrap().id, "bob-lock-2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_developer_sees_the_lock_but_not_its_id_and_cannot_break_it() {
    let lab = Lab::new();
    lab.terraform_lock("prod", &apply_info()).await;
    let store = lab.store(DEVELOPER).await;
    let locks = store.list().await.unwrap();
    assert_eq!(locks.len(), 1);
    let lock = locks[0].clone();
    assert_eq!(lock.id, "");
    assert!(lock.info.is_none());
    let why = lock.info_error.clone().unwrap();
    assert!(
        why.contains("HTTP 403") && why.contains("lock ID unknown"),
        "{why}"
    );
    lab.fake.clear_requests();
    let e = store
        .break_lock(&lock, &BreakOptions::default())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), Kind::Refused);
    assert!(
        e.to_string()
            .contains("never unlocks without the holder's ID"),
        "{e}"
    );
    assert!(
        lab.fake.requests().is_empty(),
        "a break without an ID sent something"
    );
    assert_eq!(lab.fake.lock(PROJECT, "prod").unwrap().id, apply_info().id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_whose_user_was_deleted_is_listed_and_explained() {
    let lab = Lab::new();
    lab.fake.add_user("leaver", false);
    lab.fake.add_token("leaver", "glpat-leaver", &["api"]);
    lab.fake.add_member(PROJECT, "leaver", Access::Maintainer);
    let res = lab
        .http
        .post(lab.lock_url("prod"))
        .basic_auth("leaver", Some("glpat-leaver"))
        .header("content-type", "application/json")
        .body(apply_info().to_terraform_json())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    lab.fake.delete_user("leaver");
    let locks = lab.store(MAINTAINER).await.list().await.unwrap();
    assert_eq!(locks.len(), 1);
    let why = locks[0].info_error.clone().unwrap();
    assert!(
        why.contains("HTTP 500") && why.contains("no longer exists"),
        "{why}"
    );
    assert!(locks[0].stored_at.is_some(), "GraphQL's lockedAt is kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_false_lists_without_sending_a_write() {
    let lab = Lab::new();
    lab.terraform_lock("prod", &apply_info()).await;
    lab.fake.clear_requests();
    let store = lab
        .open(
            &format!("gitlab://{}/{PROJECT}?scheme=http&probe=false", lab.host()),
            Some(READ_ONLY),
        )
        .await
        .unwrap();
    let locks = store.list().await.unwrap();
    assert_eq!(locks.len(), 1);
    let lock = &locks[0];
    assert_eq!(lock.id, "");
    assert!(lock.info_error.is_none());
    assert_eq!(lock.info.as_ref().map(|i| i.who.as_str()), Some("alice"));
    assert!(lock.created().is_some());
    let e = store
        .break_lock(lock, &BreakOptions::default())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), Kind::Refused);
    let writes: Vec<Request> = lab
        .fake
        .requests()
        .into_iter()
        .filter(|r| r.method != "GET")
        .collect();
    assert!(writes.is_empty(), "{writes:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_api_token_lists_and_says_what_it_lacks() {
    let lab = Lab::new();
    lab.terraform_lock("prod", &apply_info()).await;
    let locks = lab.store(READ_ONLY).await.list().await.unwrap();
    let why = locks[0].info_error.clone().unwrap();
    assert!(why.contains("HTTP 403: insufficient_scope"), "{why}");
    assert_eq!(lab.fake.lock(PROJECT, "prod").unwrap().id, apply_info().id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numeric_ids_state_scopes_and_state_addresses_name_the_same_lock() {
    let lab = Lab::new();
    lab.terraform_lock("prod", &apply_info()).await;
    lab.terraform_lock(
        "dev",
        &LockInfo {
            id: "dev-lock".into(),
            ..apply_info()
        },
    )
    .await;
    let id = lab.project_id;
    let by_id = lab
        .open(
            &format!("gitlab://{}/{id}?scheme=http", lab.host()),
            Some(MAINTAINER),
        )
        .await
        .unwrap()
        .list()
        .await
        .unwrap();
    assert_eq!(by_id.len(), 2);
    assert!(
        by_id
            .iter()
            .all(|l| l.path.contains(&format!("/projects/{id}/"))),
        "{by_id:#?}"
    );
    let scoped = lab
        .open(
            &format!("gitlab://{}/{PROJECT}?scheme=http&state=prod", lab.host()),
            Some(MAINTAINER),
        )
        .await
        .unwrap()
        .list()
        .await
        .unwrap();
    assert_eq!(scoped.len(), 1);
    assert_eq!(scoped[0].id, apply_info().id);
    let address = format!(
        "{}/api/v4/projects/{id}/terraform/state/prod",
        lab.fake.url()
    );
    let store = lab.open(&address, Some(MAINTAINER)).await.unwrap();
    assert_eq!(store.backend().as_str(), "gitlab");
    let via_address = store.list().await.unwrap();
    assert_eq!(via_address.len(), 1);
    assert_eq!(via_address[0].id, apply_info().id);
    assert_eq!(via_address[0].target, address);
    store
        .break_lock(&via_address[0], &BreakOptions::default())
        .await
        .unwrap();
    assert_eq!(lab.fake.lock(PROJECT, "prod"), None);
    // A state GitLab does not know is neither listed nor created by a probe.
    let none = lab
        .open(
            &format!("gitlab://{}/{PROJECT}?scheme=http&state=nope", lab.host()),
            Some(MAINTAINER),
        )
        .await
        .unwrap()
        .list()
        .await
        .unwrap();
    assert!(none.is_empty());
    assert!(!lab.fake.state_names(PROJECT).contains(&"nope".to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_errors_are_one_line_and_never_show_the_token() {
    let lab = Lab::new();
    let url = format!("gitlab://{}/{PROJECT}?scheme=http", lab.host());
    let e = lab
        .open(&url, Some("glpat-wrong-secret-9999"))
        .await
        .unwrap()
        .list()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), Kind::Unauthenticated, "{e}");
    let text = e.to_string();
    assert!(
        text.contains("HTTP 401") && !text.contains("glpat-wrong"),
        "{text}"
    );
    let e = lab
        .open(&url, None)
        .await
        .unwrap()
        .list()
        .await
        .unwrap_err();
    assert!(e.to_string().contains("no token was given"), "{e}");
    assert!(!e.to_string().contains('\n'));
    // A token on the URL is refused before anything is sent.
    let Err(e) = lab.open(&format!("{url}&token=glpat-on-url"), None).await else {
        panic!("a token on the URL was accepted");
    };
    assert_eq!(e.kind(), Kind::Usage);
    assert!(!e.to_string().contains("glpat-on-url"), "{e}");
}
