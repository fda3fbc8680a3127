//! The core conformance suite against Azurite (which checks Shared Key signatures and
//! enforces leases), its network cases (bad targets, dead and silent endpoints, a missing
//! container, lost replies and a bare 412 through a fault relay), plus the Azure-specific
//! cases: foreign leases, undecodable metadata, empty state blobs, a wrong key, and an
//! https endpoint with and without its CA.
//!
//! Needs `TFLOCK_TEST_AZURITE=http://127.0.0.1:PORT`, `TFLOCK_TEST_AZURE_ACCOUNT` and
//! `TFLOCK_TEST_AZURE_KEY` (scripts/test sets them).

mod support;

use async_trait::async_trait;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{base64_of, blob_of, fixture, Azurite, STATE};
use tflock_azure::testing::{open_with_env, Harness};
use tflock_core::testkit::{require_env, sample_info, Fixture, Network, Place};
use tflock_core::{BreakOptions, ConnectOptions, Error, LockInfo, LockStore, Status, Target};

struct AzPlace {
    store: Arc<dyn LockStore>,
    h: Harness,
    container: String,
}

#[async_trait]
impl Place for AzPlace {
    fn store(&self) -> &dyn LockStore {
        self.store.as_ref()
    }
    fn path_of(&self, state: &str) -> String {
        format!("{}/{}", self.container, blob_of(state))
    }
    async fn hold(&self, state: &str, info: &LockInfo) -> String {
        let blob = blob_of(state);
        // The default and dev workspaces have real state with an unrelated metadata key
        // that must survive every break; the others start as Terraform creates them: empty.
        if (state == "default" || state == "dev") && self.h.current(&blob).await.unwrap().is_none()
        {
            self.h
                .put_state(&blob, STATE, &[("owner", "team-a")])
                .await
                .unwrap();
        }
        self.h.lock_like_terraform(&blob, info).await.unwrap()
    }
    async fn retake(&self, state: &str, info: &LockInfo) -> String {
        let blob = blob_of(state);
        let old = self.h.current(&blob).await.unwrap().expect("held");
        self.h.unlock_like_terraform(&blob, &old).await.unwrap();
        self.h.lock_like_terraform(&blob, info).await.unwrap()
    }
    async fn current(&self, state: &str) -> Option<String> {
        self.h.current(&blob_of(state)).await.unwrap()
    }
    async fn hold_garbage(&self, state: &str) {
        let lease = sample_info("x", "x").id;
        self.h
            .lease(&blob_of(state), &lease, Some("%%% not base64 %%%"))
            .await
            .unwrap();
    }
    async fn untouchables(&self) -> String {
        self.h.fingerprint().await.unwrap()
    }
}

#[async_trait]
impl Fixture for Azurite {
    async fn place(&self, name: &str) -> Box<dyn Place> {
        let container = self.container(name).await;
        Box::new(AzPlace {
            store: self.store(&container),
            h: self.harness(&container),
            container,
        })
    }
    fn network(&self) -> Option<&dyn Network> {
        Some(self)
    }
}

#[async_trait]
impl Network for Azurite {
    async fn open(&self, url: &str, opts: &ConnectOptions) -> Result<Arc<dyn LockStore>, Error> {
        open_with_env(&Target::parse(url)?, opts, &self.env())
    }
    fn bad_targets(&self) -> Vec<String> {
        let a = &self.account;
        let at = format!("endpoint={}/{a}", self.endpoint);
        vec![
            format!("azblob://{a}?{at}"),
            format!("azblob://{a}/c?endpont=x&{at}"),
            format!("azblob://{a}/c?endpoint=ftp://x"),
            // A secret on the URL would be printed wherever the target is shown.
            format!("azblob://{a}/c?access_key=c2VjcmV0&{at}"),
            format!("azblob://{a}/c?{at}&sas_token=sv%3D1"),
        ]
    }
    fn target_at(&self, endpoint: &str) -> String {
        self.target_via("c", endpoint).url
    }
    fn missing(&self) -> (String, String) {
        let container = format!("no-such-container-{}", std::process::id());
        (self.target(&container).url, container)
    }
    fn emulator(&self) -> Option<String> {
        Some(self.endpoint.clone())
    }
    async fn place_via(&self, name: &str, endpoint: &str) -> Box<dyn Place> {
        let container = self.container(name).await;
        let store = open_with_env(
            &self.target_via(&container, endpoint),
            &Self::opts(),
            &self.env(),
        )
        .unwrap();
        Box::new(AzPlace {
            store,
            h: self.harness(&container),
            container,
        })
    }
}

