//! Listing the pg backend's advisory locks (`pg_locks` joined with `pg_stat_activity`
//! and the states table, one query) and breaking one by ending the session that holds
//! it (`pg_terminate_backend` in one compare-and-terminate statement).

use crate::client::Conn;
use crate::error::RIGHTS_HINT;
use crate::naming::{key_halves, lock_id, StatesTable, TERRAFORM_CREATION_KEY};
use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use std::time::Duration;
use tflock_core::{Backend, BreakOptions, Broken, Error, Handle, Kind, Lock, LockStore, Presence};
use tokio_postgres::Row;

/// The backend name of pg locks.
pub const PG: Backend = Backend::new("pg");

/// The advisory locks of this database, with their sessions and the state each key
/// belongs to. A lock is shown when its key is a row of this states table or a
/// workspace-creation key ($1 = Terraform's, $2 = OpenTofu's for this table); other
/// advisory locks in the database (other tables' states, other applications) are not
/// this target's. tflock's own session is left out.
const LIST: &str = "\
SELECT h.key, h.pid, s.name, a.pid IS NOT NULL AS seen, a.usename::text, a.application_name,
       host(a.client_addr), a.client_port, a.backend_start, a.state, a.state_change,
       a.query_start, a.wait_event_type, a.wait_event, current_user::text, current_database()::text
  FROM (SELECT l.pid, (l.classid::bigint << 32) | l.objid::bigint AS key
          FROM pg_locks l
         WHERE l.locktype = 'advisory' AND l.objsubid = 1 AND l.granted AND l.pid IS NOT NULL
           AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
           AND l.pid <> pg_backend_pid()) h
  LEFT JOIN pg_stat_activity a ON a.pid = h.pid
  LEFT JOIN {TABLE} s ON s.id = h.key
 WHERE s.id IS NOT NULL OR h.key IN ($1, $2)
 ORDER BY s.name NULLS FIRST, h.key, h.pid";

/// Who holds the advisory lock on one key right now ($1 classid, $2 objid).
const HOLDER: &str = "\
SELECT l.pid, a.backend_start, a.state
  FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
 WHERE l.locktype = 'advisory' AND l.objsubid = 1 AND l.granted
   AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
   AND l.classid = $1 AND l.objid = $2";

/// The break, as ONE statement: ends the session only if it still holds exactly this
/// key ($1 classid, $2 objid), is the same session that was listed ($3 pid, $4 start:
/// a reused pid has another start), and is not running a statement now. The count of
/// the session's advisory locks is taken before it is signalled.
const TERMINATE: &str = "\
SELECT (SELECT count(*) FROM pg_locks o
         WHERE o.pid = l.pid AND o.locktype = 'advisory' AND o.granted) AS locks,
       pg_terminate_backend(l.pid) AS terminated
  FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
 WHERE l.locktype = 'advisory' AND l.objsubid = 1 AND l.granted
   AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
   AND l.classid = $1 AND l.objid = $2 AND l.pid = $3 AND a.backend_start = $4
   AND coalesce(a.state, '') NOT IN ('active', 'fastpath function call')";

/// Session states in which the server is executing the client's request right now.
fn is_busy(state: Option<&str>) -> bool {
    matches!(state, Some("active" | "fastpath function call"))
}

/// What a break compares on: the holding session (pid + start time) and the key.
struct PgHandle {
    pid: i32,
    /// `None` when this role may not see the session's details: then it is not broken.
    backend_start: Option<DateTime<Utc>>,
    key: i64,
    /// For messages: `pid 123 (tflock@10.0.0.5:51234)`.
    session: String,
    /// For messages: `terraform_remote_state.states/default`.
    what: String,
}

/// The pg backend's locks in one database, for one states table.
pub struct PgStore {
    pub(crate) conn: Conn,
    pub(crate) table: StatesTable,
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

impl PgStore {
    fn location(&self, key: i64) -> String {
        format!("pg://{}/advisory-lock/{key}", self.conn.endpoint.place())
    }

