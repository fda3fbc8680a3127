//! `tflock doctor`: what keeps Terraform from running around its locks, found by each
//! backend (`LockStore::diagnose`) and across targets (the two halves of an S3
//! migration-mode lock that disagree), each with its evidence and the exact fix.
//! `--fix` applies the fixes the backends offer, each audited like a break and applied
//! only if what it was decided on is unchanged.
//!
//! Exit codes: 0 healthy (or every problem fixed), 5 problems found (left), 4 a fix was
//! refused or something changed since the check, 1 a failure.

use super::write_out;
use crate::audit::{self, AuditLog, Outcome};
use crate::cli::DoctorArgs;
use crate::inventory::{ask_all, merge, Answers, Entry, Half};
use crate::settings::{resolve, Resolved, Scope};
use crate::ui::{prompt, safe};
use crate::{exit, ui, Io, Resolver};
use serde_json::{json, Value};
use std::path::Path;
use std::sync::Arc;
use tflock_core::pasted::{self, DigestMismatch};
use tflock_core::text::shell_quote;
use tflock_core::{ConnectOptions, Error, Finding, Kind, LockStore, Repaired, Target};

/// One problem, the store that found it, and how to name its targets on a command line.
struct Problem {
    finding: Finding,
    /// The store that offered the fix (`None` for cross-target findings).
    store: Option<Arc<dyn LockStore>>,
    selector: Vec<String>,
    /// What `--fix` did, when it ran.
    result: Option<FixResult>,
}

struct FixResult {
    outcome: Outcome,
    done: Vec<String>,
    error: Option<Error>,
}

/// What checking every target found.
struct Checkup {
    problems: Vec<Problem>,
    targets: Vec<String>,
    failed: usize,
}

pub async fn run(args: DoctorArgs, app: &mut super::App<'_, '_>) -> Result<i32, Error> {
    let (resolver, opts) = (app.resolver, app.opts.clone());
    let (io, opts) = (&mut *app.io, &opts);
    let pasted = match &args.from_error {
        Some(from) => Some(read_pasted(from, io)?),
        None => None,
    };
    let mut scope = resolve(&args.targets)?;
    let state = match &pasted {
        Some(p) => Some(narrow(&mut scope, p)?),
        None => None,
    };
    let mut checkup = check(scope, io, resolver, opts).await?;
    if let Some(state) = &state {
        checkup.problems.retain(|p| &p.finding.subject == state);
    }
    let fixable = checkup
        .problems
        .iter()
        .filter(|p| p.finding.fix.is_some())
        .count();
    if !args.fix || args.dry_run || fixable == 0 {
        report(&args, io, &checkup, pasted.as_ref(), state.as_deref())?;
        if (args.fix || args.dry_run) && !args.json && fixable > 0 {
            write_out(
                io,
                &format!("Dry run: would apply {fixable} fix(es); nothing was changed.\n"),
            )?;
        } else if args.fix && !args.json && !checkup.problems.is_empty() {
            write_out(
                io,
                "None of these can be fixed automatically: follow the advice above.\n",
            )?;
        }
        return Ok(exit_code(&checkup, false));
    }
    if !args.json {
        report(&args, io, &checkup, pasted.as_ref(), state.as_deref())?;
    }
    prompt::confirm(
        io,
        args.yes,
        &checkup.targets.join(", "),
        &format!("Apply {fixable} fix(es)?"),
    )?;
    let mut audit = AuditLog::open(args.audit_log.as_deref(), &command_line())?;
    let mut audit_failed = false;
    for p in checkup.problems.iter_mut() {
        let (Some(store), Some(fix)) = (&p.store, &p.finding.fix) else {
            continue;
        };
        let id = audit::break_id();
        // No record of the intent, no fix.
        audit.fix_intent(&id, &p.finding)?;
        let result = store.repair(fix).await;
        let outcome = Outcome::of_fix(&result);
        let detail = result.as_ref().err().map(|e| e.to_string());
        let done = result.as_ref().map(|r| r.done.clone()).unwrap_or_default();
        if let Err(e) = audit.fix_outcome(&id, &p.finding, outcome, detail.as_deref(), &done) {
            audit_failed = true;
            ui::warn_text(
                io,
                &format!(
                    "the outcome of a fix ({}) could not be recorded in the audit log: {}",
                    outcome.as_str(),
                    e
                ),
            );
        }
        if !args.json {
            match &result {
                Ok(Repaired { done }) => {
                    for d in done {
                        let _ = writeln!(io.out, "fixed: {}", safe(d));
                    }
                }
                Err(e) => ui::error(io, e),
            }
        }
        p.result = Some(FixResult {
            outcome,
            done,
            error: result.err(),
        });
    }
    let count = |o: Outcome| {
        checkup
            .problems
            .iter()
            .filter(|p| p.result.as_ref().map(|r| r.outcome) == Some(o))
            .count()
    };
    if args.json {
        write_json(io, &checkup, state.as_deref())?;
    } else {
        let _ = writeln!(
            io.out,
            "fixed {}, changed {}, refused {}, failed {}",
            count(Outcome::Applied),
            count(Outcome::Changed),
            count(Outcome::Refused),
            count(Outcome::Failed) + count(Outcome::Unknown)
        );
    }
    let code = exit_code(&checkup, true);
    Ok(if audit_failed {
        exit::FAILED.max(code)
    } else {
        code
    })
}

