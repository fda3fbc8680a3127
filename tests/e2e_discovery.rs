//! tflock run with no target in the working directory terraform used: it finds the backend
//! from `.terraform/terraform.tfstate` (bucket, key, table, lockfile, region, profile,
//! endpoints, access key) and lists the lock a `kill -9`ed apply left, in every workspace,
//! marking the current one; `break --stale --older-than 0s` frees it (nothing on
//! --dry-run), terraform plans again, and the audit log holds one record of it. A lock of
//! another state in the same bucket / table / container is stale too and never touched.
//!
//! Then a tflock.toml with targets on every emulator and one emulator stopped: the others
//! are listed, the stopped one is a warning, exit 1 (docs/exit-codes.md).

mod common;
use common::aws::*;
use common::azure::*;
use common::gcs::*;
use common::*;
use serde_json::Value;
use tflock_core::LockInfo;

/// The lock of another state beside ours: stale by any measure, never ours to break.
const NEIGHBOUR_ID: &str = "0badc0de-1111-2222-3333-444455556666";

fn neighbour_info(path: &str) -> String {
    format!(
        r#"{{"ID":"{NEIGHBOUR_ID}","Operation":"OperationTypeApply","Info":"","Who":"other-team@ci","Version":"1.11.4","Created":"2026-01-01T00:00:00Z","Path":"{path}"}}"#
    )
}

fn audit_records(wd: &Workdir) -> Vec<Value> {
    std::fs::read_to_string(wd.file("audit.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("audit line {l:?}: {e}")))
        .collect()
}

/// What a round trip reads straight from the emulator, never through tflock.
struct Backend<'a> {
    /// How many places hold our lock right now.
    halves: &'a dyn Fn() -> usize,
    /// How many places the lock has (2 in S3 migration mode).
    places: usize,
    /// Everything a break must leave as it was: state, digests, other metadata and the
    /// neighbour's lock.
    untouchables: &'a dyn Fn() -> String,
    /// Secrets of the backend block that must appear in no output and no audit record.
    secrets: &'a [&'a str],
}

fn assert_no_secret(secrets: &[&str], what: &str, text: &str) {
    for s in secrets {
        assert!(
            !text.contains(s),
            "a secret of the backend block is in {what}:\n{text}"
        );
    }
}

