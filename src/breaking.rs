//! break --id and break --stale: confirmation, compare-and-delete per lock half, the
//! audit log, and the summary.

use crate::audit::AuditLog;
use crate::cli::BreakArgs;
use crate::commands::write_out;
use crate::listing::{ctx, list_all, not_found, old_enough, older_than, partial_exit, Entry};
use crate::{render, Io, Resolver};
use tflock_core::error::exit;
use tflock_core::{check_breakable, BreakOptions, ConnectOptions, Error, Status};

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

pub(crate) async fn break_cmd(
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
