//! A GitLab for tests: users, tokens, projects with members, Terraform states with
//! versions and locks, the REST state API and GraphQL's `project.terraformStates`.
//! Every rule below cites what it follows in GitLab (`state.rb` = lib/api/terraform/
//! state.rb, `handler` = app/services/terraform/remote_state_handler.rb).

use super::graphql::{self, Field, Operation};
use super::server::{Handler, Request, Response, Server};
use base64::Engine;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value as Json};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

/// A member's role (`Gitlab::Access`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    Guest = 10,
    Reporter = 20,
    Developer = 30,
    Maintainer = 40,
    Owner = 50,
}

/// A state's lock, read directly (not through the API).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeLock {
    pub id: String,
    /// `None` once the user who locked it was deleted (the foreign key nullifies).
    pub username: Option<String>,
    pub locked_at: DateTime<Utc>,
}

struct User {
    id: u64,
    username: String,
    admin: bool,
}

struct Token {
    value: String,
    user: u64,
    scopes: Vec<String>,
}

struct Version {
    serial: Option<i64>,
    data: Vec<u8>,
    created_at: DateTime<Utc>,
}

struct State {
    id: u64,
    versions: Vec<Version>,
    lock_xid: Option<String>,
    locked_by: Option<u64>,
    locked_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl State {
    /// `Terraform::State#locked?`: `lock_xid.present?`.
    fn locked(&self) -> bool {
        self.lock_xid
            .as_deref()
            .is_some_and(|x| !x.trim().is_empty())
    }
}

struct Project {
    id: u64,
    full_path: String,
    members: HashMap<u64, Access>,
    states: BTreeMap<String, State>,
}

struct World {
    users: Vec<User>,
    tokens: Vec<Token>,
    projects: Vec<Project>,
    next_id: u64,
    /// GraphQL's `max_page_size` (GitLab: 100).
    max_page_size: usize,
}

impl World {
    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }
    fn user(&self, id: u64) -> Option<&User> {
        self.users.iter().find(|u| u.id == id)
    }
    fn user_id(&self, username: &str) -> Option<u64> {
        self.users
            .iter()
            .find(|u| u.username == username)
            .map(|u| u.id)
    }
    fn project_index(&self, id_or_path: &str) -> Option<usize> {
        self.projects.iter().position(|p| {
            p.full_path.eq_ignore_ascii_case(id_or_path) || p.id.to_string() == id_or_path
        })
    }
    fn access(&self, user: &User, project: &Project) -> Option<Access> {
        if user.admin {
            return Some(Access::Owner);
        }
        project.members.get(&user.id).copied()
    }
}

/// A running fake GitLab; stops when dropped.
pub struct GitLabFake {
    server: Server,
    world: Arc<Mutex<World>>,
}

fn json_error(status: u16, key: &str, message: &str) -> Response {
    Response::json(status, json!({ key: message }).to_string())
}

/// ActiveSupport's JSON time (`Time#as_json`): ISO 8601, milliseconds, `Z`.
fn rest_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// `Types::TimeType`: `Time#iso8601`, whole seconds, `Z` for UTC.
fn graphql_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn now() -> DateTime<Utc> {
    // Stored as PostgreSQL does: microseconds.
    let t = Utc::now();
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}

/// A path segment decoded as Rails does (`+` stays a plus); `None` when malformed.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            out.push(u8::from_str_radix(s.get(i + 1..i + 3)?, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

impl Default for GitLabFake {
    fn default() -> Self {
        Self::start()
    }
}

