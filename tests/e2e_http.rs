//! Real terraform with the http backend, killed with -9 while it holds the lock:
//! 1. against the GitLab fake with GitLab's documented settings (token in
//!    TF_HTTP_PASSWORD): tflock, run in the working directory, lists the lock under the ID
//!    terraform prints after `already locked: ID=`, refuses a wrong ID (exit 3: no such
//!    lock, nothing sent), changes nothing on --dry-run, breaks it with
//!    `DELETE .../lock?ID=`, and terraform plans again; the state is untouched and the
//!    token is printed nowhere;
//! 2. against Terraform's reference http server with the backend's default LOCK/UNLOCK:
//!    the holder's LockInfo is listed and the holder's own unlock frees it.

mod common;
use common::*;
use tflock_http::testing::{Access, GitLabFake, ReferenceServer};

const TOKEN: &str = "glpat-e2e-secret-token-4242";

/// The holder's ID in terraform's error: `HTTP remote state already locked: ID=<id>`
/// (terraform up to 1.14 wraps it onto the next line; its Lock Info block below is the
/// refused run's own).
fn holder_id(out: &str) -> Option<String> {
    let at = out.find("already locked")?;
    let rest = &out[at..];
    let id = &rest[rest.find("ID=")? + 3..];
    Some(id.split_whitespace().next()?.to_string())
}

fn gitlab_block(base: &str, project: u64) -> String {
    let address = format!("{base}/api/v4/projects/{project}/terraform/state/prod");
    format!(
        r#"  backend "http" {{
    address        = "{address}"
    lock_address   = "{address}/lock"
    unlock_address = "{address}/lock"
    lock_method    = "POST"
    unlock_method  = "DELETE"
    username       = "alice"
    retry_max      = 0
  }}"#
    )
}

#[test]
fn gitlab_state_lock_killed_then_broken_by_id() {
    let Some(()) = require_terraform() else {
        return;
    };
    let gitlab = GitLabFake::start();
    gitlab.add_user("alice", false);
    gitlab.add_token("alice", TOKEN, &["api"]);
    let project = gitlab.add_project("infra/app");
    gitlab.add_member("infra/app", "alice", Access::Maintainer);

    let mut wd = Workdir::new(&gitlab_block(gitlab.url(), project));
    wd.env("TF_HTTP_PASSWORD", TOKEN);
    wd.init();
    wd.apply();
    wd.start_holding_apply().kill9();
    let (ok, out) = wd.plan();
    assert!(!ok, "plan must fail on the stale lock:\n{out}");
    assert!(out.contains("Error acquiring the state lock"), "{out}");
    let id = holder_id(&out).expect("terraform printed the holder's ID");
    let held = gitlab.lock("infra/app", "prod").expect("a lock in GitLab");
    assert_eq!(held.id, id);
    assert_ne!(
        lock_id_in(&out).as_deref(),
        Some(id.as_str()),
        "terraform 1.11's Lock Info block is the refused run's own"
    );
    let state_before = gitlab.fingerprint("infra/app");

    // From the working directory, no -t: the backend block becomes a gitlab:// target.
    let out = wd.tflock(&["list", "--json"]);
    assert_eq!(code(&out), 0, "{}", combined(&out));
    let locks: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(locks.len(), 1, "{locks:#?}");
    let lock = &locks[0];
    assert_eq!(lock["backend"], "gitlab");
    assert_eq!(lock["id"], id.as_str());
    assert_eq!(lock["who"], "alice");
    assert_eq!(
        lock["target"],
        format!(
            "gitlab://{}/{project}?state=prod&scheme=http",
            gitlab.url().trim_start_matches("http://")
        )
        .as_str()
    );
    let table = wd.tflock(&["list"]);
    assert_eq!(code(&table), 0, "{}", combined(&table));
    assert!(String::from_utf8_lossy(&table.stdout).contains(&id));
    let inspect = wd.tflock(&["inspect", &id]);
    assert_eq!(code(&inspect), 0, "{}", combined(&inspect));
    assert!(combined(&inspect).contains(&format!("tflock break --id {id}")));

    // A wrong ID names no lock: exit 3 (no such lock), and no DELETE is ever sent.
    gitlab.clear_requests();
    let wrong = break_unknown_id(&wd);
    assert_eq!(code(&wrong), 3, "{}", combined(&wrong));
    assert!(gitlab.requests().iter().all(|r| r.method != "DELETE"));
    let dry = wd.tflock(&["break", "--id", &id, "--dry-run"]);
    assert_eq!(code(&dry), 0, "{}", combined(&dry));
    assert_eq!(
        gitlab.lock("infra/app", "prod").map(|l| l.id).as_deref(),
        Some(id.as_str())
    );
    let (ok, _) = wd.plan();
    assert!(!ok, "still locked after the dry run");

    gitlab.clear_requests();
    let broke = wd.tflock(&["break", "--id", &id, "--yes"]);
    assert_eq!(code(&broke), 0, "{}", combined(&broke));
    assert_eq!(gitlab.lock("infra/app", "prod"), None);
    let deletes: Vec<_> = gitlab
        .requests()
        .into_iter()
        .filter(|r| r.method == "DELETE")
        .collect();
    assert_eq!(deletes.len(), 1, "{deletes:#?}");
    assert_eq!(deletes[0].query_param("ID").as_deref(), Some(id.as_str()));
    assert_eq!(
        gitlab.fingerprint("infra/app"),
        state_before,
        "the state was modified"
    );

    let (ok, out) = wd.plan();
    assert!(ok, "plan after the break:\n{out}");
    for o in [
        &out,
        &combined(&table),
        &combined(&inspect),
        &combined(&broke),
        &combined(&wrong),
    ] {
        assert!(!o.contains(TOKEN), "the token was printed:\n{o}");
    }
    let audit = std::fs::read_to_string(wd.file("audit.jsonl")).unwrap_or_default();
    assert!(audit.contains(&id) && !audit.contains(TOKEN), "{audit}");
}

