//! Listing the consul backend's locks and breaking one.
//!
//! A lock exists while a live session holds `<state key>/.lock` (Consul clears the key's
//! `Session` when the session ends). `<state key>/.lockinfo` is what Terraform wrote
//! after acquiring; left behind when the session expires (a killed terraform), it is a
//! harmless orphan: not listed as a lock, reported by `tflock doctor` (doctor.rs).
//!
//! A break: re-read `.lock` and go on only if the listed session still holds it; destroy
//! that session (`PUT /v1/session/destroy/<id>`: Consul releases `.lock` and applies the
//! session's lock-delay); then delete `.lockinfo` with `?cas=<ModifyIndex read>`, so a
//! newer lock's info is never removed. The state keys are never written.

use crate::client::Conn;
use crate::error::{describe, is_true, status_error};
use crate::naming::{self, Part, LOCK_FLAGS};
use async_trait::async_trait;
use base64::Engine as _;
use chrono::Utc;
use reqwest::Method;
use serde::Deserialize;
use std::collections::BTreeMap;
use tflock_core::error::may_have_applied;
use tflock_core::exchange::Reply;
use tflock_core::{Backend, BreakOptions, Broken, Error, Handle, Lock, LockStore, Presence};

/// The backend name of consul locks.
pub const CONSUL: Backend = Backend::new("consul");

/// The ACL rights a break needs, for hints.
pub const BREAK_ACL: &str =
    "key:write on the lock keys and session:write (to destroy the holder's session)";
const READ_ACL: &str = "key:read on the state path and session:read";

/// A KV pair as `GET /v1/kv/<key>` returns it (Consul API docs, "Read Key").
#[derive(Deserialize, Clone, Debug)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Pair {
    pub key: String,
    #[serde(default)]
    pub value: Option<String>,
    #[serde(default)]
    pub session: Option<String>,
    #[serde(default)]
    pub modify_index: u64,
    #[serde(default)]
    pub lock_index: u64,
    #[serde(default)]
    pub flags: u64,
}

impl Pair {
    pub fn holder(&self) -> Option<&str> {
        self.session.as_deref().filter(|s| !s.is_empty())
    }
    /// The value as text (`Value` is base64; `null` for an empty value).
    pub fn text(&self) -> Result<String, String> {
        let raw = self.value.as_deref().unwrap_or("");
        base64::engine::general_purpose::STANDARD
            .decode(raw)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .map_err(|_| "the .lockinfo value is not base64".to_string())
    }
}

/// `GET /v1/session/info/<id>` entry (Consul API docs, "Read Session").
#[derive(Deserialize, Clone, Debug)]
pub(crate) struct Session {
    #[serde(rename = "ID", default)]
    pub id: String,
    #[serde(rename = "Name", default)]
    pub name: String,
    #[serde(rename = "Node", default)]
    pub node: String,
    #[serde(rename = "TTL", default)]
    pub ttl: String,
    #[serde(rename = "Behavior", default)]
    pub behavior: String,
    /// Nanoseconds.
    #[serde(rename = "LockDelay", default)]
    pub lock_delay: u64,
}

/// One state's lock keys, as listed.
pub(crate) struct Slot {
    pub workspace: String,
    pub stem: String,
    pub lock: Option<Pair>,
    pub info: Option<Pair>,
}

/// What a break compares on.
struct ConsulHandle {
    stem: String,
    session: String,
    /// ModifyIndex of the `.lockinfo` read with the lock, if there was one.
    info_index: Option<u64>,
}

/// The locks of one consul backend `path` (all its workspaces).
pub struct ConsulStore {
    pub(crate) conn: Conn,
    pub(crate) path: String,
    pub(crate) concurrency: usize,
}

impl ConsulStore {
    /// `consul://host:port/<key>`, how keys are shown.
    pub(crate) fn location(&self, key: &str) -> String {
        let host = self.conn.base.host_str().unwrap_or("");
        let port = self
            .conn
            .base
            .port()
            .map(|p| format!(":{p}"))
            .unwrap_or_default();
        format!("consul://{host}{port}/{key}")
    }

