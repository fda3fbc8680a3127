//! The PostgreSQL test bed (`scripts/emulators/postgres.sh`: `TFLOCK_TEST_PG`,
//! `TFLOCK_TEST_PG_ADMIN`, `TFLOCK_TEST_PG_CA`), places that take locks exactly as the
//! pg backend does, and a PostgreSQL-protocol relay for fault cases.
#![allow(dead_code)]

pub mod relay;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tflock_core::testkit::{require_env, Fixture, Network, Place};
use tflock_core::{ConnectOptions, Error, LockInfo, LockStore, Target};
use tflock_pg::PgStore;
use tokio_postgres::{Client, NoTls};

/// The test server, as scripts/emulators/postgres.sh exports it.
#[derive(Clone)]
pub struct Pg {
    /// `postgres://tflock:PW@127.0.0.1:PORT/tflock?sslmode=disable`: terraform's conn_str.
    pub conn_str: String,
    pub admin: String,
    pub user: String,
    pub password: String,
    pub host: String,
    pub port: u16,
    pub db: String,
    /// The CA of the server's certificate (DNS:localhost).
    pub ca: Option<String>,
}

impl Pg {
    pub fn from_env() -> Option<Pg> {
        let conn_str = require_env(
            "TFLOCK_TEST_PG",
            "PostgreSQL (scripts/emulators/postgres.sh)",
        )?;
        let admin = require_env("TFLOCK_TEST_PG_ADMIN", "PostgreSQL (its superuser URL)")?;
        // postgres://USER:PW@HOST:PORT/DB?...
        let rest = conn_str
            .strip_prefix("postgres://")
            .expect("a postgres:// URL");
        let (userinfo, rest) = rest.split_once('@').expect("user and password");
        let (user, password) = userinfo.split_once(':').expect("a password");
        let (hostport, rest) = rest.split_once('/').expect("a database");
        let (host, port) = hostport.split_once(':').expect("a port");
        let db = rest.split('?').next().unwrap_or_default();
        Some(Pg {
            conn_str: conn_str.clone(),
            admin,
            user: user.into(),
            password: password.into(),
            host: host.into(),
            port: port.parse().expect("port"),
            db: db.into(),
            ca: std::env::var("TFLOCK_TEST_PG_CA")
                .ok()
                .filter(|v| !v.is_empty()),
        })
    }

    /// A conn_str for another database of the same server, same role.
    pub fn conn_str_for(&self, db: &str) -> String {
        format!(
            "postgres://{}:{}@{}:{}/{db}?sslmode=disable",
            self.user, self.password, self.host, self.port
        )
    }

    /// `pg://USER@HOST:PORT/DB` (no password).
    pub fn url(&self, db: &str) -> String {
        format!("pg://{}@{}:{}/{db}", self.user, self.host, self.port)
    }

    /// A target on `db` with the password as a hidden option.
    pub fn target(&self, url: &str) -> Target {
        Target::parse(url)
            .expect("target")
            .with("password", Some(self.password.clone()))
    }

    pub fn open(&self, target: &Target) -> PgStore {
        PgStore::open(target, &ConnectOptions::default()).unwrap_or_else(|e| panic!("open: {e}"))
    }

    /// A session as terraform makes one: the role of its conn_str.
    pub async fn session(&self, conn_str: &str) -> Client {
        connect(conn_str).await
    }

    pub async fn admin(&self) -> Client {
        connect(&self.admin).await
    }

    /// A new database owned by the test role: advisory locks (the creation key -1
    /// above all) are per database, so a test that takes -1 gets one of its own.
    pub async fn database(&self, name: &str) -> String {
        let db = unique(name);
        let admin = self.admin().await;
        admin
            .batch_execute(&format!("CREATE DATABASE \"{db}\" OWNER \"{}\"", self.user))
            .await
            .unwrap_or_else(|e| panic!("create database {db}: {e}"));
        db
    }
}