tflock_core::conformance_suite!(fixture(); network);

#[tokio::test]
async fn foreign_lease_is_listed_refused_and_broken_only_when_forced() {
    let Some(az) = fixture().await else { return };
    let container = az.container("foreign").await;
    let h = az.harness(&container);
    let store = az.store(&container);
    h.put_state("terraform.tfstate", STATE, &[("owner", "team-a")])
        .await
        .unwrap();
    h.lease("terraform.tfstate", &sample_info("x", "x").id, None)
        .await
        .unwrap();
    let before = h.fingerprint().await.unwrap();

    let locks = store.list().await.unwrap();
    assert_eq!(locks.len(), 1, "{locks:#?}");
    let lock = &locks[0];
    assert!(lock.foreign);
    assert_eq!(lock.id, lock.location);
    assert!(lock
        .location
        .ends_with(&format!("/{container}/terraform.tfstate")));
    assert_eq!(lock.path, format!("{container}/terraform.tfstate"));
    assert_eq!(
        lock.status(chrono::Utc::now(), chrono::Duration::zero()),
        Status::Foreign
    );

    match store.break_lock(lock, &BreakOptions::default()).await {
        Err(e) if e.kind() == tflock_core::Kind::Refused => {
            let message = e.message();
            assert!(message.contains("--force-foreign"), "{message}")
        }
        other => panic!("a foreign lease must be refused, got {other:?}"),
    }
    assert_eq!(
        h.current("terraform.tfstate").await.unwrap().as_deref(),
        Some("leased")
    );

    let broken = store
        .break_lock(
            lock,
            &BreakOptions {
                force_foreign: true,
            },
        )
        .await
        .unwrap();
    assert_eq!(broken.removed.len(), 1, "{broken:?}");
    assert_eq!(h.current("terraform.tfstate").await.unwrap(), None);
    assert_eq!(h.fingerprint().await.unwrap(), before);
    assert!(store.list().await.unwrap().is_empty());
}

#[tokio::test]
async fn unrelated_metadata_survives_a_break() {
    let Some(az) = fixture().await else { return };
    let container = az.container("keepmeta").await;
    let h = az.harness(&container);
    let store = az.store(&container);
    h.put_state(
        "app.tfstate",
        STATE,
        &[("owner", "team-a"), ("costcenter", "42")],
    )
    .await
    .unwrap();
    let info = sample_info("OperationTypeApply", &format!("{container}/app.tfstate"));
    let id = h.lock_like_terraform("app.tfstate", &info).await.unwrap();
    let locks = store.list().await.unwrap();
    assert_eq!(locks[0].id, id);
    assert_eq!(locks[0].workspace.as_deref(), Some("default"));
    assert_eq!(
        locks[0].details.get("other_metadata").map(String::as_str),
        Some("costcenter,owner")
    );
    store
        .break_lock(&locks[0], &BreakOptions::default())
        .await
        .unwrap();
    let meta = h.metadata("app.tfstate").await.unwrap();
    assert_eq!(meta.get("owner").map(String::as_str), Some("team-a"));
    assert_eq!(meta.get("costcenter").map(String::as_str), Some("42"));
    assert!(!meta.contains_key(tflock_azure::LOCK_KEY), "{meta:?}");
    // Terraform can lock it again.
    h.lock_like_terraform("app.tfstate", &sample_info("OperationTypePlan", "p"))
        .await
        .unwrap();
}

