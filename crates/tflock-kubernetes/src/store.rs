//! Listing the `lock-tfstate-*` Leases of a namespace and breaking one the way Terraform's
//! own unlock does: PUT the Lease as read, with `spec.holderIdentity` and the
//! `app.terraform.io/lock-info` annotation removed, conditioned on its `resourceVersion`
//! (and `uid`). The Lease is never deleted and the state Secrets are never read or written.

use crate::client::Conn;
use crate::error::{describe, status_error};
use crate::naming::{self, LABEL_SUFFIX, LABEL_WORKSPACE, LEASE_PREFIX, LOCK_INFO_ANNOTATION};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use reqwest::Method;
use serde_json::Value;
use tflock_core::error::may_have_applied;
use tflock_core::{Backend, BreakOptions, Broken, Error, Handle, Lock, LockStore, Presence};

/// The backend name of kubernetes locks.
pub const KUBERNETES: Backend = Backend::new("kubernetes");

const PAGE: u32 = 500;

/// What a break compares on: the Lease exactly as listed.
struct LeaseHandle {
    name: String,
    uid: String,
    resource_version: String,
    holder: String,
    /// The object as read, written back minus the holder and the annotation.
    object: Value,
}

/// The lock Leases of one namespace, optionally of one `secret_suffix`.
pub struct KubeStore {
    pub(crate) conn: Conn,
    pub(crate) namespace: String,
    pub(crate) suffix: Option<String>,
}

fn text<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn label<'a>(lease: &'a Value, key: &str) -> Option<&'a str> {
    lease
        .pointer("/metadata/labels")
        .and_then(|l| l.get(key))
        .and_then(Value::as_str)
}

/// The latest `managedFields[].time`: when the Lease was last written (the lock, for a
/// Lease Terraform locked; its `creationTimestamp` is the first lock ever).
fn last_write(lease: &Value) -> Option<DateTime<Utc>> {
    lease
        .pointer("/metadata/managedFields")?
        .as_array()?
        .iter()
        .filter_map(|f| f.get("time")?.as_str())
        .filter_map(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
        .max()
}

/// The Lease as Terraform's Unlock writes it: holder and lock-info annotation removed,
/// every other field (labels, other annotations, uid, resourceVersion) as read.
pub fn unlocked(lease: &Value) -> Value {
    let mut body = lease.clone();
    if let Some(spec) = body.get_mut("spec").and_then(Value::as_object_mut) {
        spec.remove("holderIdentity");
    }
    if let Some(ann) = body
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        ann.remove(LOCK_INFO_ANNOTATION);
    }
    // Items of a list carry no kind/apiVersion; a PUT names them.
    if let Some(obj) = body.as_object_mut() {
        obj.insert("kind".into(), Value::from("Lease"));
        obj.insert("apiVersion".into(), Value::from("coordination.k8s.io/v1"));
    }
    body
}

impl KubeStore {
    fn leases_path(&self) -> String {
        format!(
            "/apis/coordination.k8s.io/v1/namespaces/{}/leases",
            self.namespace
        )
    }

    fn lease_path(&self, name: &str) -> String {
        format!("{}/{name}", self.leases_path())
    }

    /// `k8s://CONTEXT/NAMESPACE`, the place every display name starts with.
    fn base(&self) -> String {
        format!("k8s://{}/{}", self.conn.resolved.context, self.namespace)
    }

    fn location(&self, name: &str) -> String {
        format!("{}/leases/{name}", self.base())
    }

    /// Every Lease the selector matches, all pages.
    async fn list_leases(&self) -> Result<Vec<Value>, Error> {
        let selector = naming::selector(self.suffix.as_deref());
        let what = format!("listing leases in namespace {}", self.namespace);
        let mut items = Vec::new();
        let mut cont: Option<String> = None;
        loop {
            let query = {
                let mut q = url::form_urlencoded::Serializer::new(String::new());
                q.append_pair("labelSelector", &selector);
                q.append_pair("limit", &PAGE.to_string());
                if let Some(c) = &cont {
                    q.append_pair("continue", c);
                }
                q.finish()
            };
            let path = format!("{}?{query}", self.leases_path());
            let reply = self
                .conn
                .send(Method::GET, &path, None, false, &what)
                .await?;
            if !reply.ok() {
                return Err(status_error(&self.conn, &what, &reply, &self.namespace));
            }
            let page: Value = serde_json::from_slice(&reply.body).map_err(|_| {
                Error::backend(
                    &self.conn.target,
                    format!(
                        "{what}: the answer of {} is not a LeaseList",
                        self.conn.server()
                    ),
                )
            })?;
            if let Some(list) = page.get("items").and_then(Value::as_array) {
                items.extend(list.iter().cloned());
            }
            match text(&page, "/metadata/continue") {
                Some(c) if Some(c) != cont.as_deref() => cont = Some(c.to_string()),
                _ => break,
            }
        }
        Ok(items)
    }

