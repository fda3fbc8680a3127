//! The pg backend: Terraform's lock is a session-level advisory lock
//! (`pg_try_advisory_lock(states.id)`) held by terraform's own connection. Nothing about
//! it is stored: no LockInfo, no ID, and `terraform force-unlock` does nothing. tflock
//! finds the lock in `pg_locks`, shows the session holding it (`pg_stat_activity`), and
//! breaks it by ending that session (`pg_terminate_backend`), only if it is still the
//! same session holding the same key and it is not running a statement.
//!
//! Target: `pg://[USER@]HOST[:PORT]/DBNAME[?schema_name=&table_name=&sslmode=&sslrootcert=&sslcert=&sslkey=]`.
//! Hidden options (tflock.toml, discovery): `conn_str` (the backend's, a URL or
//! `key=value` string) and `password`. The `PG*` environment variables fill what is left
//! unset, as libpq does; then `~/.pgpass`. Lock ID: `pg-<pid>-<session start µs>-<key>`.
//!
//! Files: `store.rs` (list, break), `naming.rs` (tables, keys, IDs), `conninfo.rs`
//! (connection settings and the environment), `auth.rs` (password file, OS user),
//! `tls.rs` (sslmode), `client.rs` (connecting, timeouts), `error.rs`, `discover.rs`
//! (the `backend "pg"` block).

mod auth;
mod client;
mod conninfo;
mod discover;
mod error;
mod naming;
mod store;
mod tls;

use conninfo::ConnInfo;
use tflock_core::{ConnectOptions, Error, Target};

pub use discover::discover_with_env;
pub use naming::{DEFAULT_SCHEMA, DEFAULT_TABLE};
pub use store::{PgStore, PG};

/// Registered by the CLI.
pub static DRIVER: tflock_core::Driver = tflock_core::Driver::new(
    discover::SCHEMES,
    &["pg"],
    |t, o| tflock_core::opened(PgStore::open(t, o)),
    |block| discover::discover_with_env(block, &|k| std::env::var(k).ok()),
)
.with_id_hint(discover::id_hint);

/// The options a `pg://` target takes.
const OPTIONS: &[&str] = &[
    "schema_name",
    "table_name",
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "conn_str",
    "password",
];

fn usage(target: &Target, message: impl Into<String>) -> Error {
    Error::usage(&target.url, message)
}

impl PgStore {
    /// The store for `target`: settings resolved from the target and the process
    /// environment, certificate files read; nothing sent.
    pub fn open(target: &Target, opts: &ConnectOptions) -> Result<PgStore, Error> {
        PgStore::open_with_env(target, opts, &|k| std::env::var(k).ok())
    }

    /// As [`open`](PgStore::open), with the environment (`PG*`, `HOME`) read through `env`.
    pub fn open_with_env(
        target: &Target,
        opts: &ConnectOptions,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<PgStore, Error> {
        if target.scheme != "pg" {
            return Err(usage(target, "not a pg:// target"));
        }
        // First: every later error names the target, which must not show the password.
        if conninfo::parse_authority(&target.host).is_ok_and(|a| a.password.is_some()) {
            return Err(Error::usage(
                tflock_core::redact::url(&target.url),
                "a password in the URL would be shown in output and the audit log; set it in tflock.toml (password = \"...\"), PGPASSWORD or ~/.pgpass",
            ));
        }
        target.refuse_secrets_in_url(
            &["password", "conn_str"],
            "set it in tflock.toml (password = \"...\" or conn_str = \"...\"), PGPASSWORD or ~/.pgpass",
        )?;
        target.check_params(OPTIONS)?;
        let from_url = url_settings(target)?;
        let from_conn_str = match target.param("conn_str") {
            Some(text) => {
                ConnInfo::parse(text).map_err(|e| usage(target, format!("conn_str: {e}")))?
            }
            None => ConnInfo::default(),
        };
        agree(target, &from_url, &from_conn_str)?;
        let option = ConnInfo {
            password: target.param("password").map(str::to_string),
            ..ConnInfo::default()
        };
        let from_env = ConnInfo::from_env(env).map_err(|e| usage(target, e))?;
        let info = from_url.or(from_conn_str).or(option).or(from_env);
        let endpoint = info
            .endpoint(auth::os_user().as_deref())
            .map_err(|e| usage(target, e))?;
        let (password, note) = match info.password.clone() {
            Some(p) => (Some(p), None),
            None => {
                let found = auth::passfile_password(&endpoint, info.passfile.as_deref(), env);
                (found.password, found.note)
            }
        };
        let tls = tls::client_config(&endpoint.tls, env).map_err(|e| usage(target, e))?;
        let schema = target.param("schema_name");
        let table = target.param("table_name");
        let conn = client::Conn::new(
            target.url.clone(),
            endpoint,
            password,
            note,
            tls,
            opts.timeout,
        );
        Ok(PgStore {
            conn,
            table: naming::StatesTable::new(schema, table),
        })
    }
}

/// What the `pg://` URL itself says: user, host, port, database, TLS options.
fn url_settings(target: &Target) -> Result<ConnInfo, Error> {
    let mut info = conninfo::parse_authority(&target.host).map_err(|e| usage(target, e))?;
    let db = percent_encoding::percent_decode_str(target.path.trim_end_matches('/'))
        .decode_utf8()
        .map_err(|_| usage(target, "the database name is not UTF-8"))?;
    if !db.is_empty() {
        info.dbname = Some(db.into_owned());
    }
    for key in ["sslmode", "sslrootcert", "sslcert", "sslkey"] {
        if let Some(v) = target.param(key) {
            info.set(key, v.to_string()).map_err(|e| usage(target, e))?;
        }
    }
    Ok(info)
}

/// A target whose URL names one server and whose conn_str another is a mistake: the
/// name shown must be where tflock connects.
fn agree(target: &Target, url: &ConnInfo, conn: &ConnInfo) -> Result<(), Error> {
    for (name, a, b) in [
        ("user", &url.user, &conn.user),
        ("host", &url.host, &conn.host),
        ("port", &url.port, &conn.port),
        ("database", &url.dbname, &conn.dbname),
    ] {
        if let (Some(a), Some(b)) = (a, b) {
            if a != b {
                return Err(usage(
                    target,
                    format!("the URL names {name} {a} but conn_str has {b}: make them agree"),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_in_the_url_is_refused_without_showing_it() {
        for url in [
            "pg://tf:hunter2-secret@db/x",
            "pg://tf:hunter2-secret@db/x?bogus=1",
            "pg://tf:hunter2-secret@db:notaport/x",
        ] {
            // Refused when the target is parsed, before pg sees it.
            let e = Target::parse(url).unwrap_err();
            assert_eq!(e.kind(), tflock_core::Kind::Usage, "{e}");
            assert!(!e.to_string().contains("hunter2"), "{e}");
            assert!(e.to_string().contains("password in the URL"), "{e}");
        }
    }

    #[test]
    fn url_and_conn_str_must_name_the_same_server() {
        let t = Target::parse("pg://tf@db-a/x").unwrap().with(
            "conn_str",
            Some("host=db-b user=tf dbname=x password=pw-secret"),
        );
        let e = PgStore::open_with_env(&t, &ConnectOptions::default(), &|_| None)
            .err()
            .expect("refused");
        assert_eq!(e.kind(), tflock_core::Kind::Usage);
        assert!(
            e.to_string().contains("host db-a but conn_str has db-b"),
            "{e}"
        );
        assert!(!e.to_string().contains("pw-secret"), "{e}");
    }
}