    /// One `GET /v1/kv/<path>?recurse`: every key under the path (states included, whose
    /// values are not looked at), grouped into the lock keys of each workspace.
    pub(crate) async fn scan(&self) -> Result<Vec<Slot>, Error> {
        let what = format!("reading keys under {}", self.path);
        let reply = self
            .conn
            .send(
                Method::GET,
                &["v1", "kv"],
                Some(&self.path),
                &[("recurse", "")],
                false,
                &what,
            )
            .await?;
        if reply.status == 404 {
            return Ok(Vec::new());
        }
        if !reply.ok() {
            return Err(status_error(&self.conn, &what, &reply, READ_ACL));
        }
        let pairs: Vec<Pair> = serde_json::from_slice(&reply.body).map_err(|_| {
            Error::backend(
                &self.conn.target,
                format!(
                    "{what}: the answer of {} is not a list of keys",
                    self.conn.server()
                ),
            )
        })?;
        let mut slots: BTreeMap<String, Slot> = BTreeMap::new();
        for pair in pairs {
            let Some((workspace, stem, part)) = naming::classify(&self.path, &pair.key) else {
                continue;
            };
            let slot = slots.entry(stem.clone()).or_insert(Slot {
                workspace,
                stem,
                lock: None,
                info: None,
            });
            match part {
                Part::Lock => slot.lock = Some(pair),
                Part::Info => slot.info = Some(pair),
            }
        }
        Ok(slots.into_values().collect())
    }

    /// The session, or `None` when it no longer exists (`[]`, as Consul answers).
    pub(crate) async fn session(&self, id: &str) -> Result<Option<Session>, Error> {
        let what = format!("reading session {id}");
        let reply = self
            .conn
            .send(
                Method::GET,
                &["v1", "session", "info", id],
                None,
                &[],
                false,
                &what,
            )
            .await?;
        if reply.status == 404 {
            return Ok(None);
        }
        if !reply.ok() {
            return Err(status_error(&self.conn, &what, &reply, READ_ACL));
        }
        let list: Vec<Session> = serde_json::from_slice(&reply.body).unwrap_or_default();
        Ok(list.into_iter().find(|s| s.id == id))
    }

    /// The live session on each slot's `.lock`, in slot order.
    pub(crate) async fn sessions(&self, slots: &[Slot]) -> Result<Vec<Option<Session>>, Error> {
        let ids: Vec<Option<String>> = slots
            .iter()
            .map(|s| s.lock.as_ref().and_then(|l| l.holder()).map(str::to_string))
            .collect();
        let found = tflock_core::bounded(ids, self.concurrency, |id| async move {
            match id {
                Some(id) => self.session(&id).await,
                None => Ok(None),
            }
        })
        .await;
        found.into_iter().collect()
    }

    async fn get(&self, key: &str) -> Result<Option<Pair>, Error> {
        let what = format!("reading {key}");
        let reply = self
            .conn
            .send(Method::GET, &["v1", "kv"], Some(key), &[], false, &what)
            .await?;
        if reply.status == 404 {
            return Ok(None);
        }
        if !reply.ok() {
            return Err(status_error(&self.conn, &what, &reply, READ_ACL));
        }
        let list: Vec<Pair> = serde_json::from_slice(&reply.body)
            .map_err(|_| Error::backend(&self.conn.target, format!("{what}: not a key")))?;
        Ok(list.into_iter().find(|p| p.key == key))
    }

    /// Who holds `<stem>/.lock` now (a session that exists), if anyone.
    pub(crate) async fn holder_now(&self, stem: &str) -> Result<Option<String>, Error> {
        Ok(self
            .get(&format!("{stem}{}", naming::LOCK_SUFFIX))
            .await?
            .and_then(|p| p.holder().map(str::to_string)))
    }

