//! The core conformance suite (with the network cases) against fake-gcs-server
//! (`TFLOCK_TEST_GCS`), locks written exactly as Terraform's gcs backend writes them, plus
//! GCS-specific cases: IDs are generations, the DELETE precondition really sent (through a
//! recording relay), GCS's own 412 reported as Changed, and credentials.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::{unique, GcsFixture};
use tflock_core::testkit::relay::{Relay, Verdict};
use tflock_core::testkit::{sample_info, Place};
use tflock_core::{BreakOptions, ConnectOptions, LockStore, Target};
use tflock_gcs::GcsStore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn fixture() -> Option<GcsFixture> {
    GcsFixture::from_env()
}

tflock_core::conformance_suite!(fixture(); network);

#[tokio::test]
async fn lock_id_is_the_generation_and_the_body_id_an_alias() {
    let Some(f) = fixture().await else { return };
    let place = f.gcs_place("ids", &f.emu.base).await;
    let info = sample_info("OperationTypeApply", &place.path_of("dev"));
    let generation = place.hold("dev", &info).await;
    let locks = place.store().list().await.unwrap();
    assert_eq!(locks.len(), 1, "{locks:#?}");
    let lock = &locks[0];
    assert_eq!(lock.id, generation);
    assert!(lock.id.parse::<i64>().is_ok());
    assert_eq!(lock.aliases, vec![info.id.clone()]);
    assert!(lock.matches_id(&info.id));
    assert_eq!(lock.workspace.as_deref(), Some("dev"));
    assert_eq!(
        lock.location,
        format!("gs://{}/env/app/dev.tflock", place.bucket)
    );
    assert_eq!(lock.path, lock.location);
    assert_eq!(lock.details.get("generation"), Some(&generation));
    assert!(lock.stored_at.is_some(), "timeCreated missing");
    assert_eq!(
        lock.state.as_deref(),
        Some(format!("gs://{}/env/app/dev.tfstate", place.bucket).as_str())
    );
}

#[tokio::test]
async fn nested_prefixes_and_empty_prefix_are_listed_state_objects_never() {
    let Some(f) = fixture().await else { return };
    let place = f.gcs_place("nested", &f.emu.base).await;
    place
        .hold("default", &sample_info("OperationTypeApply", ""))
        .await;
    // The whole bucket: every .tflock at any depth (including the decoys), no .tfstate.
    let target = Target::parse(&format!("gs://{}?endpoint={}", place.bucket, f.emu.base)).unwrap();
    let store = GcsStore::open(&target, &ConnectOptions::default())
        .await
        .unwrap();
    let locks = store.list().await.unwrap();
    let mut names: Vec<(&str, Option<&str>)> = locks
        .iter()
        .map(|l| (l.location.as_str(), l.workspace.as_deref()))
        .collect();
    names.sort();
    let b = &place.bucket;
    assert_eq!(
        names,
        vec![
            (
                format!("gs://{b}/env/app-old/default.tflock").as_str(),
                Some("default")
            ),
            (
                format!("gs://{b}/env/app/default.tflock").as_str(),
                Some("default")
            ),
            (
                format!("gs://{b}/outside/default.tflock").as_str(),
                Some("default")
            ),
        ]
    );
    // `gs://b/env` covers env/app/ and env/app-old/, not outside/.
    let target = Target::parse(&format!(
        "gs://{}/env/?endpoint={}",
        place.bucket, f.emu.base
    ))
    .unwrap();
    let store = GcsStore::open(&target, &ConnectOptions::default())
        .await
        .unwrap();
    assert_eq!(store.list().await.unwrap().len(), 2);
}

#[tokio::test]
async fn empty_body_is_listed_and_breakable_by_generation() {
    let Some(f) = fixture().await else { return };
    let place = f.gcs_place("emptybody", &f.emu.base).await;
    let generation = place.write_lock("default", "").await;
    let before = place.untouchables().await;
    let locks = place.store().list().await.unwrap();
    assert_eq!(locks.len(), 1);
    assert_eq!(locks[0].id, generation);
    assert_eq!(locks[0].info_error.as_deref(), Some("lock info is empty"));
    place
        .store()
        .break_lock(&locks[0], &BreakOptions::default())
        .await
        .unwrap();
    assert_eq!(place.current("default").await, None);
    assert_eq!(place.untouchables().await, before);
}