#[tokio::test]
async fn undecodable_metadata_is_listed_and_not_broken_without_the_flag() {
    let Some(az) = fixture().await else { return };
    let container = az.container("badmeta").await;
    let h = az.harness(&container);
    let store = az.store(&container);
    h.lease("notb64.tfstate", &sample_info("x", "x").id, Some("%%%"))
        .await
        .unwrap();
    let not_json = base64_of("this is not json");
    h.lease(
        "notjson.tfstate",
        &sample_info("x", "x").id,
        Some(&not_json),
    )
    .await
    .unwrap();
    let before = h.fingerprint().await.unwrap();
    let mut locks = store.list().await.unwrap();
    locks.sort_by(|a, b| a.location.cmp(&b.location));
    assert_eq!(locks.len(), 2, "{locks:#?}");
    let (b64, json) = (&locks[0], &locks[1]);
    assert!(
        b64.info_error.as_deref().unwrap().contains("not base64"),
        "{b64:?}"
    );
    assert!(json.info_error.is_some() && json.info.is_none(), "{json:?}");
    for lock in &locks {
        assert!(lock.id.is_empty() && !lock.foreign);
        assert_eq!(
            lock.status(chrono::Utc::now(), chrono::Duration::zero()),
            Status::Unreadable
        );
        match store.break_lock(lock, &BreakOptions::default()).await {
            Err(e) if e.kind() == tflock_core::Kind::Refused => {
                assert!(e.message().contains("--force-foreign"))
            }
            other => panic!("expected Refused, got {other:?}"),
        }
    }
    assert_eq!(h.fingerprint().await.unwrap(), before);
    assert_eq!(store.list().await.unwrap().len(), 2);
    // With the flag the lease is broken (its id is unknown), nothing else changes.
    store
        .break_lock(
            b64,
            &BreakOptions {
                force_foreign: true,
            },
        )
        .await
        .unwrap();
    assert_eq!(h.current("notb64.tfstate").await.unwrap(), None);
    assert_eq!(store.list().await.unwrap().len(), 1);
}

#[tokio::test]
async fn empty_state_blob_and_stale_metadata() {
    let Some(az) = fixture().await else { return };
    let container = az.container("empty").await;
    let h = az.harness(&container);
    let store = az.store(&container);
    // Terraform locking a workspace that has no state yet creates an empty blob.
    let info = sample_info(
        "OperationTypeApply",
        &format!("{container}/x.tfstateenv:new"),
    );
    let id = h
        .lock_like_terraform("x.tfstateenv:new", &info)
        .await
        .unwrap();
    // An unleased blob with leftover lock metadata is not a lock (Terraform overwrites it).
    let stale = sample_info("OperationTypePlan", "p").to_terraform_json();
    h.put_state(
        "y.tfstate",
        STATE,
        &[(tflock_azure::LOCK_KEY, &base64_of(&stale))],
    )
    .await
    .unwrap();
    let locks = store.list().await.unwrap();
    assert!(
        locks.iter().all(|l| !l.path.ends_with("/y.tfstate")),
        "an unleased blob was listed: {locks:#?}"
    );
    let lock = locks
        .iter()
        .find(|l| l.id == id)
        .expect("the lock on the empty blob");
    assert_eq!(lock.workspace.as_deref(), Some("new"));
    let before = h.fingerprint().await.unwrap();
    store
        .break_lock(lock, &BreakOptions::default())
        .await
        .unwrap();
    assert_eq!(h.fingerprint().await.unwrap(), before);
}

#[tokio::test]
async fn prefix_limits_the_listing() {
    let Some(az) = fixture().await else { return };
    let container = az.container("prefix").await;
    let h = az.harness(&container);
    h.lock_like_terraform(
        "team-a/app.tfstate",
        &sample_info("OperationTypeApply", "a"),
    )
    .await
    .unwrap();
    h.lock_like_terraform(
        "team-b/app.tfstate",
        &sample_info("OperationTypeApply", "b"),
    )
    .await
    .unwrap();
    let mut t = az.target(&container);
    t.path = format!("{container}/team-a/");
    let store = open_with_env(&t, &Azurite::opts(), &az.env()).unwrap();
    let locks = store.list().await.unwrap();
    assert_eq!(locks.len(), 1, "{locks:#?}");
    assert!(
        locks[0].location.ends_with("/team-a/app.tfstate"),
        "{}",
        locks[0].location
    );
    // The slash inside the blob name is a path separator, not %2F.
    assert!(!locks[0].location.contains("%2F"));
    store
        .break_lock(&locks[0], &BreakOptions::default())
        .await
        .unwrap();
    assert_eq!(h.current("team-a/app.tfstate").await.unwrap(), None);
    assert!(h.current("team-b/app.tfstate").await.unwrap().is_some());
}

