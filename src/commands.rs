//! list / inspect / break / wait above the LockStore trait.

use crate::audit::AuditLog;
use crate::cli::{BreakArgs, Cli, Command, Format, InspectArgs, ListArgs, TargetArgs, WaitArgs};
use crate::discover::Scope;
use crate::{config, discover, duration, render, Io, Resolver};
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
    fn locks(&self) -> Vec<&Lock> {
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

pub async fn dispatch(cli: Cli, io: &mut Io<'_>, resolver: &dyn Resolver) -> i32 {
    let opts = match duration::parse(&cli.request_timeout) {
        Ok(d) if d > chrono::Duration::zero() => ConnectOptions {
            timeout: d.to_std().unwrap_or(std::time::Duration::from_secs(10)),
            concurrency: cli.concurrency.max(1),
        },
        Ok(_) => return usage(io, "--request-timeout must be more than 0s"),
        Err(e) => return usage(io, &format!("--request-timeout: {e}")),
    };
    let result = match cli.command {
        Command::List(a) => list(a, io, resolver, &opts).await,
        Command::Inspect(a) => inspect(a, io, resolver, &opts).await,
        Command::Break(a) => break_cmd(a, io, resolver, &opts).await,
        Command::Wait(a) => wait(a, io, resolver, &opts).await,
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "tflock", io.out);
            Ok(exit::OK)
        }
        Command::Man => {
            let cmd = <Cli as clap::CommandFactory>::command();
            clap_mangen::Man::new(cmd)
                .render(io.out)
                .map(|_| exit::OK)
                .map_err(|e| Error::backend("stdout", e.to_string()))
        }
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

fn write_out(io: &mut Io<'_>, text: &str) -> Result<(), Error> {
    io.out
        .write_all(text.as_bytes())
        .map_err(|e| Error::backend("stdout", e.to_string()))
}

/// The targets of one command, and how discovered locks are scoped.
struct Resolved {
    /// Each target, the scope of its locks (discovery), and how to name it again on a
    /// command line (for the printed `tflock break` command).
    targets: Vec<(Target, Option<Scope>, String)>,
    current_workspace: Option<String>,
}

fn is_terraform_dir(dir: &std::path::Path) -> bool {
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
fn resolve(args: &TargetArgs) -> Result<Resolved, Error> {
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

fn named(
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
async fn with_progress<F: std::future::Future>(
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

fn older_than(text: Option<&str>) -> Result<Option<chrono::Duration>, Error> {
    text.map(|t| duration::parse(t).map_err(|e| Error::usage(format!("--older-than: {e}"))))
        .transpose()
}

fn old_enough(e: &Entry, ctx: &Ctx, min: Option<chrono::Duration>) -> bool {
    match min {
        None => true,
        Some(min) => e.lock().age(ctx.now).is_some_and(|a| a >= min),
    }
}

async fn list(
    args: ListArgs,
    io: &mut Io<'_>,
    resolver: &dyn Resolver,
    opts: &ConnectOptions,
) -> Result<i32, Error> {
    let ctx = ctx(&args.targets)?;
    let min_age = older_than(args.older_than.as_deref())?;
    let mut listing = list_all(&args.targets, io, resolver, opts).await?;
    listing.entries.retain(|e| old_enough(e, &ctx, min_age));
    let out = if args.json || args.output == Format::Json {
        render::json_list(&listing.entries, &ctx)
    } else if listing.entries.is_empty() {
        format!("No locks held. Looked in: {}\n", listing.targets.join(", "))
    } else {
        render::table(&listing.entries, &ctx, io.color)
    };
    write_out(io, &out)?;
    let code = partial_exit(&listing, io);
    if code == exit::OK
        && args.exit_code
        && listing
            .entries
            .iter()
            .any(|e| ctx.status(e.lock()) == Status::Stale)
    {
        return Ok(exit::ATTENTION);
    }
    Ok(code)
}

fn not_found(what: &str, query: &str, listing: &Listing) -> Error {
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
fn gcs_id_hint(targets: &[String], query: &str) -> &'static str {
    let gcs = targets.iter().any(|t| t.starts_with("gs://"));
    if gcs && !query.bytes().all(|b| b.is_ascii_digit()) {
        " (gcs lock IDs are object generations, numbers, as terraform force-unlock takes them; the LockInfo ID inside a lock works as an alias)"
    } else {
        ""
    }
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
        render::json_list(&found, &ctx)
    } else {
        found
            .iter()
            .map(|e| render::details(e, &ctx) + &render::break_hint(e))
            .collect::<Vec<_>>()
            .join("\n")
    };
    write_out(io, &out)?;
    Ok(partial_exit(&listing, io))
}

/// Asks for `yes` on a terminal; refuses without one unless `--yes`.
fn confirm(io: &mut Io<'_>, yes: bool, target: &str, question: &str) -> Result<(), Error> {
    if yes {
        return Ok(());
    }
    if !io.interactive {
        return Err(Error::refused(
            target,
            "not breaking without confirmation: no terminal to ask on; pass --yes (or --dry-run to look first)",
        ));
    }
    let _ = write!(io.err, "{question} Only 'yes' will be accepted: ");
    let _ = io.err.flush();
    let mut answer = String::new();
    let _ = io.input.read_line(&mut answer);
    if answer.trim() != "yes" {
        return Err(Error::refused(
            target,
            "not broken: confirmation was not 'yes'",
        ));
    }
    Ok(())
}

/// How one entry's break ended.
enum Outcome {
    Broken,
    Failed(Error),
}

/// Breaks every half of `entry` and records the attempt in the audit log.
async fn break_entry(
    entry: &Entry,
    bopts: &BreakOptions,
    io: &mut Io<'_>,
    audit: &mut AuditLog,
) -> Result<Outcome, Error> {
    let mut removed = Vec::new();
    let mut first_error: Option<Error> = None;
    for h in &entry.halves {
        match h.store.break_lock(&h.lock, bopts).await {
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
    let outcome = match &first_error {
        None => "broken",
        Some(_) if !removed.is_empty() => "partly-broken",
        Some(e) => match e {
            Error::Changed { .. } => "changed",
            Error::Refused { .. } => "refused",
            _ => "failed",
        },
    };
    audit.record(&entry.locks(), outcome, first_error.as_ref())?;
    Ok(match first_error {
        None => Outcome::Broken,
        Some(e) => {
            if !removed.is_empty() {
                let _ = writeln!(
                    io.err,
                    "warning: lock {} was only partly removed: see the errors above",
                    entry.lock().id
                );
            }
            Outcome::Failed(e)
        }
    })
}

async fn break_cmd(
    args: BreakArgs,
    io: &mut Io<'_>,
    resolver: &dyn Resolver,
    opts: &ConnectOptions,
) -> Result<i32, Error> {
    if args.stale {
        return break_stale(args, io, resolver, opts).await;
    }
    let id = args.id.clone().unwrap_or_default();
    let ctx = ctx(&args.targets)?;
    let listing = list_all(&args.targets, io, resolver, opts).await?;
    let found: Vec<&Entry> = listing
        .entries
        .iter()
        .filter(|e| e.matches_id(&id))
        .collect();
    let entry = match found.as_slice() {
        [] => return Err(not_found("ID", &id, &listing)),
        [one] => *one,
        many => {
            let places: Vec<String> = many
                .iter()
                .map(|e| format!("{} ({})", e.lock().location, e.lock().target))
                .collect();
            return Err(Error::usage(format!(
                "ID {id} matches {} locks: {}; pass -t to choose one target",
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
        write_out(io, &format!("{summary}Dry run: nothing was changed.\n"))?;
        return Ok(exit::OK);
    }
    let _ = io.err.write_all(summary.as_bytes());
    let warn = if status == Status::Active {
        " It is NOT stale: its holder may still be running."
    } else {
        ""
    };
    confirm(
        io,
        args.yes,
        &entry.lock().target,
        &format!("Break lock {}?{warn}", entry.lock().id),
    )?;
    let mut audit = AuditLog::open(args.audit_log.as_deref())?;
    match break_entry(entry, &bopts, io, &mut audit).await? {
        Outcome::Broken => {
            let _ = writeln!(io.out, "Lock {} has been broken.", entry.lock().id);
            // A target that could not be listed may hold another half of this lock
            // (a DynamoDB row beside a lockfile): say so, and do not report plain success.
            Ok(partial_exit(&listing, io))
        }
        Outcome::Failed(e) => Ok(e.exit_code()),
    }
}

async fn break_stale(
    args: BreakArgs,
    io: &mut Io<'_>,
    resolver: &dyn Resolver,
    opts: &ConnectOptions,
) -> Result<i32, Error> {
    let mut ctx = ctx(&args.targets)?;
    let min_age = older_than(args.older_than.as_deref())?;
    // --older-than is the operator saying how old is stale for this run.
    if let Some(min) = min_age {
        ctx.stale_after = min;
    }
    let listing = list_all(&args.targets, io, resolver, opts).await?;
    let chosen: Vec<&Entry> = listing
        .entries
        .iter()
        .filter(|e| ctx.status(e.lock()) == Status::Stale && old_enough(e, &ctx, min_age))
        .collect();
    if chosen.is_empty() {
        write_out(
            io,
            &format!(
                "No stale locks to break. Looked in: {}\n",
                listing.targets.join(", ")
            ),
        )?;
        return Ok(partial_exit(&listing, io));
    }
    let table = render::table(&chosen, &ctx, io.color);
    if let Some(max) = args.max {
        if chosen.len() > max {
            let _ = io.err.write_all(table.as_bytes());
            return Err(Error::refused(
                listing.targets.join(", "),
                format!(
                    "{} stale locks match, more than --max {max}: nothing was broken",
                    chosen.len()
                ),
            ));
        }
    }
    if args.dry_run {
        write_out(
            io,
            &format!(
                "{table}Dry run: would break {} stale lock(s); nothing was changed.\n",
                chosen.len()
            ),
        )?;
        return Ok(partial_exit(&listing, io));
    }
    let _ = io.err.write_all(table.as_bytes());
    confirm(
        io,
        args.yes,
        &listing.targets.join(", "),
        &format!("Break these {} stale lock(s)?", chosen.len()),
    )?;
    let mut audit = AuditLog::open(args.audit_log.as_deref())?;
    let bopts = BreakOptions {
        force_foreign: false,
    };
    let (mut broken, mut changed, mut refused, mut failed) = (0, 0, 0, 0);
    for entry in chosen {
        match break_entry(entry, &bopts, io, &mut audit).await? {
            Outcome::Broken => broken += 1,
            Outcome::Failed(Error::Changed { .. }) => changed += 1,
            Outcome::Failed(Error::Refused { .. }) => refused += 1,
            Outcome::Failed(_) => failed += 1,
        }
    }
    let _ = writeln!(
        io.out,
        "broken {broken}, changed {changed}, refused {refused}, failed {failed}"
    );
    Ok(if failed > 0 || listing.failed > 0 {
        exit::FAILED
    } else if changed > 0 || refused > 0 {
        exit::REFUSED
    } else {
        exit::OK
    })
}

async fn wait(
    args: WaitArgs,
    io: &mut Io<'_>,
    resolver: &dyn Resolver,
    opts: &ConnectOptions,
) -> Result<i32, Error> {
    let timeout =
        duration::parse(&args.timeout).map_err(|e| Error::usage(format!("--timeout: {e}")))?;
    let interval =
        duration::parse(&args.interval).map_err(|e| Error::usage(format!("--interval: {e}")))?;
    let interval = interval
        .to_std()
        .unwrap_or_default()
        .max(std::time::Duration::from_millis(100));
    let deadline = std::time::Instant::now() + timeout.to_std().unwrap_or_default();
    loop {
        match list_all(&args.targets, io, resolver, opts).await {
            Ok(listing)
                if listing.failed == 0
                    && !listing.entries.iter().any(|e| e.matches_id(&args.id)) =>
            {
                let _ = writeln!(io.out, "Lock {} is gone.", args.id);
                return Ok(exit::OK);
            }
            Ok(_) => {}
            Err(e @ Error::Usage { .. }) => return Err(e),
            // A failing listing proves nothing: keep waiting until the deadline.
            Err(e) => {
                let _ = writeln!(io.err, "warning: {e}");
            }
        }
        if std::time::Instant::now() + interval > deadline {
            let _ = writeln!(
                io.err,
                "error: lock {} is still held after {}",
                args.id,
                duration::human(timeout)
            );
            return Ok(exit::ATTENTION);
        }
        tokio::time::sleep(interval).await;
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
