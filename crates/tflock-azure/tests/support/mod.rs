//! Shared by the Azure test binaries: the Azurite fixture (a direct harness and stores
//! over a container, directly or through a relay) and helpers.
#![allow(dead_code)]

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tflock_azure::testing::{open_with_env, Harness};
use tflock_core::testkit::require_env;
use tflock_core::{ConnectOptions, LockStore, Target};

pub const STATE: &[u8] = br#"{"version":4,"terraform_version":"1.11.4","serial":3,"lineage":"6f1c","outputs":{},"resources":[]}"#;

#[derive(Clone)]
pub struct Azurite {
    pub endpoint: String,
    pub account: String,
    pub key: String,
}

impl Azurite {
    pub fn env(&self) -> impl Fn(&str) -> Option<String> {
        let key = self.key.clone();
        move |k: &str| (k == "ARM_ACCESS_KEY").then(|| key.clone())
    }

    pub fn target(&self, container: &str) -> Target {
        self.target_via(container, &self.endpoint)
    }

    /// `container` reached through `endpoint` (the emulator, or a relay in front of it).
    pub fn target_via(&self, container: &str, endpoint: &str) -> Target {
        Target::parse(&format!(
            "azblob://{}/{container}?endpoint={}/{}",
            self.account,
            endpoint.trim_end_matches('/'),
            self.account
        ))
        .unwrap()
    }

    pub fn opts() -> ConnectOptions {
        ConnectOptions {
            timeout: Duration::from_secs(5),
            ..Default::default()
        }
    }

    pub fn harness(&self, container: &str) -> Harness {
        Harness::connect_with_env(&self.target(container), &Self::opts(), &self.env()).unwrap()
    }

    pub fn store(&self, container: &str) -> Arc<dyn LockStore> {
        open_with_env(&self.target(container), &Self::opts(), &self.env()).unwrap()
    }

    /// A fresh container, unique per case and per run.
    pub async fn container(&self, name: &str) -> String {
        static N: AtomicU32 = AtomicU32::new(0);
        let container = format!(
            "{}-{}-{}",
            name.to_ascii_lowercase(),
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        self.harness(&container).create_container().await.unwrap();
        container
    }
}

/// The emulator, or `None` (skip) when it is not running.
pub async fn fixture() -> Option<Azurite> {
    let endpoint = require_env("TFLOCK_TEST_AZURITE", "Azurite (blob)")?;
    Some(Azurite {
        endpoint: endpoint.trim_end_matches('/').to_string(),
        account: std::env::var("TFLOCK_TEST_AZURE_ACCOUNT").unwrap_or_else(|_| "tflockacct".into()),
        key: std::env::var("TFLOCK_TEST_AZURE_KEY")
            .expect("TFLOCK_TEST_AZURE_KEY with TFLOCK_TEST_AZURITE"),
    })
}

/// The blob Terraform keeps workspace `state` in, for key `terraform.tfstate`.
pub fn blob_of(state: &str) -> String {
    if state == "default" {
        "terraform.tfstate".into()
    } else {
        format!("terraform.tfstateenv:{state}")
    }
}

/// Test-side base64, independent of the crate's.
pub fn base64_of(s: &str) -> String {
    // Test-side encoder, independent of the crate's.
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = s.as_bytes();
    let mut out = String::new();
    for chunk in b.chunks(3) {
        let n = (chunk[0] as u32) << 16
            | (*chunk.get(1).unwrap_or(&0) as u32) << 8
            | *chunk.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Runs `f` with a direct harness on `container` from another thread with its own
/// runtime, and waits for it: a relay rule uses it to change a blob between two requests
/// of the store under test (another terraform acting meanwhile).
pub fn meanwhile<F, Fut>(az: &Azurite, container: &str, f: F)
where
    F: FnOnce(Harness) -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    let (az, container) = (az.clone(), container.to_string());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let h = az.harness(&container);
        rt.block_on(f(h));
    })
    .join()
    .expect("the concurrent change failed");
}
