//! list / inspect / break above the LockStore trait.

use crate::cli::{BreakArgs, Cli, Command, Format, InspectArgs, ListArgs, TargetArgs};
use crate::{duration, render, Io, Resolver};
use chrono::{DateTime, Utc};
use std::sync::Arc;
use tflock_core::error::exit;
use tflock_core::{
    check_breakable, BreakOptions, ConnectOptions, Error, Lock, LockStore, Status, Target,
};

/// One lock as the user sees it. Usually one record; Terraform's S3 migration mode
/// writes the same LockInfo to a DynamoDB row and a lockfile, shown as one lock whose
/// halves are broken together.
pub struct Entry {
    pub halves: Vec<Half>,
}

pub struct Half {
    pub store: Arc<dyn LockStore>,
    pub lock: Lock,
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

pub async fn dispatch(cli: Cli, io: &mut Io<'_>, resolver: &dyn Resolver) -> i32 {
    let opts = match duration::parse(&cli.timeout) {
        Ok(d) if d > chrono::Duration::zero() => ConnectOptions {
            timeout: d.to_std().unwrap_or(std::time::Duration::from_secs(10)),
            concurrency: cli.concurrency.max(1),
        },
        Ok(_) => return usage(io, "--timeout must be more than 0s"),
        Err(e) => return usage(io, &format!("--timeout: {e}")),
    };
    let result = match cli.command {
        Command::List(a) => list(a, io, resolver, &opts).await,
        Command::Inspect(a) => inspect(a, io, resolver, &opts).await,
        Command::Break(a) => break_lock(a, io, resolver, &opts).await,
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            let _ = writeln!(io.err, "error: {e}");
            e.exit_code()
        }
    }
}

fn usage(io: &mut Io<'_>, msg: &str) -> i32 {
    let _ = writeln!(io.err, "error: {msg}");
    exit::USAGE
}

/// What listing every target produced: the locks, and how many targets failed.
struct Listing {
    entries: Vec<Entry>,
    targets: Vec<String>,
    failed: usize,
}

fn ctx(args: &TargetArgs) -> Result<Ctx, Error> {
    let stale_after = duration::parse(&args.stale_after)
        .map_err(|e| Error::usage(format!("--stale-after: {e}")))?;
    Ok(Ctx {
        now: Utc::now(),
        stale_after,
    })
}

