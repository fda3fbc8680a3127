//! Real terraform with the s3 backend (`dynamodb_table`) on moto: the state object is
//! overwritten behind Terraform's back, so `terraform plan` fails with "state data in S3
//! does not have the expected content"; `tflock doctor` in the working directory finds
//! it (exit 5) and names the version Terraform last wrote; `--from-error` with the pasted
//! plan output goes straight to it; `--fix` without a terminal refuses (exit 4);
//! `--fix --yes` repairs it; `terraform plan` works again; no other row of the table
//! changed, and the fix is in the audit log.
//!
//! Buckets and tables are created and read with plain HTTP (curl): tests/common/aws.rs.

mod common;
use common::aws::*;
use common::*;
use md5::{Digest as _, Md5};

fn md5_hex(bytes: &[u8]) -> String {
    Md5::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Every row of the table, all attributes, sorted.
fn rows(moto: &Moto) -> Vec<String> {
    let t = moto.table.as_ref().unwrap();
    let scan = dynamodb(
        &moto.endpoint,
        "Scan",
        &format!(r#"{{"TableName":"{t}","ConsistentRead":true}}"#),
    );
    let mut rows: Vec<String> = scan["Items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.to_string())
        .collect();
    rows.sort();
    rows
}

fn digest_of(moto: &Moto, key: &str) -> Option<String> {
    let t = moto.table.as_ref().unwrap();
    let out = dynamodb(
        &moto.endpoint,
        "GetItem",
        &format!(
            r#"{{"TableName":"{t}","Key":{{"LockID":{{"S":"{}/{key}-md5"}}}},"ConsistentRead":true}}"#,
            moto.bucket
        ),
    );
    out["Item"]["Digest"]["S"].as_str().map(str::to_string)
}

fn object(moto: &Moto, key: &str) -> (String, Vec<u8>) {
    curl(&[
        "-H",
        S3_AUTH,
        &format!("{}/{}/{key}", moto.endpoint, moto.bucket),
    ])
}

fn version_of(head: &str) -> String {
    head.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("x-amz-version-id")
                .then(|| v.trim().to_string())
        })
        .expect("a version id (versioning is on)")
}

#[test]
fn digest_mismatch_found_fixed_and_plan_works_again() {
    let (Some(()), Some(endpoint)) = (require_terraform(), moto()) else {
        return;
    };
    let moto = Moto::new(&endpoint, true);
    let (head, _) = curl(&[
        "-H",
        S3_AUTH,
        "-X",
        "PUT",
        "-H",
        "Content-Type: application/xml",
        "--data-binary",
        r#"<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Status>Enabled</Status></VersioningConfiguration>"#,
        &format!("{endpoint}/{}?versioning=", moto.bucket),
    ]);
    assert!(head.starts_with("HTTP/1.1 200"), "versioning: {head}");
    let mut wd = Workdir::new(&moto.backend_block(false));
    wd.env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    wd.init();
    // Another workspace, so the table holds another digest row that must not change.
    wd.terraform_ok(&["workspace", "new", "-no-color", "dev"]);
    wd.apply();
    wd.terraform_ok(&["workspace", "select", "-no-color", "default"]);
    wd.apply();
    let key = "app/terraform.tfstate";
    let (head, written) = object(&moto, key);
    let terraform_version = version_of(&head);
    assert_eq!(
        digest_of(&moto, key).as_deref(),
        Some(md5_hex(&written).as_str())
    );
    // A lock row of another state, and a row no tool knows: untouched too.
    let t = moto.table.clone().unwrap();
    dynamodb(
        &endpoint,
        "PutItem",
        &format!(
            r#"{{"TableName":"{t}","Item":{{"LockID":{{"S":"{}/elsewhere/terraform.tfstate"}},"Info":{{"S":"{{\"ID\":\"x\"}}"}}}}}}"#,
            moto.bucket
        ),
    );
    dynamodb(
        &endpoint,
        "PutItem",
        &format!(
            r#"{{"TableName":"{t}","Item":{{"LockID":{{"S":"notes"}},"Owner":{{"S":"platform"}}}}}}"#
        ),
    );

    // Behind Terraform's back: the state is edited and PUT (serial bumped, an output
    // added), without a digest update.
    let text = String::from_utf8(written.clone()).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let serial = v["serial"].as_u64().unwrap();
    v["serial"] = (serial + 1).into();
    v["outputs"]["hand_edit"] = serde_json::json!({"value": "x", "type": "string"});
    let edited = serde_json::to_string_pretty(&v).unwrap() + "\n";
    let (head, _) = curl(&[
        "-H",
        S3_AUTH,
        "-X",
        "PUT",
        "-H",
        "Content-Type: application/json",
        "--data-binary",
        &edited,
        &format!("{endpoint}/{}/{key}", moto.bucket),
    ]);
    assert!(head.starts_with("HTTP/1.1 200"), "put: {head}");

    let (ok, plan) = wd.plan();
    assert!(!ok, "plan must fail on the digest:\n{plan}");
    assert!(
        plan.contains("state data in S3 does not have the expected content"),
        "{plan}"
    );
    std::fs::write(wd.file("plan-error.txt"), &plan).unwrap();
    let before = rows(&moto);

    let out = wd.tflock(&["doctor"]);
    let text = combined(&out);
    assert_eq!(code(&out), 5, "{text}");
    for want in [
        "Problem 1 of 1: digest-mismatch (workspace default)",
        &format!("{}/{key}", moto.bucket),
        "stored digest:",
        &md5_hex(&written),
        &md5_hex(edited.as_bytes()),
        &terraform_version,
        &format!("serial {}", serial + 1),
        "newer state",
        "tflock doctor --fix would: set Digest",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }

    let out = wd.tflock(&["doctor", "--from-error", "plan-error.txt", "--json"]);
    assert_eq!(code(&out), 5, "{}", combined(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["state"], format!("{}/{key}", moto.bucket).as_str());
    assert_eq!(
        report["problems"].as_array().unwrap().len(),
        1,
        "{report:#}"
    );
    assert_eq!(report["problems"][0]["kind"], "digest-mismatch");

    let out = wd.tflock(&["doctor", "--fix"]);
    assert_eq!(code(&out), 4, "{}", combined(&out));
    assert_eq!(rows(&moto), before, "a refused fix changed the table");

    let out = wd.tflock(&["doctor", "--fix", "--yes"]);
    let text = combined(&out);
    assert_eq!(code(&out), 0, "{text}");
    assert!(text.contains("fixed: set Digest of"), "{text}");
    assert_eq!(
        digest_of(&moto, key).as_deref(),
        Some(md5_hex(edited.as_bytes()).as_str())
    );
    let digest_row = format!("{}/{key}-md5", moto.bucket);
    let others = |rows: Vec<String>| -> Vec<String> {
        rows.into_iter()
            .filter(|r| !r.contains(&format!("\"{digest_row}\"")))
            .collect()
    };
    assert_eq!(
        others(rows(&moto)),
        others(before.clone()),
        "another row changed"
    );
    assert_eq!(rows(&moto).len(), before.len());

    let audit = std::fs::read_to_string(wd.file("audit.jsonl")).unwrap();
    let records: Vec<serde_json::Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 2, "{audit}");
    assert_eq!(records[0]["event"], "intent");
    assert_eq!(records[1]["outcome"], "applied");
    assert_eq!(records[1]["action"], "fix");

    let (ok, plan) = wd.plan();
    assert!(ok, "plan after the fix:\n{plan}");
    let out = wd.tflock(&["doctor"]);
    assert_eq!(code(&out), 0, "{}", combined(&out));
    assert!(
        combined(&out).contains("No problems found"),
        "{}",
        combined(&out)
    );
}

/// The lines of an advice that are tflock commands, as printed (`    tflock ...`).
fn tflock_commands(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .map(str::trim)
        .filter(|l| l.starts_with("tflock "))
        .map(shlex_split)
        .collect()
}

/// The printed commands quote for a POSIX shell; these tests only meet plain words and
/// single quotes.
fn shlex_split(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in line.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                any = true;
            }
            ' ' if !quoted => {
                if any {
                    words.push(std::mem::take(&mut word));
                    any = false;
                }
            }
            c => {
                word.push(c);
                any = true;
            }
        }
    }
    if any {
        words.push(word);
    }
    words
}

