//! `tflock doctor` above the LockStore trait: rendering (escaped), JSON, exit codes,
//! confirmation, dry run, audit records, the halves check across targets, and
//! `--from-error`. The stores are in-memory: `MemoryStore` for locks, and `DigestStore`,
//! a table with one digest that keeps the diagnose/repair contract (a fix applies only
//! if what it was decided on is unchanged; refused while locked).

mod inproc;
use inproc::Run;

use async_trait::async_trait;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tflock::Resolver;
use tflock_core::memory::MemoryStore;
use tflock_core::{
    Backend, BreakOptions, Broken, ConnectOptions, Error, Finding, Fix, Handle, Lock, LockStore,
    Presence, Repaired, Target,
};

/// A state object (its version) and its digest; a finding when they disagree.
struct DigestStore {
    target: String,
    subject: String,
    inner: Mutex<Digest>,
    /// Every target the resolver was asked to open as this store (to see hidden params).
    opened: Mutex<Vec<Target>>,
}

#[derive(Clone)]
struct Digest {
    object_version: u32,
    digest_of: u32,
    locked: bool,
    fail: bool,
    repairs: u32,
    /// A second finding that no fix can help.
    unfixable: bool,
    summary: String,
}

/// What the fix was decided on.
struct Seen {
    object_version: u32,
    digest_of: u32,
}

impl DigestStore {
    fn new(target: &str, subject: &str) -> Arc<DigestStore> {
        Arc::new(DigestStore {
            target: target.into(),
            subject: subject.into(),
            inner: Mutex::new(Digest {
                object_version: 2,
                digest_of: 1,
                locked: false,
                fail: false,
                repairs: 0,
                unfixable: false,
                summary: "the state object was changed outside Terraform".into(),
            }),
            opened: Mutex::new(Vec::new()),
        })
    }
    fn with<R>(&self, f: impl FnOnce(&mut Digest) -> R) -> R {
        f(&mut self.inner.lock().unwrap())
    }
}

#[async_trait]
impl LockStore for DigestStore {
    fn backend(&self) -> Backend {
        Backend::new("dynamodb")
    }
    fn target(&self) -> &str {
        &self.target
    }
    async fn list(&self) -> Result<Vec<Lock>, Error> {
        Ok(Vec::new())
    }
    async fn delete_if_unchanged(&self, _: &Lock, _: &BreakOptions) -> Result<Broken, Error> {
        Err(Error::refused(&self.target, "no locks here"))
    }
    async fn recheck(&self, _: &Lock) -> Result<Presence, Error> {
        Ok(Presence::Gone)
    }
    async fn diagnose(&self) -> Result<Vec<Finding>, Error> {
        let d = self.with(|d| d.clone());
        let mut found = Vec::new();
        if d.object_version != d.digest_of {
            found.push(Finding {
                kind: "digest-mismatch",
                target: self.target.clone(),
                subject: self.subject.clone(),
                workspace: Some("default".into()),
                summary: d.summary.clone(),
                evidence: vec![
                    (
                        "stored digest".into(),
                        format!("digest-of-v{}", d.digest_of),
                    ),
                    (
                        "MD5 of the state object".into(),
                        format!("digest-of-v{}", d.object_version),
                    ),
                ],
                advice: "Set the digest:\naws dynamodb update-item ...".into(),
                fix: Some(Fix::new(
                    format!("set Digest to digest-of-v{}", d.object_version),
                    Handle::new(
                        &self.target,
                        Seen {
                            object_version: d.object_version,
                            digest_of: d.digest_of,
                        },
                    ),
                )),
            });
        }
        if d.unfixable {
            found.push(Finding {
                kind: "orphan-lockfile",
                target: self.target.clone(),
                subject: "b/other".into(),
                workspace: None,
                summary: "a lockfile without state".into(),
                evidence: vec![("lock ID".into(), "abc".into())],
                advice: "Remove it:\ntflock break --id abc".into(),
                fix: None,
            });
        }
        Ok(found)
    }
    async fn repair(&self, fix: &Fix) -> Result<Repaired, Error> {
        let seen = fix.handle().get::<Seen>().unwrap();
        self.with(|d| {
            if d.fail {
                return Err(Error::backend(&self.target, "the table is throttled"));
            }
            if d.object_version != seen.object_version || d.digest_of != seen.digest_of {
                return Err(Error::changed(
                    &self.target,
                    "the object changed since the check",
                ));
            }
            if d.locked {
                return Err(Error::refused(&self.target, "the state is locked"));
            }
            d.digest_of = d.object_version;
            d.repairs += 1;
            Ok(Repaired {
                done: vec![format!("set Digest to digest-of-v{}", d.object_version)],
            })
        })
    }
}

