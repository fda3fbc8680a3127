//! From targets to the locks the user sees: listing every target concurrently, and
//! grouping the halves of one lock.

use crate::settings::{Ctx, Resolved, Scope};
use crate::ui::progress;
use crate::{backends, Io, Resolver};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use tflock_core::{ConnectOptions, Error, Kind, Lock, LockStore, Target};

/// One lock as the user sees it. Usually one record; Terraform's S3 migration mode
/// writes the same LockInfo to a DynamoDB row and a lockfile, shown as one lock whose
/// halves are broken together.
pub struct Entry {
    pub halves: Vec<Half>,
    /// Whether its workspace is the working directory's current one (discovery only).
    pub current: Option<bool>,
}

pub struct Half {
    pub store: Arc<dyn LockStore>,
    pub lock: Lock,
    /// How to name its target again on a command line (see [`Resolved::selector`]).
    pub selector: Arc<Vec<String>>,
    /// Which target (by position) it came from.
    pub target_index: usize,
}

impl Entry {
    pub fn lock(&self) -> &Lock {
        &self.halves[0].lock
    }
    pub fn matches_id(&self, q: &str) -> bool {
        self.halves.iter().any(|h| h.lock.matches_id(q))
    }
    pub fn matches_path(&self, q: &str) -> bool {
        self.halves.iter().any(|h| h.lock.matches_path(q))
    }
    /// `s3+dynamodb` for a lock in two places.
    pub fn backends(&self) -> String {
        let mut names: Vec<&str> = self
            .halves
            .iter()
            .map(|h| h.lock.backend.as_str())
            .collect();
        names.dedup();
        names.join("+")
    }
    pub fn old_enough(&self, ctx: &Ctx, min: Option<chrono::Duration>) -> bool {
        match min {
            None => true,
            Some(min) => self.lock().age(ctx.now).is_some_and(|a| a >= min),
        }
    }
}

/// What listing every target produced: the locks, and which targets failed.
pub struct Listing {
    pub entries: Vec<Entry>,
    pub targets: Vec<Target>,
    pub failed: usize,
}

