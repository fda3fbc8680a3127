//! Startup cost of the HTTP backends: a target on a plain-http endpoint (an emulator, a
//! local agent) loads no certificate. `SSL_CERT_FILE` names a FIFO nobody writes, which is
//! where the platform verifier looks first: any reader blocks on it, so a certificate
//! store loaded anyway shows as a hang (caught by a deadline), not as a slow test. Every
//! endpoint is a closed loopback port: the answer that counts is "cannot connect".
//! (aws and azure have their own such tests against their emulators.)

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn plain_http_endpoints_load_no_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("ca.pem");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success(), "mkfifo");
    let certs = dir.path().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\ncurrent-context: f\nclusters:\n- name: f\n  cluster:\n    server: http://127.0.0.1:1\ncontexts:\n- name: f\n  context:\n    cluster: f\n    user: me\nusers:\n- name: me\n  user:\n    token: t\n",
    )
    .unwrap();
    for target in [
        "consul://127.0.0.1:1/tf/app".to_string(),
        format!("k8s:///default?kubeconfig={}", kubeconfig.display()),
        "http://127.0.0.1:1/lock?unlock_address=http://127.0.0.1:1/lock".to_string(),
        "gitlab://127.0.0.1:1/group/project?scheme=http".to_string(),
        "gs://bucket?endpoint=http://127.0.0.1:1".to_string(),
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tflock"))
            .args(["list", "-t", &target, "--request-timeout", "2s"])
            .env("SSL_CERT_FILE", &fifo)
            .env("SSL_CERT_DIR", &certs)
            .env("CONSUL_HTTP_TOKEN", "t")
            .env("XDG_CONFIG_HOME", dir.path())
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > Duration::from_secs(15) {
                let _ = child.kill();
                panic!("{target}: still running after 15 s: a certificate store was read");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(status.code(), Some(1), "{target}: {err}");
        assert!(err.contains("cannot connect"), "{target}: {err}");
    }
}
