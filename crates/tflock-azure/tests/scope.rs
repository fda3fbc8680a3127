//! A target scoped to one state (what discovery builds from a `backend "azurerm"` block,
//! `?key=`) lists only that state's blobs, `<key>` and `<key>env:<ws>`, with the right
//! workspace, in one List Blobs request when fewer than 5,000 blobs start with the key.

mod support;

use serde_json::json;
use support::{fixture, Azurite, STATE};
use tflock_azure::testing::open_with_env;
use tflock_core::testkit::relay::Relay;
use tflock_core::testkit::sample_info;
use tflock_core::{BackendBlock, Target};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scoped_store_lists_only_its_state_blobs_in_one_request() {
    let Some(az) = fixture().await else { return };
    let container = az.container("scope").await;
    let h = az.harness(&container);
    let key = "team/app.tfstate";
    // Every blob is leased as Terraform leases it; only the first three are this
    // configuration's states.
    let ours = [
        ("team/app.tfstate", "default"),
        ("team/app.tfstateenv:dev", "dev"),
        ("team/app.tfstateenv:feature-env:x", "feature-env:x"),
    ];
    let others = [
        "team/app.tfstate.backup",
        "team/app.tfstateenv:",
        "team/app.tfstate2env:dev",
        "team/other.tfstate",
        "app.tfstate",
    ];
    for blob in ours.iter().map(|(b, _)| *b).chain(others) {
        h.put_state(blob, STATE, &[]).await.unwrap();
        let path = format!("{container}/{blob}");
        h.lock_like_terraform(blob, &sample_info("OperationTypeApply", &path))
            .await
            .unwrap();
    }

    let block = BackendBlock {
        kind: "azurerm".into(),
        config: json!({
            "storage_account_name": az.account,
            "container_name": container,
            "key": key,
        })
        .as_object()
        .unwrap()
        .clone(),
        source: "backend \"azurerm\" block in ./main.tf".into(),
        dir: ".".into(),
    };
    let discovered = tflock_azure::DRIVER.discover(&block).unwrap();
    assert_eq!(discovered.len(), 1);
    let relay = Relay::start(&az.endpoint).await;
    let target: Target = discovered[0]
        .clone()
        .with("endpoint", Some(format!("{}/{}", relay.url, az.account)));
    let store = open_with_env(&target, &Azurite::opts(), &az.env()).unwrap();

    relay.clear();
    let mut locks = store.list().await.unwrap();
    let seen = relay.seen();
    assert_eq!(seen.len(), 1, "one List Blobs request: {seen:#?}");
    let q = &seen[0].target;
    assert!(
        seen[0].method == "GET"
            && q.contains("comp=list")
            && q.contains("include=metadata")
            && q.contains("prefix=team%2Fapp.tfstate"),
        "{q}"
    );

    locks.sort_by(|a, b| a.location.cmp(&b.location));
    let got: Vec<(String, Option<String>)> = locks
        .iter()
        .map(|l| {
            let blob = l.path.strip_prefix(&format!("{container}/")).unwrap();
            (blob.to_string(), l.workspace.clone())
        })
        .collect();
    let mut want: Vec<(String, Option<String>)> = ours
        .iter()
        .map(|(b, ws)| (b.to_string(), Some(ws.to_string())))
        .collect();
    want.sort();
    assert_eq!(got, want);
}
