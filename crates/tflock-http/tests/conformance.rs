//! The core conformance suite against the GitLab fake (`tflock_http::testing`), with
//! locks taken exactly as Terraform's http backend takes them on GitLab (`POST .../lock`
//! with the LockInfo, Basic auth with a token), plus the network cases (relay in front
//! of the fake).

use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tflock_core::testkit::{Fixture, Network, Place};
use tflock_core::{ConnectOptions, Error, LockInfo, LockStore, Target};
use tflock_http::testing::{Access, GitLabFake};

const USER: &str = "alice";
const TOKEN: &str = "glpat-conformance-0123456789";

/// Terraform's http client against GitLab, as the research recorded it.
struct Terraform {
    http: reqwest::Client,
}

impl Terraform {
    async fn send(
        &self,
        method: reqwest::Method,
        url: &str,
        user: &str,
        token: &str,
        body: String,
    ) -> (u16, String) {
        let res = self
            .http
            .request(method, url)
            .basic_auth(user, Some(token))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        let status = res.status().as_u16();
        (status, res.text().await.unwrap_or_default())
    }
}

struct GitLabPlace {
    fake: Arc<GitLabFake>,
    project: String,
    /// The base the store talks to (the fake, or a relay in front of it).
    store_base: String,
    store: Arc<dyn LockStore>,
    tf: Terraform,
    /// What GitLab answered each hold: the holder's ID, Who and Created.
    answers: Mutex<HashMap<String, LockInfo>>,
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

impl GitLabPlace {
    fn state_url(&self, base: &str, state: &str) -> String {
        format!(
            "{base}/api/v4/projects/{}/terraform/state/{}",
            enc(&self.project),
            enc(state)
        )
    }

    /// `terraform apply` once before: a state version exists next to the lock.
    async fn ensure_state(&self, state: &str) {
        if self
            .fake
            .state_names(&self.project)
            .iter()
            .any(|n| n == state)
        {
            return;
        }
        let body = format!(
            r#"{{"version":4,"serial":1,"lineage":"{state}","outputs":{{}},"resources":[]}}"#
        );
        let (status, text) = self
            .tf
            .send(
                reqwest::Method::POST,
                &self.state_url(self.fake.url(), state),
                USER,
                TOKEN,
                body,
            )
            .await;
        assert_eq!(status, 200, "writing state {state}: {text}");
    }

    async fn lock_as(
        &self,
        state: &str,
        user: &str,
        token: &str,
        info: &LockInfo,
    ) -> (u16, String) {
        let url = format!("{}/lock", self.state_url(self.fake.url(), state));
        self.tf
            .send(
                reqwest::Method::POST,
                &url,
                user,
                token,
                info.to_terraform_json(),
            )
            .await
    }
}

#[async_trait]
impl Place for GitLabPlace {
    fn store(&self) -> &dyn LockStore {
        self.store.as_ref()
    }

    fn path_of(&self, state: &str) -> String {
        self.state_url(&self.store_base, state)
    }

    async fn hold(&self, state: &str, info: &LockInfo) -> String {
        self.ensure_state(state).await;
        let (status, text) = self.lock_as(state, USER, TOKEN, info).await;
        assert_eq!(status, 200, "locking {state}: {text}");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let answered = LockInfo {
            id: v["ID"].as_str().unwrap().to_string(),
            who: v["Who"].as_str().unwrap().to_string(),
            created: tflock_core::lockinfo::parse_go_time(v["Created"].as_str().unwrap()).unwrap(),
            ..LockInfo::default()
        };
        assert_eq!(answered.id, info.id);
        self.answers
            .lock()
            .unwrap()
            .insert(state.to_string(), answered);
        info.id.clone()
    }

    async fn retake(&self, state: &str, info: &LockInfo) -> String {
        // Terraform's unlock: DELETE .../lock with the holder's LockInfo as the body.
        if let Some(held) = self.fake.lock(&self.project, state) {
            let url = format!("{}/lock", self.state_url(self.fake.url(), state));
            let body = LockInfo {
                id: held.id,
                ..LockInfo::default()
            };
            let (status, text) = self
                .tf
                .send(
                    reqwest::Method::DELETE,
                    &url,
                    USER,
                    TOKEN,
                    body.to_terraform_json(),
                )
                .await;
            assert_eq!(status, 200, "unlocking {state}: {text}");
        }
        self.hold(state, info).await
    }

    async fn current(&self, state: &str) -> Option<String> {
        self.fake.lock(&self.project, state).map(|l| l.id)
    }

