//! The core conformance suite against real files, plus live fcntl holders in another process.

use async_trait::async_trait;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use tflock_core::testkit::{Fixture, Place};
use tflock_core::{BreakOptions, Kind, LockInfo, LockStore, Status};
use tflock_local::LocalStore;

struct LocalPlace {
    dir: tempfile::TempDir,
    store: LocalStore,
}

impl LocalPlace {
    fn state_dir(&self, state: &str) -> PathBuf {
        if state == "default" {
            self.dir.path().to_path_buf()
        } else {
            self.dir.path().join("terraform.tfstate.d").join(state)
        }
    }

    fn write_lock(&self, state: &str, body: &str) {
        let dir = self.state_dir(state);
        std::fs::create_dir_all(&dir).unwrap();
        let tfstate = dir.join("terraform.tfstate");
        if !tfstate.exists() {
            std::fs::write(
                &tfstate,
                format!("{{\"version\":4,\"serial\":1,\"lineage\":\"{state}\"}}"),
            )
            .unwrap();
        }
        std::fs::write(dir.join(".terraform.tfstate.lock.info"), body).unwrap();
    }
}

#[async_trait]
impl Place for LocalPlace {
    fn store(&self) -> &dyn LockStore {
        &self.store
    }
    fn path_of(&self, state: &str) -> String {
        if state == "default" {
            "terraform.tfstate".into()
        } else {
            format!("terraform.tfstate.d/{state}/terraform.tfstate")
        }
    }
    async fn hold(&self, state: &str, info: &LockInfo) -> String {
        self.write_lock(state, &info.to_terraform_json());
        info.id.clone()
    }
    async fn retake(&self, state: &str, info: &LockInfo) -> String {
        self.hold(state, info).await
    }
    async fn current(&self, state: &str) -> Option<String> {
        let text =
            std::fs::read_to_string(self.state_dir(state).join(".terraform.tfstate.lock.info"))
                .ok()?;
        Some(LockInfo::parse(&text).ok()?.id)
    }
    async fn hold_garbage(&self, state: &str) {
        self.write_lock(state, "{\"ID\": not json");
    }
    async fn untouchables(&self) -> String {
        let mut out = Vec::new();
        fingerprint(self.dir.path(), &mut out);
        out.sort();
        out.join("\n")
    }
}

/// Every file except the lock info files, with its bytes and mtime.
fn fingerprint(dir: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let path = entry.path();
        if path.is_dir() {
            fingerprint(&path, out);
        } else if !path.to_string_lossy().ends_with(".lock.info") {
            let meta = entry.metadata().unwrap();
            out.push(format!(
                "{} {:?} {:?}",
                path.display(),
                std::fs::read(&path).unwrap(),
                meta.modified().unwrap()
            ));
        }
    }
}

struct LocalFixture;

#[async_trait]
impl Fixture for LocalFixture {
    async fn place(&self, _name: &str) -> Box<dyn Place> {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path().display().to_string(), dir.path());
        Box::new(LocalPlace { dir, store })
    }
}

async fn fixture() -> Option<LocalFixture> {
    Some(LocalFixture)
}

tflock_core::conformance_suite!(fixture());

/// Holds a POSIX write lock on `file` from another process, the way terraform does.
struct Holder(Child);

