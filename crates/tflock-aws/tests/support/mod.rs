//! Shared by the tests against moto: its endpoint and credentials, unique names, SDK
//! clients, a lock table and a bucket with lockfiles as Terraform makes them, and a relay
//! in front of moto that can answer or observe requests.
#![allow(dead_code)]

use aws_config::Region;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use aws_sdk_s3::config::Credentials;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;
use tflock_core::testkit::require_env;
use tflock_core::LockInfo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// moto's endpoint (`None`: the test is skipped, or fails under scripts/test), with the
/// test credentials the standard chain reads set once, before any client is built.
pub fn moto() -> Option<String> {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        std::env::set_var("AWS_ACCESS_KEY_ID", "test");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "test");
        std::env::set_var("AWS_REGION", "us-east-1");
        std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
    });
    require_env("TFLOCK_TEST_MOTO", "moto (S3 + DynamoDB emulator)")
}

/// A bucket or table name no other test (or earlier run) uses, lower case as S3 wants.
pub fn unique(what: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!(
        "tflock-{}-{}-{}-{nanos}",
        what.to_ascii_lowercase(),
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// A DynamoDB client to moto with its test credentials.
pub async fn ddb_client(moto: &str) -> aws_sdk_dynamodb::Client {
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(moto)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .load()
        .await;
    aws_sdk_dynamodb::Client::new(&sdk)
}

/// A lock table as Terraform's documentation makes it: hash key `LockID` (a string).
pub async fn lock_table(ddb: &aws_sdk_dynamodb::Client, name: &str) {
    ddb.create_table()
        .table_name(name)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("LockID")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("LockID")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .unwrap();
}

/// A path-style S3 client to moto with its test credentials.
pub async fn s3_client(moto: &str) -> aws_sdk_s3::Client {
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(moto)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .load()
        .await;
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    )
}

/// Creates `bucket` and writes each `(key, info)` lockfile as Terraform does.
pub async fn bucket_with_lockfiles(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    locks: &[(&str, &LockInfo)],
) {
    s3.create_bucket().bucket(bucket).send().await.unwrap();
    for (key, info) in locks {
        s3.put_object()
            .bucket(bucket)
            .key(*key)
            .body(info.to_terraform_json().into_bytes().into())
            .send()
            .await
            .unwrap();
    }
}

/// Relays one request per connection to `upstream`. `answer` sees each request head
/// first; a `Some(response)` is sent instead of forwarding. Returns the relay's URL.
pub async fn relay<F>(upstream: String, answer: F) -> String
where
    F: Fn(&str) -> Option<String> + Send + Sync + 'static,
{
    let answer = std::sync::Arc::new(answer);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let upstream = upstream.clone();
            let answer = answer.clone();
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
                if let Some(response) = answer(&text) {
                    let _ = client.write_all(response.as_bytes()).await;
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
    format!("http://127.0.0.1:{port}")
}

/// An S3 error response as the service sends it.
pub fn s3_error(status: &str, code: &str, message: &str) -> String {
    let body = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>{message}</Message></Error>");
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}