    fn what(&self, key: i64, workspace: Option<&str>) -> String {
        match workspace {
            Some(ws) => format!("{}/{ws}", self.table.display()),
            // Terraform's key: one for the whole database, every schema.
            None if key == TERRAFORM_CREATION_KEY => "(workspace creation, key -1)".to_string(),
            // OpenTofu >= 1.10's: one per states table.
            None => format!("{} (workspace creation)", self.table.display()),
        }
    }

    fn lock_of(&self, row: &Row) -> Result<Option<Lock>, tokio_postgres::Error> {
        let key: i64 = row.try_get(0)?;
        let pid: i32 = row.try_get(1)?;
        let workspace: Option<String> = row.try_get(2)?;
        let seen: bool = row.try_get(3)?;
        if !seen {
            // The session ended between reading pg_locks and pg_stat_activity.
            return Ok(None);
        }
        let role: Option<String> = row.try_get(4)?;
        let application: Option<String> = row.try_get(5)?;
        let addr: Option<String> = row.try_get(6)?;
        let port: Option<i32> = row.try_get(7)?;
        let started: Option<DateTime<Utc>> = row.try_get(8)?;
        let state: Option<String> = row.try_get(9)?;
        let state_change: Option<DateTime<Utc>> = row.try_get(10)?;
        let query_start: Option<DateTime<Utc>> = row.try_get(11)?;
        let wait_type: Option<String> = row.try_get(12)?;
        let wait_event: Option<String> = row.try_get(13)?;
        let me: String = row.try_get(14)?;
        let db: String = row.try_get(15)?;

        let client = match (&addr, port) {
            (Some(a), Some(p)) if a.contains(':') => Some(format!("[{a}]:{p}")),
            (Some(a), Some(p)) => Some(format!("{a}:{p}")),
            (None, Some(-1)) => Some("local socket".to_string()),
            _ => None,
        };
        let role_text = role.clone().unwrap_or_else(|| "?".into());
        let mut session = format!("pid {pid}");
        match (&client, started) {
            (Some(c), _) => session.push_str(&format!(", {role_text}@{c}")),
            (None, None) => session.push_str(&format!(", role {role_text}, details hidden")),
            (None, Some(_)) => session.push_str(&format!(", role {role_text}")),
        }
        if let Some(app) = application.as_deref().filter(|a| !a.is_empty()) {
            session.push_str(&format!(" ({app})"));
        }
        let what = self.what(key, workspace.as_deref());
        let handle = Handle::new(
            &self.conn.target,
            PgHandle {
                pid,
                backend_start: started,
                key,
                session: session.clone(),
                what: what.clone(),
            },
        );
        let mut lock = Lock::new(PG, &self.conn.target, self.location(key), handle);
        lock.id = lock_id(pid, started, key);
        lock.path = what;
        lock.workspace = workspace.clone();
        lock.holder = Some(session);
        // Busy = the server is running this session's statement now: the client is alive.
        // Idle says nothing (terraform is idle between statements for a whole apply).
        if is_busy(state.as_deref()) {
            lock.held = Some(true);
        }
        // Nothing records when the lock was taken; the session's last state change (its
        // last statement) is the latest it can have been taken, so the age shown is a
        // lower bound and --stale-after means "idle for at least".
        lock.stored_at = state_change;
        let d = &mut lock.details;
        d.insert("pid".into(), pid.to_string());
        d.insert("advisory_key".into(), key.to_string());
        d.insert("database".into(), db);
        if let Some(r) = role {
            d.insert("role".into(), r);
        }
        if let Some(c) = client {
            d.insert("client".into(), c);
        }
        if let Some(a) = application.filter(|a| !a.is_empty()) {
            d.insert("application_name".into(), a);
        }
        if let Some(s) = started {
            d.insert("session_start".into(), ts(s));
        }
        if let Some(s) = &state {
            d.insert("session_state".into(), s.clone());
        }
        if let Some(s) = state_change {
            d.insert("state_since".into(), ts(s));
        }
        if let Some(q) = query_start {
            d.insert("last_statement_start".into(), ts(q));
        }
        if let (Some(t), Some(e)) = (wait_type, wait_event) {
            d.insert("wait_event".into(), format!("{t}/{e}"));
        }
        if started.is_none() {
            lock.info_error = Some(format!(
                "role {me} may not see this session's start, client and state (it is another role's): it cannot be told apart from a later session with the same pid, so tflock will not end it; {RIGHTS_HINT}"
            ));
        } else if workspace.is_none() {
            lock.info_error = Some(format!(
                "workspace creation lock (key {key}): held while a workspace's first state is written, or for a whole first apply of a workspace with no state yet; which workspace is recorded nowhere"
            ));
        }
        Ok(Some(lock))
    }

