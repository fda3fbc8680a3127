//! Real terraform takes a gcs lock in fake-gcs-server (`TFLOCK_TEST_GCS`) and is killed
//! with -9; tflock lists it under the generation terraform prints as the lock ID, refuses a
//! wrong one, changes nothing on --dry-run, breaks it, and never touches the state object.

mod common;
use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// The emulator's base URL, or `None` (skip) when it is not running. Under scripts/test
/// (TFLOCK_REQUIRE_EMULATORS=1) a missing emulator fails. (The root package does not
/// enable tflock-core's testkit, so this is the same rule as `testkit::require_env`.)
fn require_gcs() -> Option<String> {
    match std::env::var("TFLOCK_TEST_GCS") {
        Ok(v) if !v.is_empty() => Some(v.trim_end_matches('/').to_string()),
        _ => {
            if std::env::var("TFLOCK_REQUIRE_EMULATORS").as_deref() == Ok("1") {
                panic!("TFLOCK_TEST_GCS is not set but TFLOCK_REQUIRE_EMULATORS=1: fake-gcs-server is required (run scripts/test)");
            }
            eprintln!("skipping: TFLOCK_TEST_GCS is not set (fake-gcs-server not running; scripts/test starts it)");
            None
        }
    }
}

/// One plain HTTP/1.1 request to the emulator (no client library in the root package's
/// dev-dependencies): `(status, body)`.
fn http(base: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    let host = base.trim_start_matches("http://");
    let mut conn = TcpStream::connect(host).expect("connect to fake-gcs-server");
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    conn.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let body = if head.to_lowercase().contains("transfer-encoding: chunked") {
        dechunk(body)
    } else {
        body.to_string()
    };
    (status, body)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

fn create_bucket(base: &str, name: &str) {
    let (status, body) = http(
        base,
        "POST",
        "/storage/v1/b?project=tflock-test",
        &format!(r#"{{"name":"{name}"}}"#),
    );
    assert_eq!(status, 200, "create bucket: {body}");
}

/// The object's generation, or `None` if it does not exist.
fn generation(base: &str, bucket: &str, object: &str) -> Option<String> {
    let (status, body) = http(
        base,
        "GET",
        &format!("/storage/v1/b/{bucket}/o/{}", object.replace('/', "%2F")),
        "",
    );
    if status == 404 {
        return None;
    }
    assert_eq!(status, 200, "get {object}: {body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("object JSON");
    Some(match &v["generation"] {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

fn unique_bucket(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("tflock-e2e-{name}-{}-{nanos}", std::process::id())
}

fn gcs_workdir(base: &str, bucket: &str, prefix: &str) -> Workdir {
    Workdir::new(&format!(
        r#"  backend "gcs" {{
    bucket                  = "{bucket}"
    prefix                  = "{prefix}"
    storage_custom_endpoint = "{base}/storage/v1/"
    access_token            = "dummy"
  }}"#
    ))
}

#[test]
fn gcs_lock_killed_then_broken_by_generation() {
    let Some(()) = require_terraform() else {
        return;
    };
    let Some(base) = require_gcs() else { return };
    let bucket = unique_bucket("kill");
    create_bucket(&base, &bucket);
    let wd = gcs_workdir(&base, &bucket, "team/app");
    wd.init();
    wd.apply();
    let state = "team/app/default.tfstate";
    let lock_object = "team/app/default.tflock";
    assert!(
        generation(&base, &bucket, state).is_some(),
        "apply wrote no state"
    );

    wd.start_holding_apply().kill9();
    let (ok, out) = wd.plan();
    assert!(!ok, "plan must fail on the stale lock:\n{out}");
    assert!(out.contains("Error acquiring the state lock"), "{out}");
    let id = lock_id_in(&out).expect("terraform printed the lock ID");
    assert_eq!(
        generation(&base, &bucket, lock_object).as_deref(),
        Some(id.as_str()),
        "terraform's lock ID is the lock object's generation"
    );
    let state_gen = generation(&base, &bucket, state);

    let target = format!("gs://{bucket}/team/app?endpoint={base}");
    let locks = wd.tflock_list_json(&[&target]);
    assert_eq!(locks.len(), 1, "{locks:#?}");
    let lock = &locks[0];
    assert_eq!(lock["backend"], "gcs");
    assert_eq!(lock["id"], id.as_str());
    assert_eq!(lock["workspace"], "default");
    assert_eq!(lock["operation"], "OperationTypeApply");
    assert_eq!(
        lock["location"],
        format!("gs://{bucket}/{lock_object}").as_str()
    );
    assert_eq!(
        lock["path"],
        format!("gs://{bucket}/{lock_object}").as_str()
    );
    assert_eq!(
        lock["details"]["state_object"],
        format!("gs://{bucket}/{state}").as_str()
    );
    let uuid = lock["info"]["ID"]
        .as_str()
        .expect("LockInfo ID")
        .to_string();
    assert_eq!(lock["aliases"], serde_json::json!([uuid]));

    // STORAGE_EMULATOR_HOST instead of ?endpoint= finds the same lock.
    let mut via_env = Workdir::new("");
    via_env.env("STORAGE_EMULATOR_HOST", &base);
    let env_locks = via_env.tflock_list_json(&[&format!("gs://{bucket}/team/app")]);
    assert_eq!(env_locks.len(), 1, "{env_locks:#?}");
    assert_eq!(env_locks[0]["id"], id.as_str());

    // A wrong generation matches nothing: exit 3, nothing removed.
    let wrong = wd.tflock(&["break", "--id", "1", "-t", &target, "--yes"]);
    assert_eq!(code(&wrong), 3, "{}", combined(&wrong));
    // The body's ID is an alias; a dry run by it changes nothing.
    let dry = wd.tflock(&["break", "--id", &uuid, "-t", &target, "--dry-run"]);
    assert_eq!(code(&dry), 0, "{}", combined(&dry));
    let dry = wd.tflock(&["break", "--id", &id, "-t", &target, "--dry-run"]);
    assert_eq!(code(&dry), 0, "{}", combined(&dry));
    assert_eq!(
        generation(&base, &bucket, lock_object).as_deref(),
        Some(id.as_str()),
        "dry run changed the lock"
    );
    let (ok, _) = wd.plan();
    assert!(!ok, "still locked after the dry run");

    let broke = wd.tflock(&["break", "--id", &id, "-t", &target, "--yes"]);
    assert_eq!(code(&broke), 0, "{}", combined(&broke));
    assert_eq!(generation(&base, &bucket, lock_object), None);
    assert!(wd.tflock_list_json(&[&target]).is_empty());
    let (ok, out) = wd.plan();
    assert!(ok, "plan after the break:\n{out}");
    assert_eq!(
        generation(&base, &bucket, state),
        state_gen,
        "the state object was modified"
    );
}

#[test]
fn gcs_workspace_lock_is_listed_with_its_workspace() {
    let Some(()) = require_terraform() else {
        return;
    };
    let Some(base) = require_gcs() else { return };
    let bucket = unique_bucket("ws");
    create_bucket(&base, &bucket);
    let wd = gcs_workdir(&base, &bucket, "app");
    wd.init();
    wd.terraform_ok(&["workspace", "new", "-no-color", "dev"]);
    wd.apply();
    wd.start_holding_apply().kill9();
    let (ok, out) = wd.plan();
    assert!(!ok, "{out}");
    let id = lock_id_in(&out).expect("terraform printed the lock ID");
    let state_gen = generation(&base, &bucket, "app/dev.tfstate");
    assert!(state_gen.is_some());

    // The whole bucket as the target: the lock is found under its prefix.
    let target = format!("gs://{bucket}?endpoint={base}");
    let locks = wd.tflock_list_json(&[&target]);
    assert_eq!(locks.len(), 1, "{locks:#?}");
    assert_eq!(locks[0]["id"], id.as_str());
    assert_eq!(locks[0]["workspace"], "dev");
    assert_eq!(
        locks[0]["location"],
        format!("gs://{bucket}/app/dev.tflock").as_str()
    );
    let broke = wd.tflock(&["break", "--id", &id, "-t", &target, "--yes"]);
    assert_eq!(code(&broke), 0, "{}", combined(&broke));
    let (ok, out) = wd.plan();
    assert!(ok, "{out}");
    assert_eq!(generation(&base, &bucket, "app/dev.tfstate"), state_gen);
}
