//! GitLab-managed Terraform state: the locked states of one project (GraphQL), each
//! lock's ID learned by a probe, and a break that is GitLab's own compare-and-delete,
//! `DELETE .../lock?ID=<holder's ID>` (409 when the ID is not the lock's).
//!
//! GitLab keeps only three facts about a lock: its ID, the GitLab user who took it and
//! when. The answer to a lock request mixes them with the *requester's* Operation, Info,
//! Version and Path; those are never shown as the holder's.

use crate::auth::{process_env, Credentials, SECRET_HINT, SECRET_OPTIONS};
use crate::client::{origin, Auth, Client, Tls, WriteError, CLIENT_OPTIONS};
use crate::error::Service;
use crate::graphql::{Project, StateNode};
use crate::naming::{
    address_of, http_options, lock_url, parse_gitlab_address, project_url, refuse_userinfo,
    state_url,
};
use crate::probe::{answered_id, presence, probe, Endpoint, Probed};
use async_trait::async_trait;
use reqwest::Method;
use serde_json::Value;
use tflock_core::error::may_have_applied;
use tflock_core::lockinfo::parse_go_time;
use tflock_core::{
    Backend, BreakOptions, Broken, ConnectOptions, Error, Handle, Lock, LockInfo, LockStore,
    Presence, Target,
};
use tokio::sync::OnceCell;
use url::Url;

/// The backend name of GitLab-managed state locks.
pub const GITLAB: Backend = Backend::new("gitlab");

/// Options of a `gitlab://` target.
fn options() -> Vec<&'static str> {
    [&["state", "scheme", "probe"], CLIENT_OPTIONS].concat()
}

/// What a break compares on: the state, and the holder's ID as GitLab answered it
/// (empty when it could not be read: such a lock is never unlocked).
struct GitLabHandle {
    state: String,
    id: String,
}

/// The Terraform states of one GitLab project (or one state of it).
pub struct GitLabStore {
    client: Client,
    /// `scheme://host[:port][/root]`.
    base: Url,
    /// The project as given: a numeric ID or `group/sub/project`.
    project: String,
    full_path: OnceCell<String>,
    /// Only this state (`?state=`, or a state address).
    state: Option<String>,
    /// Learn lock IDs by probing (default); `?probe=false` lists without them.
    probe: bool,
    concurrency: usize,
}

fn flag(target: &Target, key: &str) -> Result<bool, Error> {
    match target.param(key) {
        None | Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(other) => Err(Error::usage(
            &target.url,
            format!("?{key}={other} must be true or false"),
        )),
    }
}

impl GitLabStore {
    /// `gitlab://HOST[:PORT]/GROUP/PROJECT[?state=NAME][&scheme=http][&probe=false]`.
    pub fn open(target: &Target, opts: &ConnectOptions) -> Result<GitLabStore, Error> {
        refuse_userinfo(target)?;
        target.refuse_secrets_in_url(SECRET_OPTIONS, SECRET_HINT)?;
        target.check_params(&options())?;
        if target.host.is_empty() {
            return Err(Error::usage(
                &target.url,
                "no GitLab host; use gitlab://HOST/GROUP/PROJECT",
            ));
        }
        let project = target.path.trim_matches('/').to_string();
        if project.is_empty() {
            return Err(Error::usage(
                &target.url,
                "no project; use gitlab://HOST/GROUP/PROJECT or gitlab://HOST/PROJECT-ID",
            ));
        }
        let scheme = match target.param("scheme") {
            None | Some("https") => "https",
            Some("http") => "http",
            Some(other) => {
                return Err(Error::usage(
                    &target.url,
                    format!("?scheme={other} must be https or http"),
                ))
            }
        };
        let base = Url::parse(&format!("{scheme}://{}", target.host))
            .ok()
            .filter(|u| u.host_str().is_some() && u.path() == "/")
            .ok_or_else(|| {
                Error::usage(&target.url, format!("{} is not a host[:port]", target.host))
            })?;
        let state = target.param("state").map(str::to_string);
        if target.params.contains_key("state") && state.is_none() {
            return Err(Error::usage(&target.url, "?state= needs a state name"));
        }
        Self::with(target, opts, base, project, state)
    }

    /// A GitLab state address given as an `http(s)://` target
    /// (`.../api/v4/projects/ID/terraform/state/NAME[/lock]`): that one state.
    pub fn open_address(
        target: &Target,
        opts: &ConnectOptions,
    ) -> Result<Option<GitLabStore>, Error> {
        refuse_userinfo(target)?;
        let Some(addr) = parse_gitlab_address(&address_of(target)?) else {
            return Ok(None);
        };
        target.refuse_secrets_in_url(SECRET_OPTIONS, SECRET_HINT)?;
        target.check_params(&http_options())?;
        Self::with(target, opts, addr.base, addr.project, Some(addr.state)).map(Some)
    }

