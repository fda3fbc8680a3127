//! `tflock doctor` for gcs against fake-gcs-server: a lock object whose state object does
//! not exist is reported with its generation (the lock ID) and the break command; locks
//! beside their state, and objects outside the target, are not.

use tflock_core::testkit::require_env;
use tflock_core::{ConnectOptions, LockStore, Target};
use tflock_gcs::GcsStore;

/// Terraform's write of an object: a multipart upload with `ifGenerationMatch=0`.
async fn create(
    http: &reqwest::Client,
    base: &str,
    bucket: &str,
    object: &str,
    body: &str,
) -> String {
    let boundary = "tflock-doctor-boundary";
    let meta = serde_json::json!({ "bucket": bucket, "name": object });
    let payload = format!(
        "--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n{meta}\r\n\
         --{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n--{boundary}--\r\n"
    );
    let res = http
        .post(format!(
            "{base}/upload/storage/v1/b/{bucket}/o?uploadType=multipart&ifGenerationMatch=0"
        ))
        .header(
            "content-type",
            format!("multipart/related; boundary={boundary}"),
        )
        .body(payload)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200, "create {object}");
    let v: serde_json::Value = serde_json::from_str(&res.text().await.unwrap()).unwrap();
    match &v["generation"] {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[tokio::test]
async fn lock_objects_without_state_are_found() {
    let Some(base) = require_env("TFLOCK_TEST_GCS", "fake-gcs-server") else {
        return;
    };
    let base = base.trim_end_matches('/').to_string();
    let http = reqwest::Client::new();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let bucket = format!("tflock-doctor-{}-{nanos}", std::process::id());
    let res = http
        .post(format!("{base}/storage/v1/b?project=tflock-test"))
        .header("content-type", "application/json")
        .body(serde_json::json!({ "name": bucket }).to_string())
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());
    let info = |id: &str| {
        format!(
            r#"{{"ID":"{id}","Operation":"OperationTypeApply","Info":"","Who":"ci@runner","Version":"1.11.4","Created":"2026-11-26T03:12:07Z","Path":"p"}}"#
        )
    };
    create(&http, &base, &bucket, "env/app/default.tfstate", "{}").await;
    create(&http, &base, &bucket, "env/app/default.tflock", &info("a")).await;
    let orphan = create(&http, &base, &bucket, "env/app/dev.tflock", &info("b")).await;
    create(&http, &base, &bucket, "outside/old.tflock", &info("c")).await;

    let target = Target::parse(&format!(
        "gs://{bucket}/env/app?endpoint={base}&nested=false"
    ))
    .unwrap();
    let store = GcsStore::open(&target, &ConnectOptions::default())
        .await
        .unwrap();
    let found = store.diagnose().await.unwrap();
    assert_eq!(found.len(), 1, "{found:#?}");
    let f = &found[0];
    assert_eq!(f.kind, "orphan-lockfile");
    assert_eq!(f.workspace.as_deref(), Some("dev"));
    assert_eq!(f.subject, format!("gs://{bucket}/env/app/dev.tfstate"));
    assert!(
        f.evidence
            .iter()
            .any(|(k, v)| k == "lock ID (generation)" && *v == orphan),
        "{f:#?}"
    );
    assert!(
        f.advice.ends_with(&format!("tflock break --id {orphan}")),
        "{}",
        f.advice
    );
    assert!(f.fix.is_none());
}
