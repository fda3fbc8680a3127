//! Startup cost: a target on a plain-http endpoint (an emulator, a local gateway) must not
//! load the system's CA certificates, which the SDK's default client reads at the first
//! request. `SSL_CERT_FILE` points at a FIFO nobody writes: any reader blocks on it, so a
//! CA store loaded anyway shows as a hang (caught by a watchdog), not a slow test. One
//! test in this binary: the environment is process-wide.

use std::sync::mpsc;
use std::time::Duration;
use tflock_core::testkit::require_env;
use tflock_core::{ConnectOptions, Target};

#[test]
fn a_plain_http_endpoint_loads_no_ca_certificates() {
    let Some(moto) = require_env("TFLOCK_TEST_MOTO", "moto (S3 + DynamoDB emulator)") else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("tflock-startup-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("certs")).unwrap();
    let fifo = dir.join("ca.pem");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success(), "mkfifo");
    std::env::set_var("SSL_CERT_FILE", &fifo);
    std::env::set_var("SSL_CERT_DIR", dir.join("certs"));
    std::env::set_var("AWS_ACCESS_KEY_ID", "test");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "test");
    std::env::set_var("AWS_REGION", "us-east-1");
    std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");

    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let outcome = rt.block_on(async {
            let mut kinds = Vec::new();
            for url in [
                format!("s3://tflock-startup-none?endpoint={moto}"),
                format!("dynamodb://tflock-startup-none?endpoint={moto}"),
                format!(
                    "dynamodb://tflock-startup-none?bucket=tflock-startup-none&key=k&endpoint={moto}&s3_endpoint={moto}"
                ),
            ] {
                let store = tflock_aws::open(&Target::parse(&url).unwrap(), &ConnectOptions::default())
                    .await
                    .unwrap();
                // The bucket or table does not exist: an answer from moto is what counts.
                let err = store.list().await.unwrap_err();
                kinds.push((url, err.to_string()));
            }
            kinds
        });
        let _ = done.send(outcome);
    });
    let answers = finished
        .recv_timeout(Duration::from_secs(20))
        .expect("listing over plain http blocked: the CA certificates were read");
    for (url, err) in answers {
        assert!(
            err.contains("NoSuchBucket") || err.contains("ResourceNotFoundException"),
            "{url}: {err}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
