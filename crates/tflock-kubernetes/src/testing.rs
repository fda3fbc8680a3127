//! A fake Kubernetes API server: the few endpoints Terraform's kubernetes backend and
//! tflock use, with the documented semantics of the real one. Where each rule comes from:
//!
//! - Paths and verbs: Kubernetes API reference, `lease-v1.md` (get, list, create = POST
//!   `.../leases`, update = PUT `.../leases/{name}`) and `secret-v1.md`, `namespace-v1.md`.
//! - List: `labelSelector` (equality `k=v`, `k==v`, `k!=v`, and `k` for existence;
//!   `labels.Parse`), `limit` + `continue` (api-concepts.md "Retrieving large results
//!   sets in chunks": the server may return fewer than `limit`, and sets
//!   `metadata.continue` while more remain); items of a typed list carry no
//!   kind/apiVersion. Listing a namespace that does not exist answers an empty list.
//! - Optimistic concurrency (api-conventions.md "Concurrency Control and Consistency";
//!   apiserver `registry/generic/registry/store.go` `Store.Update`): every write bumps
//!   `metadata.resourceVersion`; a PUT must carry it (Lease has no unconditional update:
//!   422 otherwise), a different one is 409 `Conflict`; a `metadata.uid` in the body is a
//!   precondition (`rest/update.go`), so a PUT on a deleted or re-created Lease is 409
//!   too. POST of an existing name is 409 `AlreadyExists`.
//! - Failures answer a `Status` object (api-conventions.md "Response Status Kind";
//!   `apimachinery/pkg/api/errors`): `{"kind":"Status","apiVersion":"v1","status":
//!   "Failure","message","reason","details","code"}`.
//! - Authentication: a bearer token, 401 `Unauthorized` without it; namespaces can be
//!   made forbidden (403 `Forbidden`, RBAC's message).

use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use tflock_core::testkit::http::{Request, Response, Server};

#[derive(Default)]
pub struct State {
    pub namespaces: BTreeSet<String>,
    /// (resource, namespace, name) -> object (with kind/apiVersion).
    pub objects: BTreeMap<(String, String, String), Value>,
    pub revision: u64,
    pub uids: u64,
    /// Namespaces where every lease request is 403.
    pub forbidden: BTreeSet<String>,
    /// The most items one list page returns (the server may return fewer than `limit`).
    pub page_cap: usize,
    /// Every request: `METHOD path?query`.
    pub log: Vec<String>,
    /// The body of every PUT, in order.
    pub puts: Vec<Value>,
}

pub struct Fake {
    pub url: String,
    pub token: String,
    pub state: Arc<Mutex<State>>,
    _server: Server,
}

fn status(code: u16, reason: &str, message: &str, name: &str, kind: &str) -> Response {
    Response::json(
        code,
        &json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason,
            "details": {"name": name, "group": group_of(kind), "kind": kind},
            "code": code,
        }),
    )
}

fn group_of(resource: &str) -> &'static str {
    if resource == "leases" {
        "coordination.k8s.io"
    } else {
        ""
    }
}