impl GitLabFake {
    /// An empty GitLab on a free loopback port.
    pub fn start() -> GitLabFake {
        let world = Arc::new(Mutex::new(World {
            users: Vec::new(),
            tokens: Vec::new(),
            projects: Vec::new(),
            next_id: 0,
            max_page_size: 100,
        }));
        let w = world.clone();
        let handler: Arc<Handler> = Arc::new(move |req: &Request| {
            let mut world = w.lock().unwrap_or_else(|p| p.into_inner());
            route(&mut world, req)
        });
        GitLabFake {
            server: Server::start(handler),
            world,
        }
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> &str {
        &self.server.url
    }

    fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A user; `admin` sees every project.
    pub fn add_user(&self, username: &str, admin: bool) {
        let mut w = self.world();
        let id = w.id();
        w.users.push(User {
            id,
            username: username.to_string(),
            admin,
        });
    }

    /// A personal access token of `username` with `scopes` (`api`, `read_api`).
    pub fn add_token(&self, username: &str, token: &str, scopes: &[&str]) {
        let mut w = self.world();
        let user = w.user_id(username).expect("add_user first");
        w.tokens.push(Token {
            value: token.to_string(),
            user,
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
        });
    }

    /// A private project; returns its numeric ID.
    pub fn add_project(&self, full_path: &str) -> u64 {
        let mut w = self.world();
        let id = w.id();
        w.projects.push(Project {
            id,
            full_path: full_path.to_string(),
            members: HashMap::new(),
            states: BTreeMap::new(),
        });
        id
    }

    pub fn add_member(&self, project: &str, username: &str, access: Access) {
        let mut w = self.world();
        let user = w.user_id(username).expect("add_user first");
        let p = w.project_index(project).expect("add_project first");
        w.projects[p].members.insert(user, access);
    }

    /// Deletes a user as GitLab does for its states: `locked_by_user_id` is set to NULL
    /// (foreign key `ON DELETE SET NULL`), the lock itself stays.
    pub fn delete_user(&self, username: &str) {
        let mut w = self.world();
        let Some(id) = w.user_id(username) else {
            return;
        };
        w.users.retain(|u| u.id != id);
        w.tokens.retain(|t| t.user != id);
        for p in &mut w.projects {
            p.members.remove(&id);
            for s in p.states.values_mut() {
                if s.locked_by == Some(id) {
                    s.locked_by = None;
                }
            }
        }
    }

    /// Unlocks a state unconditionally, as GitLab's UI "Unlock" does (the
    /// `terraformStateUnlock` mutation).
    pub fn unlock(&self, project: &str, state: &str) {
        let mut w = self.world();
        let Some(p) = w.project_index(project) else {
            return;
        };
        if let Some(s) = w.projects[p].states.get_mut(state) {
            s.lock_xid = None;
            s.locked_by = None;
            s.locked_at = None;
            s.updated_at = now();
        }
    }

    /// GraphQL's largest page, to exercise paging with few states.
    pub fn set_max_page_size(&self, n: usize) {
        self.world().max_page_size = n.max(1);
    }

    /// The lock of a state, read directly.
    pub fn lock(&self, project: &str, state: &str) -> Option<FakeLock> {
        let w = self.world();
        let p = &w.projects[w.project_index(project)?];
        let s = p.states.get(state)?;
        if !s.locked() {
            return None;
        }
        Some(FakeLock {
            id: s.lock_xid.clone().unwrap_or_default(),
            username: s
                .locked_by
                .and_then(|u| w.user(u))
                .map(|u| u.username.clone()),
            locked_at: s.locked_at.unwrap_or_else(now),
        })
    }

    /// The names of a project's states.
    pub fn state_names(&self, project: &str) -> Vec<String> {
        let w = self.world();
        w.project_index(project)
            .map(|p| w.projects[p].states.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Everything about a project's states except their locks (and `updated_at`, which
    /// locking touches): names, versions and their bytes.
    pub fn fingerprint(&self, project: &str) -> String {
        let w = self.world();
        let Some(p) = w.project_index(project) else {
            return String::new();
        };
        let mut out = String::new();
        for (name, s) in &w.projects[p].states {
            out.push_str(&format!("{name} id={} created={}", s.id, s.created_at));
            for v in &s.versions {
                out.push_str(&format!(
                    " [{:?} {} {}]",
                    v.serial,
                    v.created_at,
                    String::from_utf8_lossy(&v.data)
                ));
            }
            out.push('\n');
        }
        out
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Request> {
        self.server.requests()
    }

    pub fn clear_requests(&self) {
        self.server.clear_requests();
    }
}

/// Who a request is, and what its token may do.
struct Caller {
    user: u64,
    scopes: Vec<String>,
}

impl Caller {
    fn may_write(&self) -> bool {
        self.scopes.iter().any(|s| s == "api")
    }
}

enum Auth {
    Anonymous,
    Invalid,
    User(Caller),
}

/// `Gitlab::Auth::AuthFinders`: `PRIVATE-TOKEN`, `Authorization: Bearer`, and (only on
/// routes with `basic_auth_personal_access_token`) Basic with the token as password;
/// the Basic user name is ignored.
fn authenticate(w: &World, req: &Request, basic: bool) -> Auth {
    let token = if let Some(t) = req.header("private-token") {
        Some(t.to_string())
    } else if let Some(a) = req.header("authorization") {
        if let Some(t) = a.strip_prefix("Bearer ") {
            Some(t.trim().to_string())
        } else if let (true, Some(b)) = (basic, a.strip_prefix("Basic ")) {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
                .and_then(|d| String::from_utf8(d).ok());
            match decoded.as_deref().and_then(|d| d.split_once(':')) {
                Some((_, pass)) => Some(pass.to_string()),
                None => return Auth::Invalid,
            }
        } else {
            None
        }
    } else {
        None
    };
    let Some(token) = token else {
        return Auth::Anonymous;
    };
    match w.tokens.iter().find(|t| t.value == token) {
        Some(t) if w.user(t.user).is_some() => Auth::User(Caller {
            user: t.user,
            scopes: t.scopes.clone(),
        }),
        _ => Auth::Invalid,
    }
}

fn route(w: &mut World, req: &Request) -> Response {
    if req.path == "/api/graphql" {
        return match req.method.as_str() {
            "GET" | "POST" => graphql_request(w, req),
            _ => json_error(404, "error", "404 Not Found"),
        };
    }
    let segs: Vec<&str> = req.path.split('/').collect();
    // ["", "api", "v4", "projects", ID, ...]
    if segs.len() < 5 || segs[1..4] != ["api", "v4", "projects"] {
        return json_error(404, "error", "404 Not Found");
    }
    let Some(project) = percent_decode(segs[4]) else {
        return json_error(404, "error", "404 Not Found");
    };
    match &segs[5..] {
        [] => project_api(w, req, &project),
        ["terraform", "state", name] => state_api(w, req, &project, name, false),
        ["terraform", "state", name, "lock"] => state_api(w, req, &project, name, true),
        _ => json_error(404, "error", "404 Not Found"),
    }
}

/// `GET /projects/:id` (no Basic auth on this route).
fn project_api(w: &mut World, req: &Request, project: &str) -> Response {
    if req.method != "GET" {
        return json_error(405, "error", "405 Not Allowed");
    }
    let caller = match authenticate(w, req, false) {
        Auth::User(c) => c,
        _ => return json_error(401, "message", "401 Unauthorized"),
    };
    let user = w.user(caller.user).expect("authenticated user");
    match w.project_index(project) {
        Some(p) if w.access(user, &w.projects[p]).is_some() => {
            let p = &w.projects[p];
            let name = p.full_path.rsplit('/').next().unwrap_or("");
            Response::json(
                200,
                json!({
                    "id": p.id,
                    "name": name,
                    "path": name,
                    "path_with_namespace": p.full_path,
                    "visibility": "private",
                })
                .to_string(),
            )
        }
        _ => json_error(404, "message", "404 Project Not Found"),
    }
}

/// Grape's params: the query string, then a JSON (or form) body over it.
fn params(req: &Request) -> Map<String, Json> {
    let mut out = Map::new();
    for (k, v) in req.query_pairs() {
        out.insert(k, Json::String(v));
    }
    let ct = req.header("content-type").unwrap_or("");
    if ct.contains("json") {
        if let Ok(Json::Object(body)) = serde_json::from_slice::<Json>(&req.body) {
            for (k, v) in body {
                // Grape coerces declared String params; keep scalars as their text.
                let v = match v {
                    Json::String(s) => Json::String(s),
                    Json::Number(n) => Json::String(n.to_string()),
                    Json::Bool(b) => Json::String(b.to_string()),
                    other => other,
                };
                out.insert(k, v);
            }
        }
    } else if ct.contains("x-www-form-urlencoded") {
        for (k, v) in url::form_urlencoded::parse(&req.body) {
            out.insert(k.into_owned(), Json::String(v.into_owned()));
        }
    }
    out
}

fn param<'a>(p: &'a Map<String, Json>, key: &str) -> Option<&'a str> {
    p.get(key).and_then(Json::as_str)
}

/// `state.rb`: every route under `:id/terraform/state/:name`.
fn state_api(w: &mut World, req: &Request, project: &str, raw_name: &str, lock: bool) -> Response {
    // `before { authenticate!; authorize! :read_terraform_state, user_project }`
    let caller = match authenticate(w, req, true) {
        Auth::User(c) => c,
        _ => return json_error(401, "message", "401 Unauthorized"),
    };
    let Some(pi) = w.project_index(project) else {
        return json_error(404, "message", "404 Project Not Found");
    };
    let user = w.user(caller.user).expect("authenticated user");
    let Some(access) = w.access(user, &w.projects[pi]) else {
        return json_error(404, "message", "404 Project Not Found");
    };
    if access < Access::Developer {
        return json_error(403, "message", "403 Forbidden");
    }
    if req.method != "GET" && !caller.may_write() {
        return Response::json(
            403,
            json!({
                "error": "insufficient_scope",
                "error_description": "The request requires higher privileges than provided by the access token.",
                "scope": "api",
            })
            .to_string(),
        );
    }
    let Some(name) = percent_decode(raw_name).filter(|n| !n.is_empty()) else {
        return json_error(404, "error", "404 Not Found");
    };
    let admin = access >= Access::Maintainer;
    let p = params(req);
    if let Some(id) = param(&p, "ID") {
        if id.chars().count() > 255 {
            return json_error(400, "error", "ID must be less than 255 characters");
        }
    }
    let lock_id = param(&p, "ID").map(str::to_string);
    let caller_id = caller.user;
    match (lock, req.method.as_str()) {
        (false, "GET") => {
            // find_with_lock: find_state! (404), no file -> 204
            let Some(s) = w.projects[pi].states.get(&name) else {
                return json_error(404, "message", "404 Not found");
            };
            match s.versions.last() {
                None => Response::empty(204),
                Some(v) => Response {
                    status: 200,
                    content_type: Some("application/octet-stream"),
                    body: v.data.clone(),
                },
            }
        }
        (false, "POST") => {
            if !admin {
                return json_error(403, "message", "403 Forbidden");
            }
            if req.body.is_empty() {
                return Response::empty(204);
            }
            let serial = serde_json::from_slice::<Json>(&req.body)
                .ok()
                .and_then(|v| v.get("serial").and_then(Json::as_i64));
            let state = find_or_create(w, pi, &name);
            // handle_with_lock: raise StateLockedError unless lock_matches? (the status
            // GitLab answers for it is not in state.rb; 409 as the research saw terraform
            // report it)
            if !lock_matches(state, lock_id.as_deref()) {
                return Response::empty(409);
            }
            if serial.is_some() && state.versions.iter().any(|v| v.serial == serial) {
                return json_error(
                    422,
                    "message",
                    "Validation failed: Version has already been taken",
                );
            }
            let t = now();
            state.versions.push(Version {
                serial,
                data: req.body.clone(),
                created_at: t,
            });
            state.updated_at = t;
            Response::json(200, "")
        }
        (false, "DELETE") => {
            if !admin {
                return json_error(403, "message", "403 Forbidden");
            }
            let Some(s) = w.projects[pi].states.get(&name) else {
                return json_error(404, "message", "404 Not found");
            };
            // Terraform::State#ensure_state_is_unlocked
            if s.locked() {
                return json_error(422, "message", "You cannot remove the State file because it's locked. Unlock the State file first before removing it.");
            }
            w.projects[pi].states.remove(&name);
            Response::json(200, "")
        }
        (true, "POST") => {
            if !admin {
                return json_error(403, "message", "403 Forbidden");
            }
            // `requires` for all seven LockInfo fields
            let missing: Vec<String> = [
                "ID",
                "Operation",
                "Info",
                "Who",
                "Version",
                "Created",
                "Path",
            ]
            .iter()
            .filter(|k| !p.contains_key(**k))
            .map(|k| format!("{k} is missing"))
            .collect();
            if !missing.is_empty() {
                return json_error(400, "error", &missing.join(", "));
            }
            let requested = lock_id.clone().unwrap_or_default();
            // lock!: ArgumentError if the ID is blank
            if requested.trim().is_empty() {
                return json_error(400, "message", "400 Bad request");
            }
            let state = find_or_create(w, pi, &name);
            let status = if state.locked() {
                409
            } else {
                let t = now();
                state.lock_xid = Some(requested);
                state.locked_by = Some(caller_id);
                state.locked_at = Some(t);
                state.updated_at = t;
                200
            };
            let state = &w.projects[pi].states[&name];
            // `lock_info['Who'] = state.locked_by_user.username`: NoMethodError on nil
            // when the user who locked it is gone.
            let Some(holder) = state.locked_by.and_then(|u| w.user(u)) else {
                return json_error(500, "message", "500 Internal Server Error");
            };
            // The requester's Operation/Info/Version/Path, then the holder's ID/Who/Created
            // (a Ruby hash keeps this order).
            let s = |k: &str| Json::String(param(&p, k).unwrap_or("").to_string()).to_string();
            let body = format!(
                "{{\"Operation\":{},\"Info\":{},\"Version\":{},\"Path\":{},\"ID\":{},\"Who\":{},\"Created\":{}}}",
                s("Operation"),
                s("Info"),
                s("Version"),
                s("Path"),
                Json::String(state.lock_xid.clone().unwrap_or_default()),
                Json::String(holder.username.clone()),
                Json::String(rest_time(state.locked_at.unwrap_or_else(now))),
            );
            Response::json(status, body)
        }
        (true, "DELETE") => {
            if !admin {
                return json_error(403, "message", "403 Forbidden");
            }
            // unlock! goes through create_or_find!: a name GitLab does not know is created.
            let state = find_or_create(w, pi, &name);
            // "force-unlock does not pass ID, so we ignore it if it is missing"
            if lock_id.is_some() && !lock_matches(state, lock_id.as_deref()) {
                return Response::json(409, "409");
            }
            state.lock_xid = None;
            state.locked_by = None;
            state.locked_at = None;
            state.updated_at = now();
            // Grape renders the value of `status :ok`.
            Response::json(200, "200")
        }
        _ => json_error(405, "error", "405 Not Allowed"),
    }
}

/// `Terraform::State.safe_find_or_create_by(project:, name:)`.
fn find_or_create<'a>(w: &'a mut World, pi: usize, name: &str) -> &'a mut State {
    if !w.projects[pi].states.contains_key(name) {
        let id = w.id();
        let t = now();
        w.projects[pi].states.insert(
            name.to_string(),
            State {
                id,
                versions: Vec::new(),
                lock_xid: None,
                locked_by: None,
                locked_at: None,
                created_at: t,
                updated_at: t,
            },
        );
    }
    w.projects[pi]
        .states
        .get_mut(name)
        .expect("state just ensured")
}