pub async fn connect(conn_str: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(conn_str, NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"));
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

pub fn unique(name: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "tflock_{name}_{}_{nanos}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
    .to_lowercase()
}

/// OpenTofu >= 1.10's creation key, written out again from its source
/// (`composeCreationLockID`: FNV-1 32 of `schema NUL table`, negated).
pub fn tofu_creation_key(schema: &str, table: &str) -> i64 {
    let mut hash: u32 = 0x811c_9dc5;
    for b in schema.bytes().chain([0]).chain(table.bytes()) {
        hash = hash.wrapping_mul(0x0100_0193);
        hash ^= u32::from(b);
    }
    -i64::from(hash)
}

/// The documented ID format: `pg-<pid>-<session start µs>-<key>`.
pub fn id_of(pid: i32, start: DateTime<Utc>, key: i64) -> String {
    format!("pg-{pid}-{}-{key}", start.timestamp_micros())
}

/// A session holding advisory locks: a terraform process, or a psql user.
pub struct Session {
    pub client: Client,
    pub pid: i32,
    pub start: DateTime<Utc>,
    pub key: i64,
}

impl Session {
    pub async fn open(conn_str: &str) -> Session {
        let client = connect(conn_str).await;
        let row = client
            .query_one(
                "SELECT pg_backend_pid(), backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid()",
                &[],
            )
            .await
            .unwrap();
        Session {
            client,
            pid: row.get(0),
            start: row.get(1),
            key: 0,
        }
    }

    pub fn id(&self) -> String {
        id_of(self.pid, self.start, self.key)
    }

    /// `pg_try_advisory_lock(key)`; panics unless it was free.
    pub async fn lock(mut self, key: i64) -> Session {
        let got: bool = self
            .client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
            .await
            .unwrap()
            .get(0);
        assert!(got, "advisory lock {key} was not free");
        self.key = key;
        self
    }
}

/// One schema with Terraform's states table, in the test role's database.
pub struct PgPlace {
    pub pg: Pg,
    pub db: String,
    pub schema: String,
    pub table: String,
    pub store: PgStore,
    setup: Client,
    sessions: tokio::sync::Mutex<HashMap<String, Session>>,
}

impl PgPlace {
    pub fn table_sql(&self) -> String {
        format!("\"{}\".\"{}\"", self.schema, self.table)
    }

    pub fn creation_key(&self) -> i64 {
        tofu_creation_key(&self.schema, &self.table)
    }

    pub fn conn_str(&self) -> String {
        self.pg.conn_str_for(&self.db)
    }

    /// Terraform's `Configure`: schema, the shared id sequence, the states table.
    pub async fn create(pg: &Pg, db: &str, name: &str, url: &str, table: &str) -> PgPlace {
        let schema = unique(name);
        let conn_str = pg.conn_str_for(db);
        let setup = connect(&conn_str).await;
        let ddl = format!(
            "CREATE SCHEMA IF NOT EXISTS \"{schema}\";
             CREATE SEQUENCE IF NOT EXISTS public.global_states_id_seq AS bigint;
             CREATE TABLE IF NOT EXISTS \"{schema}\".\"{table}\" (
               id bigint NOT NULL DEFAULT nextval('public.global_states_id_seq') PRIMARY KEY,
               name text UNIQUE, data text);
             CREATE UNIQUE INDEX IF NOT EXISTS \"{table}_by_name\" ON \"{schema}\".\"{table}\" (name);"
        );
        // Concurrent `CREATE SEQUENCE IF NOT EXISTS` in two places can collide once.
        let mut tries = 0;
        while let Err(e) = setup.batch_execute(&ddl).await {
            tries += 1;
            assert!(tries < 5, "states table: {e}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut url = format!("{url}?schema_name={schema}");
        if table != "states" {
            url.push_str(&format!("&table_name={table}"));
        }
        let target = Target::parse(&url)
            .unwrap()
            .with("conn_str", Some(conn_str.clone()));
        PgPlace {
            store: pg.open(&target),
            pg: pg.clone(),
            db: db.to_string(),
            schema,
            table: table.to_string(),
            setup,
            sessions: Default::default(),
        }
    }

    /// The state's row, created as `StateMgr` does for a new workspace: under the
    /// creation lock, an empty state.
    pub async fn ensure_row(&self, state: &str) -> i64 {
        let creation = self.creation_key();
        let c = &self.setup;
        let got: bool = c
            .query_one("SELECT pg_try_advisory_lock($1)", &[&creation])
            .await
            .unwrap()
            .get(0);
        assert!(got, "creation lock taken");
        c.execute(
            &format!(
                "INSERT INTO {} (name, data) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
                self.table_sql()
            ),
            &[
                &state,
                &format!("{{\"version\":4,\"lineage\":\"{state}\"}}"),
            ],
        )
        .await
        .unwrap();
        c.query("SELECT pg_advisory_unlock($1)", &[&creation])
            .await
            .unwrap();
        c.query_one(
            &format!("SELECT id FROM {} WHERE name = $1", self.table_sql()),
            &[&state],
        )
        .await
        .unwrap()
        .get(0)
    }

    /// terraform's `Lock()` (OpenTofu >= 1.10 form, so that nothing touches the shared
    /// key -1): one statement takes the state's key and the creation key, then the
    /// creation key is released; then terraform reads the state. Retried while the key
    /// is still held by a session that is ending.
    pub async fn lock_as_terraform(&self, state: &str) -> Session {
        let mut s = Session::open(&self.conn_str()).await;
        let creation = self.creation_key();
        let sql = format!(
            "SELECT states.id, pg_try_advisory_lock(states.id), pg_try_advisory_lock($2) FROM {} states WHERE states.name = $1",
            self.table_sql()
        );
        for _ in 0..250 {
            let row = s
                .client
                .query_one(&sql, &[&state, &creation])
                .await
                .unwrap();
            let (id, mine, creating): (i64, bool, bool) = (row.get(0), row.get(1), row.get(2));
            if creating {
                s.client
                    .query("SELECT pg_advisory_unlock($1)", &[&creation])
                    .await
                    .unwrap();
            }
            if mine && creating {
                s.key = id;
                s.client
                    .query(
                        &format!("SELECT data FROM {} WHERE name = $1", self.table_sql()),
                        &[&state],
                    )
                    .await
                    .unwrap();
                return s;
            }
            if mine {
                s.client
                    .query("SELECT pg_advisory_unlock($1)", &[&id])
                    .await
                    .unwrap();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("{state}: the lock stayed taken");
    }

    pub async fn keep(&self, name: &str, session: Session) -> String {
        let id = session.id();
        self.sessions.lock().await.insert(name.to_string(), session);
        id
    }

    /// Ends the session kept under `name` (as a terraform that exits) and waits until
    /// the server has let go of its locks.
    pub async fn end(&self, name: &str) {
        if let Some(s) = self.sessions.lock().await.remove(name) {
            let pid = s.pid;
            drop(s);
            for _ in 0..250 {
                let n: i64 = self
                    .setup
                    .query_one(
                        "SELECT count(*) FROM pg_stat_activity WHERE pid = $1",
                        &[&pid],
                    )
                    .await
                    .unwrap()
                    .get(0);
                if n == 0 {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            panic!("session {pid} did not end");
        }
    }

    pub async fn session(&self, name: &str) -> Option<(i32, i64)> {
        self.sessions.lock().await.get(name).map(|s| (s.pid, s.key))
    }

    /// The ID of whoever holds `key` now.
    pub async fn holder_of(&self, key: i64) -> Option<String> {
        let rows = self
            .setup
            .query(
                "SELECT l.pid, a.backend_start FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                  WHERE l.locktype = 'advisory' AND l.objsubid = 1 AND l.granted
                    AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                    AND ((l.classid::bigint << 32) | l.objid::bigint) = $1",
                &[&key],
            )
            .await
            .unwrap();
        rows.first().map(|r| id_of(r.get(0), r.get(1), key))
    }

    pub async fn key_of(&self, state: &str) -> Option<i64> {
        self.setup
            .query_opt(
                &format!("SELECT id FROM {} WHERE name = $1", self.table_sql()),
                &[&state],
            )
            .await
            .unwrap()
            .map(|r| r.get(0))
    }
}

#[async_trait]
impl Place for PgPlace {
    fn store(&self) -> &dyn LockStore {
        &self.store
    }
    fn path_of(&self, state: &str) -> String {
        format!("{}.{}/{state}", self.schema, self.table)
    }
    async fn hold(&self, state: &str, _info: &LockInfo) -> String {
        // The LockInfo stays in terraform's memory: nothing of it reaches the server.
        self.ensure_row(state).await;
        let s = self.lock_as_terraform(state).await;
        self.keep(state, s).await
    }
    async fn retake(&self, state: &str, info: &LockInfo) -> String {
        self.end(state).await;
        self.hold(state, info).await
    }
    async fn current(&self, state: &str) -> Option<String> {
        self.holder_of(self.key_of(state).await?).await
    }
    /// pg stores no metadata to garble: the nearest thing is a lock whose state tflock
    /// cannot name, OpenTofu's workspace-creation lock for this table, held by a client
    /// stuck creating workspace `state`.
    async fn hold_garbage(&self, state: &str) {
        let s = Session::open(&self.conn_str())
            .await
            .lock(self.creation_key())
            .await;
        self.keep(&format!("creating {state}"), s).await;
    }
    async fn untouchables(&self) -> String {
        self.setup
            .query_one(
                &format!(
                    "SELECT coalesce(string_agg(id || ':' || name || ':' || md5(coalesce(data, '')), ',' ORDER BY id), '') FROM {}",
                    self.table_sql()
                ),
                &[],
            )
            .await
            .unwrap()
            .get(0)
    }
    fn keeps_lock_info(&self) -> bool {
        false
    }
}

pub struct PgFixture {
    pub pg: Pg,
}

impl PgFixture {
    pub async fn pg_place(&self, name: &str) -> PgPlace {
        let url = self.pg.url(&self.pg.db);
        PgPlace::create(&self.pg, &self.pg.db, name, &url, "states").await
    }
}

#[async_trait]
impl Fixture for PgFixture {
    async fn place(&self, name: &str) -> Box<dyn Place> {
        Box::new(self.pg_place(name).await)
    }
    fn network(&self) -> Option<&dyn Network> {
        Some(self)
    }
}

/// `http://127.0.0.1:PORT` (what the suite hands out) -> `127.0.0.1:PORT`.
pub fn host_port(endpoint: &str) -> String {
    endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string()
}

#[async_trait]
impl Network for PgFixture {
    async fn open(&self, url: &str, opts: &ConnectOptions) -> Result<Arc<dyn LockStore>, Error> {
        let target = Target::parse(url)?.with("password", Some(self.pg.password.clone()));
        Ok(Arc::new(PgStore::open(&target, opts)?))
    }
    fn bad_targets(&self) -> Vec<String> {
        let base = format!(
            "pg://{}@{}:{}/{}",
            self.pg.user, self.pg.host, self.pg.port, self.pg.db
        );
        vec![
            format!("{base}?bogus=1"),
            format!(
                "pg://{}:secret@{}:{}/db",
                self.pg.user, self.pg.host, self.pg.port
            ),
            format!("{base}?password=secret"),
            format!("{base}?conn_str=host%3Dx"),
            format!("{base}?sslmode=sometimes"),
            format!("pg://{}@{}:notaport/db", self.pg.user, self.pg.host),
            format!("pg://{}@a,b/db", self.pg.user),
            format!("{base}?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem"),
        ]
    }
    fn target_at(&self, endpoint: &str) -> String {
        format!(
            "pg://{}@{}/{}",
            self.pg.user,
            host_port(endpoint),
            self.pg.db
        )
    }
    fn missing(&self) -> (String, String) {
        let db = unique("missing");
        (
            format!(
                "pg://{}@{}:{}/{db}?sslmode=disable",
                self.pg.user, self.pg.host, self.pg.port
            ),
            db,
        )
    }
    fn emulator(&self) -> Option<String> {
        // Not HTTP: the suite's HTTP relay cases do not apply; tests/faults.rs has the
        // same cases through a PostgreSQL-protocol relay.
        None
    }
    async fn place_via(&self, name: &str, endpoint: &str) -> Box<dyn Place> {
        let url = format!(
            "pg://{}@{}/{}",
            self.pg.user,
            host_port(endpoint),
            self.pg.db
        );
        let mut place = self.pg_place(name).await;
        // The conn_str would name the server itself: through the relay, the password goes
        // as an option instead.
        let target = Target::parse(&format!(
            "{url}?schema_name={}&sslmode=disable",
            place.schema
        ))
        .unwrap()
        .with("password", Some(self.pg.password.clone()));
        place.store = self.pg.open(&target);
        Box::new(place)
    }
}

pub async fn fixture() -> Option<PgFixture> {
    Some(PgFixture {
        pg: Pg::from_env()?,
    })
}