#[tokio::test]
async fn wrong_key_is_refused_by_the_signature_check() {
    let Some(az) = fixture().await else { return };
    let container = az.container("wrongkey").await;
    let wrong = "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXk=".to_string();
    let env = move |k: &str| (k == "ARM_ACCESS_KEY").then(|| wrong.clone());
    let store = open_with_env(&az.target(&container), &Azurite::opts(), &env).unwrap();
    let text = store.list().await.unwrap_err().to_string();
    assert!(
        text.contains("AuthorizationFailure") || text.contains("AuthenticationFailed"),
        "{text}"
    );
    assert!(text.contains("403"), "{text}");
    // The right key works on the same container: the signature is what was checked.
    assert!(az.store(&container).list().await.unwrap().is_empty());
}

/// Over HTTPS with the emulator's own CA: trusted through SSL_CERT_FILE; without it, a
/// clear certificate error in seconds instead of the SDK's minute of retries.
#[tokio::test]
async fn https_endpoint_with_and_without_its_ca() {
    let Some(az) = fixture().await else { return };
    let Some(https) = require_env("TFLOCK_TEST_AZURITE_HTTPS", "Azurite over HTTPS") else {
        return;
    };
    let ca = std::env::var("TFLOCK_TEST_AZURITE_CA").expect("TFLOCK_TEST_AZURITE_CA");
    let target = Target::parse(&format!(
        "azblob://{}/https-{}?endpoint={https}/{}",
        az.account,
        std::process::id(),
        az.account
    ))
    .unwrap();
    let key = az.key.clone();
    let with_ca = move |k: &str| match k {
        "ARM_ACCESS_KEY" => Some(key.clone()),
        "SSL_CERT_FILE" => Some(ca.clone()),
        _ => None,
    };
    let h = Harness::connect_with_env(&target, &Azurite::opts(), &with_ca).unwrap();
    h.create_container().await.unwrap();
    h.lock_like_terraform("terraform.tfstate", &sample_info("OperationTypeApply", "p"))
        .await
        .unwrap();
    let store = open_with_env(&target, &Azurite::opts(), &with_ca).unwrap();
    let locks = store.list().await.unwrap();
    assert_eq!(locks.len(), 1);
    store
        .break_lock(&locks[0], &BreakOptions::default())
        .await
        .unwrap();

    let opts = ConnectOptions {
        timeout: Duration::from_secs(3),
        ..Default::default()
    };
    let no_ca = open_with_env(&target, &opts, &az.env()).unwrap();
    let started = Instant::now();
    let err = no_ca.list().await.unwrap_err().to_string();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(8), "took {took:?}");
    assert!(err.contains("SSL_CERT_FILE"), "{err}");
    eprintln!("untrusted certificate failed in {took:?}: {err}");
}

/// The key from the user's own backend block (an `access_key` option that discovery or
/// tflock.toml sets, never on the URL) is used with nothing in the environment, wins over a
/// wrong ARM_ACCESS_KEY, and is never shown.
#[tokio::test]
async fn access_key_option_authorizes_and_stays_hidden() {
    let Some(az) = fixture().await else { return };
    let container = format!("ownkey-{}", std::process::id());
    az.harness(&container).create_container().await.unwrap();
    let mut target = az.target(&container);
    target.params.insert("access_key".into(), az.key.clone());
    let wrong = |k: &str| (k == "ARM_ACCESS_KEY").then(|| "d3Jvbmc=".to_string());
    for env in [&(|_: &str| None) as &dyn Fn(&str) -> Option<String>, &wrong] {
        let store = open_with_env(&target, &Azurite::opts(), env).unwrap();
        assert!(store.list().await.unwrap().is_empty());
        assert!(!store.target().contains(&az.key), "{}", store.target());
    }
    // Without it, the wrong environment key is what is used, and refused.
    let plain = az.target(&container);
    let err = open_with_env(&plain, &Azurite::opts(), &wrong)
        .unwrap()
        .list()
        .await
        .unwrap_err();
    assert!(tflock_core::testkit::is_operational(&err), "{err}");
}