    /// Who holds `key` now: `(pid, session start, state)`.
    async fn holder(
        &self,
        client: &tokio_postgres::Client,
        key: i64,
    ) -> Result<Option<(i32, Option<DateTime<Utc>>, Option<String>)>, Error> {
        let (classid, objid) = key_halves(key);
        let action = format!("reading advisory lock {key}");
        let rows = self
            .conn
            .read(&action, client.query(HOLDER, &[&classid, &objid]))
            .await?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let got = (|| -> Result<_, tokio_postgres::Error> {
            Ok((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?))
        })();
        got.map(Some)
            .map_err(|e| crate::error::pg_error(&self.conn, &action, &e))
    }

    async fn presence(&self, h: &PgHandle) -> Result<Presence, Error> {
        let client = self.conn.connect("reading the lock again").await?;
        let now = self.holder(&client, h.key).await?;
        Ok(Presence::of(
            now.map(|(pid, start, _)| (pid, start)),
            &(h.pid, h.backend_start),
        ))
    }

    /// The terminate statement matched nothing: say why, from a fresh read.
    async fn why_unmatched(&self, client: &tokio_postgres::Client, h: &PgHandle) -> Error {
        let target = &self.conn.target;
        match self.holder(client, h.key).await {
            Ok(None) => Error::changed(
                target,
                format!(
                    "{} is no longer locked: session {} ended or released it",
                    h.what, h.session
                ),
            ),
            Ok(Some((pid, start, state))) if pid == h.pid && start == h.backend_start => {
                if is_busy(state.as_deref()) {
                    Error::refused(
                        target,
                        format!(
                            "session {} holding {} is running a statement now: its client is alive; stop that process instead of breaking its lock",
                            h.session, h.what
                        ),
                    )
                } else {
                    Error::changed(
                        target,
                        format!("session {} changed while it was being ended", h.session),
                    )
                    .with_hint("list again")
                }
            }
            Ok(Some((pid, _, _))) => Error::changed(
                target,
                format!("{} was re-taken by another session (pid {pid})", h.what),
            ),
            Err(e) => Error::changed(
                target,
                format!(
                    "session {} no longer holds {} as it was read (a second read failed: {})",
                    h.session,
                    h.what,
                    e.message()
                ),
            ),
        }
    }

