//! A fake Consul agent: the KV and session endpoints Terraform's consul backend and
//! tflock use, with the documented semantics of the real ones (developer.hashicorp.com
//! consul/api-docs/kv and /session; hashicorp/consul `agent/kvs_endpoint.go`,
//! `agent/session_endpoint.go`, `agent/consul/state/kvs.go`):
//!
//! - `GET /v1/kv/<key>`: `[pair]` or 404; `?recurse`: every key with that prefix, in key
//!   order, 404 when none; `Value` base64 (null when empty); `X-Consul-Index` header.
//! - `PUT /v1/kv/<key>`: body = value; `?cas=<i>` only if `ModifyIndex == i` (0: only if
//!   absent); `?acquire=<session>`: false while another session holds it or during the
//!   key's lock-delay, else `Session` set and `LockIndex` + 1; `?release=<session>`; `?flags=`.
//!   Answers `true`/`false`.
//! - `DELETE /v1/kv/<key>[?cas=<i>]`: `true`/`false`.
//! - `PUT /v1/session/create` (`Name`, `TTL`, `LockDelay` "5000ms" or ns, `Behavior`
//!   release|delete) -> `{"ID"}`; `GET /v1/session/info/<id>` -> `[entry]` or `[]` (200);
//!   `PUT /v1/session/renew/<id>`; `PUT /v1/session/destroy/<id>` -> `true`, also for an
//!   unknown session. Invalidation (destroy, TTL expiry at 2 x TTL) releases (or deletes)
//!   every key the session holds and starts the lock-delay on them.
//! - ACLs: the token in `X-Consul-Token`; an unknown one is 403 `ACL not found`; a
//!   read-only token gets 403 `Permission denied` on writes.
//! - `?dc=` other than `dc1`: 500 `No path to datacenter`.
//! - `GET /v1/kv/<prefix>?keys[&separator=/]`: the keys under the prefix (up to the
//!   separator), 404 when none.
//! - `PUT /v1/txn`: `KV` operations `set` and `cas` (what Terraform stores its state
//!   with), all or nothing: `{"Results":[{"KV":pair}],"Errors":null}`, or 409 with
//!   `Errors` when a `cas` index is stale.
//! - Blocking queries: a `GET /v1/kv/...?index=N` waits while the index it would answer
//!   is not above N, at most `?wait=` (5 minutes in Consul; here at most 2 s, which a
//!   client must take as "nothing changed", as Consul's own early returns).
//! - Every answer carries `X-Consul-Index` (the key's `ModifyIndex`, or the store's
//!   index), `X-Consul-KnownLeader` and `X-Consul-LastContact`, which the Go client
//!   requires.

use base64::Engine as _;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tflock_core::testkit::http::{Request, Response, Server};

#[derive(Clone, Debug)]
pub struct Pair {
    pub value: Vec<u8>,
    pub flags: u64,
    pub session: Option<String>,
    pub create_index: u64,
    pub modify_index: u64,
    pub lock_index: u64,
}

#[derive(Clone, Debug)]
pub struct Session {
    pub name: String,
    pub ttl: Option<Duration>,
    pub ttl_text: String,
    pub lock_delay: Duration,
    pub behavior: String,
    pub renewed: Instant,
    pub create_index: u64,
}

#[derive(Default)]
pub struct State {
    pub kv: BTreeMap<String, Pair>,
    pub sessions: BTreeMap<String, Session>,
    /// key -> the end of its lock-delay.
    pub delays: BTreeMap<String, Instant>,
    pub index: u64,
    pub ids: u64,
    pub log: Vec<String>,
}

pub struct Fake {
    pub url: String,
    pub token: String,
    pub read_token: String,
    pub state: Arc<Mutex<State>>,
    _server: Server,
}

/// The longest a blocking query is held here (Consul: `wait`, default 5 minutes).
const BLOCK_MAX: Duration = Duration::from_secs(2);

fn text(status: u16, body: &str) -> Response {
    Response::new(status, body.to_string()).with_header("Content-Type", "text/plain; charset=utf-8")
}

fn boolean(b: bool) -> Response {
    Response::json(200, &json!(b))
}

/// Go durations as sessions take them ("15s", "5000ms"), or nanoseconds.
fn duration(v: &Value) -> Option<Duration> {
    match v {
        Value::Number(n) => n.as_u64().map(Duration::from_nanos),
        Value::String(s) if s.is_empty() => None,
        Value::String(s) => tflock_core::duration::parse(s).ok(),
        _ => None,
    }
}