    /// Listing leases in a namespace that does not exist answers an empty list: look the
    /// namespace up, so a typo is not reported as "no locks". Without the right to get
    /// namespaces nothing can be told, and the empty list stands.
    async fn check_namespace(&self) -> Result<(), Error> {
        let what = format!("reading namespace {}", self.namespace);
        let path = format!("/api/v1/namespaces/{}", self.namespace);
        let reply = self
            .conn
            .send(Method::GET, &path, None, false, &what)
            .await?;
        if reply.status == 404 {
            return Err(Error::backend(
                &self.conn.target,
                format!(
                    "namespace {} does not exist on {} ({})",
                    self.namespace,
                    self.conn.server(),
                    describe(&reply)
                ),
            )
            .with_hint("check the namespace (the backend's namespace, default \"default\") and the context"));
        }
        Ok(())
    }

    fn lock_of(&self, lease: &Value, name: &str, holder: &str) -> Lock {
        let ws_label = label(lease, LABEL_WORKSPACE);
        let suffix_label = label(lease, LABEL_SUFFIX);
        let split = naming::split_lease(name, ws_label, suffix_label);
        let handle = Handle::new(
            &self.conn.target,
            LeaseHandle {
                name: name.to_string(),
                uid: text(lease, "/metadata/uid").unwrap_or_default().to_string(),
                resource_version: text(lease, "/metadata/resourceVersion")
                    .unwrap_or_default()
                    .to_string(),
                holder: holder.to_string(),
                object: lease.clone(),
            },
        );
        let location = self.location(name);
        let mut lock = Lock::new(KUBERNETES, &self.conn.target, &location, handle);
        lock.id = holder.to_string();
        // Terraform leaves LockInfo.Path empty here: the state is the Secret.
        lock.path = match &split {
            Some((ws, suffix)) => format!(
                "{}/secrets/{}",
                self.base(),
                naming::secret_name(ws, suffix)
            ),
            None => location.clone(),
        };
        lock.workspace = split.as_ref().map(|(ws, _)| ws.clone());
        lock.stored_at = last_write(lease);
        lock.details.insert("lease".into(), name.to_string());
        lock.details
            .insert("namespace".into(), self.namespace.clone());
        lock.details
            .insert("holderIdentity".into(), holder.to_string());
        for (key, pointer) in [
            ("resourceVersion", "/metadata/resourceVersion"),
            ("uid", "/metadata/uid"),
            ("creationTimestamp", "/metadata/creationTimestamp"),
        ] {
            if let Some(v) = text(lease, pointer) {
                lock.details.insert(key.into(), v.to_string());
            }
        }
        if let Some(s) = suffix_label {
            lock.details.insert("secret_suffix".into(), s.to_string());
        }
        if split.is_none() {
            lock.details.insert(
                "labels".into(),
                "tfstateWorkspace/tfstateSecretSuffix missing or not matching the name".into(),
            );
        }
        let annotation = lease
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(LOCK_INFO_ANNOTATION))
            .and_then(Value::as_str);
        match annotation {
            // Terraform writes the holder and the annotation in one request: a holder
            // without it was set by something else.
            None => {
                lock.foreign = true;
                lock.info_error = Some(format!(
                    "the Lease has a holder but no {LOCK_INFO_ANNOTATION} annotation: not a Terraform lock"
                ));
            }
            Some(raw) => {
                let (with_info, other) = lock.with_holder_info(holder, raw);
                lock = with_info;
                if let Some(other) = other {
                    let msg =
                        format!("the lock info names ID {other}, but the Lease holder is {holder}");
                    lock.info_error = Some(msg);
                }
            }
        }
        lock
    }

    /// The Lease now, or `None` when it is gone.
    async fn get(&self, name: &str) -> Result<Option<Value>, Error> {
        let what = format!("reading lease {}/{name}", self.namespace);
        let reply = self
            .conn
            .send(Method::GET, &self.lease_path(name), None, false, &what)
            .await?;
        match reply.status {
            404 => Ok(None),
            s if (200..300).contains(&s) => serde_json::from_slice(&reply.body)
                .map(Some)
                .map_err(|_| Error::backend(&self.conn.target, format!("{what}: not a Lease"))),
            _ => Err(status_error(&self.conn, &what, &reply, &self.namespace)),
        }
    }
}

