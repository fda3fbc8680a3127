//! Real terraform with the consul backend, killed with -9 while it holds the lock, against
//! the fake Consul agent in `tflock_consul::testing` (no Consul server is installable
//! here; the fake follows the KV, session, transaction and blocking-query semantics the Go
//! client relies on). Terraform's own lock is a session on `<path>/.lock` plus
//! `<path>/.lockinfo`: the session outlives the killed terraform until its TTL runs out,
//! so `plan` fails; tflock, run in the working directory, lists the lock under the
//! session ID terraform prints, refuses a wrong ID (exit 3, nothing sent), breaks it by
//! destroying that session, and terraform plans again. The state is untouched.

mod common;
use common::*;
use tflock_consul::testing::Fake;

const STATE: &str = "tf/app";

#[test]
fn consul_lock_killed_then_broken_by_session_id() {
    let Some(()) = require_terraform() else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let fake = rt.block_on(Fake::start());
    let block = format!(
        r#"  backend "consul" {{
    address = "{}"
    scheme  = "http"
    path    = "{STATE}"
  }}"#,
        Fake::addr(&fake.url)
    );
    let mut wd = Workdir::new(&block);
    wd.env("CONSUL_HTTP_TOKEN", &fake.token);
    wd.init();
    wd.apply();
    let (id, out) = wd.kill_holding_apply();
    let state_before = {
        let st = fake.state.lock().unwrap();
        let lock = &st.kv[&format!("{STATE}/.lock")];
        assert_eq!(lock.session.as_deref(), Some(id.as_str()), "{out}");
        assert!(st.sessions.contains_key(&id));
        st.kv[STATE].value.clone()
    };

    // From the working directory, no -t: the backend block becomes a consul:// target.
    assert_one_lock_listed(&wd, "consul", &id);
    // A wrong ID: exit 3, nothing written.
    assert_wrong_id_changes_nothing(&wd, || {
        let st = fake.state.lock().unwrap();
        st.log.iter().filter(|l| !l.starts_with("GET ")).count()
    });

    let broke = wd.tflock(&["break", "--id", &id, "--yes"]);
    assert_eq!(code(&broke), 0, "{}", combined(&broke));
    assert!(
        combined(&broke).contains("lock-delay"),
        "{}",
        combined(&broke)
    );
    {
        let st = fake.state.lock().unwrap();
        assert!(!st.sessions.contains_key(&id), "the session still lives");
        assert!(!st.kv.contains_key(&format!("{STATE}/.lockinfo")));
        assert_eq!(st.kv[STATE].value, state_before, "the state was modified");
    }
    // Consul keeps `.lock` from being acquired for the dead session's lock-delay (5 s),
    // as tflock warned: let it pass.
    fake.after_lock_delay();
    let (ok, out) = wd.plan();
    assert!(ok, "plan after the break:\n{out}");
    assert!(!combined(&broke).contains(&fake.token));
}
