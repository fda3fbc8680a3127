//! Hostile credentials from the environment and from profile files (a process-wide
//! environment: this binary holds one test, so nothing else runs beside it).

use tflock_core::testkit::require_env;
use tflock_core::{ConnectOptions, Kind, Target};

async fn list_error(url: &str) -> tflock_core::Error {
    let t = Target::parse(url).unwrap();
    let listed = match tflock_aws::open(&t, &ConnectOptions::default()).await {
        Ok(store) => store.list().await.map(|_| ()),
        Err(e) => Err(e),
    };
    listed.expect_err("hostile credentials must be refused")
}

fn assert_refused(err: &tflock_core::Error, names: &str, value: &str) {
    let text = err.to_string();
    assert_eq!(err.kind(), Kind::Usage, "{text}");
    assert!(text.contains(names), "{text}");
    assert!(!text.contains(value), "{text}");
    assert!(!text.contains("hostile"), "{text}");
    assert!(!text.chars().any(char::is_control), "{text:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_characters_in_environment_and_profile_credentials_are_refused() {
    let Some(moto) = require_env("TFLOCK_TEST_MOTO", "moto (S3 + DynamoDB emulator)") else {
        return;
    };
    std::env::set_var("AWS_REGION", "us-east-1");
    std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
    let good = [
        ("AWS_ACCESS_KEY_ID", "AKIDGOOD"),
        ("AWS_SECRET_ACCESS_KEY", "secret-good"),
        ("AWS_SESSION_TOKEN", "token-good"),
    ];
    for scheme in ["s3://tflock-envcreds", "dynamodb://tflock-envcreds"] {
        let url = format!("{scheme}?endpoint={moto}");
        for (var, bad) in [
            ("AWS_ACCESS_KEY_ID", "AKID\r\nhostile: 1"),
            ("AWS_SECRET_ACCESS_KEY", "secret\nhostile"),
            ("AWS_SESSION_TOKEN", "token\u{1f}hostile"),
            // A trailing newline, as `read` or a copied file leaves it.
            ("AWS_ACCESS_KEY_ID", "AKIDhostile\n"),
        ] {
            for (v, value) in good {
                std::env::set_var(v, value);
            }
            std::env::set_var(var, bad);
            assert_refused(&list_error(&url).await, var, bad);
        }
    }

    // A profile file: read lazily by the SDK, refused at the first request.
    for (v, _) in good {
        std::env::remove_var(v);
    }
    let dir = std::env::temp_dir().join(format!("tflock-hostile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("config");
    std::fs::write(&config, "[default]\nregion = us-east-1\n").unwrap();
    std::env::set_var("AWS_CONFIG_FILE", &config);
    let credentials = dir.join("credentials");
    for (field, line) in [
        (
            "aws_access_key_id",
            "aws_access_key_id = AKID\u{7}hostile\naws_secret_access_key = s\n",
        ),
        (
            "aws_secret_access_key",
            "aws_access_key_id = AKIDOK\naws_secret_access_key = s\u{1b}[2Jhostile\n",
        ),
        (
            "aws_session_token",
            "aws_access_key_id = AKIDOK\naws_secret_access_key = s\naws_session_token = t\u{8}hostile\n",
        ),
    ] {
        std::fs::write(&credentials, format!("[ops]\n{line}[default]\n{line}")).unwrap();
        std::env::set_var("AWS_SHARED_CREDENTIALS_FILE", &credentials);
        for url in [
            format!("s3://tflock-envcreds?endpoint={moto}&profile=ops"),
            format!("dynamodb://tflock-envcreds?endpoint={moto}"),
        ] {
            assert_refused(&list_error(&url).await, field, "hostile");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
