//! pg-specific cases against the real server: what a listed lock says about its session,
//! busy sessions, creation locks, advisory locks that are not this target's, the role
//! rights a break needs, several locks in one session, login and TLS settings.

mod support;
use support::relay::PgRelay;
use support::*;

use chrono::Utc;
use std::time::Duration;
use tflock_core::testkit::{sample_info, Place};
use tflock_core::{BreakOptions, ConnectOptions, Kind, LockStore, Target};
use tflock_pg::PgStore;

fn quick() -> ConnectOptions {
    ConnectOptions {
        timeout: Duration::from_secs(5),
        ..ConnectOptions::default()
    }
}

/// Waits until `pid`'s session is in `state` (`active` once its statement runs).
async fn wait_state(place: &PgPlace, pid: i32, state: &str) {
    let admin = place.pg.admin().await;
    for _ in 0..250 {
        let now: Option<String> = admin
            .query_opt("SELECT state FROM pg_stat_activity WHERE pid = $1", &[&pid])
            .await
            .unwrap()
            .and_then(|r| r.get(0));
        if now.as_deref() == Some(state) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("session {pid} never became {state}");
}

async fn alive(place: &PgPlace, pid: i32) -> bool {
    let admin = place.pg.admin().await;
    let n: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE pid = $1",
            &[&pid],
        )
        .await
        .unwrap()
        .get(0);
    n == 1
}

#[tokio::test]
async fn a_listed_lock_names_its_session() {
    let Some(f) = fixture().await else { return };
    let place = f.pg_place("session").await;
    let key = place.ensure_row("prod").await;
    let s = place.lock_as_terraform("prod").await;
    let (pid, start) = (s.pid, s.start);
    let client_port: i32 = s
        .client
        .query_one("SELECT inet_client_port()", &[])
        .await
        .unwrap()
        .get(0);
    let id = place.keep("prod", s).await;
    assert_eq!(id, format!("pg-{pid}-{}-{key}", start.timestamp_micros()));

    let locks = place.store.list().await.unwrap();
    assert_eq!(locks.len(), 1, "{locks:#?}");
    let l = &locks[0];
    assert_eq!(l.backend.as_str(), "pg");
    assert_eq!(l.id, id);
    assert_eq!(l.workspace.as_deref(), Some("prod"));
    assert_eq!(l.path, format!("{}.states/prod", place.schema));
    assert_eq!(
        l.location,
        format!(
            "pg://{}:{}/{}/advisory-lock/{key}",
            f.pg.host, f.pg.port, f.pg.db
        )
    );
    assert_eq!(l.held, None, "an idle session may be a stopped terraform");
    assert!(l.info.is_none() && l.info_error.is_none(), "{l:#?}");
    let client = format!("127.0.0.1:{client_port}");
    assert_eq!(
        l.holder.as_deref(),
        Some(format!("pid {pid}, {}@{client}", f.pg.user).as_str())
    );
    let d = &l.details;
    assert_eq!(d.get("pid"), Some(&pid.to_string()));
    assert_eq!(d.get("client"), Some(&client));
    assert_eq!(d.get("role"), Some(&f.pg.user));
    assert_eq!(d.get("session_state").map(String::as_str), Some("idle"));
    assert_eq!(d.get("advisory_key"), Some(&key.to_string()));
    assert_eq!(d.get("database"), Some(&f.pg.db));
    assert!(d.contains_key("session_start") && d.contains_key("state_since"));
    // Age: since the session's last statement, never before the session started.
    let since = l.created().expect("an age");
    assert!(since >= start && since <= Utc::now(), "{since} vs {start}");
    // The ID is stable from one listing to the next.
    assert_eq!(place.store.list().await.unwrap()[0].id, id);
}

