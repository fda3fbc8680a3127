//! Issue 10 §3: whatever sits at `.terraform.tfstate.lock.info` or `terraform.tfstate` (a
//! FIFO, a symlink to /dev/zero, a 2 MiB file, a directory), `list` finishes, lists the
//! lock as unreadable with the reason, and a break refuses (nothing is waited on, nothing
//! removed). Each case runs on a thread with a deadline: a hang is a failure.

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;
use tflock_core::{BreakOptions, Kind, LockStore, Status};
use tflock_local::LocalStore;

const INFO: &str = ".terraform.tfstate.lock.info";
const STATE: &str = "terraform.tfstate";

fn mkfifo(path: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
}

fn good_info() -> String {
    tflock_core::testkit::sample_info("OperationTypeApply", STATE).to_terraform_json()
}

/// What list and a break of each listed lock said, within 20 s or the test fails.
fn list_and_break(dir: &Path) -> (Vec<tflock_core::Lock>, Vec<Result<(), tflock_core::Error>>) {
    let dir = dir.to_path_buf();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let store = LocalStore::new(dir.display().to_string(), &dir);
        let store: &dyn LockStore = &store;
        let out = rt.block_on(async {
            let locks = store.list().await.unwrap();
            let mut breaks = Vec::new();
            for l in &locks {
                breaks.push(
                    store
                        .break_lock(l, &BreakOptions::default())
                        .await
                        .map(|_| ()),
                );
            }
            (locks, breaks)
        });
        let _ = tx.send(out);
    });
    rx.recv_timeout(Duration::from_secs(20))
        .expect("list or break blocked (or panicked)")
}

type Setup = fn(&Path);

#[test]
fn hostile_files_are_listed_as_unreadable_and_never_waited_on() {
    let cases: Vec<(&str, Setup, &str)> = vec![
        (
            "FIFO at the info path",
            |d| mkfifo(&d.join(INFO)),
            "is a FIFO, not a regular file",
        ),
        (
            "FIFO at the state path",
            |d| {
                mkfifo(&d.join(STATE));
                std::fs::write(d.join(INFO), good_info()).unwrap();
            },
            "is a FIFO, not a regular file; whether a process holds it cannot be told",
        ),
        (
            "FIFO at both",
            |d| {
                mkfifo(&d.join(STATE));
                mkfifo(&d.join(INFO));
            },
            "is a FIFO",
        ),
        (
            "symlink to /dev/zero at the info path",
            |d| std::os::unix::fs::symlink("/dev/zero", d.join(INFO)).unwrap(),
            "is a character device, not a regular file",
        ),
        (
            "symlink to /dev/zero at the state path",
            |d| {
                std::os::unix::fs::symlink("/dev/zero", d.join(STATE)).unwrap();
                std::fs::write(d.join(INFO), good_info()).unwrap();
            },
            "is a character device, not a regular file",
        ),
        (
            "2 MiB info file",
            |d| std::fs::write(d.join(INFO), vec![b'{'; 2 << 20]).unwrap(),
            "is larger than 1 MiB",
        ),
        (
            "directory at the info path",
            |d| std::fs::create_dir(d.join(INFO)).unwrap(),
            "is a directory, not a regular file",
        ),
        (
            "directory at the state path",
            |d| {
                std::fs::create_dir(d.join(STATE)).unwrap();
                std::fs::write(d.join(INFO), good_info()).unwrap();
            },
            "is a directory, not a regular file",
        ),
    ];
    for (what, setup, reason) in cases {
        let dir = tempfile::tempdir().unwrap();
        setup(dir.path());
        let before: Vec<_> = names(dir.path());
        let (locks, breaks) = list_and_break(dir.path());
        assert_eq!(locks.len(), 1, "{what}: {locks:#?}");
        let why = locks[0].info_error.as_deref().unwrap_or_default();
        assert!(why.contains(reason), "{what}: {why}");
        assert!(!why.contains('\n'), "{what}: {why}");
        assert_eq!(
            locks[0].status(chrono::Utc::now(), chrono::Duration::hours(1)),
            Status::Unreadable,
            "{what}"
        );
        match &breaks[0] {
            Err(e) if e.kind() == Kind::Refused => {}
            other => panic!("{what}: a break must be refused, got {other:?}"),
        }
        assert_eq!(
            names(dir.path()),
            before,
            "{what}: something was moved or removed"
        );
    }
}

/// A regular info file beside a state that became a FIFO after listing: the break's
/// guard refuses instead of opening it.
#[test]
fn state_turned_into_a_fifo_after_listing_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    std::fs::write(d.join(STATE), "{}").unwrap();
    std::fs::write(d.join(INFO), good_info()).unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let store = LocalStore::new(d.display().to_string(), &d);
        let store: &dyn LockStore = &store;
        let r = rt.block_on(async {
            let locks = store.list().await.unwrap();
            std::fs::remove_file(d.join(STATE)).unwrap();
            mkfifo(&d.join(STATE));
            store
                .break_lock(&locks[0], &BreakOptions::default())
                .await
                .map(|_| ())
        });
        let _ = tx.send(r);
    });
    let r = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("break blocked");
    match r {
        Err(e) if e.kind() == Kind::Refused => assert!(e.message().contains("FIFO"), "{e}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(dir.path().join(INFO).exists());
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}
