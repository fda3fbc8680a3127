//! Helpers for end-to-end tests: a Terraform working directory driven by the real
//! `terraform` binary, and the built `tflock` binary run against it.
#![allow(dead_code)]

pub mod aws;
pub mod azure;
pub mod gcs;
pub mod pg;

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// `Some(())` when the real terraform binary can run. Without it the test is skipped
/// with a printed reason, except under scripts/test (TFLOCK_REQUIRE_EMULATORS=1), where a
/// missing terraform fails.
pub fn require_terraform() -> Option<()> {
    let ok = Command::new("terraform")
        .arg("version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return Some(());
    }
    if std::env::var("TFLOCK_REQUIRE_EMULATORS").as_deref() == Ok("1") {
        panic!(
            "terraform is not on PATH but TFLOCK_REQUIRE_EMULATORS=1: the end-to-end tests need it"
        );
    }
    eprintln!("skipping: terraform is not on PATH");
    None
}

/// The config every end-to-end test applies: one built-in resource whose provisioner
/// prints `held` and sleeps while terraform holds the state lock. No provider download.
pub fn main_tf(backend_block: &str) -> String {
    format!(
        r#"terraform {{
{backend_block}
}}

variable "sleep" {{
  type    = number
  default = 0
}}

resource "terraform_data" "hold" {{
  triggers_replace = timestamp()
  provisioner "local-exec" {{
    command = "echo held; sleep ${{var.sleep}}"
  }}
}}
"#
    )
}

pub struct Workdir {
    pub dir: tempfile::TempDir,
    pub env: Vec<(String, String)>,
}

impl Workdir {
    /// A working directory whose main.tf uses `backend_block` (e.g. `backend "s3" {...}`;
    /// empty for the local backend).
    pub fn new(backend_block: &str) -> Workdir {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("main.tf"), main_tf(backend_block)).unwrap();
        let cli_config = dir.path().join(".terraformrc-empty");
        std::fs::write(&cli_config, "").unwrap();
        let env = vec![
            (
                "TF_CLI_CONFIG_FILE".to_string(),
                cli_config.display().to_string(),
            ),
            ("CHECKPOINT_DISABLE".into(), "1".into()),
            ("TF_IN_AUTOMATION".into(), "1".into()),
            ("TF_INPUT".into(), "0".into()),
            // tflock's audit log and config stay inside the test directory.
            (
                "TFLOCK_AUDIT_LOG".into(),
                dir.path().join("audit.jsonl").display().to_string(),
            ),
            (
                "XDG_CONFIG_HOME".into(),
                dir.path().join(".config").display().to_string(),
            ),
        ];
        Workdir { dir, env }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Adds an environment variable for every terraform and tflock run.
    pub fn env(&mut self, key: &str, value: &str) -> &mut Self {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.into(), value.into()));
        self
    }

    fn command(&self, program: &str, args: &[&str]) -> Command {
        let mut c = Command::new(program);
        c.args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null());
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    /// Runs terraform to completion.
    pub fn terraform(&self, args: &[&str]) -> Output {
        self.command("terraform", args)
            .output()
            .expect("run terraform")
    }

    /// Runs terraform and panics with its output unless it succeeds.
    pub fn terraform_ok(&self, args: &[&str]) -> String {
        let out = self.terraform(args);
        let text = combined(&out);
        assert!(out.status.success(), "terraform {args:?} failed:\n{text}");
        text
    }

    pub fn init(&self) {
        self.terraform_ok(&["init", "-input=false", "-no-color"]);
    }

    /// A complete apply (creates the state, and for s3 the digest row).
    pub fn apply(&self) {
        self.terraform_ok(&["apply", "-auto-approve", "-input=false", "-no-color"]);
    }

    /// Starts an apply that holds the state lock until killed. Returns once the
    /// provisioner printed `held` (the lock is taken before any resource runs).
    pub fn start_holding_apply(&self) -> HeldApply {
        let mut cmd = self.command(
            "terraform",
            &[
                "apply",
                "-auto-approve",
                "-input=false",
                "-no-color",
                "-var",
                "sleep=300",
            ],
        );
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = cmd.spawn().expect("spawn terraform apply");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut seen = String::new();
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                seen.push_str(&line);
                seen.push('\n');
                if line.contains("(local-exec): held") {
                    let _ = tx.send(Ok(seen.clone()));
                }
            }
            let _ = tx.send(Err(seen));
        });
        match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(Ok(_)) => HeldApply { child: Some(child) },
            other => {
                let _ = child.kill();
                let err = child
                    .wait_with_output()
                    .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
                    .unwrap_or_default();
                panic!("terraform apply never reached the provisioner: {other:?}\nstderr:\n{err}");
            }
        }
    }

    /// A stale lock: an apply killed with -9 while it holds the lock, after which `plan`
    /// fails with `Error acquiring the state lock`. Returns the ID in the Lock Info
    /// terraform printed, and the plan's output.
    pub fn kill_holding_apply(&self) -> (String, String) {
        self.start_holding_apply().kill9();
        let (ok, out) = self.plan();
        assert!(!ok, "plan must fail on the stale lock:\n{out}");
        assert!(out.contains("Error acquiring the state lock"), "{out}");
        let id = lock_id_in(&out).expect("terraform printed the Lock Info");
        (id, out)
    }

    /// `terraform plan -lock-timeout=0s`: (succeeded, combined output).
    pub fn plan(&self) -> (bool, String) {
        let out = self.terraform(&["plan", "-lock-timeout=0s", "-input=false", "-no-color"]);
        (out.status.success(), combined(&out))
    }

    /// Runs the built tflock in this directory with the same environment.
    pub fn tflock(&self, args: &[&str]) -> Output {
        self.command(env!("CARGO_BIN_EXE_tflock"), args)
            .output()
            .expect("run tflock")
    }

    /// Runs the built tflock with `extra` environment variables on top of this
    /// directory's (e.g. another `TF_WORKSPACE` for tflock only).
    pub fn tflock_with_env(&self, args: &[&str], extra: &[(&str, &str)]) -> Output {
        let mut c = self.command(env!("CARGO_BIN_EXE_tflock"), args);
        for (k, v) in extra {
            c.env(k, v);
        }
        c.output().expect("run tflock")
    }

    /// `tflock list --json` parsed; panics unless it exits 0.
    pub fn tflock_list_json(&self, targets: &[&str]) -> Vec<serde_json::Value> {
        let mut args = vec!["list", "--json"];
        for t in targets {
            args.extend(["-t", t]);
        }
        let out = self.tflock(&args);
        assert!(
            out.status.success(),
            "tflock list failed: {}",
            combined(&out)
        );
        serde_json::from_slice(&out.stdout).expect("tflock list --json prints a JSON array")
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// A terraform apply holding the lock in the background.
pub struct HeldApply {
    child: Option<Child>,
}

impl HeldApply {
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// `kill -9` of terraform, as a CI runner killing a job would: the lock stays behind.
    /// The provisioner's orphaned shell is cleaned up afterwards.
    pub fn kill9(mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = child.id() as i32;
            // SAFETY: plain kill(2) on our own child and its process group.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
            let _ = child.wait();
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
        }
    }
}

