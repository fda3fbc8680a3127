//! Terraform's http backend against any server: one state's lock address. Nothing can
//! be listed or read, so the lock is learned by a probe (a 409/423 answer carries the
//! holder's LockInfo, as Terraform's http client reads it), and broken by the holder's own
//! unlock request, sent right after a second probe saw the same holder.
//!
//! Whether the server compares the ID on unlock is up to the server (Terraform's own
//! test server and GitLab do): the second probe narrows the window for one that does
//! not to the time between two requests.

use crate::auth::{process_env, Credentials, SECRET_HINT, SECRET_OPTIONS};
use crate::client::{method, Auth, Client, Tls, WriteError};
use crate::error::Service;
use crate::naming::{address_of, http_options, refuse_userinfo, split_userinfo};
use crate::probe::{answered_id, presence, probe, Endpoint, Probed};
use async_trait::async_trait;
use tflock_core::error::may_have_applied;
use tflock_core::{
    redact, Backend, BreakOptions, Broken, ConnectOptions, Error, Handle, Lock, LockStore,
    Presence, Target,
};
use url::Url;

/// The backend name of http-backend locks.
pub const HTTP: Backend = Backend::new("http");

/// What a break compares on and sends: the holder's ID and its LockInfo exactly as the
/// server answered it (the body Terraform's unlock would send).
struct HttpHandle {
    id: String,
    body: Vec<u8>,
}

/// One state's lock on an http-backend server.
pub struct HttpStore {
    client: Client,
    ep: Endpoint,
    /// The state's `address`, when known (discovery), for the path shown.
    address: Option<String>,
}

fn env_or(target: &Target, key: &str, env: &str) -> Option<String> {
    target
        .param(key)
        .map(str::to_string)
        .or_else(|| process_env(env))
}

fn http_url(target: &Target, setting: &str, value: &str) -> Result<Url, Error> {
    let url = Url::parse(value.trim())
        .map_err(|e| Error::usage(&target.url, format!("{setting} is not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(Error::usage(
            &target.url,
            format!("{setting} must be an http:// or https:// URL"),
        ));
    }
    Ok(url)
}

/// A lock or unlock request to the state's own address with the state's update method
/// would be a state write: tflock's LockInfo would replace the state. Terraform would do
/// the same on every run, so such settings are a mistake; refused before anything is sent.
fn refuse_state_writes(
    target: &Target,
    address: &str,
    lock_url: &Url,
    lock_method: &reqwest::Method,
    unlock_url: &Url,
    unlock_method: &reqwest::Method,
) -> Result<(), Error> {
    let update =
        env_or(target, "update_method", "TF_HTTP_UPDATE_METHOD").unwrap_or_else(|| "POST".into());
    let update = method(&target.url, "update_method", &update)?;
    let same = |u: &Url| u.as_str().trim_end_matches('/') == address.trim().trim_end_matches('/');
    for (what, url, m) in [
        ("lock", lock_url, lock_method),
        ("unlock", unlock_url, unlock_method),
    ] {
        if same(url) && *m == update {
            return Err(Error::usage(
                &target.url,
                format!("the {what} request would be {m} to the state's own address, which is how the state is written (update_method {update}); tflock will not send it"),
            )
            .with_hint("check lock_address/lock_method and unlock_address/unlock_method in the backend block"));
        }
    }
    Ok(())
}

impl HttpStore {
    /// `http(s)://LOCK_ADDRESS` with `unlock_address`, `lock_method`, `unlock_method`,
    /// credentials and TLS settings as options (or Terraform's `TF_HTTP_*` variables).
    pub fn open(target: &Target, opts: &ConnectOptions) -> Result<HttpStore, Error> {
        refuse_userinfo(target)?;
        target.refuse_secrets_in_url(SECRET_OPTIONS, SECRET_HINT)?;
        let lock_url = address_of(target)?;
        // Unknown query items on the URL belong to the address; an unknown option from
        // tflock.toml or discovery is a typo.
        let options = http_options();
        for key in target.params.keys() {
            let in_address = lock_url.query_pairs().any(|(k, _)| k == key.as_str());
            if !options.contains(&key.as_str()) && !in_address {
                return Err(Error::usage(
                    &target.url,
                    format!(
                        "unknown option {key} (this target takes: {})",
                        options.join(", ")
                    ),
                ));
            }
        }
        if target.param("probe") == Some("false") {
            return Err(Error::usage(
                &target.url,
                "?probe=false: an http lock address can only be read by asking for the lock",
            ));
        }
        let unlock = env_or(target, "unlock_address", "TF_HTTP_UNLOCK_ADDRESS").ok_or_else(|| {
            Error::usage(
                &target.url,
                "no unlock address: tflock needs one to release a lock its probe is granted and to break a lock",
            )
            .with_hint("pass ?unlock_address=URL (usually the lock address itself), set TF_HTTP_UNLOCK_ADDRESS, or run tflock in the working directory")
        })?;
        // Credentials of a hidden unlock address are the target's (discovery moved them).
        let unlock_url = split_userinfo(&http_url(target, "unlock_address", &unlock)?).0;
        let lock_method = method(
            &target.url,
            "lock_method",
            &env_or(target, "lock_method", "TF_HTTP_LOCK_METHOD").unwrap_or_else(|| "LOCK".into()),
        )?;
        let unlock_method = method(
            &target.url,
            "unlock_method",
            &env_or(target, "unlock_method", "TF_HTTP_UNLOCK_METHOD")
                .unwrap_or_else(|| "UNLOCK".into()),
        )?;
        let address = target.param("address").map(str::to_string);
        if let Some(addr) = &address {
            refuse_state_writes(
                target,
                addr,
                &lock_url,
                &lock_method,
                &unlock_url,
                &unlock_method,
            )?;
        }
        let tls = Tls::from_target(target, &process_env)?;
        let creds = Credentials::for_http(target, &process_env);
        let name = redact::url(lock_url.as_str());
        Ok(HttpStore {
            client: Client::new(target, opts, creds, &tls, &[&lock_url, &unlock_url])?,
            ep: Endpoint {
                lock_url,
                lock_method,
                unlock_url,
                unlock_method,
                id_in_query: false,
                service: Service::Http,
                name,
            },
            address,
        })
    }