/// The acceptance round trip, from the working directory and with no `-t`: kill -9 an
/// apply, find the lock, dry run, break, plan, audit. Returns terraform's lock ID.
fn stale_lock_found_and_broken(wd: &Workdir, workspace: &str, b: Backend<'_>) -> String {
    let (id, _) = wd.kill_holding_apply();
    assert_eq!((b.halves)(), b.places, "the stale lock is in the backend");
    let before = (b.untouchables)();

    // No -t: the backend comes from the working directory. Only this backend config's
    // lock is listed, not the neighbour's.
    let locks = wd.tflock_list_json(&[]);
    assert_no_secret(b.secrets, "list --json", &format!("{locks:?}"));
    assert_eq!(locks.len(), 1, "{locks:#?}");
    let lock = &locks[0];
    assert_eq!(lock["id"], id.as_str(), "{lock:#?}");
    assert_eq!(lock["workspace"], workspace, "{lock:#?}");
    assert_eq!(lock["current_workspace"], true, "{lock:#?}");
    assert_eq!(lock["operation"], "OperationTypeApply", "{lock:#?}");
    assert!(lock["info_error"].is_null(), "{lock:#?}");
    assert_eq!(
        lock["locations"].as_array().map(Vec::len),
        Some(b.places),
        "{lock:#?}"
    );
    // Another current workspace (TF_WORKSPACE wins over .terraform/environment): the
    // lock is listed all the same, not marked current.
    let other = if workspace == "default" {
        "staging"
    } else {
        "default"
    };
    let out = wd.tflock_with_env(&["list", "--json"], &[("TF_WORKSPACE", other)]);
    assert_eq!(code(&out), 0, "{}", combined(&out));
    let seen: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(seen.len(), 1, "{seen:#?}");
    assert_eq!(seen[0]["workspace"], workspace, "{seen:#?}");
    assert_eq!(seen[0]["current_workspace"], false, "{seen:#?}");

    // For monitors: a stale lock is exit 5 with --exit-code.
    let monitor = wd.tflock(&["list", "--stale-after", "0s", "--exit-code"]);
    assert_eq!(code(&monitor), 5, "{}", combined(&monitor));
    assert_no_secret(b.secrets, "list", &combined(&monitor));
    let inspect = wd.tflock(&["inspect", &id]);
    assert_no_secret(b.secrets, "inspect", &combined(&inspect));

    let dry = wd.tflock(&[
        "break",
        "--stale",
        "--older-than",
        "0s",
        "--dry-run",
        "--yes",
    ]);
    let text = combined(&dry);
    assert_eq!(code(&dry), 0, "{text}");
    assert_no_secret(b.secrets, "break --dry-run", &text);
    assert!(
        text.contains("Dry run: would break 1 stale lock(s)"),
        "{text}"
    );
    assert_eq!((b.halves)(), b.places, "the dry run removed something");
    assert!(audit_records(wd).is_empty(), "a dry run is not audited");
    let (ok, _) = wd.plan();
    assert!(!ok, "still locked after the dry run");

    let broke = wd.tflock(&["break", "--stale", "--older-than", "0s", "--yes"]);
    let text = combined(&broke);
    assert_eq!(code(&broke), 0, "{text}");
    assert_no_secret(b.secrets, "break", &text);
    assert!(
        text.contains("broken 1, changed 0, refused 0, failed 0"),
        "{text}"
    );
    assert!(!text.contains(NEIGHBOUR_ID), "{text}");
    assert_eq!((b.halves)(), 0, "the lock is gone from the backend");
    assert!(wd.tflock_list_json(&[]).is_empty());
    let quiet = wd.tflock(&["list", "--stale-after", "0s", "--exit-code"]);
    assert_eq!(code(&quiet), 0, "{}", combined(&quiet));

    let (ok, out) = wd.plan();
    assert!(ok, "plan after the break:\n{out}");
    assert_eq!((b.untouchables)(), before, "something else was modified");

    let audit = audit_records(wd);
    assert_no_secret(
        b.secrets,
        "the audit log",
        &std::fs::read_to_string(wd.file("audit.jsonl")).unwrap_or_default(),
    );
    // One intent, then one outcome, per location of the lock.
    assert_eq!(audit.len(), 2 * b.places, "{audit:#?}");
    for pair in audit.chunks(2) {
        assert_eq!(pair[0]["event"], "intent", "{audit:#?}");
        assert_eq!(pair[1]["event"], "outcome", "{audit:#?}");
        assert_eq!(pair[0]["break_id"], pair[1]["break_id"], "{audit:#?}");
        assert_eq!(pair[1]["id"], id.as_str(), "{audit:#?}");
        assert_eq!(pair[1]["outcome"], "removed", "{audit:#?}");
        assert!(pair[0]["lock_info"].is_object(), "{audit:#?}");
    }
    id
}

/// A lockfile (and a DynamoDB lock row, when there is a table) of another state in the
/// same bucket: `other/terraform.tfstate`.
fn s3_neighbour(moto: &Moto) {
    let path = format!("{}/other/terraform.tfstate", moto.bucket);
    put_lockfile(
        &moto.endpoint,
        &moto.bucket,
        "other/terraform.tfstate.tflock",
        &neighbour_info(&path),
    );
    if let Some(t) = &moto.table {
        let item = serde_json::json!({
            "TableName": t,
            "Item": {"LockID": {"S": path}, "Info": {"S": neighbour_info(&path)}},
        });
        dynamodb(&moto.endpoint, "PutItem", &item.to_string());
    }
}

fn lock_row_exists(moto: &Moto, lock_id: &str) -> bool {
    let Some(t) = &moto.table else { return false };
    let req = serde_json::json!({
        "TableName": t,
        "Key": {"LockID": {"S": lock_id}},
        "ConsistentRead": true,
    });
    let got = dynamodb(&moto.endpoint, "GetItem", &req.to_string());
    got.get("Item").and_then(|i| i.get("Info")).is_some()
}

/// State objects and digest rows, and the neighbour's lockfile and row.
fn s3_untouchables(moto: &Moto) -> String {
    let path = format!("{}/other/terraform.tfstate", moto.bucket);
    format!(
        "{}\nneighbour lockfile {}, row {}",
        moto.untouchables(),
        moto.lockfile_exists("other/terraform.tfstate"),
        lock_row_exists(moto, &path)
    )
}