/// handler `lock_matches?`: both absent, or `secure_compare(lock_xid.to_s, id.to_s)`.
fn lock_matches(state: &State, id: Option<&str>) -> bool {
    if state.lock_xid.is_none() && id.is_none() {
        return true;
    }
    state.lock_xid.as_deref().unwrap_or("") == id.unwrap_or("")
}

fn graphql_error(status: u16, message: &str) -> Response {
    Response::json(
        status,
        json!({ "errors": [{ "message": message }] }).to_string(),
    )
}

/// `GraphqlController#execute`: query, variables and operationName from the query
/// string (GET) or the JSON body (POST); mutations only over POST.
fn graphql_request(w: &mut World, req: &Request) -> Response {
    let caller = match authenticate(w, req, false) {
        Auth::Invalid => return graphql_error(401, "Invalid token"),
        Auth::Anonymous => None,
        Auth::User(c) => Some(c),
    };
    let (query, variables, operation) = if req.method == "GET" {
        (
            req.query_param("query").unwrap_or_default(),
            req.query_param("variables").map(Json::String),
            req.query_param("operationName"),
        )
    } else {
        let p = params(req);
        (
            param(&p, "query").unwrap_or("").to_string(),
            p.get("variables").cloned(),
            param(&p, "operationName").map(str::to_string),
        )
    };
    if query.chars().count() > 10_000 {
        return graphql_error(422, "Query too large");
    }
    // `Gitlab::Graphql::Variables`: a JSON string or an object.
    let vars: Map<String, Json> = match variables {
        None | Some(Json::Null) => Map::new(),
        Some(Json::String(s)) if s.trim().is_empty() => Map::new(),
        Some(Json::String(s)) => match serde_json::from_str::<Json>(&s) {
            Ok(Json::Object(m)) => m,
            Ok(Json::Null) => Map::new(),
            _ => return graphql_error(422, &format!("Unexpected end of input: {s}")),
        },
        Some(Json::Object(m)) => m,
        Some(_) => return graphql_error(422, "Unexpected variables"),
    };
    let op = match graphql::parse(&query, operation.as_deref()) {
        Ok(op) => op,
        Err(e) => return Response::json(200, json!({ "errors": [{ "message": e }] }).to_string()),
    };
    if op.mutation {
        if req.method == "GET" {
            return graphql_error(422, "Mutations are forbidden in GET requests");
        }
        return Response::json(
            200,
            json!({ "errors": [{ "message": "this fake serves no mutations" }] }).to_string(),
        );
    }
    if let Some(c) = &caller {
        if !c.scopes.iter().any(|s| s == "api" || s == "read_api") {
            return graphql_error(403, "insufficient_scope");
        }
    }
    match execute(w, caller.as_ref().map(|c| c.user), &op, &vars) {
        Ok(data) => Response::json(200, json!({ "data": data }).to_string()),
        Err(e) => Response::json(200, json!({ "errors": [{ "message": e }] }).to_string()),
    }
}

