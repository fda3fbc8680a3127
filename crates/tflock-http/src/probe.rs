//! Learning who holds a lock by asking for it, without ever keeping it.
//!
//! Neither GitLab nor Terraform's http protocol lets a lock be read. So tflock sends the
//! lock request `terraform plan` would send, with a LockInfo of its own (fresh ID):
//! - held: the server answers 409/423 with the holder's ID, and nothing changes;
//! - free: the server grants the lock to tflock, which releases it at once, sending its
//!   own ID (`?ID=` for GitLab, and its LockInfo as the body, as Terraform's unlock does).
//!
//! tflock releases only a lock the server has just said is its own (granted, or a
//! 409/423 naming tflock's ID), so a server that does not compare IDs on unlock can never
//! lose someone else's lock to a probe. A lost answer is settled by asking again with the
//! same LockInfo, which is idempotent: the answer then names the holder.

use crate::client::{Auth, Client, Reply, WriteError};
use crate::error::Service;
use crate::naming::probe_info;
use reqwest::Method;
use serde_json::Value;
use tflock_core::{Error, Kind, LockInfo, Presence};
use url::Url;

/// How one state's lock is requested and released.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    pub lock_url: Url,
    pub lock_method: Method,
    pub unlock_url: Url,
    pub unlock_method: Method,
    /// GitLab: the ID also goes as `?ID=` on the unlock (GitLab compares it).
    pub id_in_query: bool,
    pub service: Service,
    /// What the messages call this lock: `state prod of project g/app`.
    pub name: String,
}

impl Endpoint {
    /// The unlock URL carrying `id` when the server reads it from the query.
    pub fn unlock_url_for(&self, id: &str) -> Url {
        let mut url = self.unlock_url.clone();
        if self.id_in_query {
            url.query_pairs_mut().append_pair("ID", id);
        }
        url
    }
}

/// What a probe found.
#[derive(Debug)]
pub(crate) enum Probed {
    /// Not locked (a lock granted to the probe was released again).
    Free,
    /// Locked by someone else: the status (409/423) and the server's answer, whose `ID`
    /// is the holder's.
    Held { status: u16, body: Vec<u8> },
    /// The server answered the lock request with another status (403, 500, ...):
    /// nothing was changed and nothing was learned.
    Refused(Error),
}

/// The `ID` in a lock answer, read as Go reads JSON keys (case-insensitively).
pub(crate) fn answered_id(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let map = v.as_object()?;
    let found = map.get("ID").or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("ID"))
            .map(|(_, v)| v)
    })?;
    found.as_str().map(str::to_string).filter(|s| !s.is_empty())
}

/// Who holds the lock a probe at `ep` found, against the holder ID `id` a listing read
/// (empty when it could not learn one).
pub(crate) async fn presence(client: &Client, ep: &Endpoint, id: &str) -> Result<Presence, Error> {
    match probe(client, ep).await? {
        Probed::Free => Ok(Presence::Gone),
        Probed::Held { body, .. } => match answered_id(&body) {
            Some(now) if !id.is_empty() && now == id => Ok(Presence::Same),
            _ => Ok(Presence::Other),
        },
        Probed::Refused(e) => Err(e),
    }
}

/// Tries twice when a lock request goes unanswered, and at most this many times to
/// release a lock granted to the probe.
const RELEASE_TRIES: usize = 3;

/// Asks for the lock and gives back anything granted. See the module comment.
pub(crate) async fn probe(client: &Client, ep: &Endpoint) -> Result<Probed, Error> {
    let mine = probe_info();
    match ask(client, ep, &mine).await? {
        Asked::Mine => {
            release(client, ep, &mine).await?;
            Ok(Probed::Free)
        }
        Asked::Other { status, body } => Ok(Probed::Held { status, body }),
        Asked::Refused(e) => Ok(Probed::Refused(e)),
    }
}

enum Asked {
    /// The server says the lock is tflock's (granted now, or by an earlier try).
    Mine,
    Other {
        status: u16,
        body: Vec<u8>,
    },
    Refused(Error),
}

