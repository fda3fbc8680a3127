//! The CLI above the LockStore trait, over in-memory stores: rendering, JSON schema,
//! exit codes, confirmation, dry-run, merging of lock halves, partial failures.

mod inproc;
use inproc::{with_audit, Run};

use async_trait::async_trait;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use tflock::{Io, Resolver};
use tflock_core::memory::MemoryStore;
use tflock_core::memory::MEMORY;
use tflock_core::{
    Backend, BreakOptions, Broken, ConnectOptions, Error, Lock, LockStore, Presence, Target,
};

struct Stores(BTreeMap<String, Arc<dyn LockStore>>, tempfile::TempDir);

impl Default for Stores {
    fn default() -> Self {
        Stores(BTreeMap::new(), tempfile::tempdir().unwrap())
    }
}

impl Stores {
    fn audit_path(&self) -> std::path::PathBuf {
        self.1.path().join("audit.jsonl")
    }
    /// Every audit record, intents and outcomes.
    fn audit_records(&self) -> Vec<Value> {
        std::fs::read_to_string(self.audit_path())
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
    /// The outcome records, each checked to follow its intent.
    fn audit(&self) -> Vec<Value> {
        let all = self.audit_records();
        let outcomes: Vec<Value> = all
            .iter()
            .filter(|r| r["event"] == "outcome")
            .cloned()
            .collect();
        for o in &outcomes {
            let intents = all
                .iter()
                .filter(|r| r["event"] == "intent" && r["break_id"] == o["break_id"])
                .count();
            assert_eq!(intents, 1, "outcome without exactly one intent: {o}");
        }
        assert_eq!(
            all.len(),
            2 * outcomes.len(),
            "intents without outcome: {all:?}"
        );
        outcomes
    }
}

#[async_trait]
impl Resolver for Stores {
    async fn open(&self, target: &Target, _: &ConnectOptions) -> Result<Arc<dyn LockStore>, Error> {
        match self.0.get(&target.url) {
            Some(s) => Ok(s.clone()),
            None => Err(Error::usage(&target.url, "unknown test target")),
        }
    }
}

fn run_with(stores: &Stores, args: &[&str], input: &str, interactive: bool) -> Run {
    let audit = stores.audit_path().display().to_string();
    inproc::tflock(stores, &with_audit(args, &audit), input, interactive)
}

fn run(stores: &Stores, args: &[&str]) -> Run {
    run_with(stores, args, "", false)
}

fn info(id: &str, ago: chrono::Duration) -> String {
    let created = tflock_core::lockinfo::go_time(Some(chrono::Utc::now() - ago));
    format!(
        r#"{{"ID":"{id}","Operation":"OperationTypeApply","Info":"","Who":"ci@runner-1","Version":"1.11.4","Created":"{created}","Path":"bucket/app/terraform.tfstate"}}"#
    )
}

const ID: &str = "9f2c8a51-3b7e-4d0a-8c6f-1e2d3c4b5a69";

fn one_store(name: &str) -> (Stores, Arc<MemoryStore>) {
    let mem = Arc::new(MemoryStore::new(name));
    let mut stores = Stores::default();
    stores.0.insert(name.into(), mem.clone());
    (stores, mem)
}

fn stale_store() -> (Stores, Arc<MemoryStore>) {
    let (stores, mem) = one_store("memory://a");
    mem.hold(
        "bucket/app/terraform.tfstate.tflock",
        &info(ID, chrono::Duration::hours(2)),
    );
    (stores, mem)
}

#[test]
fn table_shows_the_lock() {
    let (stores, _) = stale_store();
    let r = run(&stores, &["list", "-t", "memory://a"]);
    assert_eq!(r.code, 0, "{}", r.err);
    for want in [
        "BACKEND",
        "memory",
        "bucket/app/terraform.tfstate",
        ID,
        "OperationTypeApply",
        "ci@runner-1",
        "2h",
        "stale",
    ] {
        assert!(r.out.contains(want), "missing {want:?} in\n{}", r.out);
    }
    assert!(!r.out.contains('\u{1b}'), "no colour codes off a terminal");
}

#[test]
fn json_has_the_documented_schema() {
    let (stores, _) = stale_store();
    let r = run(&stores, &["list", "-t", "memory://a", "--json"]);
    assert_eq!(r.code, 0, "{}", r.err);
    let v: Value = serde_json::from_str(&r.out).unwrap();
    let arr = v.as_array().unwrap();
    assert_eq!(arr.len(), 1);
    let l = &arr[0];
    assert_eq!(l["backend"], "memory");
    assert_eq!(l["target"], "memory://a");
    assert_eq!(l["path"], "bucket/app/terraform.tfstate");
    assert_eq!(l["id"], ID);
    assert_eq!(l["operation"], "OperationTypeApply");
    assert_eq!(l["who"], "ci@runner-1");
    assert_eq!(l["version"], "1.11.4");
    assert!(l["created"].as_str().unwrap().ends_with('Z'));
    let age = l["age_seconds"].as_i64().unwrap();
    assert!((7195..7300).contains(&age), "{age}");
    assert!(l["held"].is_null());
    assert_eq!(l["stale"], true);
    assert_eq!(l["status"], "stale");
    assert_eq!(l["info"]["ID"], ID);
    assert!(l["info_error"].is_null());
    // -o json is the same as --json
    let r2 = run(&stores, &["list", "-t", "memory://a", "-o", "json"]);
    let v2: Value = serde_json::from_str(&r2.out).unwrap();
    assert_eq!(v2[0]["id"], ID);
}

#[test]
fn empty_list() {
    let (stores, _) = one_store("memory://a");
    let r = run(&stores, &["list", "-t", "memory://a"]);
    assert_eq!(
        (r.code, r.out.as_str()),
        (0, "No locks held. Looked in: memory://a\n")
    );
    let r = run(&stores, &["list", "-t", "memory://a", "--json"]);
    assert_eq!(r.out.trim(), "[]");
}

#[test]
fn stale_after_moves_the_threshold() {
    let (stores, _) = stale_store();
    let r = run(
        &stores,
        &["list", "-t", "memory://a", "--json", "--stale-after", "3h"],
    );
    let v: Value = serde_json::from_str(&r.out).unwrap();
    assert_eq!(v[0]["status"], "active");
    assert_eq!(v[0]["stale"], false);
    let r = run(
        &stores,
        &["list", "-t", "memory://a", "--stale-after", "3x"],
    );
    assert_eq!(r.code, 2);
    assert!(r.err.contains("--stale-after"), "{}", r.err);
}

#[test]
fn inspect_by_id_and_by_path() {
    let (stores, _) = stale_store();
    let r = run(&stores, &["inspect", ID, "-t", "memory://a"]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(
        r.out.contains("Lock Info:\n  ID:        9f2c8a51"),
        "{}",
        r.out
    );
    assert!(
        r.out
            .contains(&format!("tflock break --id {ID} -t memory://a\n")),
        "{}",
        r.out
    );
    let r = run(
        &stores,
        &[
            "inspect",
            "app/terraform.tfstate",
            "-t",
            "memory://a",
            "--json",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.err);
    let v: Value = serde_json::from_str(&r.out).unwrap();
    assert_eq!(v[0]["id"], ID);
    let r = run(&stores, &["inspect", "nope", "-t", "memory://a"]);
    assert_eq!(r.code, 3);
    assert!(
        r.err
            .starts_with("error: memory://a: no lock with ID or state path nope"),
        "{}",
        r.err
    );
}

#[test]
fn break_needs_confirmation_without_a_terminal() {
    let (stores, mem) = stale_store();
    let r = run(&stores, &["break", "--id", ID, "-t", "memory://a"]);
    assert_eq!(r.code, 4);
    assert!(r.err.contains("pass --yes"), "{}", r.err);
    assert_eq!(mem.locks().len(), 1);
    assert_eq!(mem.break_calls(), 0);
}

#[test]
fn break_asks_on_a_terminal_and_only_yes_proceeds() {
    let (stores, mem) = stale_store();
    for answer in ["", "y\n", "YES\n", "no\n"] {
        let r = run_with(
            &stores,
            &["break", "--id", ID, "-t", "memory://a"],
            answer,
            true,
        );
        assert_eq!(r.code, 4, "answer {answer:?}");
        assert!(r.err.contains("Only 'yes' will be accepted"), "{}", r.err);
        assert_eq!(mem.locks().len(), 1);
    }
    let r = run_with(
        &stores,
        &["break", "--id", ID, "-t", "memory://a"],
        "yes\n",
        true,
    );
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(mem.locks().is_empty());
    assert!(
        r.out.contains(&format!("Lock {ID} has been broken.")),
        "{}",
        r.out
    );
}

#[test]
fn dry_run_changes_nothing() {
    let (stores, mem) = stale_store();
    let r = run(
        &stores,
        &["break", "--id", ID, "-t", "memory://a", "--dry-run"],
    );
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(
        r.out
            .contains("Will remove:\n  bucket/app/terraform.tfstate.tflock"),
        "{}",
        r.out
    );
    assert!(r.out.contains("Dry run: nothing was changed."));
    assert_eq!(mem.locks().len(), 1);
    assert_eq!(mem.break_calls(), 0);
}

#[test]
fn break_with_yes_removes_exactly_that_lock() {
    let (stores, mem) = stale_store();
    mem.hold(
        "bucket/other.tflock",
        &info(
            "11111111-2222-3333-4444-555555555555",
            chrono::Duration::hours(5),
        ),
    );
    let r = run(&stores, &["break", "--id", ID, "-t", "memory://a", "--yes"]);
    assert_eq!(r.code, 0, "{}", r.err);
    let left = mem.locks();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].id, "11111111-2222-3333-4444-555555555555");
}

#[test]
fn unknown_id_is_exit_3_naming_the_targets() {
    let (stores, mem) = stale_store();
    let r = run(
        &stores,
        &["break", "--id", "deadbeef", "-t", "memory://a", "--yes"],
    );
    assert_eq!(r.code, 3);
    assert!(
        r.err.contains("memory://a") && r.err.contains("deadbeef"),
        "{}",
        r.err
    );
    assert_eq!(mem.locks().len(), 1);
}

#[test]
fn an_id_in_two_targets_is_refused_naming_both() {
    let (mut stores, a) = stale_store();
    let b = Arc::new(MemoryStore::new("memory://b"));
    b.hold(
        "elsewhere.tflock",
        &info(ID, chrono::Duration::hours(2)).replace("bucket/app", "other/app"),
    );
    stores.0.insert("memory://b".into(), b.clone());
    let r = run(
        &stores,
        &[
            "break",
            "--id",
            ID,
            "-t",
            "memory://a",
            "-t",
            "memory://b",
            "--yes",
        ],
    );
    assert_eq!(r.code, 2, "{}", r.err);
    assert!(
        r.err.contains("memory://a") && r.err.contains("memory://b"),
        "{}",
        r.err
    );
    assert_eq!(a.locks().len() + b.locks().len(), 2);
}

#[test]
fn live_and_foreign_locks_are_refused() {
    let (stores, mem) = one_store("memory://a");
    let mut held = mem
        .lock_at("/w/.terraform.tfstate.lock.info")
        .with_info_text(&info(ID, chrono::Duration::hours(9)));
    held.backend = Backend::new("local");
    held.held = Some(true);
    held.holder = Some("pid 4242".into());
    mem.put(held);
    let mut foreign = mem.lock_at("https://acct/c/blob");
    foreign.backend = Backend::new("azure");
    foreign.foreign = true;
    mem.put(foreign);

    let r = run(&stores, &["list", "-t", "memory://a"]);
    assert!(
        r.out.contains("held (pid 4242)") && r.out.contains("foreign"),
        "{}",
        r.out
    );
    let r = run(&stores, &["break", "--id", ID, "-t", "memory://a", "--yes"]);
    assert_eq!(r.code, 4);
    assert!(r.err.contains("pid 4242"), "{}", r.err);
    let r = run(
        &stores,
        &[
            "break",
            "--id",
            "https://acct/c/blob",
            "-t",
            "memory://a",
            "--yes",
        ],
    );
    assert_eq!(r.code, 4);
    assert!(r.err.contains("--force-foreign"), "{}", r.err);
    assert_eq!(mem.locks().len(), 2);
    assert_eq!(mem.break_calls(), 0);
    let r = run(
        &stores,
        &[
            "break",
            "--id",
            "https://acct/c/blob",
            "-t",
            "memory://a",
            "--yes",
            "--force-foreign",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.err);
    assert_eq!(mem.locks().len(), 1);
}

/// A store whose lock is re-taken by someone else between listing and breaking.
struct Racing(Arc<MemoryStore>);

#[async_trait]
impl LockStore for Racing {
    fn backend(&self) -> Backend {
        MEMORY
    }
    fn target(&self) -> &str {
        self.0.target()
    }
    async fn list(&self) -> Result<Vec<Lock>, Error> {
        self.0.list().await
    }
    async fn delete_if_unchanged(&self, lock: &Lock, opts: &BreakOptions) -> Result<Broken, Error> {
        self.0.hold(
            &lock.location,
            &info(
                "77777777-8888-9999-aaaa-bbbbbbbbbbbb",
                chrono::Duration::zero(),
            ),
        );
        self.0.delete_if_unchanged(lock, opts).await
    }
    async fn recheck(&self, lock: &Lock) -> Result<Presence, Error> {
        self.0.recheck(lock).await
    }
}

#[test]
fn a_lock_retaken_after_listing_survives() {
    let mem = Arc::new(MemoryStore::new("memory://a"));
    mem.hold(
        "bucket/app/terraform.tfstate.tflock",
        &info(ID, chrono::Duration::hours(2)),
    );
    let mut stores = Stores::default();
    stores
        .0
        .insert("memory://a".into(), Arc::new(Racing(mem.clone())));
    let r = run(&stores, &["break", "--id", ID, "-t", "memory://a", "--yes"]);
    assert_eq!(r.code, 4, "{}", r.err);
    assert!(
        r.err
            .contains("changed since it was read, nothing was removed"),
        "{}",
        r.err
    );
    let left = mem.locks();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].id, "77777777-8888-9999-aaaa-bbbbbbbbbbbb");
}