fn backend_env(wd: &mut Workdir) {
    wd.env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true");
}

/// A first apply killed with kill -9 (use_lockfile) leaves a lockfile and no state:
/// `tflock doctor` says so (exit 5) and prints the break command, which works as printed;
/// then terraform plan works.
#[test]
fn killed_first_apply_leaves_an_orphan_lockfile() {
    let (Some(()), Some(endpoint)) = (require_terraform(), moto()) else {
        return;
    };
    let moto = Moto::new(&endpoint, false);
    let mut wd = Workdir::new(&moto.backend_block(true));
    backend_env(&mut wd);
    wd.init();
    wd.start_holding_apply().kill9();
    let key = "app/terraform.tfstate";
    assert!(moto.lockfile_exists(key));
    let (ok, out) = wd.plan();
    assert!(
        !ok && out.contains("Error acquiring the state lock"),
        "{out}"
    );
    let id = lock_id_in(&out).unwrap();

    let out = wd.tflock(&["doctor"]);
    let text = combined(&out);
    assert_eq!(code(&out), 5, "{text}");
    assert!(text.contains("orphan-lockfile"), "{text}");
    assert!(text.contains(&format!("lock ID:       {id}")), "{text}");
    let commands = tflock_commands(&text);
    assert_eq!(commands.len(), 1, "{text}");
    assert_eq!(commands[0], ["tflock", "break", "--id", id.as_str()]);

    let mut args: Vec<&str> = commands[0][1..].iter().map(String::as_str).collect();
    args.push("--yes");
    let out = wd.tflock(&args);
    assert_eq!(code(&out), 0, "{}", combined(&out));
    let (ok, out) = wd.plan();
    assert!(ok, "plan after the break:\n{out}");
    let out = wd.tflock(&["doctor"]);
    assert_eq!(code(&out), 0, "{}", combined(&out));
}