    /// After a successful signal: wait (within the request timeout) until the session
    /// has exited and its lock is released.
    async fn wait_released(
        &self,
        client: &tokio_postgres::Client,
        h: &PgHandle,
    ) -> Result<bool, Error> {
        let deadline = tokio::time::Instant::now() + self.conn.timeout;
        loop {
            match self.holder(client, h.key).await? {
                Some((pid, start, _)) if pid == h.pid && start == h.backend_start => {}
                _ => return Ok(true),
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(false);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[async_trait]
impl LockStore for PgStore {
    async fn list(&self) -> Result<Vec<Lock>, Error> {
        let action = format!(
            "listing locks of {} in database {}",
            self.table.display(),
            self.conn.endpoint.dbname
        );
        let client = self.conn.connect(&action).await?;
        let sql = LIST.replace("{TABLE}", &self.table.sql());
        let creation = [TERRAFORM_CREATION_KEY, self.table.tofu_creation_key()];
        let rows = self
            .conn
            .read(&action, client.query(&sql, &[&creation[0], &creation[1]]))
            .await?;
        let mut locks = Vec::with_capacity(rows.len());
        for row in &rows {
            match self.lock_of(row) {
                Ok(Some(lock)) => locks.push(lock),
                Ok(None) => {}
                Err(e) => return Err(crate::error::pg_error(&self.conn, &action, &e)),
            }
        }
        Ok(locks)
    }

    async fn delete_if_unchanged(&self, lock: &Lock, _: &BreakOptions) -> Result<Broken, Error> {
        let h = lock.handle_for::<PgHandle>(&self.conn.target)?;
        let target = &self.conn.target;
        let Some(started) = h.backend_start else {
            return Err(Error::new(
                Kind::PermissionDenied,
                format!(
                    "session {} holding {} belongs to another role whose sessions role {} may not see: tflock cannot make sure it ends that session and no later one",
                    h.session, h.what, self.conn.endpoint.user
                ),
            )
            .at(target)
            .with_hint(RIGHTS_HINT));
        };
        let action = format!("ending session {} that holds {}", h.session, h.what);
        // A failure to connect sent nothing: it is what it is, not an unknown outcome.
        let client = self.conn.connect(&action).await?;
        let (classid, objid) = key_halves(h.key);
        // Sent once. Any answer but the server's own error may have been applied.
        let sent = self
            .conn
            .bounded(client.query(TERMINATE, &[&classid, &objid, &h.pid, &started]))
            .await;
        let rows = match sent {
            Some(Ok(rows)) => rows,
            Some(Err(e)) if e.as_db_error().is_some() => {
                return Err(crate::error::pg_error(&self.conn, &action, &e))
            }
            Some(Err(e)) => {
                return Err(
                    crate::error::pg_error(&self.conn, &action, &e).with_kind(Kind::OutcomeUnknown)
                )
            }
            None => return Err(self.conn.timed_out(&action).with_kind(Kind::OutcomeUnknown)),
        };
        let Some(row) = rows.first() else {
            return Err(self.why_unmatched(&client, h).await);
        };
        let (held, terminated): (i64, bool) = match (row.try_get(0), row.try_get(1)) {
            (Ok(n), Ok(t)) => (n, t),
            (Err(e), _) | (_, Err(e)) => {
                return Err(
                    crate::error::pg_error(&self.conn, &action, &e).with_kind(Kind::OutcomeUnknown)
                )
            }
        };
        if !terminated {
            // pg_terminate_backend found no such backend: it ended by itself meanwhile.
            return Err(self.why_unmatched(&client, h).await);
        }
        if !self.wait_released(&client, h).await? {
            return Err(Error::backend(
                target,
                format!(
                    "session {} was told to end but still holds {} after {}",
                    h.session,
                    h.what,
                    tflock_core::duration::human(self.conn.timeout)
                ),
            )
            .with_hint("the server may be overloaded: run tflock list again before retrying"));
        }
        let mut warnings = Vec::new();
        if held > 1 {
            warnings.push(format!(
                "session {} held {} advisory locks in this database; all of them were released with it",
                h.session, held
            ));
        }
        warnings.push(format!(
            "if the terraform behind session {} was only stopped or hung, not dead, it will reconnect when it resumes and write state WITHOUT a lock: make sure that process is gone",
            h.session,
        ));
        Ok(Broken {
            removed: vec![format!(
                "{}: ended session {} with pg_terminate_backend, releasing {}",
                lock.location, h.session, h.what
            )],
            confirmed_by_reread: false,
            warnings,
        })
    }

    async fn recheck(&self, lock: &Lock) -> Result<Presence, Error> {
        let h = lock.handle_for::<PgHandle>(&self.conn.target)?;
        self.presence(h).await
    }

    fn backend(&self) -> Backend {
        PG
    }

    fn target(&self) -> &str {
        &self.conn.target
    }
}
