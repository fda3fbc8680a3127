//! fake-gcs-server for the end-to-end tests, driven with plain HTTP/1.1 (no client library
//! in the root package's dev-dependencies).

use super::Workdir;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// The emulator's base URL, or `None` (skip) when it is not running. Under scripts/test
/// (TFLOCK_REQUIRE_EMULATORS=1) a missing emulator fails. (The root package does not
/// enable tflock-core's testkit, so this is the same rule as `testkit::require_env`.)
pub fn require_gcs() -> Option<String> {
    match std::env::var("TFLOCK_TEST_GCS") {
        Ok(v) if !v.is_empty() => Some(v.trim_end_matches('/').to_string()),
        _ => {
            if std::env::var("TFLOCK_REQUIRE_EMULATORS").as_deref() == Ok("1") {
                panic!("TFLOCK_TEST_GCS is not set but TFLOCK_REQUIRE_EMULATORS=1: fake-gcs-server is required (run scripts/test)");
            }
            eprintln!("skipping: TFLOCK_TEST_GCS is not set (fake-gcs-server not running; scripts/test starts it)");
            None
        }
    }
}

/// One plain HTTP/1.1 request to the emulator: `(status, body)`.
pub fn http(base: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    let host = base.trim_start_matches("http://");
    let mut conn = TcpStream::connect(host).expect("connect to fake-gcs-server");
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    conn.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let body = if head.to_lowercase().contains("transfer-encoding: chunked") {
        dechunk(body)
    } else {
        body.to_string()
    };
    (status, body)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

pub fn create_bucket(base: &str, name: &str) {
    let (status, body) = http(
        base,
        "POST",
        "/storage/v1/b?project=tflock-test",
        &format!(r#"{{"name":"{name}"}}"#),
    );
    assert_eq!(status, 200, "create bucket: {body}");
}

/// The object's generation, or `None` if it does not exist.
pub fn generation(base: &str, bucket: &str, object: &str) -> Option<String> {
    let (status, body) = http(
        base,
        "GET",
        &format!("/storage/v1/b/{bucket}/o/{}", object.replace('/', "%2F")),
        "",
    );
    if status == 404 {
        return None;
    }
    assert_eq!(status, 200, "get {object}: {body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("object JSON");
    Some(match &v["generation"] {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

pub fn unique_bucket(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("tflock-e2e-{name}-{}-{nanos}", std::process::id())
}

/// A working directory with `backend "gcs"` on the emulator, as the test bed documents it.
pub fn gcs_workdir(base: &str, bucket: &str, prefix: &str) -> Workdir {
    Workdir::new(&format!(
        r#"  backend "gcs" {{
    bucket                  = "{bucket}"
    prefix                  = "{prefix}"
    storage_custom_endpoint = "{base}/storage/v1/"
    access_token            = "dummy"
  }}"#
    ))
}
