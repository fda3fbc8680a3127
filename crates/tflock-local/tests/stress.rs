//! Issue 9 §6 under load: one thread rewrites `.terraform.tfstate.lock.info` with a new ID
//! in a loop while another lists and breaks what it listed, many times over. What a break
//! removes must be the info it listed:
//!
//! - a writer that replaces the file atomically (write + rename): every info the writer
//!   finds gone was removed by a break that reported success for exactly that ID;
//! - Terraform's own way (`ioutil.WriteFile`: open with O_TRUNC, write in place): the same,
//!   except for one race the byte compare cannot see and this test pins down: a write
//!   that opened the file just before a successful break moved it aside lands in the
//!   removed file. Only the write right after a removed one can be lost that way.
//! - In both: an older info is never put back over a newer one, and nothing is left aside.
//!
//! There is no state file: the case where the move-aside compare is the whole guard (with
//! one, the break holds Terraform's fcntl lock, which a real Terraform needs before it
//! writes the info; this process's own writer thread is not excluded by it).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tflock_core::testkit::sample_info;
use tflock_core::{BreakOptions, Kind, LockInfo, LockStore};
use tflock_local::LocalStore;

const INFO: &str = ".terraform.tfstate.lock.info";
const WRITES: usize = 2000;

#[derive(Clone, Copy, PartialEq)]
enum Writer {
    Atomic,
    InPlace,
}

/// The ID in the info file, `Err` when there is none.
fn id_in(path: &Path) -> Result<Option<String>, ()> {
    match std::fs::read(path) {
        Ok(b) => Ok(LockInfo::parse(&String::from_utf8_lossy(&b))
            .ok()
            .map(|i| i.id)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(()),
        Err(e) => panic!("{e}"),
    }
}

struct Outcome {
    written: Vec<String>,
    broken: HashSet<String>,
    changed: usize,
    /// Written by the writer, later found gone.
    vanished: Vec<String>,
    /// (ours, what was there instead)
    resurrected: Vec<(String, String)>,
    left_aside: Vec<String>,
}

fn run(kind: Writer) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let path: PathBuf = dir.path().join(INFO);
    let written: Arc<Mutex<Vec<String>>> = Arc::default();
    let vanished: Arc<Mutex<Vec<String>>> = Arc::default();
    let resurrected: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let done = Arc::new(AtomicBool::new(false));
    // Set while a break runs: a missing file is then maybe only moved aside for a moment.
    let breaking = Arc::new(AtomicBool::new(false));

    let writer = {
        let (path, written, vanished, resurrected, done, breaking) = (
            path.clone(),
            written.clone(),
            vanished.clone(),
            resurrected.clone(),
            done.clone(),
            breaking.clone(),
        );
        std::thread::spawn(move || {
            let mut last: Option<String> = None;
            let tmp = path.with_extension("writer-tmp");
            for _ in 0..WRITES {
                if let Some(prev) = &last {
                    // What is there now; a break in progress is waited out, then read again.
                    let now = loop {
                        match id_in(&path) {
                            Ok(id) => break Some(id),
                            Err(()) if breaking.load(Ordering::SeqCst) => {
                                std::thread::sleep(Duration::from_micros(50))
                            }
                            Err(()) => break id_in(&path).ok(),
                        }
                    };
                    match now {
                        None => vanished.lock().unwrap().push(prev.clone()),
                        Some(Some(id)) if &id != prev => {
                            resurrected.lock().unwrap().push((prev.clone(), id))
                        }
                        Some(_) => {}
                    }
                }
                let info = sample_info("OperationTypeApply", "terraform.tfstate");
                written.lock().unwrap().push(info.id.clone());
                match kind {
                    // Terraform's ioutil.WriteFile: O_TRUNC and write in place.
                    Writer::InPlace => std::fs::write(&path, info.to_terraform_json()).unwrap(),
                    Writer::Atomic => {
                        std::fs::write(&tmp, info.to_terraform_json()).unwrap();
                        std::fs::rename(&tmp, &path).unwrap();
                    }
                }
                last = Some(info.id);
            }
            done.store(true, Ordering::SeqCst);
        })
    };

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let store = LocalStore::new(dir.path().display().to_string(), dir.path());
    let store: &dyn LockStore = &store;
    let mut broken: HashSet<String> = HashSet::new();
    let mut changed = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    rt.block_on(async {
        while !done.load(Ordering::SeqCst) && Instant::now() < deadline {
            let Ok(locks) = store.list().await else {
                continue;
            };
            for lock in locks {
                // As `tflock break --id`: only locks whose ID could be read.
                if lock.id.is_empty() {
                    continue;
                }
                breaking.store(true, Ordering::SeqCst);
                let result = store.break_lock(&lock, &BreakOptions::default()).await;
                breaking.store(false, Ordering::SeqCst);
                match result {
                    Ok(_) => {
                        broken.insert(lock.id.clone());
                    }
                    Err(e) if e.kind() == Kind::Changed => changed += 1,
                    Err(e) => panic!("break failed: {e}"),
                }
            }
        }
    });
    writer.join().unwrap();
    assert!(
        done.load(Ordering::SeqCst),
        "the writer did not finish in time"
    );
    let left_aside = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != INFO && !n.ends_with("writer-tmp"))
        .collect();
    let written = written.lock().unwrap().clone();
    let vanished = vanished.lock().unwrap().clone();
    let resurrected = resurrected.lock().unwrap().clone();
    Outcome {
        written,
        broken,
        changed,
        vanished,
        resurrected,
        left_aside,
    }
}

fn check(kind: Writer) {
    let o = run(kind);
    let unreported: Vec<&String> = o
        .vanished
        .iter()
        .filter(|id| !o.broken.contains(*id))
        .collect();
    eprintln!(
        "{} writes: {} breaks removed, {} changed, {} infos found gone, {} of them not reported by a break",
        o.written.len(),
        o.broken.len(),
        o.changed,
        o.vanished.len(),
        unreported.len()
    );
    let written: HashSet<&String> = o.written.iter().collect();
    assert!(
        o.broken.iter().all(|id| written.contains(id)),
        "a break removed an ID nobody wrote"
    );
    for id in unreported {
        let i = o.written.iter().position(|w| w == id).unwrap();
        let follows_a_removal = i > 0 && o.broken.contains(&o.written[i - 1]);
        assert!(
            kind == Writer::InPlace && follows_a_removal,
            "lock info {id} disappeared without a break reporting it removed"
        );
    }
    assert!(
        o.resurrected.is_empty(),
        "an older lock info was put back over a newer one: {:?}",
        o.resurrected
    );
    assert!(o.left_aside.is_empty(), "left aside: {:?}", o.left_aside);
    assert!(
        !o.broken.is_empty(),
        "no break succeeded: the race was not exercised"
    );
    assert!(
        o.changed > 0,
        "no break met a changed lock: the race was not exercised"
    );
}

#[test]
fn breaks_never_remove_an_info_they_did_not_list_atomic_writer() {
    check(Writer::Atomic);
}

#[test]
fn breaks_never_remove_an_info_they_did_not_list_terraforms_writer() {
    check(Writer::InPlace);
}
