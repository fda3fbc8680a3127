//! `tflock break --id ID` and `tflock break --stale`: confirmation, then for every
//! location of a lock an audited compare-and-delete, each reported on its own.

use super::App;
use super::{partial_exit, write_out};
use crate::audit::{self, AuditLog, Outcome};
use crate::cli::BreakArgs;
use crate::inventory::{Entry, Half, Listing};
use crate::settings::{chrono_duration, Ctx};
use crate::ui::{prompt, render, safe};
use crate::{exit, ui, Io};
use std::collections::HashSet;
use tflock_core::{check_breakable, BreakOptions, Error, Guard, Kind, Status};

/// One break run: the audit log, and which stores' guards were already reported.
struct Breaker {
    audit: AuditLog,
    bopts: BreakOptions,
    warned: HashSet<String>,
    /// An outcome record could not be written: exit 1 at the end.
    audit_failed: bool,
}

/// How one lock's break ended, over all its locations.
enum EntryOutcome {
    Broken,
    /// Nothing or not everything was removed; the first failure decides the exit code.
    Failed(Error),
}

impl Breaker {
    /// Breaks every location of `entry`, each under its own intent and outcome records.
    async fn break_entry(&mut self, entry: &Entry, io: &mut Io<'_>) -> Result<EntryOutcome, Error> {
        let mut removed = Vec::new();
        let mut not_removed = Vec::new();
        let mut first_error: Option<Error> = None;
        let several = entry.halves.len() > 1;
        for h in &entry.halves {
            let guard = self.guard(h, io).await?;
            let id = audit::break_id();
            // No record of the intent, no break.
            self.audit.intent(&id, &h.lock, &guard)?;
            let result = h.store.break_lock(&h.lock, &self.bopts).await;
            let outcome = Outcome::of(&result);
            let detail = result.as_ref().err().map(|e| e.to_string());
            if let Err(e) = self
                .audit
                .outcome(&id, &h.lock, &guard, outcome, detail.as_deref())
            {
                self.audit_failed = true;
                let _ = writeln!(
                    io.err,
                    "WARNING: the outcome of breaking {} ({}) could not be recorded in the audit log: {}",
                    safe(&h.lock.location),
                    outcome.as_str(),
                    safe(&e.to_string())
                );
            }
            match result {
                Ok(broken) => {
                    for r in &broken.removed {
                        let _ = writeln!(io.out, "removed {}", safe(r));
                    }
                    for w in &broken.warnings {
                        ui::warn_text(io, w);
                    }
                    removed.push(h.lock.location.clone());
                }
                Err(e) => {
                    if several {
                        // One half's failure says nothing about the other half.
                        let _ = writeln!(
                            io.err,
                            "error: {}: {}{} (this location was not removed)",
                            safe(e.target().unwrap_or(&h.lock.target)),
                            safe(e.message()),
                            e.hint()
                                .map(|h| format!(" ({})", safe(h)))
                                .unwrap_or_default()
                        );
                    } else {
                        ui::error(io, &e);
                    }
                    not_removed.push(format!("{} ({})", h.lock.location, outcome.as_str()));
                    first_error.get_or_insert(e);
                }
            }
        }
        Ok(match first_error {
            None => EntryOutcome::Broken,
            Some(e) => {
                if !removed.is_empty() {
                    let _ = writeln!(
                        io.err,
                        "warning: lock {} was only partly removed: removed {}; not removed {}",
                        safe(entry.lock().name()),
                        safe(&removed.join(", ")),
                        safe(&not_removed.join(", "))
                    );
                }
                EntryOutcome::Failed(e)
            }
        })
    }

    /// What guards breaks on this half's store; its warning is printed once per store.
    async fn guard(&mut self, h: &Half, io: &mut Io<'_>) -> Result<Guard, Error> {
        let guard = h.store.break_guard().await?;
        if let Some(w) = &guard.warning {
            if self.warned.insert(h.store.target().to_string()) {
                ui::warn_text(io, w);
            }
        }
        Ok(guard)
    }
}