#[tokio::test]
async fn a_busy_session_is_held_and_never_ended() {
    let Some(f) = fixture().await else { return };
    let place = f.pg_place("busy").await;
    place.ensure_row("default").await;
    let holder = std::sync::Arc::new(place.lock_as_terraform("default").await);
    let (pid, id) = (holder.pid, holder.id());
    let idle_snapshot = place.store.list().await.unwrap().remove(0);
    assert_eq!(idle_snapshot.id, id);
    assert_eq!(idle_snapshot.held, None);

    // Now the holder runs a statement: the server is working for a live client.
    let cancel = holder.client.cancel_token();
    let busy = holder.clone();
    let sleeping = tokio::spawn(async move {
        let _ = busy.client.query("SELECT pg_sleep(30)", &[]).await;
    });
    wait_state(&place, pid, "active").await;
    let locks = place.store.list().await.unwrap();
    assert_eq!(locks.len(), 1);
    assert_eq!(locks[0].held, Some(true), "{:#?}", locks[0]);
    assert_eq!(
        locks[0].details.get("wait_event").map(String::as_str),
        Some("Timeout/PgSleep")
    );
    let e = place
        .store()
        .break_lock(&locks[0], &BreakOptions::default())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), Kind::Refused, "{e}");
    // The snapshot taken while it was idle: the statement itself refuses (it checks the
    // session is not running a statement), and says why.
    let e = place
        .store()
        .break_lock(&idle_snapshot, &BreakOptions::default())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), Kind::Refused, "{e}");
    assert!(e.to_string().contains("running a statement now"), "{e}");
    assert!(alive(&place, pid).await, "the busy session was ended");
    let key = place.key_of("default").await.unwrap();
    assert_eq!(place.holder_of(key).await.as_deref(), Some(id.as_str()));
    let _ = cancel.cancel_query(tokio_postgres::NoTls).await;
    let _ = sleeping.await;
}

#[tokio::test]
async fn creation_locks_are_listed_without_a_workspace_and_break() {
    let Some(f) = fixture().await else { return };
    // Key -1 blocks every Terraform in a database: this test gets a database of its own.
    let db = f.pg.database("creation").await;
    let url = f.pg.url(&db);
    let place = PgPlace::create(&f.pg, &db, "creation", &url, "states").await;
    let other = PgPlace::create(&f.pg, &db, "creation_other", &url, "states").await;
    let terraform = Session::open(&place.conn_str()).await.lock(-1).await;
    let tofu = Session::open(&place.conn_str())
        .await
        .lock(place.creation_key())
        .await;
    let (tf_id, tofu_id) = (terraform.id(), tofu.id());
    place.keep("terraform creating", terraform).await;
    place.keep("tofu creating", tofu).await;

    let locks = place.store.list().await.unwrap();
    assert_eq!(locks.len(), 2, "{locks:#?}");
    let tf = locks.iter().find(|l| l.id == tf_id).expect("the -1 lock");
    assert!(tf_id.ends_with("--1"), "{tf_id}");
    assert_eq!(tf.workspace, None);
    assert_eq!(tf.path, "(workspace creation, key -1)");
    assert!(tf
        .info_error
        .as_deref()
        .unwrap()
        .contains("workspace creation lock (key -1)"));
    let tofu = locks.iter().find(|l| l.id == tofu_id).expect("OpenTofu's");
    assert_eq!(
        tofu.path,
        format!("{}.states (workspace creation)", place.schema)
    );
    // Another table in the same database sees Terraform's -1 (it blocks that table's
    // terraform too), not the first table's OpenTofu key.
    let seen: Vec<String> = other
        .store
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.id)
        .collect();
    assert_eq!(seen, vec![tf_id.clone()]);

    place
        .store()
        .break_lock(tf, &BreakOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(place.holder_of(-1).await, None);
    assert_eq!(
        place.holder_of(place.creation_key()).await.as_deref(),
        Some(tofu_id.as_str())
    );
}

#[tokio::test]
async fn advisory_locks_that_are_not_this_targets_are_not_listed() {
    let Some(f) = fixture().await else { return };
    let place = f.pg_place("notours").await;
    let elsewhere = f.pg_place("elsewhere").await;
    let mine = place.hold("default", &sample_info("apply", "")).await;
    let key = place.key_of("default").await.unwrap();
    // Another schema's state (the id sequence is shared, so its key differs).
    elsewhere.hold("default", &sample_info("apply", "")).await;
    // An application's own advisory lock on a number no states row has.
    let app = Session::open(&place.conn_str())
        .await
        .lock(9_000_000_000_123)
        .await;
    place.keep("app", app).await;
    // The two-int4 form with this state's id as its second half (objsubid 2).
    let pair = Session::open(&place.conn_str()).await;
    let got: bool = pair
        .client
        .query_one("SELECT pg_try_advisory_lock(0, $1::int)", &[&(key as i32)])
        .await
        .unwrap()
        .get(0);
    assert!(got);
    place.keep("pair", pair).await;
    // A session waiting for this state's lock is not a lock.
    let waiter = Session::open(&place.conn_str()).await;
    let waiter_pid = waiter.pid;
    tokio::spawn(async move {
        let _ = waiter
            .client
            .query("SELECT pg_advisory_lock($1)", &[&key])
            .await;
    });
    wait_state(&place, waiter_pid, "active").await;

    let locks = place.store.list().await.unwrap();
    let ids: Vec<&str> = locks.iter().map(|l| l.id.as_str()).collect();
    assert_eq!(ids, vec![mine.as_str()], "{locks:#?}");
    let admin = f.pg.admin().await;
    admin
        .query("SELECT pg_terminate_backend($1)", &[&waiter_pid])
        .await
        .unwrap();
}

