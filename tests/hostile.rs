//! Hostile input through the whole command line: lock metadata written by an attacker
//! (escape sequences, shell metacharacters), secrets in targets and configs, absurd
//! durations, and files that are FIFOs or endless. Every case: a clear error or escaped
//! output, never a panic, a hang, a raw control character or a secret.

mod inproc;
use inproc::{with_audit, Run};

use async_trait::async_trait;
use serde_json::Value;
use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tflock::Resolver;
use tflock_core::memory::MemoryStore;
use tflock_core::{ConnectOptions, Error, LockStore, Target};

struct Stores(BTreeMap<String, Arc<dyn LockStore>>, tempfile::TempDir);

#[async_trait]
impl Resolver for Stores {
    async fn open(&self, target: &Target, _: &ConnectOptions) -> Result<Arc<dyn LockStore>, Error> {
        self.0
            .get(&target.url)
            .cloned()
            .ok_or_else(|| Error::usage(&target.url, "unknown test target"))
    }
}

fn run_with(stores: &Stores, args: &[&str], input: &str, interactive: bool) -> Run {
    let audit = stores.1.path().join("audit.jsonl").display().to_string();
    inproc::tflock(stores, &with_audit(args, &audit), input, interactive)
}

/// What an attacker who can write a lock puts in it.
const EVIL_WHO: &str = "\u{1b}]0;pwned\u{7}\r\u{1b}[2KBreak lock? yes\u{1b}[31m";
const EVIL_INFO: &str = "\u{1b}[1A\u{1b}[2K\u{202e}gnp.exe";
const EVIL_ID: &str = "x'; touch /tmp/P; echo '";
const EVIL_PATH: &str = "bucket/\u{1b}[8mhidden\u{1b}[0m/terraform.tfstate";

fn evil_store() -> (Stores, Arc<MemoryStore>) {
    let mem = Arc::new(MemoryStore::new("memory://evil"));
    let info = serde_json::json!({
        "ID": EVIL_ID,
        "Operation": "OperationTypeApply",
        "Info": EVIL_INFO,
        "Who": EVIL_WHO,
        "Version": "1.11.4",
        "Created": "2026-11-01T00:00:00Z",
        "Path": EVIL_PATH,
    });
    mem.hold("bucket/evil.tflock", &info.to_string());
    let mut map: BTreeMap<String, Arc<dyn LockStore>> = BTreeMap::new();
    map.insert("memory://evil".into(), mem.clone());
    (Stores(map, tempfile::tempdir().unwrap()), mem)
}

/// No control character but newline, and no bidi override, reaches the terminal.
fn assert_clean(what: &str, text: &str) {
    for c in text.chars() {
        assert!(
            c == '\n' || !tflock_core::text::needs_escape(c),
            "{what} has a raw {c:?}:\n{text:?}"
        );
    }
}

#[test]
fn lock_metadata_cannot_drive_the_terminal_or_spoof_the_prompt() {
    let (stores, mem) = evil_store();
    let r = run_with(&stores, &["list", "-t", "memory://evil"], "", false);
    assert_eq!(r.code, 0, "{}", r.err);
    assert_clean("list", &r.out);
    assert!(
        r.out.contains("\\x1b]0;pwned\\x07"),
        "escaped visibly: {}",
        r.out
    );

    let r = run_with(
        &stores,
        &["inspect", EVIL_ID, "-t", "memory://evil"],
        "",
        false,
    );
    assert_eq!(r.code, 0, "{}", r.err);
    assert_clean("inspect", &r.out);
    assert!(r.out.contains("\\u{202e}"), "{}", r.out);

    // The summary before the prompt, and the prompt itself, on a terminal.
    let r = run_with(
        &stores,
        &["break", "--id", EVIL_ID, "-t", "memory://evil"],
        "no\n",
        true,
    );
    assert_eq!(r.code, 4, "{}", r.err);
    assert_clean("break prompt", &r.err);
    assert_clean("break output", &r.out);
    assert_eq!(mem.locks().len(), 1);

    // JSON carries the exact values.
    let r = run_with(
        &stores,
        &["list", "-t", "memory://evil", "--json"],
        "",
        false,
    );
    let v: Value = serde_json::from_str(&r.out).unwrap();
    assert_eq!(v[0]["who"], EVIL_WHO);
    assert_eq!(v[0]["info"]["Info"], EVIL_INFO);
    assert_eq!(v[0]["id"], EVIL_ID);
    assert_eq!(v[0]["path"], EVIL_PATH);
    let r = run_with(
        &stores,
        &["list", "-t", "memory://evil", "-o", "jsonl"],
        "",
        false,
    );
    let line: Value = serde_json::from_str(r.out.trim()).unwrap();
    assert_eq!(line["who"], EVIL_WHO);
}