type Exec<T> = Result<T, String>;

fn execute(w: &World, user: Option<u64>, op: &Operation, given: &Map<String, Json>) -> Exec<Json> {
    let mut vars = Map::new();
    for v in &op.vars {
        let value = given
            .get(&v.name)
            .cloned()
            .or_else(|| v.default.as_ref().map(|d| d.resolve(&Map::new())));
        if v.non_null && value.as_ref().is_none_or(Json::is_null) {
            return Err(format!(
                "Variable ${} of type was provided invalid value",
                v.name
            ));
        }
        vars.insert(v.name.clone(), value.unwrap_or(Json::Null));
    }
    let user = user.and_then(|u| w.user(u));
    object("Query", &op.selection, |f| {
        Ok(Some(match f.name.as_str() {
            "__typename" => json!("Query"),
            "currentUser" => match user {
                Some(u) => user_json(u, f)?,
                None => Json::Null,
            },
            "project" => {
                let path = f.arg("fullPath", &vars);
                let path = path.as_str().unwrap_or("");
                let found = w.projects.iter().find(|p| {
                    p.full_path.eq_ignore_ascii_case(path)
                        && user.is_some_and(|u| w.access(u, p).is_some())
                });
                match found {
                    Some(p) => project_json(w, user, p, f, &vars)?,
                    None => Json::Null,
                }
            }
            _ => return Ok(None),
        }))
    })
}