/// 1 a failure (a target, or a fix); else 4 a fix refused or changed; else 5 problems
/// left; else 0.
fn exit_code(c: &Checkup, fixed: bool) -> i32 {
    let outcome = |p: &Problem| p.result.as_ref().map(|r| r.outcome);
    let failed = c
        .problems
        .iter()
        .any(|p| matches!(outcome(p), Some(Outcome::Failed | Outcome::Unknown)));
    let refused = c
        .problems
        .iter()
        .any(|p| matches!(outcome(p), Some(Outcome::Changed | Outcome::Refused)));
    let left = c
        .problems
        .iter()
        .any(|p| !fixed || outcome(p) != Some(Outcome::Applied));
    if c.failed > 0 || failed {
        exit::FAILED
    } else if refused {
        exit::REFUSED
    } else if left {
        exit::ATTENTION
    } else {
        exit::OK
    }
}

/// Opens every target and asks each for its problems, concurrently; then the checks
/// across targets. A target that fails is reported and counted; a usage error stops.
async fn check(
    scope: Scope,
    io: &mut Io<'_>,
    resolver: &dyn Resolver,
    opts: &ConnectOptions,
) -> Result<Checkup, Error> {
    let targets = scope.targets;
    let Answers { each, mut failed } = ask_all(&targets, io, resolver, opts, |store| async move {
        store.diagnose().await
    })
    .await?;
    let mut problems = Vec::new();
    let mut stores: Vec<Option<Arc<dyn LockStore>>> = Vec::new();
    for (answer, t) in each.into_iter().zip(&targets) {
        let Some((store, found)) = answer else {
            stores.push(None);
            continue;
        };
        problems.extend(found.into_iter().map(|finding| Problem {
            finding,
            store: Some(store.clone()),
            selector: t.selector.clone(),
            result: None,
        }));
        stores.push(Some(store));
    }
    for (a, b) in halves_pairs(&targets) {
        let (Some(s3), Some(ddb)) = (&stores[a], &stores[b]) else {
            continue;
        };
        match halves_disagree(s3, ddb, &targets[a], &targets[b]).await {
            Ok(found) => problems.extend(found),
            Err(e) => {
                failed += 1;
                ui::warn(io, &e);
            }
        }
    }
    Ok(Checkup {
        problems,
        targets: targets.iter().map(|r| r.target.url.clone()).collect(),
        failed,
    })
}