    fn with(
        target: &Target,
        opts: &ConnectOptions,
        base: Url,
        project: String,
        state: Option<String>,
    ) -> Result<GitLabStore, Error> {
        let probe = flag(target, "probe")?;
        let tls = Tls::from_target(target, &process_env)?;
        let creds = Credentials::for_gitlab(target, &process_env);
        Ok(GitLabStore {
            client: Client::new(target, opts, creds, &tls, &[&base])?,
            base,
            project,
            full_path: OnceCell::new(),
            state,
            probe,
            concurrency: opts.concurrency.max(1),
        })
    }

    /// The project's `group/sub/project` path (GraphQL knows projects by path only).
    async fn full_path(&self) -> Result<&str, Error> {
        if !self.project.bytes().all(|b| b.is_ascii_digit()) {
            return Ok(&self.project);
        }
        self.full_path
            .get_or_try_init(|| async {
                let url = project_url(&self.base, &self.project);
                let what = format!("looking up project {}", self.project);
                let reply = self.client.read(&what, &url, Auth::Bearer).await?;
                let place = format!("project {} on {}", self.project, origin(&self.base));
                if !reply.ok() {
                    return Err(self
                        .client
                        .status_error(&what, &reply, Service::GitLab, &place));
                }
                serde_json::from_slice::<Value>(&reply.body)
                    .ok()
                    .and_then(|v| v["path_with_namespace"].as_str().map(str::to_string))
                    .ok_or_else(|| {
                        Error::backend(
                            &self.client.target,
                            format!("{what} failed: the answer has no path_with_namespace"),
                        )
                    })
            })
            .await
            .map(String::as_str)
    }

    async fn graphql(&self) -> Result<Project<'_>, Error> {
        Ok(Project {
            client: &self.client,
            base: &self.base,
            full_path: self.full_path().await?,
        })
    }

    fn endpoint(&self, state: &str) -> Endpoint {
        let lock = lock_url(&self.base, &self.project, state);
        Endpoint {
            lock_url: lock.clone(),
            lock_method: Method::POST,
            unlock_url: lock,
            unlock_method: Method::DELETE,
            id_in_query: true,
            service: Service::GitLab,
            name: format!("state {state} of project {}", self.project),
        }
    }

    /// A lock as the listing shows it before (or without) its ID.
    fn lock_of(&self, node: &StateNode, id: &str) -> Lock {
        let handle = Handle::new(
            &self.client.target,
            GitLabHandle {
                state: node.name.clone(),
                id: id.to_string(),
            },
        );
        let location = lock_url(&self.base, &self.project, &node.name);
        let mut lock = Lock::new(GITLAB, &self.client.target, location.as_str(), handle);
        lock.id = id.to_string();
        lock.path = state_url(&self.base, &self.project, &node.name).to_string();
        lock.stored_at = node.locked_at();
        lock.details.insert("state".into(), node.name.clone());
        lock.details.insert(
            "locked_by".into(),
            node.locked_by()
                .unwrap_or("(a GitLab user that no longer exists)")
                .to_string(),
        );
        if let Some(at) = &node.locked_at {
            lock.details.insert("locked_at".into(), at.clone());
        }
        lock
    }

    /// The holder as GitLab's answer to the probe gives it: `ID`, `Who` (a GitLab user
    /// name) and `Created`. The answer's other fields are the probe's own.
    fn lock_from_answer(&self, node: &StateNode, status: u16, body: &[u8]) -> Lock {
        let Some(id) = answered_id(body) else {
            return self.unread(
                node,
                format!("GitLab's answer (HTTP {status}) to tflock's lock request has no lock ID"),
            );
        };
        let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let text = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let mut lock = self.lock_of(node, &id);
        lock.details.insert(
            "gitlab_keeps".into(),
            "the lock ID, its GitLab user and time only (no Operation, Version or Info)".into(),
        );
        let created = parse_go_time(&text("Created")).ok().flatten();
        lock.info = Some(LockInfo {
            id,
            who: text("Who"),
            created: created.or(lock.stored_at),
            ..LockInfo::default()
        });
        lock
    }

    /// A locked state whose lock ID could not be learned.
    fn unread(&self, node: &StateNode, reason: String) -> Lock {
        let mut lock = self.lock_of(node, "");
        lock.info_error = Some(reason);
        lock
    }

    async fn read_lock(&self, node: StateNode) -> Result<Option<Lock>, Error> {
        match probe(&self.client, &self.endpoint(&node.name)).await? {
            Probed::Free => Ok(None),
            Probed::Held { status, body } => Ok(Some(self.lock_from_answer(&node, status, &body))),
            Probed::Refused(e) => {
                let why = if node.locked_by().is_none() {
                    " (GitLab fails like this when the user who locked the state no longer exists)"
                } else {
                    ""
                };
                Ok(Some(self.unread(
                    &node,
                    format!(
                        "lock ID unknown: {}{why}; unlock it in GitLab (Operate > Terraform states) if it is stale",
                        e.message()
                    ),
                )))
            }
        }
    }

    /// GitLab answered 409 to the unlock: the ID is not the lock's (another holder, or
    /// no lock). A second read says which, for the message; nothing was removed.
    async fn refused(&self, lock: &Lock, h: &GitLabHandle) -> Error {
        let refused = format!(
            "GitLab refused to unlock state {} with ID {} (HTTP 409)",
            h.state, h.id
        );
        let changed = |why: &str| Error::changed(&self.client.target, format!("{refused}: {why}"));
        match self.recheck(lock).await {
            Ok(Presence::Gone) => changed("it is no longer locked"),
            Ok(Presence::Other) => changed("it was locked again by someone else"),
            Ok(Presence::Same) => Error::backend(
                &self.client.target,
                format!("{refused} although that is still its lock; nothing was removed"),
            )
            .with_hint("run the same command again; if it keeps failing, unlock the state in GitLab (Operate > Terraform states)"),
            Err(_) => changed("it is not locked with that ID any more"),
        }
    }
}

