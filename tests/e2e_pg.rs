//! Real terraform on the pg backend (PostgreSQL from scripts/emulators/postgres.sh). Its
//! lock is an advisory lock of its own session, so killing terraform frees it; what
//! leaves a lock behind is a terraform that is stopped or hung. Here an apply is frozen
//! with SIGSTOP: tflock, given no target, finds the lock in the working directory's
//! backend, shows the session (server pid, client), refuses nothing terraform's
//! force-unlock pretends to do, ends the session, and terraform plans again. A session
//! that is running a statement while holding the lock is listed as held and never ended.

mod common;
use common::pg::*;
use common::*;
use serde_json::Value;

fn signal(pid: u32, sig: i32) {
    // SAFETY: plain kill(2) on our own child.
    unsafe {
        libc::kill(pid as i32, sig);
    }
}

/// The one lock `tflock list --json` (discovered, no -t) shows.
fn only_lock(wd: &Workdir) -> Value {
    let locks = wd.tflock_list_json(&[]);
    assert_eq!(locks.len(), 1, "{locks:#?}");
    locks[0].clone()
}

#[test]
fn pg_lock_of_a_stopped_apply_is_found_and_broken() {
    let Some(()) = require_terraform() else {
        return;
    };
    let Some(pg) = require_pg() else { return };
    let conn_str = pg.database("stopped");
    let wd = pg_workdir(&conn_str);
    wd.init();
    wd.apply();
    assert!(
        pg.holders(&conn_str).is_empty(),
        "a finished apply left a lock"
    );

    let apply = wd.start_holding_apply();
    // Frozen: its connection, and so its lock, stay while it cannot do anything.
    signal(apply.pid(), libc::SIGSTOP);
    let holders = pg.holders(&conn_str);
    assert_eq!(holders.len(), 1, "{holders:?}");
    let (key, server_pid, started, state) = holders[0].clone();
    assert_eq!(state.as_deref(), Some("idle"));
    assert!(
        key > 0,
        "the lock of the default state's row, not the creation key"
    );

    let lock = only_lock(&wd);
    let id = format!("pg-{server_pid}-{started}-{key}");
    assert_eq!(lock["backend"], "pg");
    assert_eq!(lock["id"], id.as_str());
    assert_eq!(lock["workspace"], "default");
    assert_eq!(lock["current_workspace"], true);
    assert_eq!(lock["path"], "terraform_remote_state.states/default");
    assert_eq!(lock["held"], Value::Null, "an idle session proves nothing");
    assert_eq!(lock["status"], "active");
    assert_eq!(
        lock["operation"],
        Value::Null,
        "nothing of terraform's LockInfo is stored"
    );
    assert_eq!(lock["details"]["pid"], server_pid.to_string().as_str());
    assert_eq!(lock["details"]["role"], "tflock");
    let client = lock["details"]["client"]
        .as_str()
        .expect("client")
        .to_string();
    assert!(client.starts_with("127.0.0.1:"), "{client}");
    assert_eq!(
        lock["holder"],
        format!("pid {server_pid}, tflock@{client}").as_str()
    );
    let password = conn_str
        .split_once(':')
        .and_then(|(_, rest)| rest.split_once(':'))
        .and_then(|(_, rest)| rest.split_once('@'))
        .map(|(pw, _)| pw.to_string())
        .expect("a password in the conn_str");
    assert!(!lock.to_string().contains(&password), "{lock:#}");
    let table = wd.tflock(&["list"]);
    let text = combined(&table);
    assert!(!text.contains(&password), "{text}");
    assert!(text.contains(&format!("pid {server_pid}")), "{text}");
    assert!(text.contains(&id), "{text}");

    // terraform sees the lock; its own force-unlock reports success and does nothing.
    let (ok, out) = wd.plan();
    assert!(!ok, "{out}");
    assert!(
        out.contains("Workspace is already locked: default"),
        "{out}"
    );
    let fu = wd.terraform(&["force-unlock", "-force", "00000000-not-a-lock-id"]);
    assert!(
        combined(&fu).contains("successfully unlocked"),
        "{}",
        combined(&fu)
    );
    assert_eq!(pg.holders(&conn_str).len(), 1, "force-unlock released it?");
    let (ok, _) = wd.plan();
    assert!(!ok, "still locked after terraform force-unlock");

    // A terraform-style ID finds nothing, and says what pg IDs are.
    let wrong = wd.tflock(&[
        "break",
        "--id",
        "e844d74d-4436-fa25-3de6-763a4d019cb8",
        "--yes",
    ]);
    assert_eq!(code(&wrong), 3, "{}", combined(&wrong));
    assert!(
        combined(&wrong).contains("requester's own"),
        "{}",
        combined(&wrong)
    );
    let dry = wd.tflock(&["break", "--id", &id, "--dry-run"]);
    assert_eq!(code(&dry), 0, "{}", combined(&dry));
    assert_eq!(
        pg.holders(&conn_str).len(),
        1,
        "the dry run ended the session"
    );

    let broke = wd.tflock(&["break", "--id", &id, "--yes"]);
    let text = combined(&broke);
    assert_eq!(code(&broke), 0, "{text}");
    assert!(
        text.contains(&format!("ended session pid {server_pid}")),
        "{text}"
    );
    assert!(text.contains("WITHOUT a lock"), "{text}");
    assert!(pg.holders(&conn_str).is_empty());
    assert!(wd.tflock_list_json(&[]).is_empty());
    let (ok, out) = wd.plan();
    assert!(ok, "plan after the break:\n{out}");

    // The frozen terraform is ended for good (SIGKILL works on a stopped process).
    apply.kill9();
}

