//! From targets to the locks the user sees: which targets a command covers, listing
//! them concurrently, and grouping the halves of one lock.

use crate::cli::TargetArgs;
use crate::discover::Scope;
use crate::{config, discover, duration, Io, Resolver};
use chrono::{DateTime, Utc};
use std::sync::Arc;
use tflock_core::error::exit;
use tflock_core::{ConnectOptions, Error, Lock, LockStore, Status, Target};

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
    /// How to name its target on a command line (`-t '...'`, `-T name`, or nothing in the
    /// working directory it was discovered from).
    pub selector: String,
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
    pub fn backends(&self) -> String {
        let mut names: Vec<&str> = self
            .halves
            .iter()
            .map(|h| h.lock.backend.as_str())
            .collect();
        names.dedup();
        names.join("+")
    }
    pub(crate) fn locks(&self) -> Vec<&Lock> {
        self.halves.iter().map(|h| &h.lock).collect()
    }
}

/// Settings shared by the commands, resolved once.
pub struct Ctx {
    pub now: DateTime<Utc>,
    pub stale_after: chrono::Duration,
}

impl Ctx {
    pub fn status(&self, lock: &Lock) -> Status {
        lock.status(self.now, self.stale_after)
    }
}

/// The targets of one command, and how discovered locks are scoped.
pub(crate) struct Resolved {
    /// Each target, the scope of its locks (discovery), and how to name it again on a
    /// command line (for the printed `tflock break` command).
    targets: Vec<(Target, Option<Scope>, String)>,
    current_workspace: Option<String>,
}

pub(crate) fn is_terraform_dir(dir: &std::path::Path) -> bool {
    dir.join(".terraform").is_dir()
        || std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| {
                let n = e.file_name();
                let n = n.to_string_lossy();
                n.ends_with(".tf") || n.ends_with(".tf.json")
            })
}

/// Which targets a command covers: `-t` (plus `-T` names), else the config file when
/// `-T`/`-c` are given, else the Terraform working directory (`--dir`, or the current
/// directory when it holds a configuration), else every target of a config file found
/// by default, else the local backend of the current directory.
pub(crate) fn resolve(args: &TargetArgs) -> Result<Resolved, Error> {
    let mut targets = Vec::new();
    for t in &args.targets {
        targets.push((Target::parse(t)?, None, format!("-t '{t}'")));
    }
    let explicit_config = !args.names.is_empty() || args.config.is_some();
    if !targets.is_empty() || explicit_config {
        if args.dir.is_some() {
            return Err(Error::usage("--dir reads a working directory's backend; it cannot be combined with -t, -T or -c"));
        }
        if explicit_config {
            let Some(path) = config::locate(args.config.as_deref())? else {
                return Err(Error::usage(
                    "-T names a target of the config file, but there is none (./tflock.toml, $XDG_CONFIG_HOME/tflock/config.toml, or -c FILE)",
                ));
            };
            targets.extend(named(&path, &args.names, args.config.is_some())?);
        }
        return Ok(Resolved {
            targets,
            current_workspace: None,
        });
    }
    let cwd = std::path::PathBuf::from(".");
    let dir = match &args.dir {
        Some(d) => Some(d.clone()),
        None if is_terraform_dir(&cwd) => Some(cwd.clone()),
        None => None,
    };
    if dir.is_none() {
        if let Some(path) = config::locate(None)? {
            return Ok(Resolved {
                targets: named(&path, &[], false)?,
                current_workspace: None,
            });
        }
    }
    let found = discover::discover(dir.as_deref().unwrap_or(&cwd))?;
    let selector = match &args.dir {
        Some(d) => format!("--dir '{}'", d.display()),
        None => String::new(),
    };
    Ok(Resolved {
        targets: found
            .targets
            .into_iter()
            .map(|d| (d.target, d.scope, selector.clone()))
            .collect(),
        current_workspace: Some(found.current_workspace),
    })
}