/// One lock request with `mine`, asked again once if its answer was lost or a 5xx.
async fn ask(client: &Client, ep: &Endpoint, mine: &LockInfo) -> Result<Asked, Error> {
    let body = mine.to_terraform_json().into_bytes();
    let what = format!("asking for the lock of {} (to read its ID)", ep.name);
    let mut lost = None;
    for attempt in 0..2 {
        match client
            .write(
                &what,
                &ep.lock_method,
                &ep.lock_url,
                Auth::Basic,
                Some(body.clone()),
            )
            .await
        {
            // A 5xx may come after the lock was stored: asking again names the holder.
            Ok(reply) if reply.status >= 500 && attempt == 0 => {}
            Ok(reply) => return interpret(client, ep, &what, mine, reply),
            Err(WriteError::NotSent(e)) => return Err(e),
            // Asking again with the same LockInfo is idempotent: the answer names the holder.
            Err(WriteError::NoReply(e)) => lost = Some(e),
        }
    }
    let e = lost.map(|e| e.message().to_string()).unwrap_or_default();
    Err(Error::outcome_unknown(
        &client.target,
        format!(
            "no answer to tflock's lock request on {} (twice: {e}); if the state was free, tflock may hold its lock now, with ID {}",
            ep.name, mine.id
        ),
    )
    .with_hint(format!(
        "run tflock list again; if a lock with ID {} is listed, break it with that ID",
        mine.id
    )))
}

fn interpret(
    client: &Client,
    ep: &Endpoint,
    what: &str,
    mine: &LockInfo,
    reply: Reply,
) -> Result<Asked, Error> {
    match reply.status {
        200..=299 => Ok(Asked::Mine),
        409 | 423 => match answered_id(&reply.body) {
            Some(id) if id == mine.id => Ok(Asked::Mine),
            _ => Ok(Asked::Other {
                status: reply.status,
                body: reply.body,
            }),
        },
        _ => Ok(Asked::Refused(client.status_error(
            what,
            &reply,
            ep.service,
            &ep.lock_url_shown(),
        ))),
    }
}

impl Endpoint {
    fn lock_url_shown(&self) -> String {
        tflock_core::redact::url(self.lock_url.as_str())
    }
}

/// Releases the lock granted to `mine`. Only ever after the server said it is ours; an
/// unlock whose answer was lost is settled by asking for the lock again (see above).
async fn release(client: &Client, ep: &Endpoint, mine: &LockInfo) -> Result<(), Error> {
    let body = mine.to_terraform_json().into_bytes();
    let url = ep.unlock_url_for(&mine.id);
    let what = format!("releasing the lock tflock was granted on {}", ep.name);
    let mut last = String::new();
    for _ in 0..RELEASE_TRIES {
        match client
            .write(
                &what,
                &ep.unlock_method,
                &url,
                Auth::Basic,
                Some(body.clone()),
            )
            .await
        {
            Ok(reply) if reply.ok() => return Ok(()),
            // Someone force-unlocked tflock's lock meanwhile (and may hold it now): not ours.
            Ok(reply) if matches!(reply.status, 409 | 412 | 423) => return Ok(()),
            Ok(reply) => {
                last = client
                    .status_error(&what, &reply, ep.service, &ep.lock_url_shown())
                    .message()
                    .to_string();
                if reply.status < 500 {
                    break;
                }
            }
            Err(WriteError::NotSent(e)) => last = e.message().to_string(),
            Err(WriteError::NoReply(e)) => {
                last = e.message().to_string();
                // Released or not? Ask for the lock again: granted or ours means still ours.
                match ask(client, ep, mine).await {
                    Ok(Asked::Mine) => {}
                    Ok(Asked::Other { .. }) => return Ok(()),
                    Ok(Asked::Refused(e)) | Err(e) => {
                        last = e.message().to_string();
                        break;
                    }
                }
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    Err(Error::backend(
        &client.target,
        format!(
            "tflock was granted the lock of {} while reading its ID (it had just been released) and could not release it: {last}",
            ep.name
        ),
    )
    .with_kind(Kind::Backend)
    .with_hint(format!(
        "tflock holds that lock now, with ID {}: break it with that ID, or unlock the state in the server's UI",
        mine.id
    )))
}