/// Keys and token of the s3 block below: never printed, never audited.
const S3_BLOCK_SECRETS: [&str; 3] = [
    "AKIDE2EBLOCKKEY",
    "e2e-block-secret-key",
    "e2e-block-session-token",
];

/// S3 migration mode (`use_lockfile` + `dynamodb_table`): region, both endpoints, the
/// access key, secret key and token, and `assume_role` (STS on moto) all come from the
/// backend block; no AWS_* keys in the environment.
#[test]
fn s3_lockfile_and_table_found_from_the_working_directory() {
    let (Some(()), Some(endpoint)) = (require_terraform(), moto()) else {
        return;
    };
    let moto = Moto::new(&endpoint, true);
    let [key, secret, token] = S3_BLOCK_SECRETS;
    let block = moto.backend_block(true).replace(
        "    region = \"us-east-1\"\n",
        &format!(
            r#"    region = "us-east-1"
    access_key = "{key}"
    secret_key = "{secret}"
    token      = "{token}"
    assume_role = {{
      role_arn     = "arn:aws:iam::123456789012:role/tflock-e2e"
      session_name = "tflock-e2e"
      duration     = "15m"
    }}
"#
        ),
    );
    let block = block.replace(
        &format!("      dynamodb = \"{endpoint}\"\n"),
        &format!("      dynamodb = \"{endpoint}\"\n      sts      = \"{endpoint}\"\n"),
    );
    assert!(
        block.contains("sts ") && block.contains("assume_role"),
        "{block}"
    );
    let mut wd = Workdir::new(&block);
    // Keys in the environment lose to the block's, for terraform and tflock alike.
    wd.env("AWS_ACCESS_KEY_ID", "ENVKEYUNUSED")
        .env("AWS_SECRET_ACCESS_KEY", "env-secret-unused")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    wd.init();
    wd.apply();
    s3_neighbour(&moto);
    let ours = format!("{}/app/terraform.tfstate", moto.bucket);
    let halves = || {
        usize::from(moto.lockfile_exists("app/terraform.tfstate"))
            + usize::from(lock_row_exists(&moto, &ours))
    };
    let untouchables = || s3_untouchables(&moto);
    stale_lock_found_and_broken(
        &wd,
        "default",
        Backend {
            halves: &halves,
            places: 2,
            untouchables: &untouchables,
            secrets: &S3_BLOCK_SECRETS,
        },
    );
}

/// `dynamodb_table` only, in workspace `dev`, with credentials from the profile the
/// backend block names (no AWS_ACCESS_KEY_ID in the environment).
#[test]
fn s3_table_workspace_lock_found_with_the_blocks_profile() {
    let (Some(()), Some(endpoint)) = (require_terraform(), moto()) else {
        return;
    };
    let moto = Moto::new(&endpoint, true);
    let block = moto.backend_block(false).replace(
        "    region = \"us-east-1\"\n",
        "    region = \"us-east-1\"\n    profile = \"tflock-e2e\"\n",
    );
    assert!(block.contains("profile"), "{block}");
    let mut wd = Workdir::new(&block);
    std::fs::write(
        wd.file("aws-credentials"),
        "[tflock-e2e]\naws_access_key_id = test\naws_secret_access_key = test\n",
    )
    .unwrap();
    std::fs::write(wd.file("aws-config"), "").unwrap();
    let credentials = wd.file("aws-credentials").display().to_string();
    let config = wd.file("aws-config").display().to_string();
    wd.env("AWS_SHARED_CREDENTIALS_FILE", &credentials)
        .env("AWS_CONFIG_FILE", &config)
        .env("AWS_EC2_METADATA_DISABLED", "true");
    wd.init();
    wd.terraform_ok(&["workspace", "new", "-no-color", "dev"]);
    wd.apply();
    s3_neighbour(&moto);
    assert!(
        moto.untouchables()
            .contains("object env:/dev/app/terraform.tfstate "),
        "{}",
        moto.untouchables()
    );
    let ours = format!("{}/env:/dev/app/terraform.tfstate", moto.bucket);
    let halves = || usize::from(lock_row_exists(&moto, &ours));
    let untouchables = || s3_untouchables(&moto);
    stale_lock_found_and_broken(
        &wd,
        "dev",
        Backend {
            halves: &halves,
            places: 1,
            untouchables: &untouchables,
            secrets: &[],
        },
    );
}

