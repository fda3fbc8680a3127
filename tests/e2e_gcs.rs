//! Real terraform takes a gcs lock in fake-gcs-server (`TFLOCK_TEST_GCS`) and is killed
//! with -9; tflock lists it under the generation terraform prints as the lock ID, refuses a
//! wrong one, changes nothing on --dry-run, breaks it, and never touches the state object.

mod common;
use common::gcs::*;
use common::*;

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
    assert_eq!(lock["state"], format!("gs://{bucket}/{state}").as_str());
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