/// An object of GraphQL type `type_name`: each field of `selection` under its key (alias
/// or name), as `field` resolves it; `None` from `field` means the type has no such field,
/// an error worded as graphql-ruby words it.
fn object(
    type_name: &str,
    selection: &[Field],
    mut field: impl FnMut(&Field) -> Exec<Option<Json>>,
) -> Exec<Json> {
    let mut out = Map::new();
    for f in selection {
        let v = field(f)?
            .ok_or_else(|| format!("Field '{}' doesn't exist on type '{type_name}'", f.name))?;
        out.insert(f.key().to_string(), v);
    }
    Ok(Json::Object(out))
}

fn user_json(u: &User, f: &Field) -> Exec<Json> {
    object("UserCore", &f.selection, |s| {
        Ok(Some(match s.name.as_str() {
            "__typename" => json!("UserCore"),
            "id" => json!(format!("gid://gitlab/User/{}", u.id)),
            "username" => json!(u.username),
            "name" => json!(u.username),
            _ => return Ok(None),
        }))
    })
}

fn project_json(
    w: &World,
    user: Option<&User>,
    p: &Project,
    f: &Field,
    vars: &Map<String, Json>,
) -> Exec<Json> {
    // StatesResolver: `Terraform::State.none unless can?(:read_terraform_state)`
    let can_read = user
        .and_then(|u| w.access(u, p))
        .is_some_and(|a| a >= Access::Developer);
    object("Project", &f.selection, |s| {
        Ok(Some(match s.name.as_str() {
            "__typename" => json!("Project"),
            "id" => json!(format!("gid://gitlab/Project/{}", p.id)),
            "fullPath" => json!(p.full_path),
            "name" => json!(p.full_path.rsplit('/').next().unwrap_or("")),
            "terraformStates" => {
                let states: Vec<(&String, &State)> = if can_read {
                    p.states.iter().collect()
                } else {
                    Vec::new()
                };
                connection_json(w, &states, s, vars)?
            }
            "terraformState" => {
                let name = s.arg("name", vars);
                match p.states.get_key_value(name.as_str().unwrap_or("")) {
                    Some((n, st)) if can_read => state_json(w, n, st, s)?,
                    _ => Json::Null,
                }
            }
            _ => return Ok(None),
        }))
    })
}