#[test]
fn http_backend_lock_killed_then_broken_with_the_holders_unlock() {
    let Some(()) = require_terraform() else {
        return;
    };
    let server = ReferenceServer::start(true);
    let address = format!("{}/state/prod", server.url());
    let wd = Workdir::new(&format!(
        r#"  backend "http" {{
    address        = "{address}"
    lock_address   = "{address}"
    unlock_address = "{address}"
    retry_max      = 0
  }}"#
    ));
    wd.init();
    wd.apply();
    wd.start_holding_apply().kill9();
    let (ok, out) = wd.plan();
    assert!(!ok, "{out}");
    let id = holder_id(&out).expect("terraform printed the holder's ID");
    let held = server.lock("prod").expect("a lock on the server");

    let locks = wd.tflock_list_json(&[]);
    assert_eq!(locks.len(), 1, "{locks:#?}");
    assert_eq!(locks[0]["backend"], "http");
    assert_eq!(locks[0]["id"], id.as_str());
    assert_eq!(locks[0]["operation"], "OperationTypeApply");
    assert_eq!(locks[0]["path"], address.as_str());
    let wrong = wd.tflock(&["break", "--id", "not-the-id", "--yes"]);
    assert_eq!(code(&wrong), 3, "{}", combined(&wrong));
    let broke = wd.tflock(&["break", "--id", &id, "--yes"]);
    assert_eq!(code(&broke), 0, "{}", combined(&broke));
    assert_eq!(server.lock("prod"), None);
    let unlock = server
        .requests()
        .into_iter()
        .rfind(|r| r.method == "UNLOCK")
        .expect("an unlock");
    assert_eq!(String::from_utf8_lossy(&unlock.body), held);
    let (ok, out) = wd.plan();
    assert!(ok, "plan after the break:\n{out}");
}