/// gcs: bucket, prefix and storage_custom_endpoint from the backend block.
#[test]
fn gcs_lock_found_from_the_working_directory() {
    let Some(()) = require_terraform() else {
        return;
    };
    let Some(base) = require_gcs() else { return };
    let bucket = unique_bucket("disc");
    create_bucket(&base, &bucket);
    let wd = gcs_workdir(&base, &bucket, "team/app");
    wd.init();
    wd.apply();
    // Another state whose prefix starts with ours.
    let neighbour = "team/app2/default.tflock";
    let (status, body) = http(
        &base,
        "POST",
        &format!("/upload/storage/v1/b/{bucket}/o?uploadType=media&name={neighbour}"),
        &neighbour_info(&format!("gs://{bucket}/{neighbour}")),
    );
    assert_eq!(status, 200, "upload neighbour: {body}");
    let halves = || usize::from(generation(&base, &bucket, "team/app/default.tflock").is_some());
    let untouchables = || {
        format!(
            "state {:?}, neighbour {:?}",
            generation(&base, &bucket, "team/app/default.tfstate"),
            generation(&base, &bucket, neighbour)
        )
    };
    let id = stale_lock_found_and_broken(
        &wd,
        "default",
        Backend {
            halves: &halves,
            places: 1,
            untouchables: &untouchables,
            secrets: &[],
        },
    );
    assert!(
        id.parse::<i64>().is_ok(),
        "the gcs lock ID is a generation: {id}"
    );
    assert!(generation(&base, &bucket, neighbour).is_some());
}

/// azurerm in workspace `dev`: account, container, key and access_key from the backend
/// block (no ARM_ACCESS_KEY), reached through the test bed's HTTPS proxy and CA.
#[test]
fn azurerm_workspace_lock_found_with_the_blocks_access_key() {
    let Some(()) = require_terraform() else {
        return;
    };
    let Some(az) = require_azurite_https() else {
        return;
    };
    let rt = runtime();
    let container = format!("e2e-disc-{}", std::process::id());
    let h = az.harness(&rt, &container);
    let mut wd = Workdir::new(&format!(
        r#"  backend "azurerm" {{
    storage_account_name = "{}"
    container_name       = "{container}"
    key                  = "app.tfstate"
    access_key           = "{}"
  }}"#,
        az.account, az.key
    ));
    let proxy = az.route(&mut wd);
    wd.init();
    wd.terraform_ok(&["workspace", "new", "-no-color", "dev"]);
    wd.apply();
    assert!(proxy.saw(&az.public_host()), "terraform used the proxy");
    let blob = "app.tfstateenv:dev";
    let neighbour = "other.tfstate";
    let info = LockInfo::parse(&neighbour_info(&format!("{container}/{neighbour}"))).unwrap();
    rt.block_on(h.lock_like_terraform(neighbour, &info))
        .unwrap();

    let halves = || usize::from(rt.block_on(h.current(blob)).unwrap().is_some());
    let untouchables = || {
        format!(
            "{}\nneighbour {:?}",
            rt.block_on(h.fingerprint()).unwrap(),
            rt.block_on(h.current(neighbour)).unwrap()
        )
    };
    stale_lock_found_and_broken(
        &wd,
        "dev",
        Backend {
            halves: &halves,
            places: 1,
            untouchables: &untouchables,
            secrets: &[az.key.as_str()],
        },
    );
    assert_eq!(
        rt.block_on(h.current(neighbour)).unwrap().as_deref(),
        Some(NEIGHBOUR_ID),
        "the neighbour's lease is kept"
    );
    // The key came from the backend block; it is never shown or logged.
    let shown = combined(&wd.tflock(&["list", "--json"]));
    let logged = std::fs::read_to_string(wd.file("audit.jsonl")).unwrap();
    assert!(!shown.contains(&az.key) && !logged.contains(&az.key));
}