#[async_trait]
impl LockStore for GitLabStore {
    async fn list(&self) -> Result<Vec<Lock>, Error> {
        let project = self.graphql().await?;
        let nodes = match &self.state {
            Some(name) => project.state(name).await?.into_iter().collect(),
            None => project.states().await?,
        };
        let locked: Vec<StateNode> = nodes.into_iter().filter(StateNode::locked).collect();
        if !self.probe {
            return Ok(locked
                .iter()
                .map(|node| {
                    let mut lock = self.lock_of(node, "");
                    lock.info = Some(LockInfo {
                        who: node.locked_by().unwrap_or("").to_string(),
                        created: node.locked_at(),
                        ..LockInfo::default()
                    });
                    lock.details
                        .insert("id".into(), "not read (?probe=false)".into());
                    lock
                })
                .collect());
        }
        // Only states GraphQL reports locked are probed: a probe of a name GitLab does
        // not know would create that state.
        let read = tflock_core::bounded(locked, self.concurrency, |n| self.read_lock(n)).await;
        let mut locks = Vec::new();
        for lock in read {
            if let Some(lock) = lock? {
                locks.push(lock);
            }
        }
        Ok(locks)
    }

    async fn delete_if_unchanged(&self, lock: &Lock, _: &BreakOptions) -> Result<Broken, Error> {
        let h = lock.handle_for::<GitLabHandle>(&self.client.target)?;
        if h.id.is_empty() {
            return Err(Error::refused(
                &self.client.target,
                format!(
                    "the lock ID of state {} was not read; tflock never unlocks without the holder's ID",
                    h.state
                ),
            )
            .with_hint("list without ?probe=false (needs the Maintainer role), or unlock the state in GitLab (Operate > Terraform states)"));
        }
        let ep = self.endpoint(&h.state);
        let url = ep.unlock_url_for(&h.id);
        let what = format!("unlocking state {} (lock ID {})", h.state, h.id);
        // Sent once: GitLab compares the ID, and a lost answer is settled by reading again.
        match self
            .client
            .write(&what, &Method::DELETE, &url, Auth::Basic, None)
            .await
        {
            Ok(reply) if reply.ok() => Ok(Broken {
                removed: vec![format!("{} (lock ID {})", ep.lock_url, h.id)],
                ..Broken::default()
            }),
            Ok(reply) if reply.status == 409 => Err(self.refused(lock, h).await),
            Ok(reply) if reply.status == 412 => Err(Error::changed(
                &self.client.target,
                format!("{what}: the server refused the precondition (HTTP 412)"),
            )),
            Ok(reply) => {
                let err = self.client.status_error(
                    &what,
                    &reply,
                    Service::GitLab,
                    &format!("state {} of project {}", h.state, self.project),
                );
                Err(err.unknown_if(may_have_applied(reply.status)))
            }
            Err(e @ WriteError::NotSent(_)) | Err(e @ WriteError::NoReply(_)) => {
                Err(e.into_error())
            }
        }
    }

    async fn recheck(&self, lock: &Lock) -> Result<Presence, Error> {
        let h = lock.handle_for::<GitLabHandle>(&self.client.target)?;
        let node = self.graphql().await?.state(&h.state).await?;
        if !node.as_ref().is_some_and(StateNode::locked) {
            return Ok(Presence::Gone);
        }
        presence(&self.client, &self.endpoint(&h.state), &h.id).await
    }

    fn backend(&self) -> Backend {
        GITLAB
    }

    fn target(&self) -> &str {
        &self.client.target
    }
}