impl State {
    fn bump(&mut self) -> u64 {
        self.index += 1;
        self.index
    }

    /// The pair at `key` (created empty if absent) for a write, with the write's index
    /// already set as its `ModifyIndex`.
    fn write(&mut self, key: impl Into<String>) -> &mut Pair {
        let idx = self.bump();
        let p = self.kv.entry(key.into()).or_insert(Pair {
            value: Vec::new(),
            flags: 0,
            session: None,
            create_index: idx,
            modify_index: idx,
            lock_index: 0,
        });
        p.modify_index = idx;
        p
    }

    fn pair_json(key: &str, p: &Pair) -> Value {
        let mut v = json!({
            "LockIndex": p.lock_index, "Key": key, "Flags": p.flags,
            "Value": if p.value.is_empty() { Value::Null } else { json!(base64::engine::general_purpose::STANDARD.encode(&p.value)) },
            "CreateIndex": p.create_index, "ModifyIndex": p.modify_index,
        });
        if let Some(s) = &p.session {
            v["Session"] = json!(s);
        }
        v
    }

    fn session_json(id: &str, s: &Session) -> Value {
        json!({
            "ID": id, "Name": s.name, "Node": "fake-node", "LockDelay": s.lock_delay.as_nanos() as u64,
            "Behavior": s.behavior, "TTL": s.ttl_text, "NodeChecks": ["serfHealth"],
            "ServiceChecks": null, "CreateIndex": s.create_index, "ModifyIndex": s.create_index,
        })
    }

    /// Ends a session: its keys released (or deleted) and put under its lock-delay.
    pub fn invalidate(&mut self, id: &str) {
        let Some(s) = self.sessions.remove(id) else {
            return;
        };
        let held: Vec<String> = self
            .kv
            .iter()
            .filter(|(_, p)| p.session.as_deref() == Some(id))
            .map(|(k, _)| k.clone())
            .collect();
        for key in held {
            let idx = self.bump();
            if s.behavior == "delete" {
                self.kv.remove(&key);
            } else if let Some(p) = self.kv.get_mut(&key) {
                p.session = None;
                p.modify_index = idx;
            }
            if !s.lock_delay.is_zero() {
                self.delays.insert(key, Instant::now() + s.lock_delay);
            }
        }
    }