    /// A lock GitLab can no longer describe: its user was deleted since (GitLab then
    /// answers 500 to every lock request on that state, and GraphQL shows no user).
    async fn hold_garbage(&self, state: &str) {
        let user = format!("leaver-{}", state.len());
        let token = format!("glpat-leaver-{state}");
        self.fake.add_user(&user, false);
        self.fake.add_token(&user, &token, &["api"]);
        self.fake
            .add_member(&self.project, &user, Access::Maintainer);
        self.ensure_state(state).await;
        let info = tflock_core::testkit::sample_info("OperationTypeApply", "");
        let (status, text) = self.lock_as(state, &user, &token, &info).await;
        assert_eq!(status, 200, "{text}");
        self.fake.delete_user(&user);
    }

    async fn untouchables(&self) -> String {
        self.fake.fingerprint(&self.project)
    }

    async fn read_back(&self, state: &str, _written: &LockInfo) -> LockInfo {
        self.answers
            .lock()
            .unwrap()
            .get(state)
            .cloned()
            .expect("held through hold()")
    }
}

struct GitLabFixture {
    fake: Arc<GitLabFake>,
}

fn host_of(url: &str) -> &str {
    url.trim_start_matches("http://").trim_end_matches('/')
}

impl GitLabFixture {
    async fn place_at(&self, name: &str, base: &str) -> GitLabPlace {
        let project = format!("tflock/{name}");
        self.fake.add_project(&project);
        self.fake.add_member(&project, USER, Access::Maintainer);
        let url = format!("gitlab://{}/{project}?scheme=http", host_of(base));
        let store = open(&url, &ConnectOptions::default())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        GitLabPlace {
            fake: self.fake.clone(),
            project,
            store_base: base.trim_end_matches('/').to_string(),
            store,
            tf: Terraform {
                http: reqwest::Client::new(),
            },
            answers: Mutex::default(),
        }
    }
}

/// Opens a target with the token as a hidden option (as tflock.toml would pass it).
async fn open(url: &str, opts: &ConnectOptions) -> Result<Arc<dyn LockStore>, Error> {
    let target = Target::parse(url)?.with("token", Some(TOKEN));
    tflock_http::open(&target, opts).await
}

#[async_trait]
impl Fixture for GitLabFixture {
    async fn place(&self, name: &str) -> Box<dyn Place> {
        Box::new(self.place_at(name, self.fake.url()).await)
    }
    fn network(&self) -> Option<&dyn Network> {
        Some(self)
    }
}

#[async_trait]
impl Network for GitLabFixture {
    async fn open(&self, url: &str, opts: &ConnectOptions) -> Result<Arc<dyn LockStore>, Error> {
        open(url, opts).await
    }
    fn bad_targets(&self) -> Vec<String> {
        let h = host_of(self.fake.url());
        vec![
            "gitlab://".into(),
            "gitlab:///tflock/p".into(),
            format!("gitlab://{h}"),
            format!("gitlab://{h}/tflock/p?scheme=ftp"),
            format!("gitlab://{h}/tflock/p?nope=1"),
            format!("gitlab://{h}/tflock/p?token=glpat-on-the-url"),
            format!("gitlab://{h}/tflock/p?probe=maybe"),
            format!("gitlab://{h}/tflock/p?state="),
            format!("gitlab://alice:{TOKEN}@{h}/tflock/p?scheme=http"),
            format!("http://{h}/api/v4/projects/1/terraform/state/s?password=x"),
        ]
    }
    fn target_at(&self, endpoint: &str) -> String {
        format!("gitlab://{}/tflock/anything?scheme=http", host_of(endpoint))
    }
    fn missing(&self) -> (String, String) {
        (
            format!(
                "gitlab://{}/tflock/no-such-project?scheme=http",
                host_of(self.fake.url())
            ),
            "tflock/no-such-project".into(),
        )
    }
    fn emulator(&self) -> Option<String> {
        Some(self.fake.url().to_string())
    }
    async fn place_via(&self, name: &str, endpoint: &str) -> Box<dyn Place> {
        Box::new(self.place_at(name, endpoint).await)
    }
}

/// A fresh fake per test: a Maintainer with an api token, and pages of 5 so that twelve
/// states take three GraphQL pages.
async fn fixture() -> Option<GitLabFixture> {
    let fake = GitLabFake::start();
    fake.add_user(USER, false);
    fake.add_token(USER, TOKEN, &["api"]);
    fake.set_max_page_size(5);
    Some(GitLabFixture {
        fake: Arc::new(fake),
    })
}

tflock_core::conformance_suite!(fixture(); network);
