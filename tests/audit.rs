//! The audit log under concurrency and faults: two tflock processes breaking hundreds of
//! locks into one log; a log that cannot be written (no record, no break); an outcome
//! record that cannot be written after the lock is gone (a loud warning, exit 1, the
//! batch goes on). Its own test binary: one test changes a process-wide resource limit.

mod inproc;

use async_trait::async_trait;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::process::Command;
use std::sync::Arc;
use tflock::Resolver;
use tflock_core::memory::MemoryStore;
use tflock_core::{
    Backend, BreakOptions, Broken, ConnectOptions, Error, Guard, Lock, LockStore, Presence, Target,
};

/// The file-size limit one test sets is process-wide (and inherited by the processes the
/// others start): the tests of this binary run one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A working directory with `n` stale local locks (crash leftovers: no process holds them).
fn leftovers(n: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..n {
        let ws = dir
            .path()
            .join("terraform.tfstate.d")
            .join(format!("ws{i:04}"));
        std::fs::create_dir_all(&ws).unwrap();
        let info = tflock_core::testkit::sample_info("OperationTypeApply", "terraform.tfstate");
        std::fs::write(
            ws.join(".terraform.tfstate.lock.info"),
            info.to_terraform_json(),
        )
        .unwrap();
    }
    dir
}

fn records(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not one JSON record ({e}): {l:?}"))
        })
        .collect()
}

#[test]
fn two_processes_breaking_hundreds_of_locks_write_whole_records() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    const N: usize = 250;
    let (a, b) = (leftovers(N), leftovers(N));
    let log = tempfile::tempdir().unwrap();
    let audit = log.path().join("audit.jsonl");
    let start = |dir: &std::path::Path| {
        Command::new(env!("CARGO_BIN_EXE_tflock"))
            .args(["break", "--stale", "--yes", "-t"])
            .arg(dir)
            .arg("--audit-log")
            .arg(&audit)
            .stdin(std::process::Stdio::null())
            .output()
    };
    let (ra, rb) = std::thread::scope(|s| {
        let ta = s.spawn(|| start(a.path()).unwrap());
        let tb = s.spawn(|| start(b.path()).unwrap());
        (ta.join().unwrap(), tb.join().unwrap())
    });
    for r in [&ra, &rb] {
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
        assert!(String::from_utf8_lossy(&r.stdout).contains(&format!("broken {N}, changed 0")));
    }
    let all = records(&audit);
    assert_eq!(all.len(), 4 * N, "one intent and one outcome per lock");
    let mut per_location: HashMap<String, (usize, usize)> = HashMap::new();
    let mut intents: HashMap<String, String> = HashMap::new();
    for r in &all {
        let loc = r["location"].as_str().unwrap().to_string();
        let e = per_location.entry(loc.clone()).or_default();
        match r["event"].as_str().unwrap() {
            "intent" => {
                e.0 += 1;
                intents.insert(r["break_id"].as_str().unwrap().into(), loc);
            }
            "outcome" => {
                e.1 += 1;
                assert_eq!(r["outcome"], "removed", "{r}");
                // Its intent came first, for the same location.
                assert_eq!(
                    intents.get(r["break_id"].as_str().unwrap()),
                    Some(&loc),
                    "{r}"
                );
            }
            other => panic!("unknown event {other}"),
        }
        for key in [
            "time",
            "tflock_version",
            "user",
            "host",
            "command",
            "target",
            "id",
            "lock_info",
        ] {
            assert!(!r[key].is_null(), "{key} missing in {r}");
        }
    }
    assert_eq!(per_location.len(), 2 * N);
    assert!(
        per_location.values().all(|&c| c == (1, 1)),
        "{per_location:?}"
    );
}