#[test]
fn migration_mode_halves_are_one_lock_broken_together() {
    let (mut stores, s3) = one_store("memory://s3");
    let ddb = Arc::new(MemoryStore::new("memory://ddb"));
    stores.0.insert("memory://ddb".into(), ddb.clone());
    let text = info(ID, chrono::Duration::hours(2));
    let mut file = s3
        .lock_at("s3://bucket/app/terraform.tfstate.tflock")
        .with_info_text(&text);
    file.backend = Backend::new("s3");
    s3.put(file);
    let mut row = ddb
        .lock_at("dynamodb://locks/bucket/app/terraform.tfstate")
        .with_info_text(&text);
    row.backend = Backend::new("dynamodb");
    ddb.put(row);

    let r = run(
        &stores,
        &["list", "-t", "memory://ddb", "-t", "memory://s3", "--json"],
    );
    let v: Value = serde_json::from_str(&r.out).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1, "{}", r.out);
    assert_eq!(v[0]["backend"], "s3");
    assert_eq!(v[0]["locations"].as_array().unwrap().len(), 2);
    let table = run(
        &stores,
        &["list", "-t", "memory://ddb", "-t", "memory://s3"],
    );
    assert!(table.out.contains("s3+dynamodb"), "{}", table.out);

    let r = run(
        &stores,
        &[
            "break",
            "--id",
            ID,
            "-t",
            "memory://ddb",
            "-t",
            "memory://s3",
            "--yes",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(s3.locks().is_empty() && ddb.locks().is_empty());
}

#[test]
fn one_failing_target_does_not_hide_the_others() {
    let (mut stores, _) = stale_store();
    let down = Arc::new(MemoryStore::new("memory://down"));
    down.fail_with(Some(
        Error::backend("memory://down", "connection refused").with_hint("is the endpoint right?"),
    ));
    stores.0.insert("memory://down".into(), down);
    let r = run(
        &stores,
        &["list", "-t", "memory://a", "-t", "memory://down"],
    );
    assert_eq!(r.code, 1);
    assert!(r.out.contains(ID), "{}", r.out);
    assert!(
        r.err
            .contains("warning: memory://down: connection refused (is the endpoint right?)"),
        "{}",
        r.err
    );
    // Alone, the failure is the error.
    let r = run(&stores, &["list", "-t", "memory://down"]);
    assert_eq!(r.code, 1);
    assert_eq!(
        r.err,
        "error: memory://down: connection refused (is the endpoint right?)\n"
    );
}

#[test]
fn unreadable_lock_is_listed_with_its_reason() {
    let (stores, mem) = one_store("memory://a");
    mem.hold("bucket/bad.tflock", "{\"ID\": garbage");
    let r = run(&stores, &["list", "-t", "memory://a", "--json"]);
    assert_eq!(r.code, 0);
    let v: Value = serde_json::from_str(&r.out).unwrap();
    assert_eq!(v[0]["status"], "unreadable");
    assert!(v[0]["info"].is_null());
    assert!(v[0]["info_error"]
        .as_str()
        .unwrap()
        .contains("not valid JSON"));
    // It can still be broken by its location.
    let r = run(
        &stores,
        &[
            "break",
            "--id",
            "bucket/bad.tflock",
            "-t",
            "memory://a",
            "--yes",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(mem.locks().is_empty());
}

#[test]
fn usage_errors_exit_2() {
    let (stores, _) = stale_store();
    assert_eq!(run(&stores, &[]).code, 2);
    assert_eq!(run(&stores, &["break", "-t", "memory://a"]).code, 2);
    assert_eq!(
        run(
            &stores,
            &["list", "--request-timeout", "0s", "-t", "memory://a"]
        )
        .code,
        2
    );
    let r = run(&stores, &["list", "-t", "ftp://x"]);
    assert_eq!(r.code, 2);
    let help = run(&stores, &["--help"]);
    assert_eq!(help.code, 0);
    assert!(help.out.contains("Exit codes"));
}

#[test]
fn real_resolver_rejects_unknown_schemes_and_missing_dirs() {
    let r = inproc::tflock(
        &tflock::DefaultResolver,
        &["list", "-t", "ftp://x"],
        "",
        false,
    );
    assert_eq!(r.code, 2);
    assert!(r.err.contains("unknown target type ftp://"), "{}", r.err);
    let r = inproc::tflock(
        &tflock::DefaultResolver,
        &["list", "-t", "/nonexistent/dir"],
        "",
        false,
    );
    assert_eq!(r.code, 2);
    assert_eq!(
        r.err,
        "error: /nonexistent/dir: cannot open directory (No such file or directory (os error 2))\n"
    );
}

fn three_locks() -> (Stores, Arc<MemoryStore>) {
    let (stores, mem) = one_store("memory://a");
    mem.hold(
        "a/old.tflock",
        &info(
            "00000000-0000-0000-0000-00000000000a",
            chrono::Duration::hours(30),
        )
        .replace("bucket/app", "a/old"),
    );
    mem.hold(
        "a/mid.tflock",
        &info(
            "00000000-0000-0000-0000-00000000000b",
            chrono::Duration::hours(3),
        )
        .replace("bucket/app", "a/mid"),
    );
    mem.hold(
        "a/new.tflock",
        &info(
            "00000000-0000-0000-0000-00000000000c",
            chrono::Duration::minutes(5),
        )
        .replace("bucket/app", "a/new"),
    );
    (stores, mem)
}

#[test]
fn older_than_filters_list_and_exit_code_flags_stale_locks() {
    let (stores, _) = three_locks();
    let r = run(
        &stores,
        &["list", "-t", "memory://a", "--json", "--older-than", "2h"],
    );
    let v: Value = serde_json::from_str(&r.out).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 2, "{}", r.out);
    let r = run(&stores, &["list", "-t", "memory://a", "--exit-code"]);
    assert_eq!(r.code, 5, "stale locks exist");
    let r = run(
        &stores,
        &[
            "list",
            "-t",
            "memory://a",
            "--exit-code",
            "--stale-after",
            "2d",
        ],
    );
    assert_eq!(r.code, 0, "nothing older than 2d");
}

#[test]
fn break_stale_dry_run_max_and_summary() {
    let (stores, mem) = three_locks();
    let r = run(
        &stores,
        &["break", "--stale", "-t", "memory://a", "--dry-run", "--yes"],
    );
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(r.out.contains("would break 2 stale lock(s)"), "{}", r.out);
    assert_eq!(mem.locks().len(), 3);
    assert!(stores.audit().is_empty(), "dry runs are not audited");

    let r = run(
        &stores,
        &[
            "break",
            "--stale",
            "-t",
            "memory://a",
            "--yes",
            "--max",
            "1",
        ],
    );
    assert_eq!(r.code, 4, "{}", r.err);
    assert!(r.err.contains("more than --max 1"), "{}", r.err);
    assert_eq!(mem.locks().len(), 3);

    let r = run(
        &stores,
        &[
            "break",
            "--stale",
            "--older-than",
            "1d",
            "-t",
            "memory://a",
            "--yes",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(
        r.out.contains("broken 1, changed 0, refused 0, failed 0"),
        "{}",
        r.out
    );
    assert_eq!(mem.locks().len(), 2);
    let audit = stores.audit();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0]["id"], "00000000-0000-0000-0000-00000000000a");
    assert_eq!(audit[0]["outcome"], "removed");
    assert_eq!(audit[0]["lock_info"]["Who"], "ci@runner-1");
    assert!(audit[0]["operator"].as_str().unwrap().contains('@'));

    let r = run(&stores, &["break", "--stale", "-t", "memory://a"]);
    assert_eq!(r.code, 4, "no confirmation without a terminal");
    assert_eq!(mem.locks().len(), 2);
    let r = run(&stores, &["break", "--stale", "-t", "memory://a", "--yes"]);
    assert_eq!(r.code, 0);
    assert_eq!(
        mem.locks().len(),
        1,
        "the fresh lock is not stale and stays"
    );
    assert_eq!(stores.audit().len(), 2);
    // --older-than 0s: every lock whose holder cannot be seen counts as stale.
    let r = run(
        &stores,
        &[
            "break",
            "--stale",
            "--older-than",
            "0s",
            "-t",
            "memory://a",
            "--yes",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(mem.locks().is_empty());
}

#[test]
fn break_stale_counts_a_lock_retaken_meanwhile_as_changed() {
    let mem = Arc::new(MemoryStore::new("memory://a"));
    mem.hold(
        "bucket/app/terraform.tfstate.tflock",
        &info(ID, chrono::Duration::hours(2)),
    );
    let mut stores = Stores::default();
    stores
        .0
        .insert("memory://a".into(), Arc::new(Racing(mem.clone())));
    let r = run(&stores, &["break", "--stale", "-t", "memory://a", "--yes"]);
    assert_eq!(r.code, 4, "{}", r.err);
    assert!(
        r.out.contains("broken 0, changed 1, refused 0, failed 0"),
        "{}",
        r.out
    );
    assert_eq!(stores.audit()[0]["outcome"], "changed");
    assert_eq!(mem.locks()[0].id, "77777777-8888-9999-aaaa-bbbbbbbbbbbb");
}

#[test]
fn single_break_is_audited_and_unwritable_log_stops_the_break() {
    let (stores, mem) = stale_store();
    let r = run(
        &stores,
        &[
            "break",
            "--id",
            ID,
            "-t",
            "memory://a",
            "--yes",
            "--audit-log",
            "/proc/forbidden/audit.jsonl",
        ],
    );
    assert_eq!(r.code, 1, "{}", r.err);
    assert!(r.err.contains("cannot write the audit log"), "{}", r.err);
    assert_eq!(mem.locks().len(), 1, "no audit log, no break");
    let r = run(&stores, &["break", "--id", ID, "-t", "memory://a", "--yes"]);
    assert_eq!(r.code, 0, "{}", r.err);
    let audit = stores.audit();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0]["id"], ID);
    assert_eq!(audit[0]["target"], "memory://a");
    assert_eq!(audit[0]["path"], "bucket/app/terraform.tfstate");
}

#[test]
fn wait_returns_when_the_lock_is_gone_or_times_out() {
    let (stores, mem) = stale_store();
    let r = run(
        &stores,
        &[
            "wait",
            "--id",
            ID,
            "-t",
            "memory://a",
            "--timeout",
            "1s",
            "--interval",
            "1s",
        ],
    );
    assert_eq!(r.code, 5, "{}", r.err);
    assert!(r.err.contains("still held"), "{}", r.err);
    mem.put(mem.lock_at("other")); // unrelated
    let lock = mem.locks().into_iter().find(|l| l.id == ID).unwrap();
    let store: &dyn LockStore = mem.as_ref();
    block_on(store.break_lock(&lock, &BreakOptions::default())).unwrap();
    let r = run(
        &stores,
        &["wait", "--id", ID, "-t", "memory://a", "--timeout", "5s"],
    );
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(r.out.contains("is gone"));
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

#[test]
fn config_file_targets_by_name_and_errors_with_line() {
    let (mut stores, _) = stale_store();
    let b = Arc::new(MemoryStore::new("memory://b"));
    stores.0.insert("memory://b".into(), b.clone());
    let cfg = stores.1.path().join("tflock.toml");
    std::fs::write(
        &cfg,
        "[targets.first]\nurl = \"memory://a\"\n\n[targets.second]\nurl = \"memory://b\"\n",
    )
    .unwrap();
    let c = cfg.display().to_string();
    let r = run(&stores, &["list", "-c", &c, "--json"]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert_eq!(
        serde_json::from_str::<Value>(&r.out)
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let r = run(&stores, &["list", "-c", &c, "-T", "second", "--json"]);
    assert_eq!(r.out.trim(), "[]");
    let r = run(&stores, &["list", "-c", &c, "-T", "third"]);
    assert_eq!(r.code, 2);
    assert!(
        r.err
            .contains("no target named \"third\" (it has: first, second)"),
        "{}",
        r.err
    );
    std::fs::write(&cfg, "[targets.first]\nurl = \"memory://a\"\nregion = [\n").unwrap();
    let r = run(&stores, &["list", "-c", &c]);
    assert_eq!(r.code, 2);
    assert!(r.err.starts_with(&format!("error: {c}:3:")), "{}", r.err);
}

#[test]
fn completions_and_man_come_from_the_same_definitions() {
    let stores = Stores::default();
    let r = run(&stores, &["completions", "bash"]);
    assert_eq!(r.code, 0);
    assert!(r.out.contains("--stale-after") && r.out.contains("--force-foreign"));
    let r = run(&stores, &["man"]);
    assert_eq!(r.code, 0);
    assert!(
        r.out.contains(".TH tflock"),
        "{}",
        &r.out[..200.min(r.out.len())]
    );
}

#[test]
fn a_break_while_another_target_failed_is_not_plain_success() {
    let (mut stores, mem) = stale_store();
    let down = Arc::new(MemoryStore::new("memory://down"));
    down.fail_with(Some(Error::backend("memory://down", "connection refused")));
    stores.0.insert("memory://down".into(), down);
    let r = run(
        &stores,
        &[
            "break",
            "--id",
            ID,
            "-t",
            "memory://a",
            "-t",
            "memory://down",
            "--yes",
        ],
    );
    assert_eq!(r.code, 1, "{}", r.err);
    assert!(mem.locks().is_empty(), "the lock that was found is broken");
    assert!(r.out.contains("has been broken"), "{}", r.out);
    assert!(
        r.err.contains("warning: memory://down: connection refused"),
        "{}",
        r.err
    );
    assert!(
        r.err.contains("1 of 2 targets could not be listed"),
        "{}",
        r.err
    );
}

/// A pasted lock error (colour, box, CI timestamps) for a lock.
fn pasted(id: &str, path: &str) -> String {
    let block = format!(
        "Lock Info:\n  ID:        {id}\n  Path:      {path}\n  Operation: OperationTypeApply\n  Who:       ci@runner-1\n  Version:   1.11.4\n  Created:   2026-12-01 10:00:00.462280312 +0000 UTC\n  Info:      \n"
    );
    let mut text = String::from("\u{1b}[31m╷\u{1b}[0m\u{1b}[0m\n\u{1b}[31m│\u{1b}[0m \u{1b}[0m\u{1b}[1m\u{1b}[31mError: \u{1b}[0m\u{1b}[0m\u{1b}[1mError acquiring the state lock\u{1b}[0m\n\u{1b}[31m│\u{1b}[0m \u{1b}[0m\n\u{1b}[31m│\u{1b}[0m \u{1b}[0mError message: operation error S3: PutObject, https response error StatusCode:\n\u{1b}[31m│\u{1b}[0m \u{1b}[0m412, PreconditionFailed\n");
    for line in block.lines() {
        text.push_str(&format!("\u{1b}[31m│\u{1b}[0m \u{1b}[0m{line}\n"));
    }
    text.push_str("\u{1b}[31m│\u{1b}[0m \u{1b}[0m\n\u{1b}[31m│\u{1b}[0m \u{1b}[0mTerraform acquires a state lock to protect the state from being written\n\u{1b}[31m╵\u{1b}[0m\u{1b}[0m\n");
    text.lines()
        .map(|l| format!("2026-12-01T10:00:01.0000000Z {l}\r\n"))
        .collect()
}

#[test]
fn from_error_finds_and_breaks_the_pasted_lock() {
    // A path no backend claims (the local backend's), so "gone" is the only explanation.
    let (stores, mem) = one_store("memory://a");
    mem.hold(
        "/w/.terraform.tfstate.lock.info",
        &info(ID, chrono::Duration::hours(2))
            .replace("bucket/app/terraform.tfstate", "terraform.tfstate"),
    );
    let file = stores.1.path().join("ci.log");
    std::fs::write(&file, pasted(ID, "terraform.tfstate")).unwrap();
    let f = file.display().to_string();
    let r = run(
        &stores,
        &["inspect", "--from-error", &f, "-t", "memory://a"],
    );
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(r.out.contains(&format!("Lock {ID} (stale)")), "{}", r.out);
    // From stdin, with --yes (stdin is the paste, so there is no one to ask).
    let text = pasted(ID, "terraform.tfstate");
    let r = run_with(
        &stores,
        &["break", "--from-error", "-", "-t", "memory://a", "--yes"],
        &text,
        false,
    );
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(mem.locks().is_empty());
    assert_eq!(stores.audit().len(), 1);
    // Pasted again: already gone, exit 3, says so.
    let r = run(
        &stores,
        &["break", "--from-error", &f, "-t", "memory://a", "--yes"],
    );
    assert_eq!(r.code, 3, "{}", r.err);
    assert!(r.err.contains("is gone"), "{}", r.err);
}

#[test]
fn from_error_names_a_retaken_state_and_a_target_to_add() {
    let (stores, _) = stale_store();
    let file = stores.1.path().join("ci.log");
    // The same state, locked by another lock now.
    std::fs::write(
        &file,
        pasted(
            "aaaaaaaa-0000-0000-0000-000000000000",
            "bucket/app/terraform.tfstate",
        ),
    )
    .unwrap();
    let f = file.display().to_string();
    let r = run(
        &stores,
        &["break", "--from-error", &f, "-t", "memory://a", "--yes"],
    );
    assert_eq!(r.code, 4, "{}", r.err);
    assert!(r.err.contains("locked again by another lock"), "{}", r.err);
    assert!(r.err.contains(ID), "{}", r.err);
    // A gcs lock: the path says where to look.
    std::fs::write(
        &file,
        pasted("1795691440789684", "gs://tf-state/team/app/default.tflock"),
    )
    .unwrap();
    let r = run(
        &stores,
        &["inspect", "--from-error", &f, "-t", "memory://a"],
    );
    assert_eq!(r.code, 3, "{}", r.err);
    assert!(r.err.contains("add -t gs://tf-state/team/app"), "{}", r.err);
    // Not a lock error at all.
    std::fs::write(&file, "Apply complete! Resources: 1 added.\n").unwrap();
    let r = run(
        &stores,
        &["inspect", "--from-error", &f, "-t", "memory://a"],
    );
    assert_eq!(r.code, 2, "{}", r.err);
    assert!(r.err.contains("Lock Info"), "{}", r.err);
}

#[test]
fn each_half_of_a_lock_is_reported_and_audited_on_its_own() {
    // Migration mode: the lockfile was re-taken meanwhile (its break is refused), the
    // DynamoDB row is removed. Output and audit say exactly that, per location.
    let text = info(ID, chrono::Duration::hours(2));
    let s3 = Arc::new(MemoryStore::new("memory://s3"));
    let mut file = s3
        .lock_at("s3://bucket/app/terraform.tfstate.tflock")
        .with_info_text(&text);
    file.backend = Backend::new("s3");
    s3.put(file);
    let ddb = Arc::new(MemoryStore::new("memory://ddb"));
    let mut row = ddb
        .lock_at("dynamodb://locks/bucket/app/terraform.tfstate")
        .with_info_text(&text);
    row.backend = Backend::new("dynamodb");
    ddb.put(row);
    let mut stores = Stores::default();
    stores
        .0
        .insert("memory://s3".into(), Arc::new(Racing(s3.clone())));
    stores.0.insert("memory://ddb".into(), ddb.clone());
    let r = run(
        &stores,
        &[
            "break",
            "--id",
            ID,
            "-t",
            "memory://s3",
            "-t",
            "memory://ddb",
            "--yes",
        ],
    );
    assert_eq!(r.code, 4, "{}{}", r.out, r.err);
    assert!(
        r.out
            .contains("removed dynamodb://locks/bucket/app/terraform.tfstate"),
        "{}",
        r.out
    );
    assert!(!r.out.contains("has been broken"), "{}", r.out);
    assert!(
        r.err.contains("(this location was not removed)") && !r.err.contains("nothing was removed"),
        "{}",
        r.err
    );
    assert!(r.err.contains("only partly removed"), "{}", r.err);
    let audit = stores.audit();
    let outcomes: Vec<(&str, &str)> = audit
        .iter()
        .map(|r| {
            (
                r["location"].as_str().unwrap(),
                r["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            ("s3://bucket/app/terraform.tfstate.tflock", "changed"),
            ("dynamodb://locks/bucket/app/terraform.tfstate", "removed"),
        ]
    );
    assert!(ddb.locks().is_empty());
    assert_eq!(s3.locks()[0].id, "77777777-8888-9999-aaaa-bbbbbbbbbbbb");
}

#[test]
fn a_lost_reply_is_settled_by_a_second_read() {
    let (stores, mem) = stale_store();
    mem.lose_next_reply();
    let r = run(&stores, &["break", "--id", ID, "-t", "memory://a", "--yes"]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(
        r.err.contains("a second read confirmed the lock is gone"),
        "{}",
        r.err
    );
    assert!(mem.locks().is_empty());
    assert_eq!(mem.break_calls(), 1, "the delete was not sent again");
    assert_eq!(stores.audit()[0]["outcome"], "removed");
}

/// A reader that went away (`tflock list ... | head -1`): accepts `room` bytes, then every
/// write fails with a broken pipe.
struct ClosedAfter {
    room: usize,
}

impl std::io::Write for ClosedAfter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.room == 0 {
            return Err(std::io::ErrorKind::BrokenPipe.into());
        }
        let n = buf.len().min(self.room);
        self.room -= n;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Every output format ends quietly with exit 0 when stdout closes mid-listing, as the
/// table and `--json` did; `-o jsonl` reported "error: stdout: Broken pipe" and exit 1
/// (the pipe error lost its kind inside serde_json).
#[test]
fn a_closed_stdout_ends_every_format_quietly() {
    let (stores, mem) = one_store("memory://a");
    // Enough output to fill the 8 KiB output buffer several times while serialising.
    for i in 0..200 {
        mem.hold(
            &format!("bucket/s{i:03}/terraform.tfstate.tflock"),
            &info(&format!("{ID:.30}{i:06}"), chrono::Duration::hours(2)),
        );
    }
    for format in [&["--json"][..], &["-o", "jsonl"], &["-o", "table"]] {
        let (mut out, mut err) = (ClosedAfter { room: 100 }, Vec::new());
        let mut input = std::io::Cursor::new(Vec::new());
        let mut io = Io {
            out: &mut out,
            err: &mut err,
            input: &mut input,
            interactive: false,
            color: false,
            progress: false,
        };
        let mut argv = vec!["tflock", "list", "-t", "memory://a"];
        argv.extend(format);
        let code = tflock::run(argv, &mut io, &stores);
        let err = String::from_utf8(err).unwrap();
        assert_eq!((code, err.as_str()), (0, ""), "{format:?}");
    }
}

/// The JSON outputs keep docs/json.md's key order and serde_json's layout: `--json` is
/// the pretty array, `-o jsonl` one compact object a line.
#[test]
fn json_keys_keep_the_documented_order_and_layout() {
    let (stores, _) = stale_store();
    let r = run(&stores, &["list", "-t", "memory://a", "--json"]);
    assert_eq!(r.code, 0, "{}", r.err);
    // serde_json keeps the keys in document order here (preserve_order).
    let v: Value = serde_json::from_str(&r.out).unwrap();
    assert_eq!(r.out, serde_json::to_string_pretty(&v).unwrap() + "\n");
    let keys: Vec<&str> = v[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "backend",
            "target",
            "path",
            "id",
            "aliases",
            "workspace",
            "current_workspace",
            "location",
            "state",
            "operation",
            "who",
            "version",
            "created",
            "age_seconds",
            "held",
            "holder",
            "stale",
            "status",
            "foreign",
            "info",
            "info_error",
            "details",
            "locations",
        ]
    );
    let info: Vec<&str> = v[0]["info"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        info,
        [
            "ID",
            "Operation",
            "Info",
            "Who",
            "Version",
            "Created",
            "Path"
        ]
    );
    assert_eq!(
        v[0]["locations"],
        serde_json::json!([{
            "backend": "memory",
            "target": "memory://a",
            "location": v[0]["location"],
        }])
    );

    let r = run(&stores, &["list", "-t", "memory://a", "-o", "jsonl"]);
    assert_eq!(r.code, 0, "{}", r.err);
    let line: Value = serde_json::from_str(&r.out).unwrap();
    assert_eq!(r.out, serde_json::to_string(&line).unwrap() + "\n");
    let mut pretty = v[0].clone();
    // Both runs agree on everything but the age, which moves with the clock.
    pretty["age_seconds"] = line["age_seconds"].clone();
    assert_eq!(line, pretty);
}

#[test]
fn from_error_takes_the_http_holder_from_the_message() {
    // Terraform's http backend: the holder's ID only in the message, the Lock Info block is
    // the refused run's own.
    let (stores, mem) = stale_store();
    let text = pasted("eeeeeeee-0000-0000-0000-000000000000", "bucket/app/terraform.tfstate")
        .replace(
            "Error message: operation error S3: PutObject, https response error StatusCode:",
            &format!("Error message: HTTP remote state already locked:\r\n2026-12-01T10:00:01.0000000Z \u{1b}[31m│\u{1b}[0m \u{1b}[0mID={ID}"),
        );
    let file = stores.1.path().join("ci.log");
    std::fs::write(&file, text).unwrap();
    let f = file.display().to_string();
    let r = run(
        &stores,
        &["inspect", "--from-error", &f, "-t", "memory://a"],
    );
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(r.out.contains(&format!("Lock {ID}")), "{}", r.out);
    assert!(r.err.contains("refused run's own"), "{}", r.err);
    assert_eq!(mem.locks().len(), 1);
}