#[tokio::test]
async fn a_forged_location_cannot_aim_a_break_at_the_state_object() {
    let Some(f) = fixture().await else { return };
    let place = f.gcs_place("foreign", &f.emu.base).await;
    let gen = place
        .hold("default", &sample_info("OperationTypeApply", ""))
        .await;
    let locks = place.store().list().await.unwrap();
    let mut forged = locks[0].clone();
    forged.location = format!("gs://{}/env/app/default.tfstate", place.bucket);
    forged
        .details
        .insert("object".into(), "env/app/default.tfstate".into());
    let before = place.untouchables().await;
    // The break goes by the handle the listing made: the lock object it read.
    place
        .store()
        .break_lock(&forged, &BreakOptions::default())
        .await
        .unwrap();
    assert_eq!(
        place.untouchables().await,
        before,
        "the state object changed"
    );
    assert_eq!(
        place.current("default").await,
        None,
        "lock {gen} still there"
    );
}

/// Reads one HTTP request (head and Content-Length body), for the token server.
async fn read_request(conn: &mut TcpStream) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = conn.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = conn.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some(buf)
}

/// The request lines (`METHOD TARGET`) a relay saw.
fn lines(relay: &Relay) -> Vec<String> {
    relay
        .seen()
        .into_iter()
        .map(|s| format!("{} {}", s.method, s.target))
        .collect()
}

/// The `Authorization` header of each request a relay saw.
fn auths(relay: &Relay) -> Vec<Option<String>> {
    relay
        .seen()
        .iter()
        .map(|s| s.header("authorization").map(str::to_string))
        .collect()
}

#[tokio::test]
async fn delete_carries_if_generation_match_and_rechecks_first() {
    let Some(f) = fixture().await else { return };
    let relay = Relay::start(&f.emu.base).await;
    let place = f.gcs_place("precondition", &relay.url).await;
    let gen = place
        .hold("default", &sample_info("OperationTypeApply", ""))
        .await;
    let before = place.untouchables().await;
    let locks = place.store().list().await.unwrap();
    relay.clear();
    place
        .store()
        .break_lock(&locks[0], &BreakOptions::default())
        .await
        .unwrap();
    let lines = lines(&relay);
    let object = format!(
        "/storage/v1/b/{}/o/env%2Fapp%2Fdefault.tflock",
        place.bucket
    );
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert!(
        lines[0] == format!("GET {object}") || lines[0].starts_with(&format!("GET {object}?")),
        "re-read first: {lines:#?}"
    );
    assert_eq!(
        lines[1],
        format!("DELETE {object}?ifGenerationMatch={gen}"),
        "{lines:#?}"
    );
    assert_eq!(place.current("default").await, None);
    assert_eq!(place.untouchables().await, before);
}

/// The backend block's `access_token` (a target option set by discovery or tflock.toml)
/// is sent as a bearer token, to a custom endpoint too, as Terraform sends it; without
/// one, an emulator is called anonymously.
#[tokio::test]
async fn access_token_option_is_sent_as_bearer() {
    let Some(f) = fixture().await else { return };
    if std::env::var_os("GOOGLE_OAUTH_ACCESS_TOKEN").is_some() {
        eprintln!("skipping: GOOGLE_OAUTH_ACCESS_TOKEN is set in this environment");
        return;
    }
    let relay = Relay::start(&f.emu.base).await;
    let proxy = relay.url.clone();
    let bucket = unique("token");
    f.emu.create_bucket(&bucket).await;
    let mut target = Target::parse(&format!("gs://{bucket}?endpoint={proxy}")).unwrap();
    let anonymous = GcsStore::open(&target, &opts(5)).await.unwrap();
    assert!(anonymous.list().await.unwrap().is_empty());
    assert_eq!(auths(&relay), [None]);
    relay.clear();
    target
        .params
        .insert("access_token".into(), "ya29.from-the-block".into());
    let with_token = GcsStore::open(&target, &opts(5)).await.unwrap();
    assert!(with_token.list().await.unwrap().is_empty());
    assert_eq!(
        auths(&relay),
        [Some("Bearer ya29.from-the-block".to_string())]
    );
    assert!(
        !with_token.target().contains("ya29"),
        "{}",
        with_token.target()
    );
}