impl Listing {
    /// The targets as shown: `s3://b, dynamodb://t` (escaped: a name can come from a
    /// config file in a repository).
    pub fn names(&self) -> String {
        self.targets
            .iter()
            .map(|t| crate::ui::safe(&t.url))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The error for an ID or path that matched nothing, with what each backend knows
    /// about what its IDs look like.
    pub fn not_found(&self, what: &str, query: &str) -> Error {
        let mut msg = format!("no lock with {what} {query}");
        if self.failed > 0 {
            msg.push_str(&format!(" ({} target(s) could not be listed)", self.failed));
        }
        for t in &self.targets {
            if let Some(hint) = backends::driver_for(&t.scheme).and_then(|d| d.id_hint(t, query)) {
                msg.push_str(&format!(" ({hint})"));
                break;
            }
        }
        Error::not_found(self.names(), msg + "; run `tflock list` to see the IDs")
    }
}

/// What [`ask_all`] got: per target, in order, its store and answer (`None`: it failed,
/// already reported), and how many failed.
pub struct Answers<T> {
    pub each: Vec<Option<(Arc<dyn LockStore>, T)>>,
    pub failed: usize,
}

/// Opens every target and asks its store with `ask`, concurrently, with the spinner. A
/// target that fails is reported on stderr (when there are several) and counted; the
/// others still answer. A usage error stops everything, and so does every target
/// failing (with the first error).
pub async fn ask_all<T, F, Fut>(
    targets: &[Resolved],
    io: &mut Io<'_>,
    resolver: &dyn Resolver,
    opts: &ConnectOptions,
    ask: F,
) -> Result<Answers<T>, Error>
where
    F: Fn(Arc<dyn LockStore>) -> Fut,
    Fut: std::future::Future<Output = Result<T, Error>>,
{
    let ask = &ask;
    let all = futures::future::join_all(targets.iter().map(|r| async move {
        let store = resolver.open(&r.target, opts).await?;
        let answer = ask(store.clone()).await?;
        Ok::<_, Error>((store, answer))
    }));
    let results = progress::while_listing(all, io, targets.len()).await;
    let mut each = Vec::with_capacity(targets.len());
    let mut failed = 0;
    let mut first_error = None;
    for r in results {
        match r {
            Ok(answer) => each.push(Some(answer)),
            // A wrong URL is the user's mistake on every target: stop at once.
            Err(e) if e.kind() == Kind::Usage => return Err(e),
            Err(e) => {
                failed += 1;
                each.push(None);
                if targets.len() > 1 {
                    crate::ui::warn(io, &e);
                }
                first_error.get_or_insert(e);
            }
        }
    }
    if failed == targets.len() {
        if let Some(e) = first_error {
            return Err(e);
        }
    }
    Ok(Answers { each, failed })
}

/// Opens and lists every target concurrently. A target that fails is reported on stderr
/// and counted; the others are still listed. A usage error stops everything.
pub async fn list_all(
    scope: Scope,
    io: &mut Io<'_>,
    resolver: &dyn Resolver,
    opts: &ConnectOptions,
) -> Result<Listing, Error> {
    let Scope {
        targets,
        current_workspace,
    } = scope;
    let Answers { each, failed } = ask_all(&targets, io, resolver, opts, |store| async move {
        store.list().await
    })
    .await?;
    let mut halves = Vec::new();
    for (i, (answer, Resolved { selector, .. })) in each.into_iter().zip(&targets).enumerate() {
        let Some((store, locks)) = answer else {
            continue;
        };
        let selector = Arc::new(selector.clone());
        halves.extend(locks.into_iter().map(|lock| Half {
            store: store.clone(),
            lock,
            selector: selector.clone(),
            target_index: i,
        }));
    }
    let mut entries = merge(halves);
    if let Some(current) = &current_workspace {
        for e in &mut entries {
            e.current = e.lock().workspace.as_ref().map(|ws| ws == current);
        }
    }
    Ok(Listing {
        entries,
        targets: targets.into_iter().map(|r| r.target).collect(),
        failed,
    })
}

/// Groups records that are halves of one lock: same ID, same Terraform state path, in
/// different backends (a DynamoDB row and a lockfile). The same record seen through two
/// overlapping targets is kept once. Linear in the number of records.
pub fn merge(halves: Vec<Half>) -> Vec<Entry> {
    let mut entries: Vec<Entry> = Vec::with_capacity(halves.len());
    let mut seen: HashSet<(&'static str, String)> = HashSet::with_capacity(halves.len());
    let mut by_id_path: HashMap<(String, String), usize> = HashMap::new();
    for half in halves {
        let l = &half.lock;
        if !seen.insert((l.backend.as_str(), l.location.clone())) {
            continue;
        }
        let key = l
            .info
            .as_ref()
            .filter(|i| !l.id.is_empty() && !i.path.is_empty())
            .map(|i| (l.id.clone(), i.path.clone()));
        let twin = key
            .as_ref()
            .and_then(|k| by_id_path.get(k).copied())
            .filter(|&i| {
                entries[i]
                    .halves
                    .iter()
                    .all(|h| h.lock.backend != l.backend)
            });
        match twin {
            Some(i) => {
                let entry = &mut entries[i];
                entry.halves.push(half);
                // Shown in registry order (Terraform writes the lockfile first).
                entry
                    .halves
                    .sort_by_key(|h| (backends::rank(h.lock.backend), h.target_index));
            }
            None => {
                if let Some(k) = key {
                    by_id_path.entry(k).or_insert(entries.len());
                }
                entries.push(Entry {
                    halves: vec![half],
                    current: None,
                });
            }
        }
    }
    entries.sort_by(|a, b| {
        let (a, b) = (a.lock(), b.lock());
        (backends::rank(a.backend), &a.target, &a.path, &a.location).cmp(&(
            backends::rank(b.backend),
            &b.target,
            &b.path,
            &b.location,
        ))
    });
    entries
}
