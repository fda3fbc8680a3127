//! The azurerm test bed: Terraform can only dial https://ACCOUNT.blob.core.windows.net, so
//! Azurite serves HTTPS with a certificate from a CA made by scripts/emulators/azurite.sh
//! (`start_azurite_https`), a loopback CONNECT proxy tunnels every CONNECT to it, and
//! terraform and tflock get `HTTPS_PROXY` and `SSL_CERT_FILE` (system bundle + CA).

use super::Workdir;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use tflock_azure::testing::Harness;
use tflock_core::{ConnectOptions, Target};

/// The HTTPS Azurite of the test bed.
pub struct AzuriteHttps {
    /// `https://127.0.0.1:PORT`
    pub https: String,
    /// The CA that signed its certificate (PEM file).
    pub ca: String,
    pub account: String,
    pub key: String,
}

/// The HTTPS Azurite, or `None` (skip) when it is not running. Under scripts/test
/// (TFLOCK_REQUIRE_EMULATORS=1) a missing emulator fails.
pub fn require_azurite_https() -> Option<AzuriteHttps> {
    let get = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    match (
        get("TFLOCK_TEST_AZURITE_HTTPS"),
        get("TFLOCK_TEST_AZURITE_CA"),
        get("TFLOCK_TEST_AZURE_KEY"),
    ) {
        (Some(https), Some(ca), Some(key)) => Some(AzuriteHttps {
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

impl AzuriteHttps {
    /// `azblob://ACCOUNT/CONTAINER?endpoint=<the emulator's URL>`: what an emulator user
    /// passes, and what setup and checks use.
    pub fn direct_url(&self, container: &str) -> String {
        format!(
            "azblob://{}/{container}?endpoint={}/{}",
            self.account, self.https, self.account
        )
    }

    /// A direct client (the emulator's URL, the key, the CA) for setup and checks; the
    /// container is created.
    pub fn harness(&self, rt: &tokio::runtime::Runtime, container: &str) -> Harness {
        let direct = Target::parse(&self.direct_url(container)).unwrap();
        let (key, ca) = (self.key.clone(), self.ca.clone());
        let env = move |k: &str| match k {
            "ARM_ACCESS_KEY" => Some(key.clone()),
            "SSL_CERT_FILE" => Some(ca.clone()),
            _ => None,
        };
        let h = Harness::connect_with_env(&direct, &ConnectOptions::default(), &env).unwrap();
        rt.block_on(h.create_container()).unwrap();
        h
    }

    /// Makes `https://ACCOUNT.blob.core.windows.net` reach this Azurite for every terraform
    /// and tflock run of `wd`: starts a CONNECT proxy, writes the system bundle + the CA to
    /// `ca-bundle.pem`, sets `HTTPS_PROXY` and `SSL_CERT_FILE`. No credential is set.
    pub fn route(&self, wd: &mut Workdir) -> ConnectProxy {
        let proxy = ConnectProxy::start(self.https.trim_start_matches("https://").to_string());
        let mut bundle = std::fs::read("/etc/ssl/certs/ca-certificates.crt").unwrap_or_default();
        bundle.extend(std::fs::read(&self.ca).expect("read the test CA"));
        std::fs::write(wd.file("ca-bundle.pem"), bundle).unwrap();
        let bundle_path = wd.file("ca-bundle.pem").display().to_string();
        wd.env("HTTPS_PROXY", &format!("http://127.0.0.1:{}", proxy.port))
            .env("SSL_CERT_FILE", &bundle_path);
        proxy
    }

    /// The CONNECT target terraform asks for: `ACCOUNT.blob.core.windows.net:443`.
    pub fn public_host(&self) -> String {
        format!("{}.blob.core.windows.net:443", self.account)
    }
}

/// A loopback HTTP CONNECT proxy that tunnels every CONNECT to `upstream`, whatever host
/// was asked for, and records what was asked.
pub struct ConnectProxy {
    pub port: u16,
    pub seen: Arc<Mutex<Vec<String>>>,
}

impl ConnectProxy {
    pub fn start(upstream: String) -> ConnectProxy {
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

    /// Whether a CONNECT to `host` went through.
    pub fn saw(&self, host: &str) -> bool {
        self.seen.lock().unwrap().iter().any(|t| t == host)
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

/// A small runtime for the async harness calls of a sync test.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}