/// A token endpoint that answers every POST with `access_token`, and counts the JWT
/// assertions it received (what a service-account key exchange sends).
async fn start_token_server(access_token: &'static str) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let grants = Arc::new(Mutex::new(Vec::new()));
    let seen = grants.clone();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let Some(request) = read_request(&mut client).await else {
                    return;
                };
                let text = String::from_utf8_lossy(&request).into_owned();
                if let Some(body) = text.split("\r\n\r\n").nth(1) {
                    seen.lock().unwrap().push(body.to_string());
                }
                let body = format!(
                    r#"{{"access_token":"{access_token}","expires_in":3600,"token_type":"Bearer"}}"#
                );
                let reply = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = client.write_all(reply.as_bytes()).await;
            });
        }
    });
    (format!("http://{addr}/token"), grants)
}

/// The backend block's `credentials` (a service-account key: the JSON itself, or a path to
/// it) is used as Terraform uses it: the key is exchanged for an access token at its
/// `token_uri` (a local token server here), and that token is sent to the (custom)
/// endpoint. Errors about it never show the key.
#[tokio::test]
async fn credentials_option_exchanges_the_key_for_a_token() {
    let Some(f) = fixture().await else { return };
    if std::env::var_os("GOOGLE_OAUTH_ACCESS_TOKEN").is_some() {
        eprintln!("skipping: GOOGLE_OAUTH_ACCESS_TOKEN is set in this environment");
        return;
    }
    let dir = std::env::temp_dir().join(format!("tflock-gcs-sa-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pem = dir.join("key.pem");
    let made = std::process::Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&pem)
        .output()
        .expect("run openssl");
    assert!(made.status.success(), "{made:?}");
    let private_key = std::fs::read_to_string(&pem).unwrap();
    let (token_uri, grants) = start_token_server("ya29.from-the-key").await;
    let json = serde_json::json!({
        "type": "service_account",
        "project_id": "tflock-test",
        "private_key_id": "k1",
        "private_key": private_key,
        "client_email": "tflock@tflock-test.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": token_uri,
    })
    .to_string();
    let key_file = dir.join("sa.json");
    std::fs::write(&key_file, &json).unwrap();

    let relay = Relay::start(&f.emu.base).await;
    let proxy = relay.url.clone();
    let bucket = unique("sa-key");
    f.emu.create_bucket(&bucket).await;
    for value in [json.clone(), key_file.display().to_string()] {
        relay.clear();
        let mut target = Target::parse(&format!("gs://{bucket}?endpoint={proxy}")).unwrap();
        target.params.insert("credentials".into(), value);
        let store = GcsStore::open(&target, &opts(5)).await.unwrap();
        assert!(store.list().await.unwrap().is_empty());
        assert_eq!(
            auths(&relay),
            [Some("Bearer ya29.from-the-key".to_string())]
        );
    }
    let exchanges = grants.lock().unwrap().clone();
    assert_eq!(exchanges.len(), 2, "{exchanges:?}");
    assert!(
        exchanges[0].contains("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer"),
        "{exchanges:?}"
    );

    // The block's access_token still wins over its credentials, as in Terraform.
    relay.clear();
    let mut target = Target::parse(&format!("gs://{bucket}?endpoint={proxy}")).unwrap();
    target.params.insert("credentials".into(), json.clone());
    target
        .params
        .insert("access_token".into(), "ya29.token-wins".into());
    let store = GcsStore::open(&target, &opts(5)).await.unwrap();
    store.list().await.unwrap();
    assert_eq!(auths(&relay), [Some("Bearer ya29.token-wins".to_string())]);

    // A key that cannot be used: one line, the key never in it.
    let key_body: String = private_key
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let broken = json.replace("BEGIN PRIVATE KEY", "BEGIN NOTHING");
    let mut target = Target::parse(&format!("gs://{bucket}?endpoint={proxy}")).unwrap();
    target.params.insert("credentials".into(), broken);
    let text = match GcsStore::open(&target, &opts(5)).await {
        Ok(store) => store.list().await.unwrap_err().to_string(),
        Err(e) => e.to_string(),
    };
    eprintln!("{text}");
    assert!(!text.contains('\n'), "{text}");
    assert!(!text.contains(&key_body[..40]), "{text}");
    assert!(!text.contains("ya29"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// GCS's own answer to a DELETE whose `ifGenerationMatch` no longer holds (the emulator
/// never gives it: it ignores the precondition) is Changed, and the lock survives.
#[tokio::test]
async fn gcs_precondition_failed_is_changed() {
    let Some(f) = fixture().await else { return };
    let relay = Relay::start(&f.emu.base).await;
    let place = f.gcs_place("status412", &relay.url).await;
    let gen = place
        .hold("default", &sample_info("OperationTypeApply", ""))
        .await;
    let locks = place.store().list().await.unwrap();
    let body = r#"{"error":{"code":412,"message":"At least one of the pre-conditions you specified did not hold.","errors":[{"message":"At least one of the pre-conditions you specified did not hold.","domain":"global","reason":"conditionNotMet"}]}}"#;
    relay.next_write(Verdict::Answer(412, body.to_string()));
    let err = place
        .store()
        .break_lock(&locks[0], &BreakOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), tflock_core::Kind::Changed, "{err:?}");
    assert!(err.to_string().contains("HTTP 412"), "{err}");
    assert!(lines(&relay).iter().any(|l| l.starts_with("DELETE ")));
    assert_eq!(
        place.current("default").await,
        Some(gen),
        "lock must survive"
    );
}

fn opts(secs: u64) -> ConnectOptions {
    ConnectOptions {
        timeout: Duration::from_secs(secs),
        ..ConnectOptions::default()
    }
}

/// The target discovery makes from a `backend "gcs"` block (`?nested=false`) lists the
/// workspaces of that prefix only: not the locks of a deeper prefix (another backend
/// configuration), a sibling prefix or anything outside.
#[tokio::test]
async fn discovered_target_lists_only_its_own_workspaces() {
    let Some(f) = fixture().await else { return };
    let place = f.gcs_place("scoped", &f.emu.base).await;
    let dev = place
        .hold("dev", &sample_info("OperationTypeApply", ""))
        .await;
    let default = place
        .hold("default", &sample_info("OperationTypePlan", ""))
        .await;
    // Another configuration's lock, one level deeper (`prefix = "env/app/x"`).
    f.emu
        .create(&place.bucket, "env/app/x/dev.tflock", r#"{"ID":"deeper"}"#)
        .await
        .unwrap();
    let block = tflock_core::BackendBlock {
        kind: "gcs".into(),
        config: serde_json::from_value(serde_json::json!({
            "bucket": place.bucket,
            "prefix": "env/app",
            "storage_custom_endpoint": format!("{}/storage/v1/", f.emu.base),
        }))
        .unwrap(),
        source: "test".into(),
        dir: ".".into(),
    };
    let targets = tflock_gcs::DRIVER.discover(&block).unwrap();
    assert_eq!(targets.len(), 1);
    let store = tflock_gcs::DRIVER
        .open(&targets[0], &opts(5))
        .await
        .unwrap();
    let mut got: Vec<(String, Option<String>)> = store
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|l| (l.id, l.workspace))
        .collect();
    got.sort();
    let mut want = vec![
        (default, Some("default".to_string())),
        (dev, Some("dev".to_string())),
    ];
    want.sort();
    assert_eq!(got, want);
    // Without the scope, the deeper lock is there too.
    let all = GcsStore::open(
        &Target::parse(&format!(
            "gs://{}/env/app?endpoint={}",
            place.bucket, f.emu.base
        ))
        .unwrap(),
        &opts(5),
    )
    .await
    .unwrap();
    assert_eq!(all.list().await.unwrap().len(), 3);
}