impl Holder {
    fn start(file: &Path) -> Holder {
        let mut child = Command::new("python3")
            .args([
                "-c",
                "import fcntl,sys,time\nf=open(sys.argv[1],'r+')\nfcntl.lockf(f,fcntl.LOCK_EX|fcntl.LOCK_NB)\nprint('locked',flush=True)\ntime.sleep(60)",
            ])
            .arg(file)
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 is needed for the fcntl holder");
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        assert_eq!(line.trim(), "locked");
        Holder(child)
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn live_fcntl_holder_is_held_and_never_broken() {
    let place = LocalFixture.place("live").await;
    let info = tflock_core::testkit::sample_info("OperationTypeApply", "terraform.tfstate");
    let id = place.hold("default", &info).await;
    let dir = PathBuf::from(place.store().target());
    let holder = Holder::start(&dir.join("terraform.tfstate"));
    let pid = holder.0.id();

    let locks = place.store().list().await.unwrap();
    assert_eq!(locks.len(), 1);
    assert_eq!(locks[0].held, Some(true));
    assert_eq!(
        locks[0].holder.as_deref(),
        Some(format!("pid {pid}").as_str())
    );
    assert_eq!(
        locks[0].status(chrono::Utc::now(), chrono::Duration::zero()),
        Status::Held
    );
    match place
        .store()
        .break_lock(&locks[0], &BreakOptions::default())
        .await
    {
        Err(e) if e.kind() == Kind::Refused => {
            assert!(e.message().contains(&format!("pid {pid}")), "{e}")
        }
        other => panic!("a live lock must be refused, got {other:?}"),
    }
    assert_eq!(place.current("default").await.as_deref(), Some(id.as_str()));

    // The holder dies (kill -9): the same file is now a leftover, and breakable.
    drop(holder);
    let locks = place.store().list().await.unwrap();
    assert_eq!(locks[0].held, Some(false));
    assert_eq!(
        locks[0].status(chrono::Utc::now(), chrono::Duration::hours(1)),
        Status::Stale
    );
    place
        .store()
        .break_lock(&locks[0], &BreakOptions::default())
        .await
        .unwrap();
    assert_eq!(place.current("default").await, None);
}

#[tokio::test]
async fn holder_appearing_after_listing_wins() {
    let place = LocalFixture.place("late").await;
    let info = tflock_core::testkit::sample_info("OperationTypeApply", "terraform.tfstate");
    let id = place.hold("default", &info).await;
    let locks = place.store().list().await.unwrap();
    assert_eq!(locks[0].held, Some(false));
    let dir = PathBuf::from(place.store().target());
    let _holder = Holder::start(&dir.join("terraform.tfstate"));
    match place
        .store()
        .break_lock(&locks[0], &BreakOptions::default())
        .await
    {
        Err(e) if e.kind() == Kind::Changed => {}
        other => panic!("expected Changed, got {other:?}"),
    }
    assert_eq!(place.current("default").await.as_deref(), Some(id.as_str()));
}

#[tokio::test]
async fn backend_config_under_dot_terraform_is_not_a_lock() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join(".terraform")).unwrap();
    std::fs::write(dir.path().join(".terraform/terraform.tfstate"), "{}").unwrap();
    std::fs::write(
        dir.path().join(".terraform/.terraform.tfstate.lock.info"),
        r#"{"ID":"x"}"#,
    )
    .unwrap();
    let store = LocalStore::new("d", dir.path());
    assert!(store.list().await.unwrap().is_empty());
}

#[tokio::test]
async fn missing_directory_is_a_clear_error() {
    let t = tflock_core::Target::parse("/nonexistent/tflock-dir").unwrap();
    let err = LocalStore::open(&t).err().unwrap();
    assert!(
        err.to_string()
            .starts_with("/nonexistent/tflock-dir: cannot open directory"),
        "{err}"
    );
}

/// Without a state file there is no fcntl lock to take: the break moves the lock info
/// aside and compares what it moved, so a lock written after the listing survives.
#[tokio::test]
async fn leftover_without_a_state_file_is_broken_and_a_new_lock_survives() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path().display().to_string(), dir.path());
    let store: &dyn LockStore = &store;
    let info_path = dir.path().join(".terraform.tfstate.lock.info");
    let old = tflock_core::testkit::sample_info("OperationTypeApply", "terraform.tfstate");
    std::fs::write(&info_path, old.to_terraform_json()).unwrap();
    assert!(!dir.path().join("terraform.tfstate").exists());
    let locks = store.list().await.unwrap();
    assert_eq!(locks.len(), 1);
    assert_eq!(locks[0].held, Some(false));

    // A terraform starts meanwhile: creates and locks the state, writes its lock info.
    let new = tflock_core::testkit::sample_info("OperationTypePlan", "terraform.tfstate");
    std::fs::write(&info_path, new.to_terraform_json()).unwrap();
    match store.break_lock(&locks[0], &BreakOptions::default()).await {
        Err(e) if e.kind() == Kind::Changed => {}
        other => panic!("expected Changed, got {other:?}"),
    }
    assert_eq!(
        std::fs::read_to_string(&info_path).unwrap(),
        new.to_terraform_json(),
        "the new lock info must be left exactly as written"
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        leftovers,
        [".terraform.tfstate.lock.info"],
        "nothing left aside"
    );

    // The new one, once its holder is gone, breaks; no state file is created.
    let locks = store.list().await.unwrap();
    store
        .break_lock(&locks[0], &BreakOptions::default())
        .await
        .unwrap();
    assert!(!info_path.exists());
    assert!(!dir.path().join("terraform.tfstate").exists());
}