#[tokio::test]
async fn one_session_holding_two_states_releases_both() {
    let Some(f) = fixture().await else { return };
    let place = f.pg_place("twolocks").await;
    let a = place.ensure_row("a").await;
    let b = place.ensure_row("b").await;
    // `terraform state mv` between two workspaces locks both, possibly on one connection.
    let s = Session::open(&place.conn_str()).await.lock(a).await;
    s.client
        .query("SELECT pg_try_advisory_lock($1)", &[&b])
        .await
        .unwrap();
    let pid = s.pid;
    place.keep("mv", s).await;
    let locks = place.store.list().await.unwrap();
    assert_eq!(locks.len(), 2, "{locks:#?}");
    assert_ne!(locks[0].id, locks[1].id);
    let broken = place
        .store()
        .break_lock(&locks[0], &BreakOptions::default())
        .await
        .unwrap();
    assert!(
        broken
            .warnings
            .iter()
            .any(|w| w.contains("held 2 advisory locks")),
        "{broken:?}"
    );
    assert!(
        broken.warnings.iter().any(|w| w.contains("WITHOUT a lock")),
        "{broken:?}"
    );
    assert!(
        broken.removed[0].contains(&format!("pid {pid}")),
        "{broken:?}"
    );
    assert!(place.store.list().await.unwrap().is_empty());
    // The other snapshot: gone with the session.
    let e = place
        .store()
        .break_lock(&locks[1], &BreakOptions::default())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), Kind::Changed, "{e}");
}

/// A login role of the test server with `grants` (run as the superuser).
async fn role(f: &PgFixture, place: &PgPlace, name: &str, grants: &str) -> (String, String) {
    let role = unique(name);
    let password = format!("pw-{role}");
    let admin = f.pg.admin().await;
    admin
        .batch_execute(&format!(
            "CREATE ROLE \"{role}\" LOGIN PASSWORD '{password}';
             GRANT CONNECT ON DATABASE \"{db}\" TO \"{role}\";
             {grants}",
            db = f.pg.db,
            grants = grants.replace("{role}", &role),
        ))
        .await
        .unwrap();
    // Reading the states table is granted by its owner.
    let owner = connect(&place.conn_str()).await;
    owner
        .batch_execute(&format!(
            "GRANT USAGE ON SCHEMA \"{s}\" TO \"{role}\"; GRANT SELECT ON \"{s}\".\"states\" TO \"{role}\";",
            s = place.schema
        ))
        .await
        .unwrap();
    (role, password)
}

fn store_as(f: &PgFixture, place: &PgPlace, role: &str, password: &str) -> PgStore {
    let target = Target::parse(&format!(
        "pg://{role}@{}:{}/{}?schema_name={}&sslmode=disable",
        f.pg.host, f.pg.port, f.pg.db, place.schema
    ))
    .unwrap()
    .with("password", Some(password.to_string()));
    PgStore::open(&target, &quick()).unwrap()
}

