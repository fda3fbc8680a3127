//! The pg backend as a driver: `pg://` targets, the `backend "pg"` block, and what
//! people expect of pg lock IDs that is not true.

use crate::conninfo::{encode, ConnInfo};
use crate::naming::{DEFAULT_SCHEMA, DEFAULT_TABLE};
use serde::Deserialize;
use tflock_core::block::de;
use tflock_core::{BackendBlock, Error, Kind, Scheme, Target};

/// The settings of `backend "pg"` tflock uses (`table_name` is OpenTofu's).
#[derive(Deserialize, Default)]
struct Settings {
    #[serde(default, deserialize_with = "de::text")]
    conn_str: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    schema_name: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    table_name: Option<String>,
}

pub const SCHEMES: &[Scheme] = &[Scheme {
    name: "pg",
    backend: "pg",
    form: "pg://[USER@]HOST[:PORT]/DBNAME",
    about: "the pg backend's advisory locks (lock ID = holding session + key)",
}];

pub fn id_hint(target: &Target, query: &str) -> Option<String> {
    (target.scheme == "pg" && !query.starts_with("pg-")).then(|| {
        "pg locks have no Terraform lock ID: the Lock Info terraform prints on a pg conflict is the requester's own, and terraform force-unlock does nothing on pg; tflock's IDs look like pg-<pid>-<session start>-<key> (see tflock list)".to_string()
    })
}

/// The targets of the block, with the environment read through `env_var`.
pub fn discover_with_env(
    block: &BackendBlock,
    env_var: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<Target>, Error> {
    let env = |name: &str| {
        env_var(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let s: Settings = block.settings()?;
    // As terraform: the block's value, else its environment variable.
    let conn_str = s.conn_str.or_else(|| env("PG_CONN_STR"));
    let schema = s.schema_name.or_else(|| env("PG_SCHEMA_NAME"));
    let table = s.table_name.or_else(|| env("PG_TABLE_NAME"));
    let bad = |e: String| {
        Error::new(
            Kind::Usage,
            format!("the pg backend ({}): {e}", block.source),
        )
    };
    let written = match &conn_str {
        Some(c) => ConnInfo::parse(c).map_err(|e| bad(format!("conn_str: {e}")))?,
        None => ConnInfo::default(),
    };
    let from_env = ConnInfo::from_env(env_var).map_err(bad)?;
    let endpoint = written
        .or(from_env)
        .endpoint(crate::auth::os_user().as_deref())
        .map_err(bad)?;
    // The name shown: where it connects, never the password or the TLS settings
    // (those travel in the hidden conn_str).
    let mut url = endpoint.url();
    let mut query = Vec::new();
    if let Some(schema) = schema.filter(|s| s != DEFAULT_SCHEMA) {
        query.push(format!("schema_name={}", encode(&schema)));
    }
    if let Some(table) = table.filter(|t| t != DEFAULT_TABLE) {
        query.push(format!("table_name={}", encode(&table)));
    }
    if !query.is_empty() {
        url.push('?');
        url.push_str(&query.join("&"));
    }
    Ok(vec![Target::parse(&url)?.with("conn_str", conn_str)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PgStore;
    use serde_json::json;
    use tflock_core::ConnectOptions;

    fn block(config: serde_json::Value) -> BackendBlock {
        BackendBlock::new("pg", config.as_object().unwrap().clone())
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn block_settings_become_a_target_without_the_password() {
        let t = discover_with_env(
            &block(json!({
                "conn_str": "postgres://tf:s3cr3t-pw@db.internal:6432/states?sslmode=disable",
                "schema_name": "team_a",
                "table_name": null,
                "skip_schema_creation": false
            })),
            &no_env,
        )
        .unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!(
            t[0].url,
            "pg://tf@db.internal:6432/states?schema_name=team_a"
        );
        assert!(!t[0].url.contains("s3cr3t"));
        assert!(t[0].param("conn_str").unwrap().contains("s3cr3t-pw"));
        assert!(!format!("{:?}", t[0]).contains("s3cr3t"));
        // Opening it uses the conn_str (the URL agrees with it).
        let store = PgStore::open_with_env(&t[0], &ConnectOptions::default(), &no_env).unwrap();
        assert_eq!(store.conn.endpoint.address(), "db.internal:6432");
    }

    #[test]
    fn environment_as_terraform_reads_it() {
        let env = |k: &str| match k {
            "PG_CONN_STR" => Some("host=envdb user=ops dbname=tf sslmode=disable".to_string()),
            "PG_SCHEMA_NAME" => Some("from_env".to_string()),
            "PGPORT" => Some("7777".to_string()),
            _ => None,
        };
        let t = discover_with_env(&block(json!({})), &env).unwrap();
        assert_eq!(t[0].url, "pg://ops@envdb:7777/tf?schema_name=from_env");
        // The block wins over the environment.
        let t = discover_with_env(
            &block(json!({"conn_str": "host=blockdb user=u", "schema_name": "s"})),
            &env,
        )
        .unwrap();
        assert_eq!(t[0].url, "pg://u@blockdb:7777/u?schema_name=s");
        // Nothing anywhere: libpq's defaults.
        let t = discover_with_env(&block(json!({})), &|k| {
            (k == "PGUSER").then(|| "me".to_string())
        })
        .unwrap();
        assert_eq!(t[0].url, "pg://me@localhost:5432/me");
        assert_eq!(t[0].param("conn_str"), None);
    }

    #[test]
    fn socket_and_ipv6_hosts_survive_the_round_trip_through_the_url() {
        for (conn_str, url, address) in [
            (
                "host=/run/postgresql user=tf dbname=x",
                "pg://tf@%2Frun%2Fpostgresql:5432/x",
                "/run/postgresql/.s.PGSQL.5432",
            ),
            (
                "postgres://tf@[::1]:6000/x?sslmode=disable",
                "pg://tf@[::1]:6000/x",
                "[::1]:6000",
            ),
            (
                "host=db user=tf@corp dbname=a/b",
                "pg://tf%40corp@db:5432/a%2Fb",
                "db:5432",
            ),
        ] {
            let t = discover_with_env(&block(json!({ "conn_str": conn_str })), &no_env).unwrap();
            assert_eq!(t[0].url, url);
            let store = PgStore::open_with_env(&t[0], &ConnectOptions::default(), &no_env)
                .unwrap_or_else(|e| panic!("{conn_str}: {e}"));
            assert_eq!(store.conn.endpoint.address(), address);
        }
    }

    #[test]
    fn opentofu_table_name_and_bad_conn_str() {
        let t = discover_with_env(
            &block(json!({
                "conn_str": "host=db user=tf dbname=x sslmode=disable",
                "table_name": "tf_states"
            })),
            &no_env,
        )
        .unwrap();
        assert_eq!(t[0].url, "pg://tf@db:5432/x?table_name=tf_states");
        let e = discover_with_env(
            &block(json!({"conn_str": "host=db hostaddr=10.1.2.3"})),
            &no_env,
        )
        .unwrap_err();
        assert_eq!(e.kind(), Kind::Usage);
        assert!(e.to_string().contains("hostaddr is not supported"), "{e}");
        assert!(!e.to_string().contains("10.1.2.3"), "{e}");
        let e = discover_with_env(&block(json!({"conn_str": "host=db"})), &|k| {
            (k == "PGSERVICE").then(|| "prod".to_string())
        })
        .unwrap_err();
        assert!(e.to_string().contains("PGSERVICE is set"), "{e}");
    }
}