fn qualified(resource: &str) -> String {
    match group_of(resource) {
        "" => resource.to_string(),
        g => format!("{resource}.{g}"),
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// `labels.Parse` for the forms clients send: `a=b,c!=d,e`.
fn selects(selector: &str, labels: &Value) -> bool {
    selector.split(',').filter(|t| !t.is_empty()).all(|term| {
        let get = |k: &str| labels.get(k.trim()).and_then(Value::as_str);
        if let Some((k, v)) = term.split_once("!=") {
            get(k) != Some(v.trim())
        } else if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
            get(k) == Some(v.trim())
        } else {
            get(term).is_some()
        }
    })
}

impl State {
    fn bump(&mut self) -> String {
        self.revision += 1;
        self.revision.to_string()
    }

    fn stamp(&mut self, obj: &mut Value, resource: &str, ns: &str, name: &str, created: bool) {
        let rv = self.bump();
        let meta = &mut obj["metadata"];
        meta["name"] = json!(name);
        meta["namespace"] = json!(ns);
        meta["resourceVersion"] = json!(rv);
        if created {
            self.uids += 1;
            meta["uid"] = json!(format!("00000000-0000-4000-8000-{:012x}", self.uids));
            meta["creationTimestamp"] = json!(now());
        }
        meta["managedFields"] = json!([{
            "manager": "fake-client", "operation": if created { "Create" } else { "Update" },
            "apiVersion": if resource == "leases" { "coordination.k8s.io/v1" } else { "v1" },
            "time": now(),
        }]);
        obj["kind"] = json!(if resource == "leases" {
            "Lease"
        } else {
            "Secret"
        });
        obj["apiVersion"] = json!(if resource == "leases" {
            "coordination.k8s.io/v1"
        } else {
            "v1"
        });
    }

    fn list(&self, resource: &str, ns: &str, r: &Request) -> Response {
        let selector = r.param("labelSelector").unwrap_or("");
        let limit = r
            .param("limit")
            .and_then(|l| l.parse::<usize>().ok())
            .filter(|l| *l > 0)
            .unwrap_or(usize::MAX)
            .min(if self.page_cap == 0 {
                usize::MAX
            } else {
                self.page_cap
            });
        let after = r.param("continue").unwrap_or("");
        let mut matching: Vec<&Value> = self
            .objects
            .iter()
            .filter(|((res, n, name), _)| res == resource && n == ns && name.as_str() > after)
            .map(|(_, v)| v)
            .filter(|v| selects(selector, &v["metadata"]["labels"]))
            .collect();
        let more = matching.len() > limit;
        matching.truncate(limit);
        let items: Vec<Value> = matching
            .iter()
            .map(|v| {
                let mut item = (*v).clone();
                if let Some(o) = item.as_object_mut() {
                    o.remove("kind");
                    o.remove("apiVersion");
                }
                item
            })
            .collect();
        let mut meta = json!({ "resourceVersion": self.revision.to_string() });
        if more {
            // An opaque token to the client; here the last name returned.
            let last = matching
                .last()
                .and_then(|v| v["metadata"]["name"].as_str())
                .unwrap_or("");
            meta["continue"] = json!(last);
        }
        let kind = if resource == "leases" {
            "LeaseList"
        } else {
            "SecretList"
        };
        let api = if resource == "leases" {
            "coordination.k8s.io/v1"
        } else {
            "v1"
        };
        Response::json(
            200,
            &json!({ "kind": kind, "apiVersion": api, "metadata": meta, "items": items }),
        )
    }

    fn create(&mut self, resource: &str, ns: &str, body: &[u8]) -> Response {
        let Ok(mut obj) = serde_json::from_slice::<Value>(body) else {
            return status(400, "BadRequest", "the body is not JSON", "", resource);
        };
        let Some(name) = obj["metadata"]["name"].as_str().map(str::to_string) else {
            return status(
                422,
                "Invalid",
                "metadata.name: Required value",
                "",
                resource,
            );
        };
        let key = (resource.to_string(), ns.to_string(), name.clone());
        if self.objects.contains_key(&key) {
            return status(
                409,
                "AlreadyExists",
                &format!("{} \"{name}\" already exists", qualified(resource)),
                &name,
                resource,
            );
        }
        if !self.namespaces.contains(ns) {
            return status(
                404,
                "NotFound",
                &format!("namespaces \"{ns}\" not found"),
                ns,
                "namespaces",
            );
        }
        self.stamp(&mut obj, resource, ns, &name, true);
        self.objects.insert(key, obj.clone());
        Response::json(201, &obj)
    }

    fn update(&mut self, resource: &str, ns: &str, name: &str, body: &[u8]) -> Response {
        let Ok(mut obj) = serde_json::from_slice::<Value>(body) else {
            return status(400, "BadRequest", "the body is not JSON", name, resource);
        };
        self.puts.push(obj.clone());
        if obj["metadata"]["name"].as_str() != Some(name) {
            return status(
                400,
                "BadRequest",
                "the name of the object does not match the name on the URL",
                name,
                resource,
            );
        }
        let Some(rv) = obj["metadata"]["resourceVersion"]
            .as_str()
            .map(str::to_string)
        else {
            return status(
                422,
                "Invalid",
                &format!(
                    "{} \"{name}\" is invalid: metadata.resourceVersion: Invalid value: 0x0: must be specified for an update",
                    qualified(resource)
                ),
                name,
                resource,
            );
        };
        let uid = obj["metadata"]["uid"].as_str().map(str::to_string);
        let key = (resource.to_string(), ns.to_string(), name.to_string());
        let conflict = |detail: String| {
            status(
                409,
                "Conflict",
                &format!(
                    "Operation cannot be fulfilled on {} \"{name}\": {detail}",
                    qualified(resource)
                ),
                name,
                resource,
            )
        };
        let Some(existing) = self.objects.get(&key) else {
            return match uid {
                Some(u) => conflict(format!(
                    "Precondition failed: UID in precondition: {u}, UID in object meta: "
                )),
                // Lease allows create on update, but not with a resourceVersion to match.
                None => conflict("the object has been modified; please apply your changes to the latest version and try again".into()),
            };
        };
        let existing_uid = existing["metadata"]["uid"]
            .as_str()
            .unwrap_or("")
            .to_string();
        if let Some(u) = &uid {
            if *u != existing_uid {
                return conflict(format!(
                    "Precondition failed: UID in precondition: {u}, UID in object meta: {existing_uid}"
                ));
            }
        }
        if existing["metadata"]["resourceVersion"].as_str() != Some(rv.as_str()) {
            return conflict("the object has been modified; please apply your changes to the latest version and try again".into());
        }
        let created = existing["metadata"]["creationTimestamp"].clone();
        obj["metadata"]["uid"] = json!(existing_uid);
        self.stamp(&mut obj, resource, ns, name, false);
        obj["metadata"]["creationTimestamp"] = created;
        self.objects.insert(key, obj.clone());
        Response::json(200, &obj)
    }

    pub fn handle(&mut self, r: &Request) -> Response {
        let parts: Vec<&str> = r.path.trim_matches('/').split('/').collect();
        // (resource, namespace, name)
        let route = match parts.as_slice() {
            ["api", "v1", "namespaces"] => Some(("namespaces", "", None)),
            ["api", "v1", "namespaces", ns] => Some(("namespaces", *ns, None)),
            ["api", "v1", "namespaces", ns, "secrets"] => Some(("secrets", *ns, None)),
            ["api", "v1", "namespaces", ns, "secrets", name] => Some(("secrets", *ns, Some(*name))),
            ["apis", "coordination.k8s.io", "v1", "namespaces", ns, "leases"] => {
                Some(("leases", *ns, None))
            }
            ["apis", "coordination.k8s.io", "v1", "namespaces", ns, "leases", name] => {
                Some(("leases", *ns, Some(*name)))
            }
            _ => None,
        };
        let Some((resource, ns, name)) = route else {
            return status(
                404,
                "NotFound",
                "the server could not find the requested resource",
                "",
                "",
            );
        };
        if resource == "leases" && self.forbidden.contains(ns) {
            let verb = match (r.method.as_str(), name) {
                ("GET", None) => "list",
                ("GET", Some(_)) => "get",
                ("PUT", _) => "update",
                ("POST", _) => "create",
                _ => "delete",
            };
            return status(
                403,
                "Forbidden",
                &format!("leases.coordination.k8s.io is forbidden: User \"system:serviceaccount:ci:tflock\" cannot {verb} resource \"leases\" in API group \"coordination.k8s.io\" in the namespace \"{ns}\""),
                name.unwrap_or(""),
                "leases",
            );
        }
        match (resource, r.method.as_str(), name) {
            ("namespaces", "POST", _) => {
                let body: Value = serde_json::from_slice(&r.body).unwrap_or_default();
                let n = body["metadata"]["name"].as_str().unwrap_or("").to_string();
                self.namespaces.insert(n.clone());
                Response::json(
                    201,
                    &json!({"kind": "Namespace", "apiVersion": "v1", "metadata": {"name": n}}),
                )
            }
            ("namespaces", "GET", _) => {
                if self.namespaces.contains(ns) {
                    Response::json(
                        200,
                        &json!({"kind": "Namespace", "apiVersion": "v1", "metadata": {"name": ns}, "status": {"phase": "Active"}}),
                    )
                } else {
                    status(
                        404,
                        "NotFound",
                        &format!("namespaces \"{ns}\" not found"),
                        ns,
                        "namespaces",
                    )
                }
            }
            (_, "GET", None) => self.list(resource, ns, r),
            (_, "GET", Some(n)) => {
                match self
                    .objects
                    .get(&(resource.to_string(), ns.to_string(), n.to_string()))
                {
                    Some(obj) => Response::json(200, obj),
                    None => status(
                        404,
                        "NotFound",
                        &format!("{} \"{n}\" not found", qualified(resource)),
                        n,
                        resource,
                    ),
                }
            }
            (_, "POST", None) => self.create(resource, ns, &r.body),
            (_, "PUT", Some(n)) => self.update(resource, ns, n, &r.body),
            (_, "DELETE", Some(n)) => {
                match self
                    .objects
                    .remove(&(resource.to_string(), ns.to_string(), n.to_string()))
                {
                    Some(_) => Response::json(
                        200,
                        &json!({"kind": "Status", "apiVersion": "v1", "status": "Success"}),
                    ),
                    None => status(
                        404,
                        "NotFound",
                        &format!("{} \"{n}\" not found", qualified(resource)),
                        n,
                        resource,
                    ),
                }
            }
            _ => status(
                405,
                "MethodNotAllowed",
                "the server does not allow this method on the requested resource",
                "",
                resource,
            ),
        }
    }
}

impl Fake {
    pub async fn start() -> Fake {
        let token = format!("fake-token-{}", std::process::id());
        let state = Arc::new(Mutex::new(State::default()));
        let (s, t) = (state.clone(), token.clone());
        let server = Server::start(move |r: Request| {
            let (s, t) = (s.clone(), t.clone());
            async move {
                let mut st = s.lock().unwrap();
                st.log.push(format!(
                    "{} {}{}",
                    r.method,
                    r.raw_path,
                    if r.query.is_empty() { "" } else { "?…" }
                ));
                if r.header("authorization") != Some(&format!("Bearer {t}")) {
                    return status(401, "Unauthorized", "Unauthorized", "", "");
                }
                st.handle(&r)
            }
        })
        .await;
        Fake {
            url: server.url.clone(),
            token,
            state,
            _server: server,
        }
    }
}