/// Opens and lists every target concurrently. A target that fails is reported on stderr
/// and counted; the others are still listed.
async fn list_all(
    args: &TargetArgs,
    io: &mut Io<'_>,
    resolver: &dyn Resolver,
    opts: &ConnectOptions,
) -> Result<Listing, Error> {
    let texts = if args.targets.is_empty() {
        vec![".".to_string()]
    } else {
        args.targets.clone()
    };
    let mut targets = Vec::new();
    for t in &texts {
        targets.push(Target::parse(t)?);
    }
    let results = futures::future::join_all(targets.iter().map(|t| async move {
        let store = resolver.open(t, opts).await?;
        let locks = store.list().await?;
        Ok::<_, Error>((store, locks))
    }))
    .await;
    let mut halves = Vec::new();
    let mut failed = 0;
    let mut first_error = None;
    for r in results {
        match r {
            Ok((store, locks)) => halves.extend(locks.into_iter().map(|lock| Half {
                store: store.clone(),
                lock,
            })),
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
    Ok(Listing {
        entries: merge(halves),
        targets: texts,
        failed,
    })
}

/// Groups records that are halves of one lock: same ID, same Terraform state path, in
/// different places (a DynamoDB row and a lockfile). The same record seen through two
/// overlapping targets is kept once.
fn merge(halves: Vec<Half>) -> Vec<Entry> {
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
            None => entries.push(Entry { halves: vec![half] }),
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

fn partial_exit(listing: &Listing, io: &mut Io<'_>) -> i32 {
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

async fn list(
    args: ListArgs,
    io: &mut Io<'_>,
    resolver: &dyn Resolver,
    opts: &ConnectOptions,
) -> Result<i32, Error> {
    let ctx = ctx(&args.targets)?;
    let listing = list_all(&args.targets, io, resolver, opts).await?;
    let out = if args.json || args.output == Format::Json {
        render::json_list(&listing.entries, &ctx)
    } else if listing.entries.is_empty() {
        format!("No locks held. Looked in: {}\n", listing.targets.join(", "))
    } else {
        render::table(&listing.entries, &ctx, io.color)
    };
    io.out
        .write_all(out.as_bytes())
        .map_err(|e| Error::backend("stdout", e.to_string()))?;
    Ok(partial_exit(&listing, io))
}

fn not_found(what: &str, query: &str, listing: &Listing) -> Error {
    let mut msg = format!("no lock with {what} {query}");
    if listing.failed > 0 {
        msg.push_str(&format!(
            " ({} target(s) could not be listed)",
            listing.failed
        ));
    }
    Error::no_such_lock(
        listing.targets.join(", "),
        msg + "; run `tflock list` to see the IDs",
    )
}

async fn inspect(
    args: InspectArgs,
    io: &mut Io<'_>,
    resolver: &dyn Resolver,
    opts: &ConnectOptions,
) -> Result<i32, Error> {
    let ctx = ctx(&args.targets)?;
    let listing = list_all(&args.targets, io, resolver, opts).await?;
    let mut found: Vec<&Entry> = listing
        .entries
        .iter()
        .filter(|e| e.matches_id(&args.query))
        .collect();
    if found.is_empty() {
        found = listing
            .entries
            .iter()
            .filter(|e| e.matches_path(&args.query))
            .collect();
    }
    if found.is_empty() {
        return Err(not_found("ID or state path", &args.query, &listing));
    }
    let out = if args.json {
        render::json_list(&found.into_iter().collect::<Vec<_>>(), &ctx)
    } else {
        found
            .iter()
            .map(|e| render::details(e, &ctx) + &render::break_hint(e))
            .collect::<Vec<_>>()
            .join("\n")
    };
    io.out
        .write_all(out.as_bytes())
        .map_err(|e| Error::backend("stdout", e.to_string()))?;
    Ok(partial_exit(&listing, io))
}

async fn break_lock(
    args: BreakArgs,
    io: &mut Io<'_>,
    resolver: &dyn Resolver,
    opts: &ConnectOptions,
) -> Result<i32, Error> {
    let ctx = ctx(&args.targets)?;
    let listing = list_all(&args.targets, io, resolver, opts).await?;
    let found: Vec<&Entry> = listing
        .entries
        .iter()
        .filter(|e| e.matches_id(&args.id))
        .collect();
    let entry = match found.as_slice() {
        [] => return Err(not_found("ID", &args.id, &listing)),
        [one] => *one,
        many => {
            let places: Vec<String> = many
                .iter()
                .map(|e| format!("{} ({})", e.lock().location, e.lock().target))
                .collect();
            return Err(Error::usage(format!(
                "ID {} matches {} locks: {}; pass -t to choose one target",
                args.id,
                many.len(),
                places.join(", ")
            )));
        }
    };
    let bopts = BreakOptions {
        force_foreign: args.force_foreign,
    };
    for h in &entry.halves {
        check_breakable(&h.lock, &bopts)?;
    }
    let status = ctx.status(entry.lock());
    let mut summary = render::details(entry, &ctx);
    summary.push_str("Will remove:\n");
    for h in &entry.halves {
        summary.push_str(&format!("  {}\n", h.lock.location));
    }
    if args.dry_run {
        let _ = write!(io.out, "{summary}Dry run: nothing was changed.\n");
        return Ok(exit::OK);
    }
    let _ = io.err.write_all(summary.as_bytes());
    if !args.yes {
        if !io.interactive {
            return Err(Error::refused(
                &entry.lock().target,
                "not breaking without confirmation: no terminal to ask on; pass --yes (or --dry-run to look first)",
            ));
        }
        let warn = if status == Status::Active {
            " It is NOT stale: its holder may still be running."
        } else {
            ""
        };
        let _ = write!(
            io.err,
            "Break lock {}?{warn} Only 'yes' will be accepted: ",
            entry.lock().id
        );
        let _ = io.err.flush();
        let mut answer = String::new();
        let _ = io.input.read_line(&mut answer);
        if answer.trim() != "yes" {
            return Err(Error::refused(
                &entry.lock().target,
                "not broken: confirmation was not 'yes'",
            ));
        }
    }
    let mut removed = Vec::new();
    let mut first_error: Option<Error> = None;
    for h in &entry.halves {
        match h.store.break_lock(&h.lock, &bopts).await {
            Ok(b) => removed.extend(b.removed),
            Err(e) => {
                let _ = writeln!(io.err, "error: {e}");
                first_error.get_or_insert(e);
            }
        }
    }
    for r in &removed {
        let _ = writeln!(io.out, "removed {r}");
    }
    match first_error {
        None => {
            let _ = writeln!(io.out, "Lock {} has been broken.", entry.lock().id);
            Ok(exit::OK)
        }
        Some(e) => {
            if !removed.is_empty() {
                let _ = writeln!(
                    io.err,
                    "warning: lock {} was only partly removed: see the errors above",
                    entry.lock().id
                );
            }
            Ok(e.exit_code())
        }
    }
}
