//! `tflock_core::pasted` over every fixture in tests/fixtures/ (see its README.md for
//! which are real Terraform 1.11.4 output and which are hand-made), with exact field values.

use chrono::{DateTime, Utc};
use tflock_core::pasted::{
    parse_digest_error, parse_lock_error, DigestMismatch, PasteError, Pasted, PastedLock, Tool,
};

fn fixture(rel: &str) -> String {
    let path = format!("{}/tests/fixtures/{rel}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn at(s: &str) -> Option<DateTime<Utc>> {
    Some(DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc))
}

fn parse(rel: &str) -> Pasted {
    parse_lock_error(&fixture(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The lock real `terraform apply` held on the local backend.
fn local_lock() -> PastedLock {
    PastedLock {
        id: "8163e456-07c9-5995-e003-b78ab5677a18".into(),
        path: "terraform.tfstate".into(),
        operation: "OperationTypeApply".into(),
        who: "root@vm".into(),
        version: "1.11.4".into(),
        info: String::new(),
        created: at("2026-12-01T03:01:47.592827014Z"),
        tool: Tool::Terraform,
    }
}

const LOCAL_MESSAGE: &str = "resource temporarily unavailable";

#[test]
fn real_local_backend_in_every_form() {
    for rel in [
        "lock-errors/tf1.11-color.txt",
        "lock-errors/tf1.11-color-tty.txt",
        "lock-errors/tf1.11-color-tty-40cols.txt",
        "lock-errors/tf1.11-no-color.txt",
        "lock-errors/tf1.11-no-color-tty-40cols.txt",
        "lock-errors/tf1.11-no-color-tty-40cols-cliconfig-warning.txt",
        "lock-errors/tf1.11-apply-no-color.txt",
        "lock-errors/tf1.11-state-rm-color.txt",
        "lock-errors/tf1.11-json.jsonl",
        "lock-errors/tf1.11-ci-github-actions.txt",
        "lock-errors/tf1.11-ci-gitlab.txt",
        "lock-errors/tf1.11-color-esc-lost.txt",
    ] {
        let got = parse(rel);
        assert_eq!(got.lock, local_lock(), "{rel}");
        assert_eq!(got.blocks, 1, "{rel}");
        assert_eq!(got.message.as_deref(), Some(LOCAL_MESSAGE), "{rel}");
    }
}

fn ddb_lock() -> PastedLock {
    PastedLock {
        id: "7403c477-6406-a7e9-d908-d51cb9654a9d".into(),
        path: "demo-state/ddb/terraform.tfstate".into(),
        operation: "OperationTypeApply".into(),
        who: "root@vm".into(),
        version: "1.11.4".into(),
        info: String::new(),
        created: at("2026-12-01T03:03:13.047092142Z"),
        tool: Tool::Terraform,
    }
}

/// The AWS SDK error, unwrapped; the request ID differs per call.
fn ddb_message(request_id: &str) -> String {
    format!(
        "operation error DynamoDB: PutItem, https response error StatusCode: 400, RequestID: {request_id}, ConditionalCheckFailedException: The conditional request failed"
    )
}

#[test]
fn real_s3_dynamodb_wrapped_message_is_unwrapped() {
    for (rel, request_id) in [
        (
            "lock-errors/tf1.11-s3-dynamodb-no-color.txt",
            "7ms7usZkWhi9hl7A1qvGLqDKby47bBwGI2yFAeYGCCbvIJ7lRlVH",
        ),
        (
            "lock-errors/tf1.11-s3-dynamodb-color.txt",
            "WqCGoGtrme276r9CjH7qwXjcmsbxuHzbFQJUXScj2uPCtsbU851L",
        ),
        (
            "lock-errors/tf1.11-s3-dynamodb-json.jsonl",
            "Ghky2Mhmmx5HwhtAmGEGVanI1pxDOeKwmZeLtxjkVve6tlgJbkmd",
        ),
        (
            "lock-errors/tf1.11-ci-gitlab-timestamps.txt",
            "7ms7usZkWhi9hl7A1qvGLqDKby47bBwGI2yFAeYGCCbvIJ7lRlVH",
        ),
    ] {
        let got = parse(rel);
        assert_eq!(got.lock, ddb_lock(), "{rel}");
        assert_eq!(got.blocks, 1, "{rel}");
        assert_eq!(got.message, Some(ddb_message(request_id)), "{rel}");
    }
}

#[test]
fn real_s3_lockfile() {
    for (rel, path, id, created, request_id) in [
        (
            "lock-errors/tf1.11-s3-lockfile-no-color.txt",
            "demo-state/lockfile/terraform.tfstate",
            "a8ebae36-b659-f95e-bfba-11895f2c1fa4",
            "2026-12-01T03:03:13.133735292Z",
            "MGPcL71lYxQcoijZ8q2rXDS6F7nyTeQ9GwkXfT1henH92o73GyzD",
        ),
        (
            "lock-errors/tf1.11-s3-both-no-color.txt",
            "demo-state/both/terraform.tfstate",
            "a7f83332-1095-c6a5-6212-2f264144051c",
            // Go dropped the trailing zero: 8 digits.
            "2026-12-01T03:03:13.23449867Z",
            "rvVasNLmhZ0JWvn0KuAmv0wPHeZ5HP9w3V5sjjGBW4HJmYi2t2Ic",
        ),
    ] {
        let got = parse(rel);
        assert_eq!(got.lock.id, id, "{rel}");
        assert_eq!(got.lock.path, path, "{rel}");
        assert_eq!(got.lock.created, at(created), "{rel}");
        assert_eq!(got.lock.tool, Tool::Terraform);
        assert_eq!(
            got.message.unwrap(),
            format!(
                "operation error S3: PutObject, https response error StatusCode: 412, RequestID: {request_id}, HostID: 9Gjjt1m+cjU4OPvX9O9/8RuvnG41MRb/18Oux2o5H5MY7ISNTlXN+Dz9IG62/ILVxhAGI0qyPfg=, api error PreconditionFailed: At least one of the pre-conditions you specified did not hold"
            ),
            "{rel}"
        );
    }
    let json = parse("lock-errors/tf1.11-s3-lockfile-json.jsonl");
    assert_eq!(json.lock.id, "a8ebae36-b659-f95e-bfba-11895f2c1fa4");
    assert!(json
        .message
        .unwrap()
        .ends_with("api error PreconditionFailed: At least one of the pre-conditions you specified did not hold"));
}

#[test]
fn two_blocks_give_the_last() {
    let got = parse("lock-errors/tf1.11-two-blocks-retry.txt");
    assert_eq!(got.blocks, 2);
    assert_eq!(got.lock, ddb_lock());
    assert_eq!(
        got.message,
        Some(ddb_message(
            "7ms7usZkWhi9hl7A1qvGLqDKby47bBwGI2yFAeYGCCbvIJ7lRlVH"
        ))
    );
}

#[test]
fn opentofu_box_in_a_ticket() {
    let got = parse("lock-errors/tofu1.8-box-ticket.txt");
    assert_eq!(
        got.lock,
        PastedLock {
            id: "5bbb5700-240a-64be-b0de-39effcb9e17c".into(),
            path: "tofu-state/day-1/04-state/terraform.tfstate".into(),
            operation: "OperationTypeApply".into(),
            who: "alex@laptop".into(),
            version: "1.8.5".into(),
            info: String::new(),
            created: at("2026-08-30T12:41:08.197135Z"),
            tool: Tool::OpenTofu,
        }
    );
    assert_eq!(got.blocks, 1);
    assert_eq!(
        got.message.as_deref(),
        Some("operation error S3: PutObject, https response error StatusCode: 412, RequestID: 4fcf8c0ced1e4249, HostID: s9lzHYrFp76ZVxRcpX9+5cjAnEH2ROuNkd2BHfIa6Uk=, api error PreconditionFailed: At least one of the pre-conditions you specified did not hold")
    );
}

#[test]
fn opentofu_json() {
    let got = parse("lock-errors/tofu1.10-json.jsonl");
    assert_eq!(
        got.lock,
        PastedLock {
            id: "9c340c13-2308-122f-603c-66c0e72abaf3".into(),
            path: "acme-state/env:/dev/network/terraform.tfstate".into(),
            operation: "OperationTypePlan".into(),
            who: "CORP\\jdoe@WS-042".into(),
            version: "1.10.6".into(),
            info: "deploy <main> & co".into(),
            created: at("2026-11-30T23:59:59.1Z"),
            tool: Tool::OpenTofu,
        }
    );
    assert_eq!(
        got.message.as_deref(),
        Some("operation error DynamoDB: PutItem, https response error StatusCode: 400, RequestID: 0TB8Q1NNE2M3D4, ConditionalCheckFailedException: The conditional request failed")
    );
}

#[test]
fn terraform_before_0_15() {
    for rel in [
        "lock-errors/tf0.14-old-form-no-color.txt",
        "lock-errors/tf0.14-old-form-color.txt",
    ] {
        let got = parse(rel);
        assert_eq!(
            got.lock,
            PastedLock {
                id: "27c5d7b0-4a4f-11a2-0d9c-4b7a0b8bde9c".into(),
                path: "tf-state-prod/network/terraform.tfstate".into(),
                operation: "OperationTypePlan".into(),
                who: "jenkins@build-03".into(),
                version: "0.14.11".into(),
                info: String::new(),
                created: at("2021-06-14T09:12:44.1020304Z"),
                tool: Tool::Terraform,
            },
            "{rel}"
        );
        assert_eq!(
            got.message.as_deref(),
            Some("ConditionalCheckFailedException: The conditional request failed status code: 400, request id: P7BUM0ARREJI1P4KERFDNIBMN7VV4KQNSO5AEMVJF66Q9ASUAAJG"),
            "{rel}"
        );
    }
}

#[test]
fn windows_crlf_cet_and_domain_user() {
    let got = parse("lock-errors/tf1.9-windows-crlf.txt");
    assert_eq!(
        got.lock,
        PastedLock {
            id: "0d1e2f3a-4b5c-6d7e-8f90-a1b2c3d4e5f6".into(),
            path: "corp-tf/team a/prod stack/terraform.tfstate".into(),
            operation: "OperationTypeApply".into(),
            who: "CORP\\jdoe@WS-042".into(),
            version: "1.9.8".into(),
            info: String::new(),
            created: at("2026-12-01T10:00:00.5Z"),
            tool: Tool::Terraform,
        }
    );
    assert_eq!(
        got.message.as_deref(),
        Some("operation error DynamoDB: PutItem, https response error StatusCode: 400, RequestID: Q2WE3RT4, ConditionalCheckFailedException: The conditional request failed")
    );
}

#[test]
fn monotonic_suffix_and_no_fraction() {
    let got = parse("lock-errors/tf-monotonic-created.txt");
    assert_eq!(got.lock.created, at("2026-12-01T03:01:47Z"));
    assert_eq!(got.lock.who, "@buildhost");
    assert_eq!(got.message.as_deref(), Some(LOCAL_MESSAGE));
}

#[test]
fn lock_error_without_lock_info_is_a_clear_error() {
    let err = parse_lock_error(&fixture("lock-errors/tf1.11-no-lock-info.txt")).unwrap_err();
    assert_eq!(
        err,
        PasteError::LockErrorWithoutInfo {
            message: Some("2 errors occurred: * operation error DynamoDB: PutItem, https response error StatusCode: 400, RequestID: AB12, ConditionalCheckFailedException: The conditional request failed * unexpected end of JSON input".into())
        }
    );
    let line = err.to_string();
    assert!(!line.contains('\n'), "{line}");
}

#[test]
fn digest_errors_are_not_lock_errors() {
    for rel in [
        "digest-errors/tf1.11-s3-digest-no-color.txt",
        "digest-errors/tf1.11-s3-digest-color.txt",
        "digest-errors/tf1.11-s3-digest-json.jsonl",
        "digest-errors/tofu1.10-s3-digest-box.txt",
    ] {
        assert_eq!(
            parse_lock_error(&fixture(rel)),
            Err(PasteError::DigestMismatch),
            "{rel}"
        );
    }
}

#[test]
fn real_digest_mismatch_in_every_form() {
    for rel in [
        "digest-errors/tf1.11-s3-digest-no-color.txt",
        "digest-errors/tf1.11-s3-digest-color.txt",
        "digest-errors/tf1.11-s3-digest-json.jsonl",
    ] {
        assert_eq!(
            parse_digest_error(&fixture(rel)),
            Some(DigestMismatch {
                calculated: "b5aa129303cf39fbd1f618934dd7e3cf".into(),
                stored: "0123456789abcdef0123456789abcdef".into(),
                digest_row: Some("demo-state/digest/terraform.tfstate-md5".into()),
            }),
            "{rel}"
        );
    }
}

#[test]
fn digest_mismatch_old_wording_and_missing_state() {
    assert_eq!(
        parse_digest_error(&fixture("digest-errors/tofu1.10-s3-digest-box.txt")),
        Some(DigestMismatch {
            calculated: "9e107d9d372bb6826bd81d3542a419d6".into(),
            stored: String::new(),
            digest_row: None,
        })
    );
    assert_eq!(
        parse_digest_error(&fixture("digest-errors/tf1.11-s3-digest-missing-state.txt")),
        Some(DigestMismatch {
            calculated: String::new(),
            stored: "0123456789abcdef0123456789abcdef".into(),
            digest_row: Some("demo-state/env:/dev/app/terraform.tfstate-md5".into()),
        })
    );
}

#[test]
fn lock_errors_are_not_digest_errors() {
    for rel in [
        "lock-errors/tf1.11-color.txt",
        "lock-errors/tf1.11-json.jsonl",
        "lock-errors/tofu1.8-box-ticket.txt",
    ] {
        assert_eq!(parse_digest_error(&fixture(rel)), None, "{rel}");
    }
}

#[test]
fn a_named_md5_row_without_bucket_and_key() {
    let text = format!(
        "{}\n$ aws dynamodb get-item ... => {{\"LockID\": {{\"S\": \"acme-state/prod/terraform.tfstate-md5\"}}}}\n",
        fixture("digest-errors/tofu1.10-s3-digest-box.txt")
    );
    assert_eq!(
        parse_digest_error(&text).unwrap().digest_row.as_deref(),
        Some("acme-state/prod/terraform.tfstate-md5")
    );
}

#[test]
fn every_fixture_is_covered() {
    // A new fixture must be added to a test above (and to tests/fixtures/README.md).
    let mut names = Vec::new();
    for dir in ["lock-errors", "digest-errors"] {
        let path = format!("{}/tests/fixtures/{dir}", env!("CARGO_MANIFEST_DIR"));
        for entry in std::fs::read_dir(path).unwrap() {
            names.push(format!(
                "{dir}/{}",
                entry.unwrap().file_name().to_string_lossy()
            ));
        }
    }
    let me = include_str!("pasted_fixtures.rs");
    let readme = fixture("README.md");
    for name in names {
        let base = name.rsplit('/').next().unwrap();
        let stem = base.split('.').next().unwrap_or(base);
        assert!(
            me.contains(&format!("\"{name}\"")),
            "{name} is not tested here"
        );
        assert!(
            readme.contains(stem) || readme.contains(base),
            "{name} is not described in tests/fixtures/README.md"
        );
    }
}
