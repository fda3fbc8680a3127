//! Faults S3 produces that moto does not: a relay in front of moto answers some requests
//! itself, as S3 does under those conditions.
//! - One lockfile that cannot be read (SSE-C, a KMS key the caller may not use) must not
//!   hide the others: it is listed as unreadable with the service's reason, and can still
//!   be broken by its location under If-Match on the listed ETag.
//! - Throttling (503 SlowDown) is retried by the SDK; when it persists, the error names it.

use aws_config::Region;
use aws_sdk_s3::config::Credentials;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tflock_core::testkit::{require_env, sample_info};
use tflock_core::{BreakOptions, ConnectOptions, Target};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the relay answers itself instead of forwarding.
#[derive(Clone, Copy)]
enum Fault {
    /// 403 AccessDenied to GETs of keys containing this text.
    DenyGet(&'static str),
    /// 503 SlowDown to the first N bucket listings.
    ThrottleLists(usize),
}

/// Relays one request per connection to `upstream`, except those `fault` answers.
/// Returns the port and a count of requests answered by the fault.
async fn relay(upstream: String, fault: Fault) -> (u16, Arc<AtomicUsize>) {
    let faulted = Arc::new(AtomicUsize::new(0));
    let count = faulted.clone();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let upstream = upstream.clone();
            let count = count.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if client.read(&mut byte).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let text = String::from_utf8_lossy(&head).into_owned();
                let line = text.lines().next().unwrap_or("").to_string();
                let answer = match fault {
                    Fault::DenyGet(deny)
                        if line.starts_with("GET ")
                            && line.contains(deny)
                            && !line.contains("list-type") =>
                    {
                        Some(("403 Forbidden", "AccessDenied", "Access Denied"))
                    }
                    Fault::ThrottleLists(n)
                        if line.contains("list-type=2") && count.load(Ordering::SeqCst) < n =>
                    {
                        Some((
                            "503 Slow Down",
                            "SlowDown",
                            "Please reduce your request rate.",
                        ))
                    }
                    _ => None,
                };
                if let Some((status, code, message)) = answer {
                    count.fetch_add(1, Ordering::SeqCst);
                    let body = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>{message}</Message></Error>");
                    let resp = format!(
                        "HTTP/1.1 {status}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = client.write_all(resp.as_bytes()).await;
                    return;
                }
                // One request per connection: ask the server to close after answering.
                let head = text.replacen("\r\n", "\r\nConnection: close\r\n", 1);
                let Ok(mut server) =
                    TcpStream::connect(upstream.trim_start_matches("http://")).await
                else {
                    return;
                };
                if server.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            });
        }
    });
    (port, faulted)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_lockfile_is_listed_with_the_reason_and_still_breakable() {
    let Some(moto) = require_env("TFLOCK_TEST_MOTO", "moto (S3 + DynamoDB emulator)") else {
        return;
    };
    std::env::set_var("AWS_ACCESS_KEY_ID", "test");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "test");
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&moto)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .load()
        .await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    );
    let bucket = format!("tflock-denied-{}", std::process::id());
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let ok = sample_info(
        "OperationTypeApply",
        &format!("{bucket}/ok/terraform.tfstate"),
    );
    let hidden = sample_info(
        "OperationTypeApply",
        &format!("{bucket}/deny/terraform.tfstate"),
    );
    for (key, info) in [
        ("ok/terraform.tfstate.tflock", &ok),
        ("deny/terraform.tfstate.tflock", &hidden),
    ] {
        s3.put_object()
            .bucket(&bucket)
            .key(key)
            .body(info.to_terraform_json().into_bytes().into())
            .send()
            .await
            .unwrap();
    }

    let (port, _) = relay(moto.clone(), Fault::DenyGet("/deny/")).await;
    let target = Target::parse(&format!(
        "s3://{bucket}?endpoint=http://127.0.0.1:{port}&region=us-east-1"
    ))
    .unwrap();
    let store = tflock_aws::open(&target, &ConnectOptions::default())
        .await
        .unwrap();
    let locks = store.list().await.unwrap();
    assert_eq!(locks.len(), 2, "{locks:#?}");
    let good = locks
        .iter()
        .find(|l| l.id == ok.id)
        .expect("the readable lock");
    assert!(good.info_error.is_none());
    let bad = locks
        .iter()
        .find(|l| l.location.ends_with("/deny/terraform.tfstate.tflock"))
        .unwrap();
    let reason = bad.info_error.as_deref().unwrap_or_default();
    assert!(reason.contains("AccessDenied"), "{reason}");
    assert!(bad.id.is_empty() && bad.info.is_none());
    assert!(
        bad.snapshot.etag.is_some(),
        "the listing's ETag guards the break"
    );

    store
        .break_lock(bad, &BreakOptions::default())
        .await
        .unwrap();
    let left = s3.list_objects_v2().bucket(&bucket).send().await.unwrap();
    let keys: Vec<&str> = left.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, ["ok/terraform.tfstate.tflock"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_is_retried_and_named_when_it_persists() {
    let Some(moto) = require_env("TFLOCK_TEST_MOTO", "moto (S3 + DynamoDB emulator)") else {
        return;
    };
    std::env::set_var("AWS_ACCESS_KEY_ID", "test");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "test");
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&moto)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .load()
        .await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    );
    let bucket = format!("tflock-throttle-{}", std::process::id());
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let info = sample_info("OperationTypeApply", &format!("{bucket}/terraform.tfstate"));
    s3.put_object()
        .bucket(&bucket)
        .key("terraform.tfstate.tflock")
        .body(info.to_terraform_json().into_bytes().into())
        .send()
        .await
        .unwrap();

    // Two throttled listings, then the third attempt succeeds.
    let (port, faulted) = relay(moto.clone(), Fault::ThrottleLists(2)).await;
    let target = Target::parse(&format!(
        "s3://{bucket}?endpoint=http://127.0.0.1:{port}&region=us-east-1"
    ))
    .unwrap();
    let store = tflock_aws::open(&target, &ConnectOptions::default())
        .await
        .unwrap();
    let locks = store.list().await.unwrap();
    assert_eq!(faulted.load(Ordering::SeqCst), 2);
    assert_eq!(locks.len(), 1);
    assert_eq!(locks[0].id, info.id);

    // Throttled for good: a clear error naming the code, nothing changed.
    let (port, faulted) = relay(moto.clone(), Fault::ThrottleLists(usize::MAX)).await;
    let target = Target::parse(&format!(
        "s3://{bucket}?endpoint=http://127.0.0.1:{port}&region=us-east-1"
    ))
    .unwrap();
    let store = tflock_aws::open(&target, &ConnectOptions::default())
        .await
        .unwrap();
    let err = store.list().await.unwrap_err();
    assert_eq!(err.exit_code(), 1);
    let text = err.to_string();
    assert!(
        text.contains("SlowDown") && text.contains(&bucket),
        "{text}"
    );
    assert!(!text.contains('\n'), "one line: {text}");
    assert_eq!(
        faulted.load(Ordering::SeqCst),
        3,
        "the SDK's 3 attempts, then it gives up"
    );
    let left = s3.list_objects_v2().bucket(&bucket).send().await.unwrap();
    assert_eq!(left.contents().len(), 1);
}