impl Drop for HeldApply {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = child.id() as i32;
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn combined(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The `ID:` from the `Lock Info:` block of `Error acquiring the state lock`.
pub fn lock_id_in(terraform_output: &str) -> Option<String> {
    let block = &terraform_output[terraform_output.find("Lock Info:")?..];
    block
        .lines()
        .find_map(|l| l.trim().strip_prefix("ID:").map(|id| id.trim().to_string()))
}

pub fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

/// `tflock list --json` in the working directory (no -t, so discovery from the backend
/// block): exactly one lock, of `backend`, under `id`, held by an apply; and `inspect`
/// names the command that breaks it. Returns the listed lock.
pub fn assert_one_lock_listed(wd: &Workdir, backend: &str, id: &str) -> serde_json::Value {
    let locks = wd.tflock_list_json(&[]);
    assert_eq!(locks.len(), 1, "{locks:#?}");
    assert_eq!(locks[0]["backend"], backend);
    assert_eq!(locks[0]["id"], id);
    assert_eq!(locks[0]["operation"], "OperationTypeApply");
    let inspect = wd.tflock(&["inspect", id]);
    assert_eq!(code(&inspect), 0, "{}", combined(&inspect));
    assert!(combined(&inspect).contains(&format!("tflock break --id {id}")));
    locks[0].clone()
}

/// A wrong ID names no lock: exit 3 (no such lock), `writes()` (what the store counts)
/// unchanged, and terraform is still locked out.
pub fn assert_wrong_id_changes_nothing(wd: &Workdir, writes: impl Fn() -> usize) {
    let before = writes();
    let wrong = break_unknown_id(wd);
    assert_eq!(code(&wrong), 3, "{}", combined(&wrong));
    assert_eq!(writes(), before, "a wrong ID sent a write");
    let (ok, _) = wd.plan();
    assert!(!ok, "still locked after a wrong ID");
}

/// `tflock break --id <an ID no lock has> --yes` in the working directory.
pub fn break_unknown_id(wd: &Workdir) -> Output {
    wd.tflock(&[
        "break",
        "--id",
        "00000000-0000-0000-0000-000000000000",
        "--yes",
    ])
}