#[test]
fn pg_lock_of_a_busy_session_is_held_and_not_broken() {
    let Some(()) = require_terraform() else {
        return;
    };
    let Some(pg) = require_pg() else { return };
    let conn_str = pg.database("busy");
    let wd = pg_workdir(&conn_str);
    wd.init();
    wd.apply();

    // Another client holds the default state's lock as terraform does, and is running a
    // statement.
    let client = std::sync::Arc::new(pg.connect(&conn_str));
    let row = pg
        .rt
        .block_on(client.query_one(
            "SELECT pg_backend_pid(), pg_try_advisory_lock(id) FROM terraform_remote_state.states WHERE name = 'default'",
            &[],
        ))
        .unwrap();
    let (pid, locked): (i32, bool) = (row.get(0), row.get(1));
    assert!(locked);
    let cancel = client.cancel_token();
    let busy = client.clone();
    let sleeping = pg.rt.spawn(async move {
        let _ = busy.query("SELECT pg_sleep(30)", &[]).await;
    });
    pg.wait_state(&conn_str, pid, "active");

    let lock = only_lock(&wd);
    assert_eq!(lock["held"], true, "{lock:#}");
    assert_eq!(lock["status"], "held");
    assert_eq!(lock["details"]["session_state"], "active");
    let id = lock["id"].as_str().unwrap().to_string();
    let refused = wd.tflock(&["break", "--id", &id, "--yes"]);
    assert_eq!(code(&refused), 4, "{}", combined(&refused));
    assert!(
        combined(&refused).contains(&format!("pid {pid}")),
        "{}",
        combined(&refused)
    );
    assert_eq!(pg.holders(&conn_str).len(), 1, "the busy session was ended");
    let (ok, _) = wd.plan();
    assert!(!ok, "the lock must still be there");

    pg.rt
        .block_on(cancel.cancel_query(tokio_postgres::NoTls))
        .unwrap();
    let _ = pg.rt.block_on(sleeping);
}

#[test]
fn pg_creation_lock_of_a_first_apply_is_listed_and_broken() {
    let Some(()) = require_terraform() else {
        return;
    };
    let Some(pg) = require_pg() else { return };
    let conn_str = pg.database("creation");
    let wd = pg_workdir(&conn_str);
    wd.init();
    // No state row yet: terraform holds the database-wide creation key -1 for the whole
    // first apply.
    let apply = wd.start_holding_apply();
    signal(apply.pid(), libc::SIGSTOP);
    let holders = pg.holders(&conn_str);
    assert_eq!(holders.len(), 1, "{holders:?}");
    let (key, server_pid, started, _) = holders[0].clone();
    assert_eq!(key, -1);
    let lock = only_lock(&wd);
    let id = format!("pg-{server_pid}-{started}--1");
    assert_eq!(lock["id"], id.as_str());
    assert_eq!(lock["path"], "(workspace creation, key -1)");
    assert_eq!(lock["workspace"], Value::Null);
    assert_eq!(lock["status"], "unreadable", "which workspace is not known");
    let (ok, out) = wd.plan();
    assert!(!ok, "{out}");
    assert!(
        out.contains("Already locked for workspace creation: default"),
        "{out}"
    );

    let broke = wd.tflock(&["break", "--id", &id, "--yes"]);
    assert_eq!(code(&broke), 0, "{}", combined(&broke));
    assert!(pg.holders(&conn_str).is_empty());
    let (ok, out) = wd.plan();
    assert!(ok, "plan after the break:\n{out}");
    apply.kill9();
}
