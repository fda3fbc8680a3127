//! Real terraform with the kubernetes backend, killed with -9 while it holds the lock,
//! against the fake API server in `tflock_kubernetes::testing` (no API server is
//! installable here; the fake follows the Lease and Secret semantics of the real one:
//! resourceVersion, uid preconditions, Status objects). Terraform's lock is the Lease
//! `lock-tfstate-<workspace>-<suffix>` with `holderIdentity` = the lock ID: nothing
//! expires it, so `plan` fails until it is cleared. tflock, run in the working directory,
//! lists it under terraform's ID, refuses a wrong ID (exit 3, nothing written), breaks it
//! with the update terraform's unlock makes (guarded by resourceVersion), and terraform
//! plans again. The state Secret and the Lease object itself are kept.

mod common;
use common::*;
use tflock_kubernetes::testing::Fake;

const LEASE: &str = "lock-tfstate-default-app";
const SECRET: &str = "tfstate-default-app";

#[test]
fn kubernetes_lease_killed_then_broken_by_id() {
    let Some(()) = require_terraform() else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let fake = rt.block_on(Fake::start());
    fake.state
        .lock()
        .unwrap()
        .namespaces
        .insert("default".into());
    // client-go reads a kubeconfig's credentials only for TLS servers (clientcmd), and the
    // fake speaks plain HTTP: the token goes in the block, as `token` (KUBE_TOKEN).
    let wd_block = |config: &str| {
        format!(
            r#"  backend "kubernetes" {{
    secret_suffix = "app"
    namespace     = "default"
    config_path   = "{config}"
    token         = "{}"
  }}"#,
            fake.token
        )
    };
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("kubeconfig");
    std::fs::write(
        &config,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: fake\nclusters:\n- name: fake\n  cluster:\n    server: {}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: me\n    namespace: default\nusers:\n- name: me\n  user:\n    token: {}\n",
            fake.url, fake.token
        ),
    )
    .unwrap();
    let wd = Workdir::new(&wd_block(&config.display().to_string()));
    wd.init();
    wd.apply();
    let (id, out) = wd.kill_holding_apply();
    let key = |resource: &str, name: &str| {
        (
            resource.to_string(),
            "default".to_string(),
            name.to_string(),
        )
    };
    let secret_before = {
        let st = fake.state.lock().unwrap();
        let lease = &st.objects[&key("leases", LEASE)];
        assert_eq!(lease["spec"]["holderIdentity"], id.as_str(), "{out}");
        st.objects[&key("secrets", SECRET)].clone()
    };

    // From the working directory, no -t: the backend block becomes a k8s:// target.
    assert_one_lock_listed(&wd, "kubernetes", &id);
    // A wrong ID: exit 3, nothing written.
    assert_wrong_id_changes_nothing(&wd, || fake.state.lock().unwrap().puts.len());

    let broke = wd.tflock(&["break", "--id", &id, "--yes"]);
    assert_eq!(code(&broke), 0, "{}", combined(&broke));
    {
        let st = fake.state.lock().unwrap();
        let lease = &st.objects[&key("leases", LEASE)];
        assert!(lease["spec"]["holderIdentity"].is_null(), "{lease:#}");
        assert!(
            lease["metadata"]["annotations"]
                .get("app.terraform.io/lock-info")
                .is_none(),
            "{lease:#}"
        );
        assert_eq!(
            st.objects[&key("secrets", SECRET)],
            secret_before,
            "the state Secret was modified"
        );
    }
    let (ok, out) = wd.plan();
    assert!(ok, "plan after the break:\n{out}");
    assert!(!combined(&broke).contains(&fake.token));
}