/// The `(s3, dynamodb)` target pairs that cover one s3 backend configuration in
/// migration mode (`use_lockfile` and `dynamodb_table`): the same bucket, key and
/// workspace prefix, as discovery makes them.
fn halves_pairs(targets: &[Resolved]) -> Vec<(usize, usize)> {
    let config = |t: &Target| {
        Some((
            t.param("key")?.to_string(),
            t.param("workspace_key_prefix").map(str::to_string),
        ))
    };
    let mut pairs = Vec::new();
    for (a, s3) in targets.iter().enumerate() {
        if s3.target.scheme != "s3" || config(&s3.target).is_none() {
            continue;
        }
        for (b, ddb) in targets.iter().enumerate() {
            if ddb.target.scheme == "dynamodb"
                && ddb.target.param("bucket") == Some(s3.target.host.as_str())
                && config(&ddb.target) == config(&s3.target)
            {
                pairs.push((a, b));
            }
        }
    }
    pairs
}

/// In migration mode Terraform writes the same lock to the lockfile and the DynamoDB
/// row: a lock in only one of them, or different locks in the two, is what a run that
/// died between the two writes (or deletes) leaves behind.
async fn halves_disagree(
    s3: &Arc<dyn LockStore>,
    ddb: &Arc<dyn LockStore>,
    s3_target: &Resolved,
    ddb_target: &Resolved,
) -> Result<Vec<Problem>, Error> {
    let (a, b) = futures::future::join(s3.list(), ddb.list()).await;
    let mut halves = Vec::new();
    for (i, (store, locks)) in [(s3, a?), (ddb, b?)].into_iter().enumerate() {
        let selector = Arc::new(Vec::new());
        halves.extend(locks.into_iter().map(|lock| Half {
            store: store.clone(),
            lock,
            selector: selector.clone(),
            target_index: i,
        }));
    }
    let entries = merge(halves);
    let mut selector = s3_target.selector.clone();
    if ddb_target.selector != s3_target.selector {
        selector.extend(ddb_target.selector.iter().cloned());
    }
    let target = format!("{} + {}", s3.target(), ddb.target());
    let mut by_path: std::collections::BTreeMap<&str, Vec<&Entry>> = Default::default();
    for e in entries.iter().filter(|e| e.halves.len() == 1) {
        by_path.entry(e.lock().path.as_str()).or_default().push(e);
    }
    let mut problems = Vec::new();
    for (path, alone) in by_path {
        let evidence: Vec<(String, String)> = alone
            .iter()
            .map(|e| {
                let l = e.lock();
                let info = l.info.as_ref();
                (
                    l.location.clone(),
                    format!(
                        "ID {}, {} by {}, created {}",
                        if l.id.is_empty() { "?" } else { &l.id },
                        info.map_or("?", |i| i.operation.as_str()),
                        info.map_or("?", |i| i.who.as_str()),
                        l.created()
                            .map(|c| tflock_core::lockinfo::go_time(Some(c)))
                            .unwrap_or_else(|| "?".into())
                    ),
                )
            })
            .collect();
        let break_cmd = |e: &Entry| format!("tflock break --id {}", shell_quote(e.lock().name()));
        let (summary, advice) = match alone.as_slice() {
            [one] => {
                let (here, missing) = if one.halves[0].target_index == 1 {
                    ("the DynamoDB table", "lockfile")
                } else {
                    ("the lockfile", "DynamoDB row")
                };
                (
                    format!(
                        "{path} is locked in {here} only, without its {missing}: Terraform (use_lockfile with dynamodb_table) writes and removes both"
                    ),
                    format!(
                        "A run that died between the two writes (or the two deletes) leaves this; a run taking the lock right now shows it for a moment. If no run is going (see who and created), remove it:\n{}",
                        break_cmd(one)
                    ),
                )
            }
            many => (
                format!(
                    "{path} is locked with different IDs in the lockfile and the DynamoDB table: at least one of them is left over from another run"
                ),
                format!(
                    "Find out which run is still going (see who and created), then remove the other lock:\n{}",
                    many.iter()
                        .map(|e| break_cmd(e))
                        .collect::<Vec<_>>()
                        .join("\n")
                ),
            ),
        };
        problems.push(Problem {
            finding: Finding {
                kind: "halves-disagree",
                target: target.clone(),
                subject: path.to_string(),
                workspace: alone[0].lock().workspace.clone(),
                summary,
                evidence,
                advice,
                fix: None,
            },
            store: None,
            selector: selector.clone(),
            result: None,
        });
    }
    Ok(problems)
}