/// A memory store whose locks carry another backend's name (`s3`, `dynamodb`), as the
/// halves of a migration-mode lock do.
struct Named(Backend, Arc<MemoryStore>);

#[async_trait]
impl LockStore for Named {
    fn backend(&self) -> Backend {
        self.0
    }
    fn target(&self) -> &str {
        self.1.target()
    }
    async fn list(&self) -> Result<Vec<Lock>, Error> {
        let mut locks = self.1.list().await?;
        for l in &mut locks {
            l.backend = self.0;
        }
        Ok(locks)
    }
    async fn delete_if_unchanged(&self, l: &Lock, o: &BreakOptions) -> Result<Broken, Error> {
        self.1.delete_if_unchanged(l, o).await
    }
    async fn recheck(&self, l: &Lock) -> Result<Presence, Error> {
        self.1.recheck(l).await
    }
}

struct Stores(
    BTreeMap<String, Arc<dyn LockStore>>,
    Vec<Arc<DigestStore>>,
    tempfile::TempDir,
);

impl Stores {
    fn new() -> Stores {
        Stores(BTreeMap::new(), Vec::new(), tempfile::tempdir().unwrap())
    }
    fn named(&mut self, backend: &'static str, target: &str) -> Arc<MemoryStore> {
        let m = Arc::new(MemoryStore::new(target));
        self.0.insert(
            target.into(),
            Arc::new(Named(Backend::new(backend), m.clone())),
        );
        m
    }
    fn digest(&mut self, target: &str, subject: &str) -> Arc<DigestStore> {
        let s = DigestStore::new(target, subject);
        self.0.insert(target.into(), s.clone());
        self.1.push(s.clone());
        s
    }
    fn audit(&self) -> Vec<Value> {
        std::fs::read_to_string(self.2.path().join("audit.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

#[async_trait]
impl Resolver for Stores {
    async fn open(&self, target: &Target, _: &ConnectOptions) -> Result<Arc<dyn LockStore>, Error> {
        for d in &self.1 {
            if d.target == target.url {
                d.opened.lock().unwrap().push(target.clone());
            }
        }
        match self.0.get(&target.url) {
            Some(s) => Ok(s.clone()),
            None if target.url.contains("down") => Err(Error::backend(&target.url, "unreachable")),
            None => Err(Error::usage(&target.url, "unknown test target")),
        }
    }
}

fn run_with(stores: &Stores, args: &[&str], input: &str, interactive: bool) -> Run {
    let audit = stores.2.path().join("audit.jsonl").display().to_string();
    let mut argv = vec!["doctor", "--audit-log", &audit];
    argv.extend(args);
    inproc::tflock(stores, &argv, input, interactive)
}

fn run(stores: &Stores, args: &[&str]) -> Run {
    run_with(stores, args, "", false)
}

const T: &str = "dynamodb://t?bucket=b&key=k";

#[test]
fn healthy_is_exit_0() {
    let mut s = Stores::new();
    let d = s.digest(T, "b/k");
    d.with(|d| d.digest_of = d.object_version);
    let r = run(&s, &["-t", T]);
    assert_eq!(r.code, 0, "{}{}", r.out, r.err);
    assert_eq!(r.out, format!("No problems found. Checked: {T}\n"));
    let r = run(&s, &["-t", T, "--json"]);
    let v: Value = serde_json::from_str(&r.out).unwrap();
    assert_eq!(v["healthy"], true);
    assert_eq!(v["problems"].as_array().unwrap().len(), 0);
}

#[test]
fn problems_are_shown_with_evidence_and_fix_and_exit_5() {
    let mut s = Stores::new();
    let d = s.digest(T, "b/k");
    d.with(|d| d.summary = "edited by \u{1b}[31mmallory\u{202e}".into());
    let r = run(&s, &["-t", T]);
    assert_eq!(r.code, 5, "{}{}", r.out, r.err);
    for want in [
        "Problem 1 of 1: digest-mismatch (workspace default)",
        "Target:   dynamodb://t?bucket=b&key=k",
        "State:    b/k",
        "stored digest:            digest-of-v1",
        "MD5 of the state object:  digest-of-v2",
        "aws dynamodb update-item ...",
        "tflock doctor --fix would: set Digest to digest-of-v2",
        "1 problem(s) found in dynamodb://t?bucket=b&key=k; 1 can be fixed with tflock doctor --fix.",
        "edited by \\x1b[31mmallory\\u{202e}",
    ] {
        assert!(r.out.contains(want), "missing {want:?} in\n{}", r.out);
    }
    assert!(!r.out.contains('\u{1b}') && !r.out.contains('\u{202e}'));
    assert_eq!(d.with(|d| d.repairs), 0);
    assert!(s.audit().is_empty());
}

#[test]
fn fix_needs_confirmation_and_dry_run_changes_nothing() {
    let mut s = Stores::new();
    let d = s.digest(T, "b/k");
    let r = run(&s, &["-t", T, "--fix"]);
    assert_eq!(r.code, 4, "{}{}", r.out, r.err);
    assert!(r.err.contains("pass --yes"), "{}", r.err);
    let r = run_with(&s, &["-t", T, "--fix"], "no\n", true);
    assert_eq!(r.code, 4, "{}", r.err);
    let r = run(&s, &["-t", T, "--fix", "--dry-run"]);
    assert_eq!(r.code, 5, "{}{}", r.out, r.err);
    assert!(
        r.out
            .contains("Dry run: would apply 1 fix(es); nothing was changed."),
        "{}",
        r.out
    );
    assert_eq!(d.with(|d| d.repairs), 0);
    assert!(s.audit().is_empty());
    // --yes means nothing without --fix.
    let r = run(&s, &["-t", T, "--yes"]);
    assert_eq!(r.code, 2, "{}", r.err);
}

#[test]
fn fix_applies_after_yes_and_is_audited() {
    let mut s = Stores::new();
    let d = s.digest(T, "b/k");
    let r = run_with(&s, &["-t", T, "--fix"], "yes\n", true);
    assert_eq!(r.code, 0, "{}{}", r.out, r.err);
    assert!(
        r.err
            .contains("Apply 1 fix(es)? Only 'yes' will be accepted"),
        "{}",
        r.err
    );
    assert!(
        r.out.contains("fixed: set Digest to digest-of-v2"),
        "{}",
        r.out
    );
    assert!(
        r.out.contains("fixed 1, changed 0, refused 0, failed 0"),
        "{}",
        r.out
    );
    assert_eq!(d.with(|d| d.repairs), 1);
    let audit = s.audit();
    assert_eq!(audit.len(), 2, "{audit:?}");
    assert_eq!(audit[0]["event"], "intent");
    assert_eq!(audit[1]["event"], "outcome");
    for rec in &audit {
        assert_eq!(rec["action"], "fix");
        assert_eq!(rec["fix_id"], audit[0]["fix_id"]);
        assert_eq!(rec["kind"], "digest-mismatch");
        assert_eq!(rec["subject"], "b/k");
        assert_eq!(rec["fix"], "set Digest to digest-of-v2");
        assert_eq!(rec["evidence"]["stored digest"], "digest-of-v1");
    }
    assert_eq!(audit[1]["outcome"], "applied");
    assert_eq!(audit[1]["done"][0], "set Digest to digest-of-v2");
    // Healthy afterwards.
    assert_eq!(run(&s, &["-t", T]).code, 0);
}

/// The fix's guards reach the exit code: changed or refused is 4, a failure is 1; a
/// problem no fix can help leaves 5 even when the fixable one was fixed.
#[test]
fn fix_outcomes_map_to_exit_codes() {
    let mut s = Stores::new();
    let d = s.digest(T, "b/k");
    d.with(|d| d.locked = true);
    let r = run(&s, &["-t", T, "--fix", "--yes"]);
    assert_eq!(r.code, 4, "{}{}", r.out, r.err);
    assert!(r.err.contains("the state is locked"), "{}", r.err);
    assert!(
        r.out.contains("fixed 0, changed 0, refused 1, failed 0"),
        "{}",
        r.out
    );
    assert_eq!(s.audit()[1]["outcome"], "refused");

    d.with(|d| {
        d.locked = false;
        d.fail = true
    });
    let r = run(&s, &["-t", T, "--fix", "--yes", "--json"]);
    assert_eq!(r.code, 1, "{}{}", r.out, r.err);
    let v: Value = serde_json::from_str(&r.out).unwrap();
    assert_eq!(v["problems"][0]["fix_result"]["outcome"], "failed");
    assert!(v["problems"][0]["fix_result"]["error"]
        .as_str()
        .unwrap()
        .contains("throttled"));

    d.with(|d| {
        d.fail = false;
        d.unfixable = true
    });
    let r = run(&s, &["-t", T, "--fix", "--yes"]);
    assert_eq!(r.code, 5, "{}{}", r.out, r.err);
    assert_eq!(d.with(|d| d.repairs), 1);
    // The unfixable one's break command names the target it came from.
    assert!(
        r.out.contains(&format!("tflock break --id abc -t '{T}'")),
        "{}",
        r.out
    );
}

/// A store whose object changes between the check and the fix: exit 4, nothing applied.
#[test]
fn changed_since_the_check_is_exit_4() {
    struct Racing(Arc<DigestStore>);
    #[async_trait]
    impl LockStore for Racing {
        fn backend(&self) -> Backend {
            self.0.backend()
        }
        fn target(&self) -> &str {
            self.0.target()
        }
        async fn list(&self) -> Result<Vec<Lock>, Error> {
            self.0.list().await
        }
        async fn delete_if_unchanged(&self, l: &Lock, o: &BreakOptions) -> Result<Broken, Error> {
            self.0.delete_if_unchanged(l, o).await
        }
        async fn recheck(&self, l: &Lock) -> Result<Presence, Error> {
            self.0.recheck(l).await
        }
        async fn diagnose(&self) -> Result<Vec<Finding>, Error> {
            let found = self.0.diagnose().await;
            // Someone writes the object right after the check.
            self.0.with(|d| d.object_version += 1);
            found
        }
        async fn repair(&self, fix: &Fix) -> Result<Repaired, Error> {
            self.0.repair(fix).await
        }
    }
    let mut s = Stores::new();
    let d = DigestStore::new(T, "b/k");
    s.0.insert(T.into(), Arc::new(Racing(d.clone())));
    let r = run(&s, &["-t", T, "--fix", "--yes"]);
    assert_eq!(r.code, 4, "{}{}", r.out, r.err);
    assert!(r.err.contains("changed since the check"), "{}", r.err);
    assert_eq!(d.with(|d| d.repairs), 0);
    assert_eq!(s.audit()[1]["outcome"], "changed");
}

#[test]
fn json_has_the_documented_schema() {
    let mut s = Stores::new();
    s.digest(T, "b/k");
    let r = run(&s, &["-t", T, "--json"]);
    assert_eq!(r.code, 5, "{}", r.err);
    let v: Value = serde_json::from_str(&r.out).unwrap();
    assert_eq!(v["healthy"], false);
    assert_eq!(v["targets"][0], T);
    assert_eq!(v["failed_targets"], 0);
    let p = &v["problems"][0];
    assert_eq!(p["kind"], "digest-mismatch");
    assert_eq!(p["target"], T);
    assert_eq!(p["subject"], "b/k");
    assert_eq!(p["workspace"], "default");
    assert_eq!(p["evidence"][0]["name"], "stored digest");
    assert_eq!(p["evidence"][0]["value"], "digest-of-v1");
    assert_eq!(p["fix"]["description"], "set Digest to digest-of-v2");
    assert!(p["fix_result"].is_null());
    assert!(p["advice"].as_str().unwrap().contains("update-item"));
}

/// A target that fails does not hide the others' problems, and makes the exit 1.
#[test]
fn a_failing_target_is_exit_1() {
    let mut s = Stores::new();
    s.digest(T, "b/k");
    let r = run(&s, &["-t", T, "-t", "memory://down"]);
    assert_eq!(r.code, 1, "{}{}", r.out, r.err);
    assert!(
        r.err.contains("warning: memory://down: unreachable"),
        "{}",
        r.err
    );
    assert!(
        r.out.contains("Problem 1 of 1: digest-mismatch"),
        "{}",
        r.out
    );
    assert!(r.out.contains("this report is incomplete"), "{}", r.out);
}

fn info(id: &str) -> String {
    let created = tflock_core::lockinfo::go_time(Some(chrono::Utc::now()));
    format!(
        r#"{{"ID":"{id}","Operation":"OperationTypeApply","Info":"","Who":"ci@runner","Version":"1.11.4","Created":"{created}","Path":"b/app.tfstate"}}"#
    )
}

const S3: &str = "s3://b?key=app.tfstate";
const DDB: &str = "dynamodb://t?bucket=b&key=app.tfstate";

/// The two halves of a migration-mode lock: both present is fine; one alone, or two
/// different locks, is reported with the break command(s).
#[test]
fn lock_halves_that_disagree_are_found() {
    let mut s = Stores::new();
    let lockfiles = s.named("s3", S3);
    let rows = s.named("dynamodb", DDB);
    let a = "11111111-2222-3333-4444-555555555555";
    lockfiles.hold("b/app.tfstate.tflock", &info(a));
    rows.hold("b/app.tfstate", &info(a));
    let r = run(&s, &["-t", S3, "-t", DDB]);
    assert_eq!(r.code, 0, "{}{}", r.out, r.err);

    let rows2 = s.named("dynamodb", DDB);
    let r = run(&s, &["-t", S3, "-t", DDB]);
    assert_eq!(r.code, 5, "{}{}", r.out, r.err);
    assert!(
        r.out.contains("Problem 1 of 1: halves-disagree"),
        "{}",
        r.out
    );
    assert!(
        r.out
            .contains("b/app.tfstate is locked in the lockfile only, without its DynamoDB row"),
        "{}",
        r.out
    );
    assert!(
        r.out
            .contains(&format!("tflock break --id {a} -t '{S3}' -t '{DDB}'")),
        "{}",
        r.out
    );

    let b = "66666666-7777-8888-9999-000000000000";
    rows2.hold("b/app.tfstate", &info(b));
    let r = run(&s, &["-t", S3, "-t", DDB, "--json"]);
    assert_eq!(r.code, 5, "{}{}", r.out, r.err);
    let v: Value = serde_json::from_str(&r.out).unwrap();
    let p = &v["problems"][0];
    assert_eq!(p["kind"], "halves-disagree");
    assert!(p["summary"].as_str().unwrap().contains("different IDs"));
    let advice = p["advice"].as_str().unwrap();
    assert!(advice.contains(a) && advice.contains(b), "{advice}");
    assert!(p["fix"].is_null());

    // Targets of different configurations are not halves of one lock.
    let mut s = Stores::new();
    s.named("s3", "s3://b?key=other.tfstate")
        .hold("b/app.tfstate.tflock", &info(a));
    s.named("dynamodb", DDB);
    let r = run(&s, &["-t", "s3://b?key=other.tfstate", "-t", DDB]);
    assert_eq!(r.code, 0, "{}{}", r.out, r.err);
}

fn fixture(name: &str) -> String {
    format!(
        "{}/crates/tflock-core/tests/fixtures/digest-errors/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// `--from-error`: the pasted error names bucket and key; only that state is checked, in
/// the DynamoDB targets that can hold its digest row.
#[test]
fn from_error_checks_that_state_only() {
    // Bucket demo-state, key digest/terraform.tfstate, calculated b5aa12..., stored 012345...
    let file = fixture("tf1.11-s3-digest-no-color.txt");
    let mut s = Stores::new();
    let d = s.digest("dynamodb://t", "demo-state/digest/terraform.tfstate");
    let other = s.digest("dynamodb://u", "demo-state/other");
    let r = run(
        &s,
        &["--from-error", &file, "-t", "dynamodb://t", "-t", "s3://x"],
    );
    assert_eq!(r.code, 5, "{}{}", r.out, r.err);
    assert!(
        r.out
            .contains("State:    demo-state/digest/terraform.tfstate"),
        "{}",
        r.out
    );
    // The paste's checksums are not what is there now: said so.
    assert!(
        r.out
            .contains("the pasted error's stored checksum 0123456789abcdef0123456789abcdef is no longer what is there"),
        "{}",
        r.out
    );
    // The unscoped table is asked about that state only.
    let opened = d.opened.lock().unwrap().clone();
    assert_eq!(opened[0].param("bucket"), Some("demo-state"));
    assert_eq!(opened[0].param("key"), Some("digest/terraform.tfstate"));
    assert!(other.opened.lock().unwrap().is_empty());

    // Findings about other states are not shown; none left: exit 0 with what to do.
    let r = run(&s, &["--from-error", &file, "-t", "dynamodb://u"]);
    assert_eq!(r.code, 0, "{}{}", r.out, r.err);
    assert!(
        r.out
            .contains("No problem with the digest of demo-state/digest/terraform.tfstate now"),
        "{}",
        r.out
    );

    // A working directory's table for another bucket: a usage error naming both.
    let mut s = Stores::new();
    s.digest(
        "dynamodb://t?bucket=prod&key=app.tfstate",
        "prod/app.tfstate",
    );
    let r = run(
        &s,
        &[
            "--from-error",
            &file,
            "-t",
            "dynamodb://t?bucket=prod&key=app.tfstate",
        ],
    );
    assert_eq!(r.code, 2, "{}{}", r.out, r.err);
    assert!(
        r.err.contains("covers bucket prod key app.tfstate"),
        "{}",
        r.err
    );
    // No table at all.
    let r = run(&s, &["--from-error", &file, "-t", "s3://x"]);
    assert_eq!(r.code, 2, "{}", r.err);
    assert!(r.err.contains("no dynamodb:// target"), "{}", r.err);
    // Not a digest error.
    let lock = format!(
        "{}/crates/tflock-core/tests/fixtures/lock-errors/tf1.11-apply-no-color.txt",
        env!("CARGO_MANIFEST_DIR")
    );
    let r = run(&s, &["--from-error", &lock, "-t", "dynamodb://t"]);
    assert_eq!(r.code, 2, "{}", r.err);
    assert!(r.err.contains("no \"state data in S3"), "{}", r.err);
}

/// The paste from stdin, and a workspace state of a working directory's configuration.
#[test]
fn from_error_reads_stdin_and_accepts_workspace_states() {
    let text = std::fs::read_to_string(fixture("tf1.11-s3-digest-missing-state.txt")).unwrap();
    // Bucket demo-state, key env:/dev/app/terraform.tfstate.
    let url = "dynamodb://t?bucket=demo-state&key=app/terraform.tfstate";
    let mut s = Stores::new();
    let d = s.digest(url, "demo-state/env:/dev/app/terraform.tfstate");
    let r = run_with(&s, &["--from-error", "-", "-t", url], &text, false);
    assert_eq!(r.code, 5, "{}{}", r.out, r.err);
    assert!(r.out.contains("digest-mismatch"), "{}", r.out);
    // A scoped target keeps its own scope (its workspace naming).
    assert_eq!(
        d.opened.lock().unwrap()[0].param("key"),
        Some("app/terraform.tfstate")
    );
}