pub async fn run(args: BreakArgs, app: &mut App<'_, '_>) -> Result<i32, Error> {
    if args.stale {
        return break_stale(&args, app).await;
    }
    let ctx = Ctx::new(args.targets.stale_after);
    let pasted = match &args.from_error {
        Some(from) => Some(super::pasted::read(from, app.io)?),
        None => None,
    };
    let listing = app.list(&args.targets).await?;
    let found: Vec<&Entry> = match &pasted {
        Some(p) => vec![super::pasted::find(&listing, p)?],
        None => {
            let id = args.id.as_deref().unwrap_or_default();
            listing
                .entries
                .iter()
                .filter(|e| e.matches_id(id))
                .collect()
        }
    };
    let id = args.id.clone().unwrap_or_default();
    let entry = match found.as_slice() {
        [] => return Err(listing.not_found("ID", &id)),
        [one] => *one,
        many => {
            let places: Vec<String> = many
                .iter()
                .map(|e| format!("{} ({})", e.lock().location, e.lock().target))
                .collect();
            return Err(Error::new(
                Kind::Usage,
                format!(
                    "ID {id} matches {} locks: {}; pass -t to choose one target",
                    many.len(),
                    places.join(", ")
                ),
            ));
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
        summary.push_str(&format!("  {}\n", safe(&h.lock.location)));
    }
    if args.dry_run {
        write_out(app.io, &format!("{summary}Dry run: nothing was changed.\n"))?;
        return Ok(exit::OK);
    }
    let _ = app.io.err.write_all(summary.as_bytes());
    let warn = if status == Status::Active {
        " It is NOT stale: its holder may still be running."
    } else {
        ""
    };
    prompt::confirm(
        app.io,
        args.yes,
        &entry.lock().target,
        &format!("Break lock {}?{warn}", safe(entry.lock().name())),
    )?;
    let mut breaker = Breaker {
        audit: AuditLog::open(args.audit_log.as_deref(), &command_line())?,
        bopts,
        warned: HashSet::new(),
        audit_failed: false,
    };
    let outcome = breaker.break_entry(entry, app.io).await?;
    let code = match outcome {
        EntryOutcome::Broken => {
            let _ = writeln!(
                app.io.out,
                "Lock {} has been broken.",
                safe(entry.lock().name())
            );
            // A target that could not be listed may hold another half of this lock
            // (a DynamoDB row beside a lockfile): say so, and do not report plain success.
            partial_exit(&listing, app.io)
        }
        EntryOutcome::Failed(e) => exit::of(&e),
    };
    Ok(if breaker.audit_failed {
        exit::FAILED.max(code)
    } else {
        code
    })
}

async fn break_stale(args: &BreakArgs, app: &mut App<'_, '_>) -> Result<i32, Error> {
    let mut ctx = Ctx::new(args.targets.stale_after);
    let min_age = args.older_than.map(chrono_duration);
    // --older-than is the operator saying how old is stale for this run.
    if let Some(min) = min_age {
        ctx.stale_after = min;
    }
    let listing: Listing = app.list(&args.targets).await?;
    let chosen: Vec<&Entry> = listing
        .entries
        .iter()
        .filter(|e| ctx.status(e.lock()) == Status::Stale && e.old_enough(&ctx, min_age))
        .collect();
    if chosen.is_empty() {
        write_out(
            app.io,
            &format!("No stale locks to break. Looked in: {}\n", listing.names()),
        )?;
        return Ok(partial_exit(&listing, app.io));
    }
    let table = render::table(&chosen, &ctx, app.io.color);
    if let Some(max) = args.max {
        if chosen.len() > max {
            let _ = app.io.err.write_all(table.as_bytes());
            return Err(Error::refused(
                listing.names(),
                format!(
                    "{} stale locks match, more than --max {max}: nothing was broken",
                    chosen.len()
                ),
            ));
        }
    }
    if args.dry_run {
        write_out(
            app.io,
            &format!(
                "{table}Dry run: would break {} stale lock(s); nothing was changed.\n",
                chosen.len()
            ),
        )?;
        return Ok(partial_exit(&listing, app.io));
    }
    let _ = app.io.err.write_all(table.as_bytes());
    prompt::confirm(
        app.io,
        args.yes,
        &listing.names(),
        &format!("Break these {} stale lock(s)?", chosen.len()),
    )?;
    let mut breaker = Breaker {
        audit: AuditLog::open(args.audit_log.as_deref(), &command_line())?,
        bopts: BreakOptions::default(),
        warned: HashSet::new(),
        audit_failed: false,
    };
    let (mut broken, mut changed, mut refused, mut failed) = (0, 0, 0, 0);
    for entry in chosen {
        match breaker.break_entry(entry, app.io).await {
            Ok(EntryOutcome::Broken) => broken += 1,
            Ok(EntryOutcome::Failed(e)) => match e.kind() {
                Kind::Changed => changed += 1,
                Kind::Refused => refused += 1,
                _ => failed += 1,
            },
            // The intent could not be recorded: stop, nothing more is broken.
            Err(e) => {
                let _ = writeln!(
                    app.io.out,
                    "broken {broken}, changed {changed}, refused {refused}, failed {failed} (stopped)"
                );
                return Err(e);
            }
        }
    }
    let _ = writeln!(
        app.io.out,
        "broken {broken}, changed {changed}, refused {refused}, failed {failed}"
    );
    Ok(
        if failed > 0 || listing.failed > 0 || breaker.audit_failed {
            exit::FAILED
        } else if changed > 0 || refused > 0 {
            exit::REFUSED
        } else {
            exit::OK
        },
    )
}

/// This run's command line, for the audit record (secrets redacted there).
fn command_line() -> Vec<String> {
    std::env::args().collect()
}