/// Reads the pasted error (`-`: stdin), bounded like every pasted text.
fn read_pasted(from: &Path, io: &mut Io<'_>) -> Result<DigestMismatch, Error> {
    let shown = safe(&from.display().to_string()).into_owned();
    let bytes = if from.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(
            &mut std::io::Read::take(&mut io.input, pasted::MAX_INPUT as u64 + 1),
            &mut buf,
        )
        .map_err(|e| Error::new(Kind::Usage, format!("reading stdin: {e}")))?;
        buf
    } else {
        tflock_core::fsread::read_bounded(from, pasted::MAX_INPUT as u64)
            .map_err(|e| Error::new(Kind::Usage, e.to_string()))?
    };
    pasted::parse_digest_error(&String::from_utf8_lossy(&bytes)).ok_or_else(|| {
        Error::new(
            Kind::Usage,
            format!(
                "{shown}: no \"state data in S3 does not have the expected content\" error with a checksum found"
            ),
        )
        .with_hint("paste the whole error Terraform printed (colour, -no-color and -json forms are read)")
    })
}

/// Keeps the targets that hold the digest row the paste names (DynamoDB tables), each
/// covering that state; returns the state (`bucket/key`).
fn narrow(scope: &mut Scope, d: &DigestMismatch) -> Result<String, Error> {
    let row = d.digest_row.as_deref().ok_or_else(|| {
        Error::new(
            Kind::Usage,
            "the pasted error does not name its bucket and key (an older Terraform or OpenTofu wording)",
        )
        .with_hint("run tflock doctor without --from-error in the working directory, or with -t 'dynamodb://TABLE?bucket=BUCKET&key=KEY'")
    })?;
    let state = row.strip_suffix("-md5").unwrap_or(row).to_string();
    let (bucket, key) = state.split_once('/').unwrap_or((state.as_str(), ""));
    let mut reasons = Vec::new();
    let mut kept = Vec::new();
    for mut r in std::mem::take(&mut scope.targets) {
        if r.target.scheme != "dynamodb" {
            continue;
        }
        match (r.target.param("bucket"), r.target.param("key")) {
            (Some(b), Some(k)) => {
                // A state of this configuration: its key, or a workspace's `<prefix>/<ws>/<key>`.
                if b != bucket || (k != key && !key.ends_with(&format!("/{k}"))) {
                    reasons.push(format!("{} covers bucket {b} key {k}", safe(&r.target.url)));
                    continue;
                }
            }
            _ => {
                // Every digest row of the table would be read: only this one.
                r.target.params.insert("bucket".into(), bucket.to_string());
                r.target.params.insert("key".into(), key.to_string());
                r.target.params.remove("workspace_key_prefix");
            }
        }
        kept.push(r);
    }
    if kept.is_empty() {
        let msg = format!(
            "the pasted error is about the digest row {} of {}, which none of these targets holds{}",
            safe(row),
            safe(&state),
            if reasons.is_empty() {
                " (no dynamodb:// target)".to_string()
            } else {
                format!(": {}", reasons.join("; "))
            }
        );
        return Err(Error::new(Kind::Usage, msg).with_hint(
            "run tflock doctor --from-error in the working directory of that configuration, or pass -t dynamodb://TABLE",
        ));
    }
    scope.targets = kept;
    Ok(state)
}

/// The tflock commands of an advice, with the targets they need (as they were given).
fn advice_lines(p: &Problem) -> Vec<String> {
    p.finding
        .advice
        .lines()
        .map(|l| {
            if l.starts_with("tflock ") && !p.selector.is_empty() {
                let sel: Vec<String> = p.selector.iter().map(|w| shell_quote(w)).collect();
                format!("{l} {}", sel.join(" "))
            } else {
                l.to_string()
            }
        })
        .collect()
}