    /// `DELETE /v1/kv/<key>?cas=<index>`: true when deleted.
    pub(crate) async fn delete_cas(
        &self,
        key: &str,
        index: u64,
        what: &str,
    ) -> Result<Reply, Error> {
        let idx = index.to_string();
        self.conn
            .send(
                Method::DELETE,
                &["v1", "kv"],
                Some(key),
                &[("cas", &idx)],
                true,
                what,
            )
            .await
    }

    fn lock_of(&self, slot: &Slot, holder: &str, session: &Session) -> Lock {
        let lock_key = format!("{}{}", slot.stem, naming::LOCK_SUFFIX);
        let info_key = format!("{}{}", slot.stem, naming::INFO_SUFFIX);
        let location = self.location(&lock_key);
        let handle = Handle::new(
            &self.conn.target,
            ConsulHandle {
                stem: slot.stem.clone(),
                session: holder.to_string(),
                info_index: slot.info.as_ref().map(|p| p.modify_index),
            },
        );
        let mut lock = Lock::new(CONSUL, &self.conn.target, &location, handle);
        lock.id = holder.to_string();
        // LockInfo.Path is the state key (`putLockInfo` sets it to `c.Path`).
        lock.path = naming::state_key(&self.path, &slot.workspace);
        lock.workspace = Some(slot.workspace.clone());
        lock.holder = Some(format!(
            "consul session {holder} on node {} (TTL {})",
            session.node,
            if session.ttl.is_empty() {
                "none"
            } else {
                &session.ttl
            }
        ));
        let d = &mut lock.details;
        d.insert("lock_key".into(), lock_key);
        d.insert("session".into(), holder.to_string());
        d.insert("session_name".into(), session.name.clone());
        d.insert("node".into(), session.node.clone());
        d.insert("ttl".into(), session.ttl.clone());
        d.insert("behavior".into(), session.behavior.clone());
        d.insert(
            "lock_delay".into(),
            format!("{}ms", session.lock_delay / 1_000_000),
        );
        if let Some(l) = &slot.lock {
            d.insert("lock_index".into(), l.lock_index.to_string());
            d.insert("modify_index".into(), l.modify_index.to_string());
            if l.flags != LOCK_FLAGS {
                d.insert("flags".into(), format!("{} (not Terraform's)", l.flags));
            }
        }
        match &slot.info {
            None => {
                // Terraform writes .lockinfo right after acquiring: a holder without it is
                // someone else's lock, or a terraform in the instant between the two.
                lock.foreign = true;
                lock.info_error = Some(format!(
                    "no {info_key}: not a Terraform lock (or one being taken right now)"
                ));
            }
            Some(info) => {
                lock.details
                    .insert("lockinfo_index".into(), info.modify_index.to_string());
                match info.text() {
                    Err(e) => lock.info_error = Some(e),
                    Ok(text) => {
                        let other;
                        (lock, other) = lock.with_holder_info(holder, &text);
                        // An orphan of an older lock next to a holder that wrote none.
                        if let Some(other) = other {
                            lock.info = None;
                            lock.info_error = Some(format!(
                                "{info_key} describes session {other}, not the holder {holder}"
                            ));
                        }
                    }
                }
            }
        }
        lock.held = held(&lock, session);
        lock
    }
}

/// Whether the holder is known alive. A session with a TTL is invalidated unless renewed
/// within the TTL (Consul may take up to twice that: session API docs). Terraform makes
/// the session, then writes `.lockinfo` with `Created`; so a session still alive more
/// than 2 x TTL after `Created` has been renewed since, by its holder, within the last
/// 2 x TTL: the holder lives. Younger (or without a TTL), nothing can be told.
fn held(lock: &Lock, session: &Session) -> Option<bool> {
    let ttl = tflock_core::duration::parse(&session.ttl).ok()?;
    if ttl.is_zero() {
        return None;
    }
    let age = lock.age(Utc::now())?.to_std().ok()?;
    (age > ttl * 2).then_some(true)
}

