//! Terraform's http backend against Terraform's own reference server
//! (`tflock_http::testing::ReferenceServer`): the holder's LockInfo from a 423, a free
//! lock released at once, a break that sends the holder's own unlock, a re-taken lock
//! that survives even a server that does not compare IDs, a lost answer settled by
//! reading again, the target's options, and TLS settings (against Azurite's HTTPS).

use std::sync::Arc;
use tflock_core::testkit::relay::{Relay, Verdict};
use tflock_core::testkit::require_env;
use tflock_core::{BreakOptions, ConnectOptions, Error, Kind, LockInfo, LockStore, Target};
use tflock_http::testing::{ReferenceServer, Request};

fn holder() -> LockInfo {
    LockInfo {
        id: "9f2c8a51-3b7e-4d0a-8c6f-1e2d3c4b5a69".into(),
        operation: "OperationTypeApply".into(),
        info: String::new(),
        who: "runner@ci-7".into(),
        version: "1.11.4".into(),
        created: tflock_core::lockinfo::parse_go_time("2026-11-26T11:15:30.176359905Z").unwrap(),
        path: String::new(),
    }
}

/// Terraform's lock request: `LOCK <lock_address>` with its LockInfo.
async fn terraform_lock(base: &str, state: &str, info: &LockInfo) -> u16 {
    reqwest::Client::new()
        .request(
            reqwest::Method::from_bytes(b"LOCK").unwrap(),
            format!("{base}/state/{state}"),
        )
        .header("content-type", "application/json")
        .body(info.to_terraform_json())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn terraform_unlock(base: &str, state: &str, id: &str) -> u16 {
    reqwest::Client::new()
        .request(
            reqwest::Method::from_bytes(b"UNLOCK").unwrap(),
            format!("{base}/state/{state}"),
        )
        .header("content-type", "application/json")
        .body(
            LockInfo {
                id: id.into(),
                ..LockInfo::default()
            }
            .to_terraform_json(),
        )
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// `http://.../state/NAME` with the unlock address Terraform's settings would give.
fn target(base: &str, state: &str) -> String {
    format!("{base}/state/{state}?unlock_address={base}/state/{state}")
}

async fn open(url: &str) -> Result<Arc<dyn LockStore>, Error> {
    tflock_http::open(&Target::parse(url)?, &ConnectOptions::default()).await
}

fn tflock_sent(reqs: Vec<Request>) -> Vec<Request> {
    reqs.into_iter()
        .filter(|r| {
            r.header("user-agent")
                .is_some_and(|u| u.starts_with("tflock/"))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_holders_lockinfo_from_a_423_is_listed_as_is() {
    let srv = ReferenceServer::start(true);
    assert_eq!(terraform_lock(srv.url(), "prod", &holder()).await, 200);
    let store = open(&target(srv.url(), "prod")).await.unwrap();
    assert_eq!(store.backend().as_str(), "http");
    let locks = store.list().await.unwrap();
    assert_eq!(locks.len(), 1);
    let lock = &locks[0];
    assert_eq!(lock.id, holder().id);
    assert_eq!(lock.info.as_ref(), Some(&holder()));
    assert_eq!(lock.created(), holder().created);
    assert_eq!(lock.location, format!("{}/state/prod", srv.url()));
    assert_eq!(
        lock.details.get("answered").map(String::as_str),
        Some("HTTP 423")
    );
    // Nothing but the probe was sent, and the lock is untouched.
    let sent = tflock_sent(srv.requests());
    assert_eq!(
        sent.iter().map(|r| r.method.as_str()).collect::<Vec<_>>(),
        ["LOCK"]
    );
    assert_eq!(
        srv.lock("prod").as_deref(),
        Some(holder().to_terraform_json().as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_free_state_lists_nothing_and_keeps_no_lock() {
    let srv = ReferenceServer::start(true);
    let store = open(&target(srv.url(), "prod")).await.unwrap();
    assert!(store.list().await.unwrap().is_empty());
    assert_eq!(srv.lock("prod"), None);
    let sent = tflock_sent(srv.requests());
    assert_eq!(
        sent.iter().map(|r| r.method.as_str()).collect::<Vec<_>>(),
        ["LOCK", "UNLOCK"]
    );
    // The release is Terraform's unlock: the probe's own LockInfo.
    assert_eq!(sent[0].body, sent[1].body);
    let probe = LockInfo::parse(&String::from_utf8_lossy(&sent[0].body)).unwrap();
    assert_eq!(probe.operation, "tflock-probe");
    // Terraform's headers on a LockInfo body.
    for r in &sent {
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert!(
            r.header("content-md5")
                .is_some_and(|m| m.len() == 24 && m.ends_with("==")),
            "{r:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_break_sends_the_holders_own_unlock_after_seeing_the_same_holder() {
    let srv = ReferenceServer::start(true);
    terraform_lock(srv.url(), "prod", &holder()).await;
    let store = open(&target(srv.url(), "prod")).await.unwrap();
    let lock = store.list().await.unwrap().remove(0);
    let broken = store
        .break_lock(&lock, &BreakOptions::default())
        .await
        .unwrap();
    assert_eq!(broken.removed.len(), 1);
    assert_eq!(srv.lock("prod"), None);
    let sent = tflock_sent(srv.requests());
    let methods: Vec<&str> = sent.iter().map(|r| r.method.as_str()).collect();
    assert_eq!(methods, ["LOCK", "LOCK", "UNLOCK"]);
    assert_eq!(sent[2].body, holder().to_terraform_json().into_bytes());
    // Broken again: the lock is gone, nothing is unlocked.
    let e = store
        .break_lock(&lock, &BreakOptions::default())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), Kind::Changed);
    assert_eq!(srv.lock("prod"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retaken_lock_survives_on_a_server_that_does_not_compare_ids() {
    let srv = ReferenceServer::start(false);
    terraform_lock(srv.url(), "prod", &holder()).await;
    let store = open(&target(srv.url(), "prod")).await.unwrap();
    let old = store.list().await.unwrap().remove(0);
    assert_eq!(terraform_unlock(srv.url(), "prod", &holder().id).await, 200);
    let new = LockInfo {
        id: "new-holder".into(),
        ..holder()
    };
    assert_eq!(terraform_lock(srv.url(), "prod", &new).await, 200);
    let e = store
        .break_lock(&old, &BreakOptions::default())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), Kind::Changed, "{e}");
    assert_eq!(
        srv.lock("prod").as_deref(),
        Some(new.to_terraform_json().as_str())
    );
    assert!(
        tflock_sent(srv.requests())
            .iter()
            .all(|r| r.method != "UNLOCK"),
        "an unlock was sent to a server that would not have compared the ID"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_unlock_answer_is_settled_by_reading_again() {
    let srv = ReferenceServer::start(true);
    terraform_lock(srv.url(), "prod", &holder()).await;
    let relay = Relay::start(srv.url()).await;
    let store = open(&target(&relay.url, "prod")).await.unwrap();
    let lock = store.list().await.unwrap().remove(0);
    let first = std::sync::Mutex::new(true);
    relay.set_rule(move |s| {
        if s.method == "UNLOCK" && std::mem::take(&mut *first.lock().unwrap()) {
            Verdict::LoseReply
        } else {
            Verdict::Forward
        }
    });
    relay.clear();
    let broken = store
        .break_lock(&lock, &BreakOptions::default())
        .await
        .unwrap();
    assert!(broken.confirmed_by_reread);
    assert_eq!(srv.lock("prod"), None);
    // The holder's unlock once; the second read granted the probe a lock it released.
    let unlocks: Vec<Vec<u8>> = tflock_sent(srv.requests())
        .into_iter()
        .filter(|r| r.method == "UNLOCK")
        .map(|r| r.body)
        .collect();
    assert_eq!(unlocks.len(), 2);
    assert_eq!(unlocks[0], holder().to_terraform_json().into_bytes());
    assert_ne!(unlocks[1], unlocks[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_without_lockinfo_is_listed_and_never_unlocked() {
    let srv = ReferenceServer::start(false);
    let status = reqwest::Client::new()
        .request(
            reqwest::Method::from_bytes(b"LOCK").unwrap(),
            format!("{}/state/prod", srv.url()),
        )
        .body("held by a script")
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status.as_u16(), 200);
    let store = open(&target(srv.url(), "prod")).await.unwrap();
    let lock = store.list().await.unwrap().remove(0);
    assert_eq!(lock.id, "");
    assert!(lock.info.is_none());
    assert!(lock
        .info_error
        .as_deref()
        .unwrap()
        .contains("HTTP 423 without a readable LockInfo"));
    let e = store
        .break_lock(&lock, &BreakOptions::default())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), Kind::Refused);
    assert_eq!(srv.lock("prod").as_deref(), Some("held by a script"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn options_methods_and_the_addresses_own_query() {
    let srv = ReferenceServer::start(true);
    // Without an unlock address tflock could not give back a lock its probe got.
    let Err(e) = open(&format!("{}/state/prod", srv.url())).await else {
        panic!("opened without an unlock address");
    };
    assert_eq!(e.kind(), Kind::Usage);
    assert!(e.to_string().contains("no unlock address"), "{e}");
    for bad in [
        format!("{}&lock_method=NOT%20A%20METHOD", target(srv.url(), "p")),
        format!("{}&probe=false", target(srv.url(), "p")),
        format!("{}&password=s3cret", target(srv.url(), "p")),
        format!("{}&skip_cert_verification=perhaps", target(srv.url(), "p")),
        format!("{}/state/p?unlock_address=ftp://x/y", srv.url()),
        "http:///state/p".to_string(),
        format!(
            "http://u:s3cret@{}",
            target(srv.url(), "p").trim_start_matches("http://")
        ),
    ] {
        let Err(e) = open(&bad).await else {
            panic!("{bad} opened")
        };
        assert_eq!(e.kind(), Kind::Usage, "{bad}: {e}");
        assert!(!e.to_string().contains("s3cret"), "{e}");
    }
    // A hidden option that tflock does not know is a typo, refused.
    let t = Target::parse(&target(srv.url(), "p"))
        .unwrap()
        .with("lock_mehtod", Some("POST"));
    let Err(e) = tflock_http::open(&t, &ConnectOptions::default()).await else {
        panic!("a misspelt option was accepted")
    };
    assert!(e.to_string().contains("unknown option lock_mehtod"), "{e}");
    // The address keeps its own query; tflock's options leave it.
    terraform_lock(srv.url(), "prod", &holder()).await;
    let url = format!(
        "{}/state/prod?team=a&unlock_address={}/state/prod",
        srv.url(),
        srv.url()
    );
    let locks = open(&url).await.unwrap().list().await.unwrap();
    assert_eq!(locks.len(), 1);
    let sent = tflock_sent(srv.requests());
    let last = sent.last().unwrap();
    assert_eq!(
        (last.method.as_str(), last.query.as_str()),
        ("LOCK", "team=a")
    );
    // The methods given are the methods sent (this server answers 200 to any other).
    let url = format!(
        "{}&lock_method=PUT&unlock_method=PATCH",
        target(srv.url(), "free")
    );
    assert!(open(&url).await.unwrap().list().await.unwrap().is_empty());
    let sent = tflock_sent(srv.requests());
    let methods: Vec<&str> = sent[sent.len() - 2..]
        .iter()
        .map(|r| r.method.as_str())
        .collect();
    assert_eq!(methods, ["PUT", "PATCH"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_request_that_would_write_the_state_is_never_sent() {
    let srv = ReferenceServer::start(true);
    let state = format!("{}/state/prod", srv.url());
    for (setting, value) in [("lock_method", "POST"), ("unlock_method", "POST")] {
        let t = Target::parse(&target(srv.url(), "prod"))
            .unwrap()
            .with("address", Some(state.clone()))
            .with(setting, Some(value));
        let Err(e) = tflock_http::open(&t, &ConnectOptions::default()).await else {
            panic!("{setting}={value} on the state address was accepted");
        };
        assert_eq!(e.kind(), Kind::Usage);
        assert!(e.to_string().contains("how the state is written"), "{e}");
    }
    // The same method is fine once update_method says the state is written otherwise.
    let t = Target::parse(&target(srv.url(), "prod"))
        .unwrap()
        .with("address", Some(state))
        .with("lock_method", Some("POST"))
        .with("update_method", Some("PUT"));
    assert!(tflock_http::open(&t, &ConnectOptions::default())
        .await
        .is_ok());
    assert!(srv.requests().is_empty());
}

/// TLS settings against Azurite's HTTPS endpoint (an http-backend server it is not: it
/// answers 400, which proves the TLS handshake went through).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_ca_and_skip_verification_are_honoured() {
    let Some(https) = require_env("TFLOCK_TEST_AZURITE_HTTPS", "Azurite over HTTPS") else {
        return;
    };
    let Some(ca_file) = require_env("TFLOCK_TEST_AZURITE_CA", "Azurite's test CA") else {
        return;
    };
    let ca = std::fs::read_to_string(&ca_file).unwrap();
    let url = format!("{https}/tflockacct/x/lock?unlock_address={https}/tflockacct/x/lock");
    let list = |t: Target| async move {
        tflock_http::open(&t, &ConnectOptions::default())
            .await
            .unwrap()
            .list()
            .await
            .unwrap_err()
    };
    let untrusted = list(Target::parse(&url).unwrap()).await;
    assert_eq!(untrusted.kind(), Kind::Unreachable, "{untrusted}");
    assert!(
        untrusted.to_string().contains("client_ca_certificate_pem"),
        "{untrusted}"
    );
    let with_ca = list(
        Target::parse(&url)
            .unwrap()
            .with("client_ca_certificate_pem", Some(ca)),
    )
    .await;
    assert!(with_ca.to_string().contains("HTTP 400"), "{with_ca}");
    let skipped = list(Target::parse(&format!("{url}&skip_cert_verification=true")).unwrap()).await;
    assert!(skipped.to_string().contains("HTTP 400"), "{skipped}");
    let t = Target::parse(&url)
        .unwrap()
        .with("client_ca_certificate_pem", Some("not a pem"));
    let Err(e) = tflock_http::open(&t, &ConnectOptions::default()).await else {
        panic!("a bad CA was accepted")
    };
    assert_eq!(e.kind(), Kind::Usage);
    let t = Target::parse(&url)
        .unwrap()
        .with("client_certificate_pem", Some("x"));
    let Err(e) = tflock_http::open(&t, &ConnectOptions::default()).await else {
        panic!("mutual TLS settings were ignored")
    };
    assert!(e.to_string().contains("not supported"), "{e}");
}