    fn expire(&mut self) {
        let now = Instant::now();
        let dead: Vec<String> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.ttl.is_some_and(|t| now > s.renewed + t * 2))
            .map(|(id, _)| id.clone())
            .collect();
        for id in dead {
            self.invalidate(&id);
        }
    }

    fn kv(&mut self, r: &Request, key: &str) -> Response {
        match r.method.as_str() {
            "GET" => {
                let found: Vec<Value> = if r.has_param("recurse") {
                    self.kv
                        .iter()
                        .filter(|(k, _)| k.starts_with(key))
                        .map(|(k, p)| Self::pair_json(k, p))
                        .collect()
                } else {
                    self.kv
                        .get(key)
                        .map(|p| Self::pair_json(key, p))
                        .into_iter()
                        .collect()
                };
                if found.is_empty() {
                    Response::new(404, Vec::new())
                } else {
                    Response::json(200, &Value::Array(found))
                }
            }
            "PUT" => {
                let flags = r.param("flags").and_then(|f| f.parse().ok());
                if let Some(cas) = r.param("cas").and_then(|c| c.parse::<u64>().ok()) {
                    let current = self.kv.get(key).map(|p| p.modify_index).unwrap_or(0);
                    if current != cas {
                        return boolean(false);
                    }
                }
                if let Some(sid) = r.param("acquire") {
                    if !self.sessions.contains_key(sid) {
                        return text(500, &format!("invalid session \"{sid}\""));
                    }
                    if self.delays.get(key).is_some_and(|d| Instant::now() < *d) {
                        return boolean(false);
                    }
                    let held_by = self.kv.get(key).and_then(|p| p.session.clone());
                    if held_by.as_deref().is_some_and(|h| h != sid) {
                        return boolean(false);
                    }
                    let p = self.write(key.to_string());
                    if held_by.is_none() {
                        p.lock_index += 1;
                    }
                    p.session = Some(sid.to_string());
                    p.value = r.body.clone();
                    if let Some(f) = flags {
                        p.flags = f;
                    }
                    return boolean(true);
                }
                if let Some(sid) = r.param("release") {
                    let idx = self.bump();
                    return match self.kv.get_mut(key) {
                        Some(p) if p.session.as_deref() == Some(sid) => {
                            p.session = None;
                            p.modify_index = idx;
                            boolean(true)
                        }
                        _ => boolean(false),
                    };
                }
                let p = self.write(key.to_string());
                p.value = r.body.clone();
                if let Some(f) = flags {
                    p.flags = f;
                }
                boolean(true)
            }
            "DELETE" => {
                if let Some(cas) = r.param("cas").and_then(|c| c.parse::<u64>().ok()) {
                    let current = self.kv.get(key).map(|p| p.modify_index).unwrap_or(0);
                    if current != cas {
                        return boolean(false);
                    }
                }
                if r.has_param("recurse") {
                    self.kv.retain(|k, _| !k.starts_with(key));
                } else {
                    self.kv.remove(key);
                }
                self.bump();
                boolean(true)
            }
            _ => text(405, "method not allowed"),
        }
    }

    fn session(&mut self, r: &Request, op: &str, id: Option<&str>) -> Response {
        match (op, id) {
            ("create", _) => {
                let body: Value = serde_json::from_slice(&r.body).unwrap_or(json!({}));
                self.ids += 1;
                let id = format!(
                    "{:08x}-0000-4000-8000-{:012x}",
                    std::process::id(),
                    self.ids
                );
                let ttl = duration(&body["TTL"]);
                let create_index = self.bump();
                self.sessions.insert(
                    id.clone(),
                    Session {
                        name: body["Name"].as_str().unwrap_or("").to_string(),
                        ttl,
                        ttl_text: body["TTL"].as_str().unwrap_or("").to_string(),
                        lock_delay: duration(&body["LockDelay"]).unwrap_or(Duration::from_secs(15)),
                        behavior: body["Behavior"].as_str().unwrap_or("release").to_string(),
                        renewed: Instant::now(),
                        create_index,
                    },
                );
                Response::json(200, &json!({ "ID": id }))
            }
            ("info", Some(id)) => Response::json(
                200,
                &Value::Array(
                    self.sessions
                        .get(id)
                        .map(|s| Self::session_json(id, s))
                        .into_iter()
                        .collect(),
                ),
            ),
            ("renew", Some(id)) => match self.sessions.get_mut(id) {
                Some(s) => {
                    s.renewed = Instant::now();
                    let s = s.clone();
                    Response::json(200, &json!([Self::session_json(id, &s)]))
                }
                None => text(404, &format!("Session id '{id}' not found")),
            },
            ("destroy", Some(id)) => {
                self.invalidate(id);
                boolean(true)
            }
            _ => text(404, "not found"),
        }
    }

    /// The index a read of `r` answers with: the key's `ModifyIndex` for a single key,
    /// else the store's.
    pub fn index_for(&self, r: &Request) -> u64 {
        match r.path.strip_prefix("/v1/kv/") {
            Some(key) if !r.has_param("recurse") && !r.has_param("keys") => {
                self.kv.get(key).map_or(self.index, |p| p.modify_index)
            }
            _ => self.index,
        }
    }

    fn keys(&self, prefix: &str, separator: Option<&str>) -> Response {
        let mut keys: Vec<String> = Vec::new();
        for k in self.kv.keys().filter(|k| k.starts_with(prefix)) {
            let rest = &k[prefix.len()..];
            let key = match separator
                .filter(|s| !s.is_empty())
                .and_then(|s| rest.find(s).map(|i| &k[..prefix.len() + i + s.len()]))
            {
                Some(up_to) => up_to.to_string(),
                None => k.clone(),
            };
            if keys.last() != Some(&key) {
                keys.push(key);
            }
        }
        if keys.is_empty() {
            return Response::new(404, Vec::new());
        }
        Response::json(200, &json!(keys))
    }

    /// `PUT /v1/txn` with `KV` `set` / `cas` operations: checked first, then applied
    /// together.
    fn txn(&mut self, r: &Request) -> Response {
        let ops: Vec<Value> = match serde_json::from_slice(&r.body) {
            Ok(Value::Array(ops)) => ops,
            _ => return text(400, "Failed to parse body"),
        };
        let mut errors = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            let kv = &op["KV"];
            let key = kv["Key"].as_str().unwrap_or("");
            match kv["Verb"].as_str().unwrap_or("") {
                "set" => {}
                "cas" => {
                    let want = kv["Index"].as_u64().unwrap_or(0);
                    let now = self.kv.get(key).map_or(0, |p| p.modify_index);
                    if now != want {
                        errors.push(json!({"OpIndex": i, "What": format!("failed to set key {key:?}, index is stale")}));
                    }
                }
                other => errors
                    .push(json!({"OpIndex": i, "What": format!("unsupported verb {other:?}")})),
            }
        }
        if !errors.is_empty() {
            return Response::json(409, &json!({"Results": null, "Errors": errors}));
        }
        let mut results = Vec::new();
        for op in &ops {
            let kv = &op["KV"];
            let key = kv["Key"].as_str().unwrap_or("").to_string();
            let value = kv["Value"]
                .as_str()
                .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v).ok())
                .unwrap_or_default();
            let p = self.write(key.clone());
            p.value = value;
            let mut pair = Self::pair_json(&key, p);
            pair["Value"] = Value::Null;
            results.push(json!({ "KV": pair }));
        }
        Response::json(200, &json!({"Results": results, "Errors": null}))
    }

    pub fn handle(&mut self, r: &Request, write_allowed: bool) -> Response {
        if r.param("dc").is_some_and(|dc| dc != "dc1") {
            return text(500, "No path to datacenter");
        }
        if r.method != "GET" && !write_allowed {
            return text(
                403,
                "Permission denied: token with AccessorID 'fake-read' lacks permission 'key:write'",
            );
        }
        if let Some(key) = r.path.strip_prefix("/v1/kv/") {
            if r.method == "GET" && r.has_param("keys") {
                return self.keys(key, r.param("separator"));
            }
            return self.kv(r, key);
        }
        if r.path == "/v1/txn" && r.method == "PUT" {
            return self.txn(r);
        }
        let parts: Vec<&str> = r.path.trim_matches('/').split('/').collect();
        match parts.as_slice() {
            ["v1", "session", op] => self.session(r, op, None),
            ["v1", "session", op, id] => self.session(r, op, Some(id)),
            _ => text(404, "404 page not found"),
        }
    }
}