#[async_trait]
impl LockStore for ConsulStore {
    async fn list(&self) -> Result<Vec<Lock>, Error> {
        let slots = self.scan().await?;
        let sessions = self.sessions(&slots).await?;
        let mut locks = Vec::new();
        for (slot, session) in slots.iter().zip(sessions) {
            let (Some(session), Some(holder)) =
                (session, slot.lock.as_ref().and_then(|l| l.holder()))
            else {
                continue;
            };
            locks.push(self.lock_of(slot, holder, &session));
        }
        locks.sort_by(|a, b| a.location.cmp(&b.location));
        Ok(locks)
    }

    async fn delete_if_unchanged(&self, lock: &Lock, _: &BreakOptions) -> Result<Broken, Error> {
        let h = lock.handle_for::<ConsulHandle>(&self.conn.target)?;
        let lock_key = format!("{}{}", h.stem, naming::LOCK_SUFFIX);
        let info_key = format!("{}{}", h.stem, naming::INFO_SUFFIX);
        // Destroying the listed session can only release what that session holds; this
        // re-read makes a lock released or re-taken since the listing report cleanly.
        match self.holder_now(&h.stem).await? {
            Some(s) if s == h.session => {}
            Some(other) => {
                return Err(Error::changed(
                    &self.conn.target,
                    format!(
                        "{lock_key} is held by session {other} now, not {}",
                        h.session
                    ),
                ))
            }
            None => {
                return Err(Error::changed(
                    &self.conn.target,
                    format!(
                        "{lock_key} is no longer held by session {} (released)",
                        h.session
                    ),
                ))
            }
        }
        let what = format!("destroying session {}", h.session);
        // Sent once: a lost reply is settled by `recheck`.
        let reply = self
            .conn
            .send(
                Method::PUT,
                &["v1", "session", "destroy", &h.session],
                None,
                &[],
                true,
                &what,
            )
            .await?;
        if !reply.ok() {
            return Err(match reply.status {
                412 | 409 => Error::changed(
                    &self.conn.target,
                    format!(
                        "session {} was not destroyed ({})",
                        h.session,
                        describe(&reply)
                    ),
                ),
                s => status_error(&self.conn, &what, &reply, BREAK_ACL)
                    .unknown_if(may_have_applied(s)),
            });
        }
        let mut broken = Broken {
            removed: vec![format!(
                "consul session {} (it held {})",
                h.session,
                self.location(&lock_key)
            )],
            ..Broken::default()
        };
        // The lock is broken; what follows only tidies, and never fails the break.
        if let Some(index) = h.info_index {
            let what = format!("deleting {info_key}");
            match self.delete_cas(&info_key, index, &what).await {
                Ok(r) if r.ok() && is_true(&r) => broken.removed.push(self.location(&info_key)),
                Ok(r) if r.ok() => broken.warnings.push(format!(
                    "{info_key} changed since it was read (a new lock?) and was kept"
                )),
                Ok(r) => broken.warnings.push(format!(
                    "{info_key} was left behind ({}); it is harmless: Terraform overwrites it",
                    describe(&r)
                )),
                Err(e) => broken.warnings.push(format!(
                    "{info_key} was left behind ({}); it is harmless: Terraform overwrites it",
                    e.message()
                )),
            }
        }
        broken.warnings.push(format!(
            "{lock_key} cannot be locked again for the session's lock-delay ({}); a terraform still running re-takes its lock after it",
            lock.details.get("lock_delay").map(String::as_str).unwrap_or("5s")
        ));
        Ok(broken)
    }

    async fn recheck(&self, lock: &Lock) -> Result<Presence, Error> {
        let h = lock.handle_for::<ConsulHandle>(&self.conn.target)?;
        Ok(Presence::of(self.holder_now(&h.stem).await?, &h.session))
    }

    async fn diagnose(&self) -> Result<Vec<tflock_core::Finding>, Error> {
        crate::doctor::diagnose(self).await
    }

    async fn repair(&self, fix: &tflock_core::Fix) -> Result<tflock_core::Repaired, Error> {
        crate::doctor::repair(self, fix).await
    }

    fn backend(&self) -> Backend {
        CONSUL
    }

    fn target(&self) -> &str {
        &self.conn.target
    }
}
