//! Real terraform (azurerm backend) takes a lease on a state blob in Azurite and is killed
//! with -9. Terraform can only dial https://ACCOUNT.blob.core.windows.net:443, so Azurite
//! serves HTTPS with a certificate from a CA made by scripts/emulators/azurite.sh
//! (`start_azurite_https`), a loopback CONNECT proxy in this test tunnels every CONNECT to
//! it, and terraform and tflock get `HTTPS_PROXY` and `SSL_CERT_FILE` (system bundle + CA).
//! tflock lists the stale lease under the ID terraform printed and a foreign lease beside
//! it, refuses the foreign one, changes nothing on --dry-run, breaks the lock keeping an
//! unrelated metadata key, and terraform plans again.

mod common;
use common::*;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use tflock_azure::testing::Harness;
use tflock_core::{ConnectOptions, Target};

struct Env {
    https: String,
    ca: String,
    account: String,
    key: String,
}

/// The HTTPS Azurite, or `None` (skip) when it is not running. Under scripts/test
/// (TFLOCK_REQUIRE_EMULATORS=1) a missing emulator fails.
fn require_azurite_https() -> Option<Env> {
    let get = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    match (
        get("TFLOCK_TEST_AZURITE_HTTPS"),
        get("TFLOCK_TEST_AZURITE_CA"),
        get("TFLOCK_TEST_AZURE_KEY"),
    ) {
        (Some(https), Some(ca), Some(key)) => Some(Env {
            https: https.trim_end_matches('/').to_string(),
            ca,
            account: get("TFLOCK_TEST_AZURE_ACCOUNT").unwrap_or_else(|| "tflockacct".into()),
            key,
        }),
        _ => {
            if std::env::var("TFLOCK_REQUIRE_EMULATORS").as_deref() == Ok("1") {
                panic!("TFLOCK_TEST_AZURITE_HTTPS / TFLOCK_TEST_AZURITE_CA / TFLOCK_TEST_AZURE_KEY are not set but TFLOCK_REQUIRE_EMULATORS=1: HTTPS Azurite is required (run scripts/test)");
            }
            eprintln!("skipping: TFLOCK_TEST_AZURITE_HTTPS is not set (HTTPS Azurite not running; scripts/test starts it)");
            None
        }
    }
}

/// A loopback HTTP CONNECT proxy that tunnels every CONNECT to `upstream`, whatever host
/// was asked for, and records what was asked.
struct ConnectProxy {
    port: u16,
    seen: Arc<Mutex<Vec<String>>>,
}

impl ConnectProxy {
    fn start(upstream: String) -> ConnectProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().map_while(Result::ok) {
                let upstream = upstream.clone();
                let log = log.clone();
                std::thread::spawn(move || {
                    let _ = tunnel(conn, &upstream, &log);
                });
            }
        });
        ConnectProxy { port, seen }
    }
}