impl Fake {
    pub async fn start() -> Fake {
        let token = format!("fake-token-{}", std::process::id());
        let read_token = format!("fake-read-{}", std::process::id());
        let state = Arc::new(Mutex::new(State::default()));
        let (s, t, rt) = (state.clone(), token.clone(), read_token.clone());
        let server = Server::start(move |r: Request| {
            let (s, t, rt) = (s.clone(), t.clone(), rt.clone());
            async move {
                let given = r.header("x-consul-token").unwrap_or("");
                let write = if given == t {
                    true
                } else if given == rt {
                    false
                } else {
                    return text(403, "ACL not found");
                };
                // A blocking query waits (unlocked) while what it would answer is unchanged.
                let blocking = r.param("index").and_then(|i| i.parse::<u64>().ok());
                let wait = r
                    .param("wait")
                    .and_then(|w| tflock_core::duration::parse(w).ok())
                    .unwrap_or(BLOCK_MAX)
                    .min(BLOCK_MAX);
                let until = Instant::now() + wait;
                loop {
                    let answer = {
                        let mut st = s.lock().unwrap();
                        st.expire();
                        let unchanged = r.method == "GET"
                            && blocking.is_some_and(|want| st.index_for(&r) <= want);
                        if unchanged && Instant::now() < until {
                            None
                        } else {
                            st.log.push(format!("{} {}", r.method, r.path));
                            let response = st.handle(&r, write);
                            Some(
                                response
                                    .with_header(
                                        "X-Consul-Index",
                                        &st.index_for(&r).max(1).to_string(),
                                    )
                                    .with_header("X-Consul-KnownLeader", "true")
                                    .with_header("X-Consul-LastContact", "0"),
                            )
                        }
                    };
                    match answer {
                        Some(response) => return response,
                        None => tokio::time::sleep(Duration::from_millis(50)).await,
                    }
                }
            }
        })
        .await;
        Fake {
            url: server.url.clone(),
            token,
            read_token,
            state,
            _server: server,
        }
    }

    /// Lets every lock-delay run out, as if those seconds had passed.
    pub fn after_lock_delay(&self) {
        self.state.lock().unwrap().delays.clear();
    }

    /// `http://127.0.0.1:PORT` -> `127.0.0.1:PORT`
    pub fn addr(url: &str) -> String {
        url.trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string()
    }
}
