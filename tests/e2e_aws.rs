//! Real terraform with the s3 backend against moto, in its three locking modes
//! (`dynamodb_table` only, `use_lockfile` only, both). An apply killed with kill -9 leaves
//! a stale lock; tflock lists it with the ID terraform printed, refuses a wrong ID, changes
//! nothing on --dry-run, breaks it (both halves in migration mode), and terraform plan
//! works again. State objects and digest rows stay byte-for-byte the same.
//!
//! Buckets and tables are created and read with plain HTTP (curl): tests/common/aws.rs.

mod common;
use common::aws::*;
use common::*;
use std::process::Command;

/// The whole round trip for one mode. `targets` are what the user passes to `-t`.
fn round_trip(endpoint: &str, dynamodb_table: bool, use_lockfile: bool, workspace: Option<&str>) {
    let moto = Moto::new(endpoint, dynamodb_table);
    let mut wd = Workdir::new(&moto.backend_block(use_lockfile));
    wd.env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    // Migration mode finds the endpoint the AWS way (environment), the others by ?endpoint=.
    let suffix = if dynamodb_table && use_lockfile {
        wd.env("AWS_ENDPOINT_URL", endpoint);
        String::new()
    } else {
        format!("?endpoint={endpoint}")
    };
    let mut targets = Vec::new();
    if let Some(t) = &moto.table {
        targets.push(format!("dynamodb://{t}{suffix}"));
    }
    if use_lockfile {
        targets.push(format!("s3://{}{suffix}", moto.bucket));
    }
    let targets: Vec<&str> = targets.iter().map(String::as_str).collect();
    let with_targets = |args: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        for t in &targets {
            v.push("-t".into());
            v.push(t.to_string());
        }
        v
    };
    let run = |args: &[&str]| {
        let v = with_targets(args);
        let v: Vec<&str> = v.iter().map(String::as_str).collect();
        wd.tflock(&v)
    };

    wd.init();
    let state_key = match workspace {
        Some(ws) => {
            wd.terraform_ok(&["workspace", "new", "-no-color", ws]);
            format!("env:/{ws}/app/terraform.tfstate")
        }
        None => "app/terraform.tfstate".to_string(),
    };
    wd.apply();
    assert!(
        wd.tflock_list_json(&targets).is_empty(),
        "no lock after a complete apply"
    );

    let apply = wd.start_holding_apply();
    apply.kill9();
    let (ok, out) = wd.plan();
    assert!(!ok, "plan must fail on the stale lock:\n{out}");
    assert!(out.contains("Error acquiring the state lock"), "{out}");
    let id = lock_id_in(&out).expect("terraform printed the lock ID");
    let before = moto.untouchables();
    assert!(before.contains(&format!("object {state_key} ")), "{before}");
    // Real bytes were compared (a state with its lineage), not error pages.
    assert!(before.contains("lineage"), "{before}");
    if dynamodb_table {
        assert!(
            before.contains(&format!("{}/{state_key}-md5", moto.bucket)),
            "{before}"
        );
    }

    let locks = wd.tflock_list_json(&targets);
    assert_eq!(locks.len(), 1, "{locks:#?}");
    let lock = &locks[0];
    assert_eq!(lock["id"], id.as_str(), "{lock:#?}");
    assert_eq!(
        lock["path"],
        format!("{}/{state_key}", moto.bucket).as_str()
    );
    assert_eq!(lock["workspace"], workspace.unwrap_or("default"));
    assert_eq!(lock["operation"], "OperationTypeApply");
    assert!(lock["info_error"].is_null(), "{lock:#?}");
    let locations: Vec<&str> = lock["locations"]
        .as_array()
        .expect("locations")
        .iter()
        .map(|l| l["location"].as_str().unwrap())
        .collect();
    let mut want = Vec::new();
    if use_lockfile {
        want.push(format!("s3://{}/{state_key}.tflock", moto.bucket));
    }
    if let Some(t) = &moto.table {
        want.push(format!("dynamodb://{t}/{}/{state_key}", moto.bucket));
    }
    assert_eq!(locations, want, "{lock:#?}");

    let wrong = run(&[
        "break",
        "--id",
        "00000000-0000-0000-0000-000000000000",
        "--yes",
    ]);
    assert_eq!(code(&wrong), 3, "{}", combined(&wrong));

    let dry = run(&["break", "--id", &id, "--dry-run"]);
    assert_eq!(code(&dry), 0, "{}", combined(&dry));
    assert!(combined(&dry).contains("Dry run"), "{}", combined(&dry));
    assert_eq!(
        wd.tflock_list_json(&targets).len(),
        1,
        "dry run removed the lock"
    );
    assert_eq!(moto.lock_rows(), usize::from(dynamodb_table));
    assert_eq!(moto.lockfile_exists(&state_key), use_lockfile);

    let broke = run(&["break", "--id", &id, "--yes"]);
    assert_eq!(code(&broke), 0, "{}", combined(&broke));
    assert_eq!(moto.lock_rows(), 0);
    assert!(!moto.lockfile_exists(&state_key));
    assert!(wd.tflock_list_json(&targets).is_empty());
    assert_eq!(
        moto.untouchables(),
        before,
        "tflock changed state or digest"
    );

    // The same break again: the lock is gone, nothing matches.
    let again = run(&["break", "--id", &id, "--yes"]);
    assert_eq!(code(&again), 3, "{}", combined(&again));

    let (ok, out) = wd.plan();
    assert!(ok, "plan after the break:\n{out}");
    assert_eq!(moto.untouchables(), before, "plan changed state or digest");
}

#[test]
fn s3_backend_dynamodb_table_only() {
    let (Some(()), Some(endpoint)) = (require_terraform(), moto()) else {
        return;
    };
    round_trip(&endpoint, true, false, Some("dev"));
}

#[test]
fn s3_backend_lockfile_only() {
    let (Some(()), Some(endpoint)) = (require_terraform(), moto()) else {
        return;
    };
    round_trip(&endpoint, false, true, None);
}

#[test]
fn s3_backend_migration_mode_both_halves() {
    let (Some(()), Some(endpoint)) = (require_terraform(), moto()) else {
        return;
    };
    round_trip(&endpoint, true, true, None);
}

/// Without an endpoint or a region, tflock says how to set one instead of guessing.
#[test]
fn no_region_is_a_clear_usage_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_tflock"))
        .args(["list", "-t", "s3://some-bucket"])
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_ENDPOINT_URL_S3")
        .env("AWS_CONFIG_FILE", "/nonexistent/tflock-aws-config")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/tflock-aws-credentials",
        )
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap();
    let text = combined(&out);
    assert_eq!(code(&out), 2, "{text}");
    assert!(
        text.contains("s3://some-bucket: no AWS region configured"),
        "{text}"
    );
    assert!(
        text.contains("AWS_REGION") && text.contains("?region="),
        "{text}"
    );
}