fn tunnel(mut client: TcpStream, upstream: &str, log: &Mutex<Vec<String>>) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if client.read(&mut byte)? == 0 || head.len() > 16 * 1024 {
            return Ok(());
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let mut words = head.split_whitespace();
    if words.next() != Some("CONNECT") {
        client.write_all(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")?;
        return Ok(());
    }
    log.lock()
        .unwrap()
        .push(words.next().unwrap_or("").to_string());
    let server = TcpStream::connect(upstream)?;
    client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")?;
    let (mut c2, mut s2) = (client.try_clone()?, server.try_clone()?);
    let up = std::thread::spawn(move || {
        let _ = std::io::copy(&mut c2, &mut s2);
        let _ = s2.shutdown(std::net::Shutdown::Write);
    });
    let (mut s, mut c) = (server, client);
    let _ = std::io::copy(&mut s, &mut c);
    let _ = c.shutdown(std::net::Shutdown::Write);
    let _ = up.join();
    Ok(())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn azurerm_lease_killed_then_broken_by_id() {
    let Some(()) = require_terraform() else {
        return;
    };
    let Some(az) = require_azurite_https() else {
        return;
    };
    let rt = runtime();
    let container = format!("e2e-kill-{}", std::process::id());
    let state_blob = "app.terraform.tfstate";

    // Direct access for setup and checks: the emulator's URL, the key, the CA.
    let direct = Target::parse(&format!(
        "azblob://{}/{container}?endpoint={}/{}",
        az.account, az.https, az.account
    ))
    .unwrap();
    let (key, ca) = (az.key.clone(), az.ca.clone());
    let h_env = move |k: &str| match k {
        "ARM_ACCESS_KEY" => Some(key.clone()),
        "SSL_CERT_FILE" => Some(ca.clone()),
        _ => None,
    };
    let h = Harness::connect_with_env(&direct, &ConnectOptions::default(), &h_env).unwrap();
    rt.block_on(h.create_container()).unwrap();

    let upstream = az.https.trim_start_matches("https://").to_string();
    let proxy = ConnectProxy::start(upstream);
    let mut wd = Workdir::new(&format!(
        r#"  backend "azurerm" {{
    storage_account_name = "{}"
    container_name       = "{container}"
    key                  = "{state_blob}"
  }}"#,
        az.account
    ));
    let mut bundle = std::fs::read("/etc/ssl/certs/ca-certificates.crt").unwrap_or_default();
    bundle.extend(std::fs::read(&az.ca).expect("read the test CA"));
    std::fs::write(wd.file("ca-bundle.pem"), bundle).unwrap();
    let bundle_path = wd.file("ca-bundle.pem").display().to_string();
    wd.env("ARM_ACCESS_KEY", &az.key)
        .env("HTTPS_PROXY", &format!("http://127.0.0.1:{}", proxy.port))
        .env("SSL_CERT_FILE", &bundle_path);

    wd.init();
    wd.apply();
    assert!(
        proxy
            .seen
            .lock()
            .unwrap()
            .iter()
            .any(|t| t == &format!("{}.blob.core.windows.net:443", az.account)),
        "terraform did not go through the proxy: {:?}",
        proxy.seen.lock().unwrap()
    );
    // An operator's tag on the state blob, which a break must keep.
    rt.block_on(h.set_metadata(state_blob, &[("owner", "team-a")]))
        .unwrap();

    wd.start_holding_apply().kill9();
    let (ok, out) = wd.plan();
    assert!(!ok, "plan must fail on the stale lease:\n{out}");
    assert!(out.contains("Error acquiring the state lock"), "{out}");
    let id = lock_id_in(&out).expect("terraform printed the lock ID");
    assert_eq!(
        rt.block_on(h.current(state_blob)).unwrap().as_deref(),
        Some(id.as_str())
    );

    // Someone else's lease on another blob, with no Terraform metadata.
    let foreign_lease = "0f0f0f0f-1111-2222-3333-444455556666";
    rt.block_on(h.lease("other.tfstate", foreign_lease, None))
        .unwrap();

    // The target as an operator types it: the real endpoint name, through HTTPS_PROXY,
    // trusting the CA through SSL_CERT_FILE.
    let target = format!("azblob://{}/{container}", az.account);
    let locks = wd.tflock_list_json(&[&target]);
    assert_eq!(locks.len(), 2, "{locks:#?}");
    let lock = locks
        .iter()
        .find(|l| l["id"] == id.as_str())
        .unwrap_or_else(|| panic!("no lock with terraform's ID {id}: {locks:#?}"));
    assert_eq!(lock["backend"], "azure");
    assert_eq!(lock["workspace"], "default");
    assert_eq!(lock["path"], format!("{container}/{state_blob}").as_str());
    assert_eq!(lock["operation"], "OperationTypeApply");
    assert_eq!(lock["foreign"], false);
    let foreign = locks
        .iter()
        .find(|l| l["foreign"] == true)
        .expect("the foreign lease is listed");
    assert_eq!(foreign["status"], "foreign");
    let foreign_location = foreign["location"].as_str().unwrap().to_string();
    assert!(
        foreign_location.ends_with(&format!("/{container}/other.tfstate")),
        "{foreign_location}"
    );

    // The same through ?endpoint= (what an emulator user passes).
    let via_endpoint = format!("{}?endpoint={}/{}", target, az.https, az.account);
    let again = wd.tflock_list_json(&[&via_endpoint]);
    assert!(again.iter().any(|l| l["id"] == id.as_str()), "{again:#?}");

    let before = rt.block_on(h.fingerprint()).unwrap();

    // The foreign lease is refused without --force-foreign.
    let refused = wd.tflock(&["break", "--id", &foreign_location, "-t", &target, "--yes"]);
    assert_eq!(code(&refused), 4, "{}", combined(&refused));
    assert!(
        combined(&refused).contains("--force-foreign"),
        "{}",
        combined(&refused)
    );
    assert_eq!(
        rt.block_on(h.current("other.tfstate")).unwrap().as_deref(),
        Some("leased")
    );

    // A dry run changes nothing.
    let dry = wd.tflock(&["break", "--id", &id, "-t", &target, "--dry-run"]);
    assert_eq!(code(&dry), 0, "{}", combined(&dry));
    assert_eq!(
        rt.block_on(h.current(state_blob)).unwrap().as_deref(),
        Some(id.as_str())
    );
    let (ok, _) = wd.plan();
    assert!(!ok, "still locked after the dry run");

    let broke = wd.tflock(&["break", "--id", &id, "-t", &target, "--yes"]);
    assert_eq!(code(&broke), 0, "{}", combined(&broke));
    assert_eq!(rt.block_on(h.current(state_blob)).unwrap(), None);
    let meta = rt.block_on(h.metadata(state_blob)).unwrap();
    assert_eq!(
        meta.get("owner").map(String::as_str),
        Some("team-a"),
        "{meta:?}"
    );
    assert!(!meta.contains_key(tflock_azure::LOCK_KEY), "{meta:?}");
    assert_eq!(
        rt.block_on(h.fingerprint()).unwrap(),
        before,
        "state content or other metadata changed"
    );
    let left = wd.tflock_list_json(&[&target]);
    assert_eq!(left.len(), 1, "only the foreign lease is left: {left:#?}");

    let (ok, out) = wd.plan();
    assert!(ok, "plan after the break:\n{out}");

    // With the flag the foreign lease is broken too.
    let forced = wd.tflock(&[
        "break",
        "--id",
        &foreign_location,
        "-t",
        &target,
        "--yes",
        "--force-foreign",
    ]);
    assert_eq!(code(&forced), 0, "{}", combined(&forced));
    assert_eq!(rt.block_on(h.current("other.tfstate")).unwrap(), None);
}
