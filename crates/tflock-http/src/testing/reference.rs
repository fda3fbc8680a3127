//! Terraform's own test server for the http backend
//! (`internal/backend/remote-state/http/server_test.go`, v1.11.4), for the parts tflock
//! touches: `LOCK` stores the body as the lock or answers 423 with the stored one;
//! `UNLOCK` needs a JSON body and removes the lock when its `ID` matches (409 with the
//! stored lock otherwise, 409 when there is none). `compare_ids: false` stands for
//! servers that unlock whatever ID they are sent.

use super::server::{Handler, Request, Response, Server};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub struct ReferenceServer {
    server: Server,
    locks: Arc<Mutex<Store>>,
}

#[derive(Default)]
struct Store {
    data: HashMap<String, Vec<u8>>,
    locks: HashMap<String, String>,
}

impl ReferenceServer {
    pub fn start(compare_ids: bool) -> ReferenceServer {
        let locks: Arc<Mutex<Store>> = Arc::default();
        let l = locks.clone();
        let handler: Arc<Handler> = Arc::new(move |req: &Request| {
            let mut locks = l.lock().unwrap_or_else(|p| p.into_inner());
            handle(&mut locks, req, compare_ids)
        });
        ReferenceServer {
            server: Server::start(handler),
            locks,
        }
    }

    /// `http://127.0.0.1:PORT`; states live under `/state/<name>`.
    pub fn url(&self) -> &str {
        &self.server.url
    }

    /// The stored lock of `resource` (the body of the LOCK that took it).
    pub fn lock(&self, resource: &str) -> Option<String> {
        self.locks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .locks
            .get(resource)
            .cloned()
    }

    pub fn requests(&self) -> Vec<Request> {
        self.server.requests()
    }
}

fn id_of(json: &str) -> Option<String> {
    serde_json::from_str::<Value>(json)
        .ok()?
        .get("ID")?
        .as_str()
        .map(str::to_string)
}

fn handle(store: &mut Store, req: &Request, compare_ids: bool) -> Response {
    let Store { data, locks } = store;
    // getResource: the third part of the path split on "/" at most 3 times.
    let parts: Vec<&str> = req.path.splitn(3, '/').collect();
    let resource = if parts.len() == 3 { parts[2] } else { "" }.to_string();
    let text = |s: &str| Response {
        status: 200,
        content_type: Some("text/plain; charset=utf-8"),
        body: s.as_bytes().to_vec(),
    };
    match req.method.as_str() {
        "LOCK" => match locks.get(&resource) {
            Some(existing) => Response {
                status: 423,
                ..text(existing)
            },
            None => {
                locks.insert(resource, String::from_utf8_lossy(&req.body).into_owned());
                text("")
            }
        },
        "UNLOCK" => {
            if serde_json::from_slice::<Value>(&req.body).is_err() {
                return Response::empty(500);
            }
            let given = serde_json::from_slice::<Value>(&req.body)
                .ok()
                .and_then(|v| v.get("ID").and_then(Value::as_str).map(str::to_string));
            match locks.get(&resource).cloned() {
                Some(existing) => {
                    if compare_ids && given != id_of(&existing) {
                        Response {
                            status: 409,
                            ..text(&existing)
                        }
                    } else {
                        locks.remove(&resource);
                        text(&existing)
                    }
                }
                None => Response::empty(409),
            }
        }
        "GET" => match data.get(&resource) {
            Some(d) => Response {
                status: 200,
                content_type: None,
                body: d.clone(),
            },
            None => Response::empty(404),
        },
        "POST" => {
            data.insert(resource, req.body.clone());
            Response::empty(200)
        }
        "DELETE" => {
            data.remove(&resource);
            Response::empty(200)
        }
        // No `default:` in its switch: Go answers 200 with nothing.
        _ => Response::empty(200),
    }
}