pub(crate) fn named(
    path: &std::path::Path,
    names: &[String],
    explicit: bool,
) -> Result<Vec<(Target, Option<Scope>, String)>, Error> {
    let all = config::load(path)?;
    let config = if explicit {
        format!("-c '{}' ", path.display())
    } else {
        String::new()
    };
    let selector = |n: &str| format!("{config}-T '{n}'");
    if names.is_empty() {
        return Ok(all
            .into_iter()
            .map(|(n, t)| (t, None, selector(&n)))
            .collect());
    }
    names
        .iter()
        .map(|n| match all.get(n) {
            Some(t) => Ok((t.clone(), None, selector(n))),
            None => Err(Error::usage(format!(
                "{}: no target named {n:?} (it has: {})",
                path.display(),
                all.keys().cloned().collect::<Vec<_>>().join(", ")
            ))),
        })
        .collect()
}

/// What listing every target produced: the locks, and how many targets failed.
pub(crate) struct Listing {
    pub entries: Vec<Entry>,
    pub targets: Vec<String>,
    pub failed: usize,
}

pub(crate) fn ctx(args: &TargetArgs) -> Result<Ctx, Error> {
    let stale_after = duration::parse(&args.stale_after)
        .map_err(|e| Error::usage(format!("--stale-after: {e}")))?;
    Ok(Ctx {
        now: Utc::now(),
        stale_after,
    })
}

/// Opens and lists every target concurrently. A target that fails is reported on stderr
/// and counted; the others are still listed.
pub(crate) async fn list_all(
    args: &TargetArgs,
    io: &mut Io<'_>,
    resolver: &dyn Resolver,
    opts: &ConnectOptions,
) -> Result<Listing, Error> {
    let resolved = resolve(args)?;
    let texts: Vec<String> = resolved
        .targets
        .iter()
        .map(|(t, _, _)| t.url.clone())
        .collect();
    let all = futures::future::join_all(resolved.targets.iter().map(|(t, _, _)| async move {
        let store = resolver.open(t, opts).await?;
        let locks = store.list().await?;
        Ok::<_, Error>((store, locks))
    }));
    let results = with_progress(all, io, texts.len()).await;
    let mut halves = Vec::new();
    let mut failed = 0;
    let mut first_error = None;
    for (r, (_, scope, selector)) in results.into_iter().zip(&resolved.targets) {
        match r {
            Ok((store, locks)) => {
                for mut lock in locks {
                    if let Some(scope) = scope {
                        let Some(ws) = scope.workspace_of(&lock) else {
                            continue;
                        };
                        // The backend config knows its workspace_key_prefix; the store may not.
                        lock.workspace = Some(ws);
                    }
                    halves.push(Half {
                        store: store.clone(),
                        lock,
                        selector: selector.clone(),
                    });
                }
            }
            // A wrong URL is the user's mistake on every target: stop at once.
            Err(e @ Error::Usage { .. }) => return Err(e),
            Err(e) => {
                failed += 1;
                if texts.len() > 1 {
                    let _ = writeln!(io.err, "warning: {e}");
                }
                first_error.get_or_insert(e);
            }
        }
    }
    if failed == texts.len() {
        if let Some(e) = first_error {
            return Err(e);
        }
    }
    let mut entries = merge(halves);
    if let Some(current) = &resolved.current_workspace {
        for e in &mut entries {
            e.current = e.lock().workspace.as_ref().map(|ws| ws == current);
        }
    }
    Ok(Listing {
        entries,
        targets: texts,
        failed,
    })
}

/// Shows a spinner on stderr while `fut` runs, only when stderr is a terminal.
pub(crate) async fn with_progress<F: std::future::Future>(
    fut: F,
    io: &mut Io<'_>,
    targets: usize,
) -> F::Output {
    if !io.progress {
        return fut.await;
    }
    const FRAMES: [char; 4] = ['|', '/', '-', '\\'];
    tokio::pin!(fut);
    let started = std::time::Instant::now();
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(120));
    let mut shown = false;
    let mut i = 0;
    let out = loop {
        tokio::select! {
            out = &mut fut => break out,
            _ = tick.tick() => {
                // Fast listings print nothing.
                if started.elapsed() > std::time::Duration::from_millis(300) {
                    let _ = write!(io.err, "\r{} listing {targets} target(s)... {:.0}s", FRAMES[i % 4], started.elapsed().as_secs_f64());
                    let _ = io.err.flush();
                    shown = true;
                    i += 1;
                }
            }
        }
    };
    if shown {
        let _ = write!(io.err, "\r\x1b[2K");
    }
    out
}