/// Migration mode (use_lockfile and dynamodb_table): a killed apply leaves both halves;
/// with the DynamoDB row gone (a crash between the two deletes), the lockfile alone is
/// reported (exit 5) with the break command, which clears it.
#[test]
fn migration_mode_lock_in_one_half_only() {
    let (Some(()), Some(endpoint)) = (require_terraform(), moto()) else {
        return;
    };
    let moto = Moto::new(&endpoint, true);
    let mut wd = Workdir::new(&moto.backend_block(true));
    backend_env(&mut wd);
    wd.init();
    wd.apply();
    assert_eq!(code(&wd.tflock(&["doctor"])), 0);
    wd.start_holding_apply().kill9();
    let key = "app/terraform.tfstate";
    let t = moto.table.clone().unwrap();
    dynamodb(
        &endpoint,
        "DeleteItem",
        &format!(
            r#"{{"TableName":"{t}","Key":{{"LockID":{{"S":"{}/{key}"}}}}}}"#,
            moto.bucket
        ),
    );
    assert!(moto.lockfile_exists(key));
    assert_eq!(moto.lock_rows(), 0);

    let out = wd.tflock(&["doctor", "--json"]);
    assert_eq!(code(&out), 5, "{}", combined(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let p = &report["problems"][0];
    assert_eq!(p["kind"], "halves-disagree", "{report:#}");
    assert_eq!(p["workspace"], "default");
    assert!(
        p["summary"]
            .as_str()
            .unwrap()
            .contains("locked in the lockfile only"),
        "{p:#}"
    );
    let commands = tflock_commands(p["advice"].as_str().unwrap());
    assert_eq!(commands.len(), 1, "{p:#}");
    let mut args: Vec<&str> = commands[0][1..].iter().map(String::as_str).collect();
    args.push("--yes");
    let out = wd.tflock(&args);
    assert_eq!(code(&out), 0, "{}", combined(&out));
    assert!(!moto.lockfile_exists(key));
    let (ok, out) = wd.plan();
    assert!(ok, "plan after the break:\n{out}");
}