#[test]
fn the_printed_break_command_is_safe_to_paste() {
    let (stores, _) = evil_store();
    let r = run_with(
        &stores,
        &["inspect", EVIL_ID, "-t", "memory://evil"],
        "",
        false,
    );
    let cmd = r
        .out
        .lines()
        .skip_while(|l| !l.starts_with("Break it with:"))
        .nth(1)
        .expect("a break command")
        .trim()
        .to_string();
    let words = shlex::split(&cmd).expect("the command splits as a shell would");
    assert_eq!(
        words,
        ["tflock", "break", "--id", EVIL_ID, "-t", "memory://evil"],
        "{cmd}"
    );
    // And a real shell runs no `touch`: it just prints the words back.
    let echoed = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "printf '%s\\n' {}",
            cmd.trim_start_matches("tflock ")
        ))
        .current_dir(stores.1.path())
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&echoed.stdout);
    assert_eq!(printed.lines().nth(2), Some(EVIL_ID), "{printed}");
    assert!(!stores.1.path().join("P").exists());
}

/// Runs the real binary (environment-dependent cases), with a deadline: a hang fails.
fn tflock(args: &[&str], env: &[(&str, &str)], dir: &std::path::Path) -> (i32, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tflock"))
        .args(args)
        .envs(env.iter().copied())
        .env("XDG_CONFIG_HOME", dir.join(".config"))
        .env("TFLOCK_AUDIT_LOG", dir.join("audit.jsonl"))
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            // 101 is Rust's panic exit code.
            assert_ne!(status.code(), Some(101), "panicked: {args:?}\n{text}");
            return (status.code().unwrap_or(-1), text);
        }
        if started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("tflock {args:?} hung");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn absurd_durations_are_usage_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for args in [
        vec!["list", "-t", ".", "--stale-after", "10000000000000000"],
        vec!["list", "-t", ".", "--request-timeout", "10000000000000000"],
        vec!["list", "-t", ".", "--older-than", "99999999999999d"],
        vec!["list", "-t", ".", "--stale-after", "18446744073709551615"],
        vec!["wait", "--id", "x", "-t", ".", "--timeout", "1e400h"],
        vec![
            "break",
            "--stale",
            "-t",
            ".",
            "--older-than",
            "9999999999999999999999s",
        ],
    ] {
        let (code, text) = tflock(&args, &[], d);
        assert_eq!(code, 2, "{args:?}: {text}");
        assert!(
            text.contains("too large") || text.contains("invalid"),
            "{text}"
        );
    }
    let (code, text) = tflock(
        &["list", "-t", "."],
        &[("TFLOCK_REQUEST_TIMEOUT", "10000000000000000")],
        d,
    );
    assert_eq!(code, 2, "{text}");
}

