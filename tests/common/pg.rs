//! PostgreSQL for the end-to-end tests (`TFLOCK_TEST_PG`, `TFLOCK_TEST_PG_ADMIN` from
//! scripts/emulators/postgres.sh), reached with tokio-postgres on a runtime of the test's
//! own (the tests themselves are synchronous, like the terraform they drive).

use super::Workdir;
use std::time::Duration;
use tokio::runtime::Runtime;
use tokio_postgres::{Client, NoTls};

pub struct Pg {
    pub rt: Runtime,
    /// terraform's conn_str for the role `tflock`, database `tflock`.
    pub conn_str: String,
    pub admin: String,
}

/// The server, or `None` (skip) when it is not running. Under scripts/test
/// (TFLOCK_REQUIRE_EMULATORS=1) a missing server fails.
pub fn require_pg() -> Option<Pg> {
    let get = |var: &str| std::env::var(var).ok().filter(|v| !v.is_empty());
    match (get("TFLOCK_TEST_PG"), get("TFLOCK_TEST_PG_ADMIN")) {
        (Some(conn_str), Some(admin)) => Some(Pg {
            rt: tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("runtime"),
            conn_str,
            admin,
        }),
        _ => {
            if std::env::var("TFLOCK_REQUIRE_EMULATORS").as_deref() == Ok("1") {
                panic!("TFLOCK_TEST_PG is not set but TFLOCK_REQUIRE_EMULATORS=1: PostgreSQL is required (run scripts/test)");
            }
            eprintln!("skipping: TFLOCK_TEST_PG is not set (PostgreSQL not running; scripts/test starts it)");
            None
        }
    }
}

impl Pg {
    pub fn connect(&self, conn_str: &str) -> Client {
        self.rt.block_on(async {
            let (client, connection) = tokio_postgres::connect(conn_str, NoTls)
                .await
                .unwrap_or_else(|e| panic!("connect: {e}"));
            tokio::spawn(async move {
                let _ = connection.await;
            });
            client
        })
    }

    /// A new database owned by terraform's role, and terraform's conn_str for it: every
    /// test gets its own, since a first apply holds the database-wide creation key -1.
    pub fn database(&self, name: &str) -> String {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let db = format!("tflock_e2e_{name}_{}_{nanos}", std::process::id());
        let admin = self.connect(&self.admin);
        let rest = self
            .conn_str
            .strip_prefix("postgres://")
            .expect("postgres URL");
        let user = rest.split(':').next().expect("user");
        self.rt
            .block_on(admin.batch_execute(&format!("CREATE DATABASE \"{db}\" OWNER \"{user}\"")))
            .unwrap_or_else(|e| panic!("create database: {e}"));
        let (server, query) = self
            .conn_str
            .split_once('?')
            .unwrap_or((&self.conn_str, ""));
        let base = server.rsplit_once('/').expect("database in the URL").0;
        format!("{base}/{db}?{query}")
    }

    /// `(pid, backend_start µs, state)` of each session holding an advisory lock in the
    /// database of `conn_str`, by key.
    pub fn holders(&self, conn_str: &str) -> Vec<(i64, i32, i64, Option<String>)> {
        let c = self.connect(&self.admin_for(conn_str));
        let rows = self
            .rt
            .block_on(c.query(
                "SELECT (l.classid::bigint << 32) | l.objid::bigint, l.pid,
                        (extract(epoch from a.backend_start) * 1000000)::bigint, a.state
                   FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                  WHERE l.locktype = 'advisory' AND l.objsubid = 1 AND l.granted
                    AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
                &[],
            ))
            .expect("pg_locks");
        rows.iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect()
    }

    /// The superuser's URL for the database of `conn_str`.
    fn admin_for(&self, conn_str: &str) -> String {
        let db = conn_str
            .split('?')
            .next()
            .and_then(|s| s.rsplit('/').next())
            .expect("database");
        let (server, query) = self.admin.split_once('?').unwrap_or((&self.admin, ""));
        let base = server.rsplit_once('/').expect("database in the URL").0;
        format!("{base}/{db}?{query}")
    }

    /// Waits until `pid`'s session is in `state`.
    pub fn wait_state(&self, conn_str: &str, pid: i32, state: &str) {
        for _ in 0..500 {
            if self
                .holders(conn_str)
                .iter()
                .any(|h| h.1 == pid && h.3.as_deref() == Some(state))
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("session {pid} never became {state}");
    }
}

/// A working directory with `backend "pg"` on `conn_str`.
pub fn pg_workdir(conn_str: &str) -> Workdir {
    Workdir::new(&format!(
        r#"  backend "pg" {{
    conn_str = "{conn_str}"
  }}"#
    ))
}