/// A moto of this test's own, stopped after a bucket with a lock was made on it: the
/// endpoint of an emulator that is down. Without TFLOCK_MOTO_SERVER (scripts/test sets
/// it), a closed port stands in for it.
fn stopped_moto(bucket: &str) -> String {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let endpoint = format!("http://127.0.0.1:{port}");
    let Ok(server) = std::env::var("TFLOCK_MOTO_SERVER") else {
        return endpoint;
    };
    let mut child = std::process::Command::new(server)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start a private moto");
    let started = std::time::Instant::now();
    while std::process::Command::new("curl")
        .args(["-s", "-o", "/dev/null", "--max-time", "1"])
        .arg(format!("{endpoint}/moto-api/"))
        .status()
        .map_or(true, |s| !s.success())
    {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "private moto did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let (head, _) = curl(&["-H", S3_AUTH, "-X", "PUT", &format!("{endpoint}/{bucket}")]);
    assert!(head.starts_with("HTTP/1.1 200"), "create bucket: {head}");
    put_lockfile(
        &endpoint,
        bucket,
        "app/terraform.tfstate.tflock",
        &neighbour_info(&format!("{bucket}/app/terraform.tfstate")),
    );
    let _ = child.kill();
    let _ = child.wait();
    endpoint
}

/// tflock.toml with a target on every emulator (s3 and dynamodb on moto, gs on
/// fake-gcs-server, azblob on HTTPS Azurite with the key as a target option) and one on a
/// stopped moto: the others are listed, one `warning:` names the stopped one, exit 1.
#[test]
fn config_file_lists_every_emulator_and_reports_the_stopped_one() {
    let (Some(moto_endpoint), Some(gcs), Some(az)) =
        (moto(), require_gcs(), require_azurite_https())
    else {
        return;
    };
    // One stale lock in each place, written the way terraform writes it.
    let moto = Moto::new(&moto_endpoint, true);
    s3_neighbour(&moto);
    let bucket = unique_bucket("cfg");
    create_bucket(&gcs, &bucket);
    let (status, body) = http(
        &gcs,
        "POST",
        &format!("/upload/storage/v1/b/{bucket}/o?uploadType=media&name=app/default.tflock"),
        &neighbour_info(&format!("gs://{bucket}/app/default.tflock")),
    );
    assert_eq!(status, 200, "upload lock: {body}");
    let rt = runtime();
    let container = format!("e2e-cfg-{}", std::process::id());
    let h = az.harness(&rt, &container);
    let info = LockInfo::parse(&neighbour_info(&format!("{container}/app.tfstate"))).unwrap();
    rt.block_on(h.lock_like_terraform("app.tfstate", &info))
        .unwrap();
    let stopped_bucket = unique("stopped");
    let stopped = stopped_moto(&stopped_bucket);

    let mut wd = Workdir::new("");
    let mut bundle = std::fs::read("/etc/ssl/certs/ca-certificates.crt").unwrap_or_default();
    bundle.extend(std::fs::read(&az.ca).expect("read the test CA"));
    std::fs::write(wd.file("ca-bundle.pem"), bundle).unwrap();
    let bundle_path = wd.file("ca-bundle.pem").display().to_string();
    wd.env("SSL_CERT_FILE", &bundle_path)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    let table = moto.table.clone().unwrap();
    let config = format!(
        r#"[targets.s3]
url = "s3://{}"
endpoint = "{moto_endpoint}"
region = "us-east-1"

[targets.locks]
url = "dynamodb://{table}"
endpoint = "{moto_endpoint}"
region = "us-east-1"

[targets.gcs]
url = "gs://{bucket}"
endpoint = "{gcs}"

[targets.azure]
url = "azblob://{}/{container}"
endpoint = "{}/{}"
access_key = "{}"

[targets.stopped]
url = "s3://{stopped_bucket}"
endpoint = "{stopped}"
region = "us-east-1"
"#,
        moto.bucket, az.account, az.https, az.account, az.key
    );
    std::fs::write(wd.file("ops.toml"), config).unwrap();

    let started = std::time::Instant::now();
    let out = wd.tflock(&["list", "--json", "-c", "ops.toml"]);
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(code(&out), 1, "{}", combined(&out));
    assert!(took < std::time::Duration::from_secs(20), "took {took:?}");
    let locks: Vec<Value> =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", combined(&out)));
    let mut backends: Vec<&str> = locks
        .iter()
        .map(|l| l["backend"].as_str().unwrap())
        .collect();
    backends.sort();
    // The s3 lockfile and the DynamoDB row are two records of one state, with one ID:
    // listed as one lock with two locations.
    assert_eq!(backends, ["azure", "gcs", "s3"], "{locks:#?}");
    // (gcs shows the generation as the ID, terraform's ID as an alias.)
    assert!(
        locks.iter().all(|l| l["id"] == NEIGHBOUR_ID
            || l["aliases"]
                .as_array()
                .unwrap()
                .contains(&NEIGHBOUR_ID.into())),
        "{locks:#?}"
    );
    assert!(locks.iter().all(|l| l["status"] == "stale"), "{locks:#?}");
    let s3 = locks.iter().find(|l| l["backend"] == "s3").unwrap();
    assert_eq!(s3["locations"].as_array().map(Vec::len), Some(2), "{s3:#?}");
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("warning: "))
        .collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    assert!(
        warnings[0].starts_with(&format!("warning: s3://{stopped_bucket}")),
        "{stderr}"
    );
    assert!(
        stderr.contains("1 of 5 targets could not be listed"),
        "{stderr}"
    );
    assert!(!combined(&out).contains(&az.key), "the key is never shown");

    // -T picks targets by name; without the stopped one, everything answers.
    let out = wd.tflock(&[
        "list", "--json", "-c", "ops.toml", "-T", "gcs", "-T", "azure",
    ]);
    assert_eq!(code(&out), 0, "{}", combined(&out));
    assert!(out.stderr.is_empty(), "{}", combined(&out));
    let picked: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let mut backends: Vec<&str> = picked
        .iter()
        .map(|l| l["backend"].as_str().unwrap())
        .collect();
    backends.sort();
    assert_eq!(backends, ["azure", "gcs"], "{picked:#?}");
}