fn report(
    args: &DoctorArgs,
    io: &mut Io<'_>,
    c: &Checkup,
    pasted: Option<&DigestMismatch>,
    state: Option<&str>,
) -> Result<(), Error> {
    if args.json {
        return write_json(io, c, state);
    }
    let mut s = String::new();
    let n = c.problems.len();
    for (i, p) in c.problems.iter().enumerate() {
        let f = &p.finding;
        s.push_str(&format!(
            "Problem {} of {n}: {}{}\n  {}\n",
            i + 1,
            f.kind,
            f.workspace
                .as_deref()
                .map(|w| format!(" (workspace {})", safe(w)))
                .unwrap_or_default(),
            safe(&f.summary)
        ));
        s.push_str(&format!("  Target:   {}\n", safe(&f.target)));
        s.push_str(&format!("  State:    {}\n", safe(&f.subject)));
        s.push_str("  Evidence:\n");
        let width = f.evidence.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        for (k, v) in &f.evidence {
            s.push_str(&format!(
                "    {:<width$}  {}\n",
                format!("{}:", safe(k)),
                safe(v),
                width = width + 1
            ));
        }
        if let Some(d) = pasted {
            for (what, value) in [("stored", &d.stored), ("calculated", &d.calculated)] {
                let seen = f
                    .evidence
                    .iter()
                    .any(|(_, v)| v.eq_ignore_ascii_case(value));
                if !value.is_empty() && !seen {
                    s.push_str(&format!(
                        "    (the pasted error's {what} checksum {} is no longer what is there: something changed since it was printed)\n",
                        safe(value)
                    ));
                }
            }
        }
        s.push_str("  What to do:\n");
        for l in advice_lines(p) {
            s.push_str(&format!("    {}\n", safe(&l)));
        }
        if let Some(fix) = &f.fix {
            s.push_str(&format!(
                "  tflock doctor --fix would: {}\n",
                safe(&fix.description)
            ));
        }
        s.push('\n');
    }
    let names = safe(&c.targets.join(", ")).into_owned();
    let fixable = c
        .problems
        .iter()
        .filter(|p| p.finding.fix.is_some())
        .count();
    if n == 0 {
        match state {
            Some(st) => s.push_str(&format!(
                "No problem with the digest of {} now: Terraform should accept it (checked in {names}). Run terraform plan again.\n",
                safe(st)
            )),
            None => s.push_str(&format!("No problems found. Checked: {names}\n")),
        }
    } else {
        s.push_str(&format!(
            "{n} problem(s) found in {names}; {fixable} can be fixed with tflock doctor --fix.\n"
        ));
    }
    if c.failed > 0 {
        s.push_str(&format!(
            "{} check(s) failed (see the warnings above): this report is incomplete.\n",
            c.failed
        ));
    }
    write_out(io, &s)
}

fn write_json(io: &mut Io<'_>, c: &Checkup, state: Option<&str>) -> Result<(), Error> {
    let problems: Vec<Value> = c
        .problems
        .iter()
        .map(|p| {
            let f = &p.finding;
            json!({
                "kind": f.kind,
                "target": f.target,
                "subject": f.subject,
                "workspace": f.workspace,
                "summary": f.summary,
                "evidence": f.evidence.iter().map(|(k, v)| json!({"name": k, "value": v})).collect::<Vec<_>>(),
                "advice": advice_lines(p).join("\n"),
                "fix": f.fix.as_ref().map(|x| json!({"description": x.description})),
                "fix_result": p.result.as_ref().map(|r| json!({
                    "outcome": r.outcome.as_str(),
                    "done": r.done,
                    "error": r.error.as_ref().map(|e| e.to_string()),
                })),
            })
        })
        .collect();
    let doc = json!({
        "healthy": c.problems.is_empty() && c.failed == 0,
        "targets": c.targets,
        "failed_targets": c.failed,
        "state": state,
        "problems": problems,
    });
    let text =
        serde_json::to_string_pretty(&doc).map_err(|e| Error::backend("stdout", e.to_string()))?;
    write_out(io, &(text + "\n"))
}

/// This run's command line, for the audit record (secrets redacted there).
fn command_line() -> Vec<String> {
    std::env::args().collect()
}
