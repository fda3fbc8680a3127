//! The s3 backend block's credential settings, against moto: static keys, profile files
//! and assume_role. moto accepts any signature, so a recording relay in front of it shows
//! which access key signed each request (SigV4's `Credential=KEY/date/region/service`).

mod support;

use std::sync::{Arc, Mutex};
use support::{bucket_with_lockfiles, relay, s3_client};
use tflock_core::testkit::{require_env, sample_info};
use tflock_core::{ConnectOptions, Target};

/// A relay that records `KEY/service` of each request's SigV4 credential.
async fn recording_relay(upstream: String) -> (String, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let url = relay(upstream, move |head| {
        if let Some(cred) = head.split("Credential=").nth(1) {
            let parts: Vec<&str> = cred.split('/').collect();
            if parts.len() > 3 {
                log.lock()
                    .unwrap()
                    .push(format!("{}/{}", parts[0], parts[3]));
            }
        }
        None
    })
    .await;
    (url, seen)
}

fn target(url: &str, hidden: &[(&str, &str)]) -> Target {
    let mut t = Target::parse(url).unwrap();
    for (k, v) in hidden {
        t.params.insert(k.to_string(), v.to_string());
    }
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_credentials_profile_files_and_assume_role() {
    let Some(moto) = require_env("TFLOCK_TEST_MOTO", "moto (S3 + DynamoDB emulator)") else {
        return;
    };
    // The environment's keys: every setting below must win over them, as in Terraform.
    std::env::set_var("AWS_ACCESS_KEY_ID", "ENVKEY");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "env-secret");
    std::env::set_var("AWS_REGION", "us-east-1");
    std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
    let s3 = s3_client(&moto).await;
    let bucket = format!("tflock-creds-{}", std::process::id());
    let info = sample_info("OperationTypeApply", &format!("{bucket}/terraform.tfstate"));
    bucket_with_lockfiles(&s3, &bucket, &[("terraform.tfstate.tflock", &info)]).await;
    let (relay_url, seen) = recording_relay(moto.clone()).await;
    let opts = ConnectOptions::default();
    let url = format!("s3://{bucket}?endpoint={relay_url}");
    // Which keys signed what since the last call, in order, without repeats.
    let signers = || {
        let mut all: Vec<String> = seen.lock().unwrap().drain(..).collect();
        all.dedup();
        all
    };
    let list = |t: Target| async move {
        let store = tflock_aws::open(&t, &ConnectOptions::default())
            .await
            .unwrap();
        store.list().await
    };

    // 1. access_key + secret_key (+ token) of the block sign the requests.
    let locks = list(target(
        &url,
        &[
            ("access_key", "AKIDBLOCKSTATIC"),
            ("secret_key", "block-secret-1"),
            ("token", "block-token-1"),
        ],
    ))
    .await
    .unwrap();
    assert_eq!(locks.len(), 1);
    assert_eq!(signers(), ["AKIDBLOCKSTATIC/s3"]);

    // 2. profile from the block's shared_config_files / shared_credentials_files, over
    //    the environment's keys.
    let dir = std::env::temp_dir().join(format!("tflock-aws-profiles-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("config");
    let credentials = dir.join("credentials");
    std::fs::write(
        &config,
        "[profile ops]\naws_access_key_id = AKIDFROMCONFIG\naws_secret_access_key = c\n",
    )
    .unwrap();
    std::fs::write(
        &credentials,
        "[audit]\naws_access_key_id = AKIDFROMCREDS\naws_secret_access_key = c\n",
    )
    .unwrap();
    let config_path = config.display().to_string();
    let credentials_path = credentials.display().to_string();
    list(target(
        &url,
        &[("profile", "ops"), ("shared_config_files", &config_path)],
    ))
    .await
    .unwrap();
    list(target(
        &url,
        &[
            ("profile", "audit"),
            ("shared_credentials_files", &credentials_path),
        ],
    ))
    .await
    .unwrap();
    assert_eq!(signers(), ["AKIDFROMCONFIG/s3", "AKIDFROMCREDS/s3"]);

    // 3. assume_role: the block's keys call STS AssumeRole (moto implements it), and the
    //    role's temporary credentials list the bucket and the lock table.
    let role = [
        ("access_key", "AKIDBASEKEY"),
        ("secret_key", "base-secret-2"),
        ("role_arn", "arn:aws:iam::123456789012:role/tflock-oncall"),
        ("session_name", "tflock-test"),
        ("external_id", "ext-1"),
        ("assume_role_duration", "15m"),
        ("sts_endpoint", relay_url.as_str()),
    ];
    let locks = list(target(&url, &role)).await.unwrap();
    assert_eq!(locks.len(), 1);
    let requests = signers();
    assert_eq!(
        requests.first().map(String::as_str),
        Some("AKIDBASEKEY/sts"),
        "{requests:?}"
    );
    let signed_s3: Vec<&String> = requests.iter().filter(|r| r.ends_with("/s3")).collect();
    assert!(!signed_s3.is_empty(), "{requests:?}");
    for r in &signed_s3 {
        assert!(
            !r.starts_with("AKIDBASEKEY") && !r.starts_with("ENVKEY"),
            "{requests:?}"
        );
    }

    // 4. A failing AssumeRole is one line naming STS, and no secret appears in it.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://127.0.0.1:{}", l.local_addr().unwrap().port())
    };
    let mut failing = role;
    failing[6] = ("sts_endpoint", dead.as_str());
    let store = tflock_aws::open(&target(&url, &failing), &opts)
        .await
        .unwrap();
    let text = store.list().await.unwrap_err().to_string();
    eprintln!("{text}");
    assert!(!text.contains('\n'), "{text}");
    assert!(text.contains("assume_role"), "{text}");
    for secret in ["base-secret-2", "block-secret-1", "block-token-1"] {
        assert!(!text.contains(secret), "{text}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