/// Known secrets go in through every door; none may come out of any.
#[test]
fn secrets_never_appear_in_any_output() {
    const SECRET: &str = "S3CR3T-do-not-print";
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut outputs = Vec::new();
    // A pasted SAS and a password in a URL.
    for target in [
        format!("azblob://acct/c?sv=2024&sig={SECRET}&bogus=1"),
        format!("s3://AKIAEXAMPLE:{SECRET}@bucket"),
        format!("gs://b?access_token={SECRET}"),
        format!("s3://b?secret_key={SECRET}&region=us-east-1"),
        format!("dynamodb://t?token={SECRET}&region=us-east-1"),
        format!("https://user:{SECRET}@gitlab.example/g/p"),
    ] {
        outputs.push(tflock(&["list", "-t", &target], &[], d).1);
        outputs.push(tflock(&["inspect", "x", "-t", &target], &[], d).1);
        outputs.push(tflock(&["break", "--id", "x", "-t", &target, "--yes"], &[], d).1);
    }
    // A backend block with secrets and a syntax error, and a config file with them.
    let wd = d.join("wd");
    std::fs::create_dir_all(&wd).unwrap();
    std::fs::write(
        wd.join("main.tf"),
        format!("terraform {{\n  backend \"s3\" {{\n    secret_key = \"{SECRET}\"\n    access_key = {SECRET}\"\n  }}\n}}\n"),
    )
    .unwrap();
    outputs.push(tflock(&["list"], &[], &wd).1);
    std::fs::write(
        wd.join("main.tf"),
        format!("terraform {{\n  backend \"s3\" {{\n    bucket = \"b\"\n    key = \"k\"\n    use_lockfile = true\n    access_key = \"AKIAEXAMPLE\"\n    secret_key = \"{SECRET}\"\n    endpoints = {{ s3 = \"http://127.0.0.1:9\" }}\n  }}\n}}\n"),
    )
    .unwrap();
    outputs.push(tflock(&["list", "--request-timeout", "2s"], &[], &wd).1);
    outputs.push(tflock(&["list", "--json", "--request-timeout", "2s"], &[], &wd).1);
    let cfg = d.join("tflock.toml");
    std::fs::write(
        &cfg,
        format!("[targets.a]\nurl = \"s3://b\"\nsecret_key = \"{SECRET}\"\naccess_key = \"AKIAEXAMPLE\"\nbogus = \"{SECRET}\"\n"),
    )
    .unwrap();
    let c = cfg.display().to_string();
    outputs.push(tflock(&["list", "-c", &c], &[], d).1);
    std::fs::write(
        &cfg,
        format!("[targets.a]\nurl = \"s3://b?endpoint=http://127.0.0.1:9\"\nregion = \"us-east-1\"\nsecret_key = \"{SECRET}\"\naccess_key = \"AKIAEXAMPLE\"\n"),
    )
    .unwrap();
    outputs.push(tflock(&["list", "-c", &c, "--request-timeout", "2s"], &[], d).1);
    outputs.push(
        tflock(
            &[
                "break",
                "--stale",
                "-c",
                &c,
                "--yes",
                "--request-timeout",
                "2s",
            ],
            &[],
            d,
        )
        .1,
    );
    let audit = std::fs::read_to_string(d.join("audit.jsonl")).unwrap_or_default();
    outputs.push(audit);
    for (i, text) in outputs.iter().enumerate() {
        assert!(
            !text.contains(SECRET),
            "output {i} leaks the secret:\n{text}"
        );
    }
    // The errors were real, not silence.
    assert!(
        outputs.iter().filter(|t| t.contains("error:")).count() >= 10,
        "{outputs:#?}"
    );
}

#[test]
fn fifos_and_endless_files_are_refused_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let fifo = |p: &std::path::Path| {
        let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    };
    // tflock.toml as a FIFO; *.tf as /dev/zero; .terraform/terraform.tfstate as a FIFO.
    let cfg = d.join("cfg.toml");
    fifo(&cfg);
    let (code, text) = tflock(&["list", "-c", &cfg.display().to_string()], &[], d);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("FIFO"), "{text}");

    let wd = d.join("wd");
    std::fs::create_dir_all(wd.join(".terraform")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", wd.join("main.tf")).unwrap();
    let (code, text) = tflock(&["list"], &[], &wd);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("main.tf"), "{text}");
    fifo(&wd.join(".terraform/terraform.tfstate"));
    let (code, text) = tflock(&["list"], &[], &wd);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("terraform.tfstate"), "{text}");

    // A corrupt initialised backend is an error naming the file, not a silent fallback.
    let wd2 = d.join("wd2");
    std::fs::create_dir_all(wd2.join(".terraform")).unwrap();
    std::fs::write(wd2.join("main.tf"), "terraform {\n  backend \"s3\" {}\n}\n").unwrap();
    std::fs::write(wd2.join(".terraform/terraform.tfstate"), [0xff, 0xfe, 0x00]).unwrap();
    let (code, text) = tflock(&["list"], &[], &wd2);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains(".terraform/terraform.tfstate"), "{text}");
}