#[test]
fn an_unwritable_log_means_no_break() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let dir = leftovers(1);
    let out = Command::new(env!("CARGO_BIN_EXE_tflock"))
        .args(["break", "--stale", "--yes", "-t"])
        .arg(dir.path())
        .args(["--audit-log", "/dev/full"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot write the audit log"));
    let info = dir
        .path()
        .join("terraform.tfstate.d/ws0000/.terraform.tfstate.lock.info");
    assert!(info.exists(), "the lock was removed without a record");
}

/// A store whose break makes the audit log unwritable (file size limit) once the lock is
/// gone; the next store lifts it before its own break.
struct Limiting {
    inner: Arc<MemoryStore>,
    audit: std::path::PathBuf,
    /// true: limit the log's size on delete; false: lift the limit in break_guard.
    limit: bool,
}

fn set_file_limit(bytes: libc::rlim_t) {
    let lim = libc::rlimit {
        rlim_cur: bytes,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: plain syscalls with valid arguments.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &lim), 0);
    }
}

#[async_trait]
impl LockStore for Limiting {
    fn backend(&self) -> Backend {
        self.inner.backend()
    }
    fn target(&self) -> &str {
        self.inner.target()
    }
    async fn list(&self) -> Result<Vec<Lock>, Error> {
        self.inner.list().await
    }
    async fn break_guard(&self) -> Result<Guard, Error> {
        if !self.limit {
            set_file_limit(libc::RLIM_INFINITY);
        }
        Ok(Guard::default())
    }
    async fn delete_if_unchanged(&self, lock: &Lock, o: &BreakOptions) -> Result<Broken, Error> {
        let done = self.inner.delete_if_unchanged(lock, o).await;
        if self.limit {
            set_file_limit(std::fs::metadata(&self.audit).unwrap().len());
        }
        done
    }
    async fn recheck(&self, lock: &Lock) -> Result<Presence, Error> {
        self.inner.recheck(lock).await
    }
}

struct Stores(BTreeMap<String, Arc<dyn LockStore>>);

#[async_trait]
impl Resolver for Stores {
    async fn open(&self, t: &Target, _: &ConnectOptions) -> Result<Arc<dyn LockStore>, Error> {
        self.0
            .get(&t.url)
            .cloned()
            .ok_or_else(|| Error::usage(&t.url, "unknown test target"))
    }
}

#[test]
fn an_outcome_that_cannot_be_recorded_is_loud_and_the_batch_goes_on() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let log = tempfile::tempdir().unwrap();
    let audit = log.path().join("audit.jsonl");
    let info = |id: &str| {
        format!(
            r#"{{"ID":"{id}","Operation":"OperationTypeApply","Who":"a@b","Created":"2020-01-01T00:00:00Z","Path":"p/{id}"}}"#
        )
    };
    let (a, b) = (
        Arc::new(MemoryStore::new("memory://a")),
        Arc::new(MemoryStore::new("memory://b")),
    );
    a.hold("a.tflock", &info("11111111-0000-0000-0000-000000000000"));
    b.hold("b.tflock", &info("22222222-0000-0000-0000-000000000000"));
    let mut map: BTreeMap<String, Arc<dyn LockStore>> = BTreeMap::new();
    map.insert(
        "memory://a".into(),
        Arc::new(Limiting {
            inner: a.clone(),
            audit: audit.clone(),
            limit: true,
        }),
    );
    map.insert(
        "memory://b".into(),
        Arc::new(Limiting {
            inner: b.clone(),
            audit: audit.clone(),
            limit: false,
        }),
    );
    let a_path = audit.display().to_string();
    let r = inproc::tflock(
        &Stores(map),
        &[
            "break",
            "--stale",
            "--yes",
            "-t",
            "memory://a",
            "-t",
            "memory://b",
            "--audit-log",
            &a_path,
        ],
        "",
        false,
    );
    set_file_limit(libc::RLIM_INFINITY);
    let (code, out, err) = (r.code, r.out, r.err);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("could not be recorded in the audit log") && err.contains("(removed)"),
        "{err}"
    );
    assert!(
        a.locks().is_empty() && b.locks().is_empty(),
        "the batch went on"
    );
    assert!(out.contains("broken 2, changed 0"), "{out}");
    let all = records(&audit);
    let events: Vec<(&str, &str)> = all
        .iter()
        .map(|r| (r["event"].as_str().unwrap(), r["target"].as_str().unwrap()))
        .collect();
    assert_eq!(
        events,
        [
            ("intent", "memory://a"),
            ("intent", "memory://b"),
            ("outcome", "memory://b")
        ],
        "{all:#?}"
    );
}