fn cursor(name: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(json!({ "name": name }).to_string())
}

fn from_cursor(c: &str) -> Exec<String> {
    base64::engine::general_purpose::STANDARD
        .decode(c)
        .ok()
        .and_then(|b| serde_json::from_slice::<Json>(&b).ok())
        .and_then(|v| v["name"].as_str().map(str::to_string))
        .ok_or_else(|| "Please provide a valid cursor".to_string())
}

/// A `CountableConnectionType` over states ordered by name, keyset-paginated.
fn connection_json(
    w: &World,
    states: &[(&String, &State)],
    f: &Field,
    vars: &Map<String, Json>,
) -> Exec<Json> {
    let after = match f.arg("after", vars) {
        Json::String(c) => Some(from_cursor(&c)?),
        _ => None,
    };
    let first = match f.arg("first", vars) {
        Json::Number(n) => {
            let n = n.as_i64().unwrap_or(0);
            if n < 0 {
                return Err(
                    "Argument 'first' on Field 'terraformStates' has an invalid value".into(),
                );
            }
            (n as usize).min(w.max_page_size)
        }
        _ => w.max_page_size,
    };
    let rest: Vec<&(&String, &State)> = states
        .iter()
        .filter(|(n, _)| after.as_ref().is_none_or(|a| n.as_str() > a.as_str()))
        .collect();
    let page: Vec<&(&String, &State)> = rest.iter().take(first).copied().collect();
    let has_next = rest.len() > page.len();
    object("TerraformStateConnection", &f.selection, |s| {
        Ok(Some(match s.name.as_str() {
            "__typename" => json!("TerraformStateConnection"),
            "count" => json!(states.len()),
            "nodes" => Json::Array(
                page.iter()
                    .map(|(n, st)| state_json(w, n, st, s))
                    .collect::<Exec<Vec<_>>>()?,
            ),
            "edges" => Json::Array(
                page.iter()
                    .map(|(n, st)| {
                        object("TerraformStateEdge", &s.selection, |x| {
                            Ok(Some(match x.name.as_str() {
                                "cursor" => json!(cursor(n)),
                                "node" => state_json(w, n, st, x)?,
                                _ => return Ok(None),
                            }))
                        })
                    })
                    .collect::<Exec<Vec<_>>>()?,
            ),
            "pageInfo" => object("PageInfo", &s.selection, |x| {
                Ok(Some(match x.name.as_str() {
                    "hasNextPage" => json!(has_next),
                    "hasPreviousPage" => json!(after.is_some()),
                    "startCursor" => page
                        .first()
                        .map(|(n, _)| json!(cursor(n)))
                        .unwrap_or(Json::Null),
                    "endCursor" => page
                        .last()
                        .map(|(n, _)| json!(cursor(n)))
                        .unwrap_or(Json::Null),
                    _ => return Ok(None),
                }))
            })?,
            _ => return Ok(None),
        }))
    })
}