#[async_trait]
impl LockStore for KubeStore {
    async fn list(&self) -> Result<Vec<Lock>, Error> {
        let leases = self.list_leases().await?;
        if leases.is_empty() {
            self.check_namespace().await?;
        }
        let mut locks = Vec::new();
        for lease in &leases {
            let Some(name) = text(lease, "/metadata/name") else {
                continue;
            };
            // Only Terraform's lock Leases; an unlocked one (no holder) is not a lock.
            if !name.starts_with(LEASE_PREFIX) {
                continue;
            }
            let Some(holder) = text(lease, "/spec/holderIdentity") else {
                continue;
            };
            locks.push(self.lock_of(lease, name, holder));
        }
        locks.sort_by(|a, b| a.location.cmp(&b.location));
        Ok(locks)
    }

    async fn delete_if_unchanged(&self, lock: &Lock, _: &BreakOptions) -> Result<Broken, Error> {
        let h = lock.handle_for::<LeaseHandle>(&self.conn.target)?;
        // Never anything but a lock Lease, and never without the fields that make the
        // write conditional.
        if !h.name.starts_with(LEASE_PREFIX) || h.resource_version.is_empty() || h.uid.is_empty() {
            return Err(Error::refused(
                &self.conn.target,
                format!(
                    "lease {} was listed without a name, uid or resourceVersion to compare on; tflock writes nothing unconditional",
                    h.name
                ),
            ));
        }
        let body = serde_json::to_vec(&unlocked(&h.object)).map_err(|e| {
            Error::backend(&self.conn.target, format!("cannot encode the Lease: {e}"))
        })?;
        let what = format!("releasing lease {}/{}", self.namespace, h.name);
        // Sent once: a lost reply is settled by `recheck`, never by sending it again.
        let reply = self
            .conn
            .send(
                Method::PUT,
                &self.lease_path(&h.name),
                Some(body),
                true,
                &what,
            )
            .await?;
        match reply.status {
            200..=299 => Ok(Broken {
                removed: vec![format!(
                    "holder {} and annotation {LOCK_INFO_ANNOTATION} of {} (the Lease is kept, as Terraform keeps it)",
                    h.holder,
                    self.location(&h.name)
                )],
                ..Broken::default()
            }),
            // 409: resourceVersion or uid no longer as read (re-taken, released, or
            // deleted and made again); 404: gone; 412: a precondition by any other name.
            409 | 404 | 412 => Err(Error::changed(
                &self.conn.target,
                format!(
                    "lease {}/{} is no longer resourceVersion {} held by {} ({})",
                    self.namespace,
                    h.name,
                    h.resource_version,
                    h.holder,
                    describe(&reply)
                ),
            )),
            s => Err(status_error(&self.conn, &what, &reply, &self.namespace)
                .unknown_if(may_have_applied(s))),
        }
    }

    async fn recheck(&self, lock: &Lock) -> Result<Presence, Error> {
        let h = lock.handle_for::<LeaseHandle>(&self.conn.target)?;
        let lease = self.get(&h.name).await?;
        let holder = lease.and_then(|now| text(&now, "/spec/holderIdentity").map(str::to_string));
        Ok(Presence::of(holder, &h.holder))
    }

    fn backend(&self) -> Backend {
        KUBERNETES
    }

    fn target(&self) -> &str {
        &self.conn.target
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unlocked_is_the_lease_minus_holder_and_annotation() {
        let lease = serde_json::json!({
            "metadata": {
                "name": "lock-tfstate-default-s", "uid": "u1", "resourceVersion": "7",
                "labels": {"tfstate": "true"},
                "annotations": {LOCK_INFO_ANNOTATION: "{}", "team": "a"},
                "managedFields": [{"manager": "terraform", "time": "2026-01-01T00:00:00Z"}]
            },
            "spec": {"holderIdentity": "abc", "leaseDurationSeconds": 15}
        });
        let body = unlocked(&lease);
        assert_eq!(
            body["spec"],
            serde_json::json!({"leaseDurationSeconds": 15})
        );
        assert_eq!(
            body["metadata"]["annotations"],
            serde_json::json!({"team": "a"})
        );
        assert_eq!(body["metadata"]["resourceVersion"], "7");
        assert_eq!(body["metadata"]["uid"], "u1");
        assert_eq!(body["kind"], "Lease");
        assert_eq!(body["apiVersion"], "coordination.k8s.io/v1");
        assert_eq!(
            last_write(&lease).map(|t| t.to_rfc3339()),
            Some("2026-01-01T00:00:00+00:00".into())
        );
    }
}