/// Groups records that are halves of one lock: same ID, same Terraform state path, in
/// different places (a DynamoDB row and a lockfile). The same record seen through two
/// overlapping targets is kept once.
pub(crate) fn merge(halves: Vec<Half>) -> Vec<Entry> {
    let mut entries: Vec<Entry> = Vec::new();
    for half in halves {
        let l = &half.lock;
        if entries.iter().any(|e| {
            e.halves
                .iter()
                .any(|h| h.lock.backend == l.backend && h.lock.location == l.location)
        }) {
            continue;
        }
        let key = l
            .info
            .as_ref()
            .filter(|i| !l.id.is_empty() && !i.path.is_empty())
            .map(|i| (l.id.clone(), i.path.clone()));
        let twin = key.as_ref().and_then(|(id, path)| {
            entries.iter_mut().find(|e| {
                e.halves.iter().all(|h| h.lock.backend != l.backend)
                    && e.lock().id == *id
                    && e.lock().info.as_ref().is_some_and(|i| i.path == *path)
            })
        });
        match twin {
            Some(entry) => {
                entry.halves.push(half);
                // Terraform writes the lockfile first: show it first.
                entry
                    .halves
                    .sort_by_key(|h| h.lock.backend != tflock_core::Backend::S3);
            }
            None => entries.push(Entry {
                halves: vec![half],
                current: None,
            }),
        }
    }
    entries.sort_by(|a, b| {
        (a.lock().backend, &a.lock().target, &a.lock().path).cmp(&(
            b.lock().backend,
            &b.lock().target,
            &b.lock().path,
        ))
    });
    entries
}

pub(crate) fn partial_exit(listing: &Listing, io: &mut Io<'_>) -> i32 {
    if listing.failed > 0 {
        let _ = writeln!(
            io.err,
            "error: {} of {} targets could not be listed (see warnings above)",
            listing.failed,
            listing.targets.len()
        );
        exit::FAILED
    } else {
        exit::OK
    }
}

pub(crate) fn older_than(text: Option<&str>) -> Result<Option<chrono::Duration>, Error> {
    text.map(|t| duration::parse(t).map_err(|e| Error::usage(format!("--older-than: {e}"))))
        .transpose()
}

pub(crate) fn old_enough(e: &Entry, ctx: &Ctx, min: Option<chrono::Duration>) -> bool {
    match min {
        None => true,
        Some(min) => e.lock().age(ctx.now).is_some_and(|a| a >= min),
    }
}

pub(crate) fn not_found(what: &str, query: &str, listing: &Listing) -> Error {
    let mut msg = format!("no lock with {what} {query}");
    if listing.failed > 0 {
        msg.push_str(&format!(
            " ({} target(s) could not be listed)",
            listing.failed
        ));
    }
    msg.push_str(gcs_id_hint(&listing.targets, query));
    Error::no_such_lock(
        listing.targets.join(", "),
        msg + "; run `tflock list` to see the IDs",
    )
}

/// A gcs lock's ID is its object generation, a number; people paste the UUID instead.
pub(crate) fn gcs_id_hint(targets: &[String], query: &str) -> &'static str {
    let gcs = targets.iter().any(|t| t.starts_with("gs://"));
    if gcs && !query.bytes().all(|b| b.is_ascii_digit()) {
        " (gcs lock IDs are object generations, numbers, as terraform force-unlock takes them; the LockInfo ID inside a lock works as an alias)"
    } else {
        ""
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn gcs_ids_are_numbers() {
        let gs = ["gs://b".to_string()];
        assert!(super::gcs_id_hint(&gs, "abc-def").contains("object generations"));
        assert_eq!(super::gcs_id_hint(&gs, "1795691440789684"), "");
        assert_eq!(super::gcs_id_hint(&["s3://b".to_string()], "abc"), "");
    }
}
