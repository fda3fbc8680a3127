//! A plain-http endpoint (an emulator) loads no certificates: no system store, no
//! `SSL_CERT_FILE`. Its own test binary, because it points the process environment at
//! certificate files that do not exist, which the platform verifier would read.

use std::time::Duration;
use tflock_azure::testing::{open_with_env, Harness};
use tflock_core::testkit::require_env;
use tflock_core::{ConnectOptions, Target};

#[test]
fn plain_http_endpoint_loads_no_certificates() {
    let Some(endpoint) = require_env("TFLOCK_TEST_AZURITE", "Azurite (blob)") else {
        return;
    };
    let account =
        std::env::var("TFLOCK_TEST_AZURE_ACCOUNT").unwrap_or_else(|_| "tflockacct".into());
    let key = std::env::var("TFLOCK_TEST_AZURE_KEY").expect("TFLOCK_TEST_AZURE_KEY");
    // Set before any thread starts: the platform verifier reads these (and only these when
    // set) for the system store; nothing may read them for an http endpoint.
    std::env::set_var("SSL_CERT_FILE", "/nonexistent/tflock-startup-test/ca.pem");
    std::env::set_var("SSL_CERT_DIR", "/nonexistent/tflock-startup-test/certs");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let container = format!("startup-{}", std::process::id());
    let target = Target::parse(&format!(
        "azblob://{account}/{container}?endpoint={}/{account}",
        endpoint.trim_end_matches('/')
    ))
    .unwrap();
    let opts = ConnectOptions {
        timeout: Duration::from_secs(5),
        ..Default::default()
    };
    // Our own lookup passes SSL_CERT_FILE too: it must not be read for http either.
    let env = move |k: &str| match k {
        "ARM_ACCESS_KEY" => Some(key.clone()),
        "SSL_CERT_FILE" => Some("/nonexistent/tflock-startup-test/ca.pem".to_string()),
        _ => None,
    };
    let h = Harness::connect_with_env(&target, &opts, &env)
        .unwrap_or_else(|e| panic!("an http endpoint must not need certificates: {e}"));
    rt.block_on(h.create_container()).unwrap();
    let store = open_with_env(&target, &opts, &env)
        .unwrap_or_else(|e| panic!("an http endpoint must not need certificates: {e}"));
    let locks = rt.block_on(store.list()).unwrap();
    assert!(locks.is_empty(), "{locks:#?}");
}
