//! Hostile input: credentials and settings that would reach the AWS SDK's signer or
//! `Duration` constructors with values they panic on. Each is refused up front, as a
//! usage error that names the setting and never shows its value.

use tflock_core::testkit::require_env;
use tflock_core::{ConnectOptions, Kind, Target};

fn target(url: &str, hidden: &[(&str, &str)]) -> Target {
    let mut t = Target::parse(url).unwrap();
    for (k, v) in hidden {
        t.params.insert(k.to_string(), v.to_string());
    }
    t
}

/// Opens and lists; returns the error (a panic fails the test).
async fn refusal(t: Target) -> tflock_core::Error {
    let listed = match tflock_aws::open(&t, &ConnectOptions::default()).await {
        Ok(store) => store.list().await.map(|_| ()),
        Err(e) => Err(e),
    };
    listed.expect_err("a hostile setting must be refused")
}

#[tokio::test]
async fn control_characters_in_block_credentials_are_refused_without_echo() {
    let Some(moto) = require_env("TFLOCK_TEST_MOTO", "moto (S3 + DynamoDB emulator)") else {
        return;
    };
    let cases: [(&str, [(&str, &str); 3]); 4] = [
        (
            "access_key",
            [
                ("access_key", "AKID\r\nX-Evil: 1"),
                ("secret_key", "sekrit-ok"),
                ("token", "tok-ok"),
            ],
        ),
        (
            "secret_key",
            [
                ("access_key", "AKIDOK"),
                ("secret_key", "sekrit\n-bad"),
                ("token", "tok-ok"),
            ],
        ),
        (
            "token",
            [
                ("access_key", "AKIDOK"),
                ("secret_key", "sekrit-ok"),
                ("token", "tok\u{1}bad"),
            ],
        ),
        (
            "token",
            [
                ("access_key", "AKIDOK"),
                ("secret_key", "sekrit-ok"),
                ("token", "tok\u{7f}bad"),
            ],
        ),
    ];
    for scheme in ["s3://tflock-hostile", "dynamodb://tflock-hostile"] {
        for (name, hidden) in &cases {
            let url = format!("{scheme}?endpoint={moto}");
            let err = refusal(target(&url, hidden)).await;
            let text = err.to_string();
            assert_eq!(err.kind(), Kind::Usage, "{name}: {text}");
            assert!(text.contains(name), "{name}: {text}");
            for (_, value) in hidden {
                assert!(!text.contains(value), "{name}: {text}");
            }
            for part in ["X-Evil", "sekrit", "bad"] {
                assert!(!text.contains(part), "{name}: {text}");
            }
            assert!(!text.chars().any(char::is_control), "{text:?}");
        }
    }
}

#[tokio::test]
async fn assume_role_duration_is_parsed_once_and_bounded_by_sts() {
    for (duration, why) in [
        ("9999999999999999999999s", "not a duration STS accepts"),
        ("99999999999999999999", "not a duration STS accepts"),
        ("0s", "not a duration STS accepts"),
        ("0", "not a duration STS accepts"),
        ("14m59s", "15m to 12h"),
        ("12h0m1s", "15m to 12h"),
        ("-1h", "not a duration STS accepts"),
        ("1x", "not a duration STS accepts"),
        ("\u{1b}[31m1h", "not a duration STS accepts"),
    ] {
        let t = target(
            "s3://b?endpoint=http://127.0.0.1:9",
            &[
                ("role_arn", "arn:aws:iam::123456789012:role/r"),
                ("assume_role_duration", duration),
            ],
        );
        let err = tflock_aws::open(&t, &ConnectOptions::default())
            .await
            .err()
            .unwrap_or_else(|| panic!("{duration:?} was accepted"));
        let text = err.to_string();
        assert_eq!(err.kind(), Kind::Usage, "{duration:?}: {text}");
        assert!(text.contains("assume_role duration"), "{text}");
        assert!(text.contains("15m to 12h"), "{duration:?} ({why}): {text}");
        assert!(!text.chars().any(char::is_control), "{text:?}");
    }
    for ok in ["15m", "1h30m", "3600", "12h", "43200s"] {
        let t = target(
            "s3://b?endpoint=http://127.0.0.1:9",
            &[
                ("role_arn", "arn:aws:iam::123456789012:role/r"),
                ("assume_role_duration", ok),
            ],
        );
        assert!(
            tflock_aws::open(&t, &ConnectOptions::default())
                .await
                .is_ok(),
            "{ok}"
        );
    }
}

/// A region reaches the signer and the endpoint's host name: only what a region can be.
#[tokio::test]
async fn hostile_region_is_refused() {
    for region in [
        "us-east-1%0D%0AX-Evil:%201",
        "us east 1",
        "eu-west-1%1B%5B2J",
    ] {
        for scheme in ["s3", "dynamodb"] {
            let url = format!("{scheme}://b?region={region}&endpoint=http://127.0.0.1:9");
            let t = target(&url, &[("access_key", "AKIDOK"), ("secret_key", "s")]);
            let err = refusal(t).await;
            let text = err.to_string();
            assert_eq!(err.kind(), Kind::Usage, "{text}");
            assert!(text.contains("region"), "{text}");
            assert!(!text.chars().any(char::is_control), "{text:?}");
        }
    }
}

/// Names from a target (bucket, table, key, prefix) reach URLs and JSON bodies, never a
/// header: odd ones fail in one line, or list nothing, and never panic.
#[tokio::test]
async fn hostile_names_fail_in_one_line() {
    let Some(moto) = require_env("TFLOCK_TEST_MOTO", "moto (S3 + DynamoDB emulator)") else {
        return;
    };
    let creds = [("access_key", "AKIDOK"), ("secret_key", "s")];
    for url in [
        format!("s3://b%0Ax?endpoint={moto}"),
        format!("s3://B..UPPER?endpoint={moto}"),
        format!("s3://tflock-nobucket?key=a%0D%0Ab&endpoint={moto}"),
        format!("s3://tflock-nobucket?key=k&workspace_key_prefix=%1B%5B2J&endpoint={moto}"),
        format!("dynamodb://t%0Ax?endpoint={moto}"),
        format!(
            "dynamodb://tflock-notable?bucket=b%0Ax&key=k%0A&endpoint={moto}&s3_endpoint={moto}"
        ),
    ] {
        let t = target(&url, &creds);
        let listed = match tflock_aws::open(&t, &ConnectOptions::default()).await {
            Ok(store) => store.list().await.map(|_| ()),
            Err(e) => Err(e),
        };
        if let Err(e) = listed {
            let text = e.to_string();
            assert!(!text.chars().any(char::is_control), "{url}: {text:?}");
        }
    }
}