/// `Types::Terraform::StateType`: no lock ID among its fields.
fn state_json(w: &World, name: &str, st: &State, f: &Field) -> Exec<Json> {
    object("TerraformState", &f.selection, |s| {
        Ok(Some(match s.name.as_str() {
            "__typename" => json!("TerraformState"),
            "id" => json!(format!("gid://gitlab/Terraform::State/{}", st.id)),
            "name" => json!(name),
            "lockedAt" => st
                .locked_at
                .filter(|_| st.locked())
                .map(|t| json!(graphql_time(t)))
                .unwrap_or(Json::Null),
            "lockedByUser" => match st.locked_by.and_then(|u| w.user(u)) {
                Some(u) if st.locked() => user_json(u, s)?,
                _ => Json::Null,
            },
            "createdAt" => json!(graphql_time(st.created_at)),
            "updatedAt" => json!(graphql_time(st.updated_at)),
            "latestVersion" => match st.versions.last() {
                None => Json::Null,
                Some(v) => object("TerraformStateVersion", &s.selection, |x| {
                    Ok(Some(match x.name.as_str() {
                        "serial" => json!(v.serial),
                        "createdAt" => json!(graphql_time(v.created_at)),
                        "updatedAt" => json!(graphql_time(v.created_at)),
                        _ => return Ok(None),
                    }))
                })?,
            },
            _ => return Ok(None),
        }))
    })
}