#[tokio::test]
async fn breaking_needs_the_rights_to_see_and_end_the_session() {
    let Some(f) = fixture().await else { return };
    let place = f.pg_place("rights").await;
    let id = place.hold("default", &sample_info("apply", "")).await;
    let (pid, _) = place.session("default").await.unwrap();

    // No grants: the session's details are hidden, so no break is even attempted.
    let (plain, pw) = role(&f, &place, "plain", "").await;
    let store = store_as(&f, &place, &plain, &pw);
    let locks = store.list().await.unwrap();
    assert_eq!(locks.len(), 1);
    let key = place.key_of("default").await.unwrap();
    assert_eq!(locks[0].id, format!("pg-{pid}-unseen-{key}"));
    assert!(locks[0]
        .info_error
        .as_deref()
        .unwrap()
        .contains("pg_read_all_stats"));
    let e = (&store as &dyn LockStore)
        .break_lock(&locks[0], &BreakOptions::default())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), Kind::PermissionDenied, "{e}");
    assert!(e.to_string().contains("pg_signal_backend"), "{e}");

    // Sees everything, may not signal: the server refuses, the hint says what is needed.
    let (reader, pw) = role(
        &f,
        &place,
        "reader",
        "GRANT pg_read_all_stats TO \"{role}\";",
    )
    .await;
    let store = store_as(&f, &place, &reader, &pw);
    let locks = store.list().await.unwrap();
    assert_eq!(locks[0].id, id);
    let e = (&store as &dyn LockStore)
        .break_lock(&locks[0], &BreakOptions::default())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), Kind::PermissionDenied, "{e}");
    assert!(
        e.hint()
            .unwrap()
            .contains("pg_signal_backend and pg_read_all_stats"),
        "{e}"
    );
    assert!(alive(&place, pid).await);

    // Both roles: the break goes through.
    let (ops, pw) = role(
        &f,
        &place,
        "ops",
        "GRANT pg_read_all_stats TO \"{role}\"; GRANT pg_signal_backend TO \"{role}\";",
    )
    .await;
    let store = store_as(&f, &place, &ops, &pw);
    let locks = store.list().await.unwrap();
    (&store as &dyn LockStore)
        .break_lock(&locks[0], &BreakOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!alive(&place, pid).await);
    assert_eq!(place.current("default").await, None);

    // No SELECT on the states table: a permission error that says so.
    let (nosel, pw) = role(&f, &place, "nosel", "").await;
    let owner = connect(&place.conn_str()).await;
    owner
        .batch_execute(&format!(
            "REVOKE SELECT ON \"{}\".\"states\" FROM \"{nosel}\"",
            place.schema
        ))
        .await
        .unwrap();
    let e = store_as(&f, &place, &nosel, &pw).list().await.unwrap_err();
    assert_eq!(e.kind(), Kind::PermissionDenied, "{e}");
    assert!(
        e.hint().unwrap().contains("SELECT on the states table"),
        "{e}"
    );
}

#[tokio::test]
async fn login_failures_say_what_to_fix_and_never_show_the_password() {
    let Some(f) = fixture().await else { return };
    let place = f.pg_place("login").await;
    let url = format!(
        "{}?sslmode=disable&schema_name={}",
        f.pg.url(&f.pg.db),
        place.schema
    );
    let wrong = Target::parse(&url)
        .unwrap()
        .with("password", Some("wrong-password-123".to_string()));
    let e = PgStore::open(&wrong, &quick())
        .unwrap()
        .list()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), Kind::Unauthenticated, "{e}");
    assert!(!e.to_string().contains("wrong-password-123"), "{e}");

    // No password anywhere (HOME without .pgpass): the server's request is explained.
    let home = tempfile::tempdir().unwrap();
    let home_path = home.path().to_str().unwrap().to_string();
    let env = |k: &str| (k == "HOME").then(|| home_path.clone());
    let bare = Target::parse(&url).unwrap();
    let e = PgStore::open_with_env(&bare, &quick(), &env)
        .unwrap()
        .list()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), Kind::Unauthenticated, "{e}");
    assert!(e.hint().unwrap().contains("PGPASSWORD or ~/.pgpass"), "{e}");

    // ~/.pgpass, as libpq reads it.
    let pgpass = home.path().join(".pgpass");
    std::fs::write(
        &pgpass,
        format!(
            "{}:{}:*:{}:{}\n",
            f.pg.host, f.pg.port, f.pg.user, f.pg.password
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o600)).unwrap();
    PgStore::open_with_env(&bare, &quick(), &env)
        .unwrap()
        .list()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // PGPASSWORD too.
    let env = |k: &str| (k == "PGPASSWORD").then(|| f.pg.password.clone());
    PgStore::open_with_env(&bare, &quick(), &env)
        .unwrap()
        .list()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test]
