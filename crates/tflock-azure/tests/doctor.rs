//! `tflock doctor` for azurerm against Azurite: a lease without `terraformlockid` is
//! reported with who most likely holds it (a Terraform run cut short on an empty new
//! blob; another tool's fixed-duration lease; either, on a state with content), with
//! advice only: nothing is changed.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tflock_azure::testing::{open_with_env, Harness};
use tflock_core::testkit::{require_env, sample_info};
use tflock_core::{ConnectOptions, Finding, Target};

const STATE: &[u8] = br#"{"version":4,"terraform_version":"1.11.4","serial":3,"lineage":"6f1c","outputs":{},"resources":[]}"#;

struct Azurite {
    endpoint: String,
    account: String,
    key: String,
}

impl Azurite {
    fn env(&self) -> impl Fn(&str) -> Option<String> {
        let key = self.key.clone();
        move |k: &str| (k == "ARM_ACCESS_KEY").then(|| key.clone())
    }
    fn target(&self, container: &str, query: &str) -> Target {
        Target::parse(&format!(
            "azblob://{}/{container}?endpoint={}/{}{query}",
            self.account, self.endpoint, self.account
        ))
        .unwrap()
    }
    fn opts() -> ConnectOptions {
        ConnectOptions {
            timeout: Duration::from_secs(5),
            ..Default::default()
        }
    }
    fn harness(&self, container: &str) -> Harness {
        Harness::connect_with_env(&self.target(container, ""), &Self::opts(), &self.env()).unwrap()
    }
    async fn container(&self, name: &str) -> String {
        static N: AtomicU32 = AtomicU32::new(0);
        let container = format!(
            "doctor-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        self.harness(&container).create_container().await.unwrap();
        container
    }
}

async fn azurite() -> Option<Azurite> {
    let endpoint = require_env("TFLOCK_TEST_AZURITE", "Azurite (blob)")?;
    Some(Azurite {
        endpoint: endpoint.trim_end_matches('/').to_string(),
        account: std::env::var("TFLOCK_TEST_AZURE_ACCOUNT").unwrap_or_else(|_| "tflockacct".into()),
        key: std::env::var("TFLOCK_TEST_AZURE_KEY")
            .expect("TFLOCK_TEST_AZURE_KEY with TFLOCK_TEST_AZURITE"),
    })
}

fn by_blob<'a>(found: &'a [Finding], blob: &str) -> &'a Finding {
    found
        .iter()
        .find(|f| f.subject.ends_with(&format!("/{blob}")))
        .unwrap_or_else(|| panic!("no finding for {blob}: {found:#?}"))
}

#[tokio::test]
async fn leases_without_metadata_are_explained_and_nothing_changes() {
    let Some(az) = azurite().await else { return };
    let container = az.container("lease").await;
    let h = az.harness(&container);
    // A Terraform lock, complete: not a problem.
    h.put_state("terraform.tfstate", STATE, &[]).await.unwrap();
    h.lock_like_terraform("terraform.tfstate", &sample_info("OperationTypeApply", "p"))
        .await
        .unwrap();
    // Cut short on a new workspace: empty blob, infinite lease, no metadata.
    h.lease("terraform.tfstateenv:new", &sample_info("x", "x").id, None)
        .await
        .unwrap();
    // An infinite lease on a state with content.
    h.put_state("terraform.tfstateenv:dev", STATE, &[("owner", "team-a")])
        .await
        .unwrap();
    h.lease("terraform.tfstateenv:dev", &sample_info("x", "x").id, None)
        .await
        .unwrap();
    // A copy job's 60-second lease.
    h.put_state("terraform.tfstateenv:ci", STATE, &[])
        .await
        .unwrap();
    h.lease_for("terraform.tfstateenv:ci", &sample_info("x", "x").id, 60)
        .await
        .unwrap();
    let before = h.fingerprint().await.unwrap();

    let store = open_with_env(
        &az.target(&container, "&key=terraform.tfstate"),
        &Azurite::opts(),
        &az.env(),
    )
    .unwrap();
    let found = store.diagnose().await.unwrap();
    assert_eq!(found.len(), 3, "{found:#?}");
    for f in &found {
        assert_eq!(f.kind, "lease-without-metadata");
        assert!(f.fix.is_none());
        assert!(
            f.advice
                .contains(&format!("tflock break --id {} --force-foreign", f.subject)),
            "{}",
            f.advice
        );
    }
    let new = by_blob(&found, "terraform.tfstateenv:new");
    assert!(
        new.summary.contains("most likely a Terraform run died"),
        "{}",
        new.summary
    );
    assert_eq!(new.workspace.as_deref(), Some("new"));
    let dev = by_blob(&found, "terraform.tfstateenv:dev");
    assert!(
        dev.summary.contains("nothing on the blob tells them apart"),
        "{}",
        dev.summary
    );
    assert!(
        dev.evidence
            .iter()
            .any(|(k, v)| k == "metadata" && v.contains("owner")),
        "{dev:#?}"
    );
    let ci = by_blob(&found, "terraform.tfstateenv:ci");
    assert!(ci.summary.contains("fixed duration"), "{}", ci.summary);
    assert_eq!(h.fingerprint().await.unwrap(), before);
    for blob in ["terraform.tfstateenv:new", "terraform.tfstateenv:dev"] {
        assert_eq!(h.current(blob).await.unwrap().as_deref(), Some("leased"));
    }
}