/// Scale (issue 11): `tflock break --id` in a working directory whose backend has only a
/// `dynamodb_table` costs 3 requests to AWS, whatever the table holds: the listing of
/// `env:/` (the workspaces, as Terraform finds them), one `BatchGetItem`, the `DeleteItem`.
/// Counted by a relay in front of moto, which the initialised backend config points at.
#[test]
fn s3_table_break_by_id_is_three_requests() {
    let (Some(()), Some(endpoint)) = (require_terraform(), moto()) else {
        return;
    };
    let moto = Moto::new(&endpoint, true);
    let mut wd = Workdir::new(&moto.backend_block(false));
    wd.env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    wd.init();
    wd.terraform_ok(&["workspace", "new", "-no-color", "dev"]);
    wd.apply();
    wd.start_holding_apply().kill9();
    let (ok, out) = wd.plan();
    assert!(!ok, "plan must fail on the stale lock:\n{out}");
    let id = lock_id_in(&out).expect("terraform printed the lock ID");

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let relay = rt.block_on(tflock_core::testkit::relay::Relay::start(&endpoint));
    let recorded = wd.path().join(".terraform/terraform.tfstate");
    let original = std::fs::read_to_string(&recorded).unwrap();
    assert!(original.contains(&endpoint), "{original}");
    std::fs::write(&recorded, original.replace(&endpoint, &relay.url)).unwrap();

    let broke = wd.tflock(&["break", "--id", &id, "--yes"]);
    assert_eq!(code(&broke), 0, "{}", combined(&broke));
    let seen: Vec<String> = relay
        .seen()
        .iter()
        .map(|s| {
            let action = s.header("x-amz-target").unwrap_or("");
            format!("{} {} {action}", s.method, s.target)
        })
        .collect();
    assert_eq!(seen.len(), 3, "{seen:#?}");
    assert!(
        seen[0].starts_with(&format!("GET /{}", moto.bucket))
            && seen[0].contains("list-type=2")
            && seen[0].contains("prefix=env%3A%2F"),
        "{seen:#?}"
    );
    assert!(seen[1].ends_with(".BatchGetItem"), "{seen:#?}");
    assert!(seen[2].ends_with(".DeleteItem"), "{seen:#?}");

    std::fs::write(&recorded, original).unwrap();
    let (ok, out) = wd.plan();
    assert!(ok, "plan after the break:\n{out}");
}