async fn a_missing_states_table_names_the_settings() {
    let Some(f) = fixture().await else { return };
    let t = f.pg.target(&format!(
        "{}?schema_name=no_such_schema_x&sslmode=disable",
        f.pg.url(&f.pg.db)
    ));
    let e = f.pg.open(&t).list().await.unwrap_err();
    assert_eq!(e.kind(), Kind::Backend, "{e}");
    assert!(e.to_string().contains("no_such_schema_x"), "{e}");
    assert!(e.hint().unwrap().contains("schema_name"), "{e}");
}

#[tokio::test]
async fn sslmodes_against_a_tls_server_and_one_without_tls() {
    let Some(f) = fixture().await else { return };
    let Some(ca) = f.pg.ca.clone() else {
        panic!("TFLOCK_TEST_PG_CA is not set: scripts/emulators/postgres.sh starts the server with TLS");
    };
    let place = f.pg_place("tls").await;
    let list = |url: String| {
        let t = f.pg.target(&url);
        async move { PgStore::open(&t, &quick())?.list().await }
    };
    let at = |host: &str, query: &str| {
        format!(
            "pg://{}@{host}:{}/{}?schema_name={}&{query}",
            f.pg.user, f.pg.port, f.pg.db, place.schema
        )
    };
    // Encrypted without a check, and checked against the test CA.
    list(at("127.0.0.1", "sslmode=require")).await.unwrap();
    list(at(
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    ))
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    list(at(
        "127.0.0.1",
        &format!("sslmode=verify-ca&sslrootcert={ca}"),
    ))
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    // The certificate names localhost, not 127.0.0.1.
    let e = list(at(
        "127.0.0.1",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    ))
    .await
    .unwrap_err();
    assert_eq!(e.kind(), Kind::Unreachable, "{e}");
    assert!(e.to_string().contains("certificate"), "{e}");
    // Another CA (the system's) does not vouch for it, under verify-full or under
    // require with a root certificate given (libpq: then the chain is checked).
    let system = "/etc/ssl/certs/ca-certificates.crt";
    if std::path::Path::new(system).is_file() {
        for q in [
            format!("sslmode=verify-full&sslrootcert={system}"),
            format!("sslmode=require&sslrootcert={system}"),
        ] {
            let e = list(at("localhost", &q)).await.unwrap_err();
            assert_eq!(e.kind(), Kind::Unreachable, "{q}: {e}");
            assert!(e.hint().unwrap().contains("sslrootcert"), "{e}");
        }
    }
    // A client certificate is loaded and offered when asked for (this server does not
    // ask: it has no ssl_ca_file); any certificate with its key serves, the server's own.
    let dir = std::path::Path::new(&ca)
        .parent()
        .unwrap()
        .display()
        .to_string();
    list(at(
        "127.0.0.1",
        &format!("sslmode=require&sslcert={dir}/server.pem&sslkey={dir}/server.key"),
    ))
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    for q in [
        format!("sslmode=require&sslcert={dir}/server.pem"),
        format!("sslmode=require&sslcert={dir}/missing.pem&sslkey={dir}/server.key"),
        format!("sslmode=require&sslcert={dir}/server.pem&sslkey={dir}/ca.pem"),
    ] {
        let e = list(at("127.0.0.1", &q)).await.unwrap_err();
        assert_eq!(e.kind(), Kind::Usage, "{q}: {e}");
    }
    // A server without TLS: prefer (the default) connects in plain text, require refuses.
    let relay = PgRelay::start(&format!("{}:{}", f.pg.host, f.pg.port)).await;
    let plain = |query: &str| {
        format!(
            "pg://{}@{}/{}?schema_name={}&{query}",
            f.pg.user, relay.addr, f.pg.db, place.schema
        )
    };
    list(plain("sslmode=prefer"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // No sslmode at all: libpq's default, prefer.
    let t = f.pg.target(&format!(
        "pg://{}@{}/{}?schema_name={}",
        f.pg.user, relay.addr, f.pg.db, place.schema
    ));
    PgStore::open(&t, &quick())
        .unwrap()
        .list()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(relay.tls_refused() >= 2);
    let e = list(plain("sslmode=require")).await.unwrap_err();
    assert_eq!(e.kind(), Kind::Unreachable, "{e}");
    assert!(e.hint().unwrap().contains("offers no TLS"), "{e}");
}
