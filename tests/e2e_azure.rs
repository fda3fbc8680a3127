//! Real terraform (azurerm backend) takes a lease on a state blob in Azurite and is killed
//! with -9. Terraform can only dial https://ACCOUNT.blob.core.windows.net:443, so Azurite
//! serves HTTPS with a certificate from a CA made by scripts/emulators/azurite.sh
//! (`start_azurite_https`), a loopback CONNECT proxy in this test tunnels every CONNECT to
//! it, and terraform and tflock get `HTTPS_PROXY` and `SSL_CERT_FILE` (system bundle + CA).
//! tflock lists the stale lease under the ID terraform printed and a foreign lease beside
//! it, refuses the foreign one, changes nothing on --dry-run, breaks the lock keeping an
//! unrelated metadata key, and terraform plans again.

mod common;
use common::azure::*;
use common::*;

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
    let h = az.harness(&rt, &container);

    let mut wd = Workdir::new(&format!(
        r#"  backend "azurerm" {{
    storage_account_name = "{}"
    container_name       = "{container}"
    key                  = "{state_blob}"
  }}"#,
        az.account
    ));
    let proxy = az.route(&mut wd);
    wd.env("ARM_ACCESS_KEY", &az.key);

    wd.init();
    wd.apply();
    assert!(
        proxy.saw(&az.public_host()),
        "terraform did not go through the proxy: {:?}",
        proxy.seen.lock().unwrap()
    );
    // An operator's tag on the state blob, which a break must keep.
    rt.block_on(h.set_metadata(state_blob, &[("owner", "team-a")]))
        .unwrap();

    let (id, _) = wd.kill_holding_apply();
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
    let again = wd.tflock_list_json(&[&az.direct_url(&container)]);
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
