//! Terraform's and OpenTofu's names in the pg backend: the states table, the advisory
//! lock keys (a state's `states.id`, or a workspace-creation key), and tflock's lock IDs.

use chrono::{DateTime, Utc};

/// `schema_name` when the backend block sets none (env `PG_SCHEMA_NAME`).
pub const DEFAULT_SCHEMA: &str = "terraform_remote_state";
/// The states table: a constant in Terraform, OpenTofu >= 1.10's `table_name` default.
pub const DEFAULT_TABLE: &str = "states";
/// The workspace-creation key of Terraform (every version) and OpenTofu < 1.10.
pub const TERRAFORM_CREATION_KEY: i64 = -1;

/// One states table: `"schema"."table"` in one database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatesTable {
    pub schema: String,
    pub table: String,
}

impl StatesTable {
    pub fn new(schema: Option<&str>, table: Option<&str>) -> StatesTable {
        StatesTable {
            schema: schema.unwrap_or(DEFAULT_SCHEMA).to_string(),
            table: table.unwrap_or(DEFAULT_TABLE).to_string(),
        }
    }

    /// The table in SQL, each name quoted as OpenTofu does (Terraform quotes the schema
    /// and writes `states` bare, which folds to the same name).
    pub fn sql(&self) -> String {
        format!("{}.{}", quote_ident(&self.schema), quote_ident(&self.table))
    }

    /// `schema.table` for messages.
    pub fn display(&self) -> String {
        format!("{}.{}", self.schema, self.table)
    }

    /// OpenTofu >= 1.10's workspace-creation key for this table: FNV-1 (32 bit) of
    /// `schema NUL table` (unquoted), negated (`composeCreationLockID`).
    pub fn tofu_creation_key(&self) -> i64 {
        let mut bytes = Vec::with_capacity(self.schema.len() + self.table.len() + 1);
        bytes.extend_from_slice(self.schema.as_bytes());
        bytes.push(0);
        bytes.extend_from_slice(self.table.as_bytes());
        -i64::from(fnv1_32(&bytes))
    }
}

/// lib/pq's `QuoteIdentifier`: cut at a NUL, double the quotes, wrap in quotes.
pub fn quote_ident(name: &str) -> String {
    let name = name.split('\0').next().unwrap_or_default();
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// FNV-1 (multiply, then xor), 32 bit: Go's `hash/fnv.New32`.
fn fnv1_32(bytes: &[u8]) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for b in bytes {
        hash = hash.wrapping_mul(0x0100_0193);
        hash ^= u32::from(*b);
    }
    hash
}

/// How `pg_locks` shows a single-bigint advisory key: `classid` = high 32 bits, `objid`
/// = low 32 bits (`objsubid = 1`).
pub fn key_halves(key: i64) -> (u32, u32) {
    let bits = key as u64;
    ((bits >> 32) as u32, bits as u32)
}

/// tflock's ID of a pg lock: `pg-<pid>-<session start, µs since the epoch>-<key>`.
/// Nothing of Terraform's LockInfo is stored anywhere, so the ID names the holding
/// session (a pid is reused, pid + start time is not) and the key it holds.
pub fn lock_id(pid: i32, backend_start: Option<DateTime<Utc>>, key: i64) -> String {
    match backend_start {
        Some(start) => format!("pg-{pid}-{}-{key}", start.timestamp_micros()),
        // Another role's session, and tflock may not read its start time.
        None => format!("pg-{pid}-unseen-{key}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1_vectors_and_tofu_creation_key() {
        assert_eq!(fnv1_32(b"a"), 0x050c_5d7e);
        assert_eq!(fnv1_32(b"foobar"), 0x31f0_b262);
        // The default table's key, as OpenTofu >= 1.10 computes it.
        assert_eq!(
            StatesTable::new(None, None).tofu_creation_key(),
            -3_797_183_428
        );
        // Another table, another key (the OpenTofu RFC's point: no cross-table blocking).
        let t = StatesTable::new(Some("ops"), Some("tf"));
        assert_ne!(t.tofu_creation_key(), -3_797_183_428);
        assert!((-4_294_967_295..=0).contains(&t.tofu_creation_key()));
    }

    #[test]
    fn keys_as_pg_locks_shows_them() {
        assert_eq!(key_halves(1), (0, 1));
        assert_eq!(key_halves(-1), (4_294_967_295, 4_294_967_295));
        assert_eq!(key_halves(-3_797_183_428), (4_294_967_295, 497_783_868));
        assert_eq!(key_halves(4_294_967_303), (1, 7));
    }

    #[test]
    fn identifiers_are_quoted_like_lib_pq() {
        assert_eq!(
            quote_ident("terraform_remote_state"),
            "\"terraform_remote_state\""
        );
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_ident("x\0y"), "\"x\"");
        assert_eq!(
            StatesTable::new(Some("Ops"), None).sql(),
            "\"Ops\".\"states\""
        );
    }

    #[test]
    fn ids_name_session_and_key() {
        let start = DateTime::from_timestamp_micros(1_796_094_279_568_961).unwrap();
        assert_eq!(
            lock_id(21208, Some(start), 1),
            "pg-21208-1796094279568961-1"
        );
        assert_eq!(lock_id(7, Some(start), -1), "pg-7-1796094279568961--1");
        assert_eq!(lock_id(7, None, 3), "pg-7-unseen-3");
    }
}