    fn lock_of(&self, status: u16, body: &[u8]) -> Lock {
        let id = answered_id(body).unwrap_or_default();
        let handle = Handle::new(
            &self.client.target,
            HttpHandle {
                id: id.clone(),
                body: body.to_vec(),
            },
        );
        let location = self.ep.lock_url.to_string();
        let mut lock = Lock::new(HTTP, &self.client.target, &location, handle);
        lock.path = self.address.clone().unwrap_or_else(|| location.clone());
        lock.details.insert(
            "lock".into(),
            format!("{} {}", self.ep.lock_method, location),
        );
        lock.details.insert(
            "unlock".into(),
            format!(
                "{} {}",
                self.ep.unlock_method,
                redact::url(self.ep.unlock_url.as_str())
            ),
        );
        lock.details
            .insert("answered".into(), format!("HTTP {status}"));
        let text = String::from_utf8_lossy(body);
        lock = lock.with_info_text(&text);
        if lock.info_error.is_some() {
            lock.info = None;
            lock.id = id;
            let why = lock.info_error.take().unwrap_or_default();
            lock.info_error = Some(format!(
                "the server answered HTTP {status} without a readable LockInfo: {why}"
            ));
        }
        lock
    }
}

#[async_trait]
impl LockStore for HttpStore {
    async fn list(&self) -> Result<Vec<Lock>, Error> {
        match probe(&self.client, &self.ep).await? {
            Probed::Free => Ok(Vec::new()),
            Probed::Held { status, body } => Ok(vec![self.lock_of(status, &body)]),
            Probed::Refused(e) => Err(e),
        }
    }

    async fn delete_if_unchanged(&self, lock: &Lock, _: &BreakOptions) -> Result<Broken, Error> {
        let h = lock.handle_for::<HttpHandle>(&self.client.target)?;
        if h.id.is_empty() {
            return Err(Error::refused(
                &self.client.target,
                "the server's answer carried no lock ID; tflock never unlocks without the holder's ID",
            ));
        }
        // The server may not compare IDs on unlock: make sure the holder is the same
        // right before sending the holder's own unlock.
        match self.recheck(lock).await? {
            Presence::Same => {}
            Presence::Gone => {
                return Err(Error::changed(
                    &self.client.target,
                    format!("lock {} is gone: someone unlocked it", h.id),
                ))
            }
            Presence::Other => {
                return Err(Error::changed(
                    &self.client.target,
                    format!("lock {} was replaced by another lock", h.id),
                ))
            }
        }
        let what = format!("unlocking lock {}", h.id);
        match self
            .client
            .write(
                &what,
                &self.ep.unlock_method,
                &self.ep.unlock_url,
                Auth::Basic,
                Some(h.body.clone()),
            )
            .await
        {
            Ok(reply) if reply.ok() => Ok(Broken {
                removed: vec![format!("{} (lock ID {})", self.ep.name, h.id)],
                ..Broken::default()
            }),
            Ok(reply) if matches!(reply.status, 409 | 412 | 423) => Err(Error::changed(
                &self.client.target,
                format!(
                    "the server refused to unlock with ID {} (HTTP {}): the lock is not that one any more",
                    h.id, reply.status
                ),
            )),
            Ok(reply) => {
                let err = self.client.status_error(&what,
                    &reply,
                    Service::Http,
                    &redact::url(self.ep.unlock_url.as_str()),
                );
                Err(err.unknown_if(may_have_applied(reply.status)))
            }
            Err(e @ WriteError::NotSent(_)) | Err(e @ WriteError::NoReply(_)) => {
                Err(e.into_error())
            }
        }
    }

    async fn recheck(&self, lock: &Lock) -> Result<Presence, Error> {
        let h = lock.handle_for::<HttpHandle>(&self.client.target)?;
        presence(&self.client, &self.ep, &h.id).await
    }

    fn backend(&self) -> Backend {
        HTTP
    }

    fn target(&self) -> &str {
        &self.client.target
    }
}
