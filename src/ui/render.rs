//! Table, JSON and detail views of locks. docs/json.md documents the JSON. Every field
//! shown as text is escaped ([`safe`]); JSON carries the exact values (JSON escapes them).

use crate::inventory::{Entry, Half};
use crate::settings::Ctx;
use crate::ui::safe;
use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, Color, ContentArrangement, Table};
use serde::{Serialize, Serializer};
use std::collections::BTreeMap;
use std::io::{self, Write};
use tflock_core::lockinfo::go_time;
use tflock_core::text::shell_quote;
use tflock_core::LockInfo;
use tflock_core::Status;

fn age(entry: &Entry, ctx: &Ctx) -> String {
    entry
        .lock()
        .age(ctx.now)
        .map(tflock_core::duration::human)
        .unwrap_or_else(|| "?".into())
}

fn status_color(s: Status) -> Color {
    match s {
        Status::Held | Status::Active => Color::Green,
        Status::Stale => Color::Red,
        Status::Foreign | Status::Unreadable => Color::Yellow,
    }
}

fn or_unknown(s: &str) -> &str {
    if s.is_empty() {
        "?"
    } else {
        s
    }
}

pub fn table<E: std::borrow::Borrow<Entry>>(entries: &[E], ctx: &Ctx, color: bool) -> String {
    let discovered = entries.iter().any(|e| e.borrow().current.is_some());
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Disabled);
    if !color {
        t.force_no_tty();
    }
    let mut header = vec!["BACKEND", "PATH", "ID", "OPERATION", "WHO", "AGE", "STATUS"];
    if discovered {
        header.insert(2, "WORKSPACE");
    }
    t.set_header(header);
    for e in entries {
        let e = e.borrow();
        let l = e.lock();
        let info = l.info.as_ref();
        let status = ctx.status(l);
        let mut status_text = status.to_string();
        if let Some(h) = &l.holder {
            status_text.push_str(&format!(" ({})", safe(h)));
        }
        let mut status_cell = Cell::new(status_text);
        if color {
            status_cell = status_cell.fg(status_color(status));
        }
        let path = if l.path.is_empty() {
            &l.location
        } else {
            &l.path
        };
        let mut row = vec![
            Cell::new(e.backends()),
            Cell::new(safe(path)),
            Cell::new(safe(or_unknown(&l.id))),
            Cell::new(safe(or_unknown(info.map_or("", |i| &i.operation)))),
            Cell::new(safe(or_unknown(info.map_or("", |i| &i.who)))),
            Cell::new(age(e, ctx)),
            status_cell,
        ];
        if discovered {
            let ws = safe(l.workspace.as_deref().unwrap_or("?")).into_owned();
            row.insert(
                2,
                Cell::new(if e.current == Some(true) {
                    format!("{ws} (current)")
                } else {
                    ws
                }),
            );
        }
        t.add_row(row);
    }
    format!("{t}\n")
}

/// One lock of `list --json` / `-o jsonl` (docs/json.md), in the documented key order,
/// borrowed from the entry and serialised straight to the output. Building a
/// `serde_json::Value` per lock instead cost about 75 allocations a lock: most of the
/// CPU of listing 10,000 DynamoDB rows (docs/benchmarks.md).
#[derive(Serialize)]
struct JsonLock<'a> {
    backend: &'static str,
    target: &'a str,
    path: &'a str,
    id: &'a str,
    aliases: &'a [String],
    workspace: Option<&'a str>,
    current_workspace: Option<bool>,
    location: &'a str,
    state: Option<&'a str>,
    operation: Option<&'a str>,
    who: Option<&'a str>,
    version: Option<&'a str>,
    created: Option<String>,
    age_seconds: Option<i64>,
    held: Option<bool>,
    holder: Option<&'a str>,
    stale: bool,
    status: &'static str,
    foreign: bool,
    info: Option<&'a LockInfo>,
    info_error: Option<&'a str>,
    details: &'a BTreeMap<String, String>,
    locations: Locations<'a>,
}

/// Where each half of the lock lives: `[{backend, target, location}, ...]`.
struct Locations<'a>(&'a [Half]);

impl Serialize for Locations<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Location<'a> {
            backend: &'static str,
            target: &'a str,
            location: &'a str,
        }
        s.collect_seq(self.0.iter().map(|h| Location {
            backend: h.lock.backend.as_str(),
            target: &h.lock.target,
            location: &h.lock.location,
        }))
    }
}

impl<'a> JsonLock<'a> {
    fn new(e: &'a Entry, ctx: &Ctx) -> Self {
        let l = e.lock();
        let info = l.info.as_ref();
        let status = ctx.status(l);
        JsonLock {
            backend: l.backend.as_str(),
            target: &l.target,
            path: &l.path,
            id: &l.id,
            aliases: &l.aliases,
            workspace: l.workspace.as_deref(),
            current_workspace: e.current,
            location: &l.location,
            state: l.state.as_deref(),
            operation: info.map(|i| i.operation.as_str()),
            who: info.map(|i| i.who.as_str()),
            version: info.map(|i| i.version.as_str()),
            created: l.created().map(|c| go_time(Some(c))),
            age_seconds: l.age(ctx.now).map(|a| a.num_seconds()),
            held: l.held,
            holder: l.holder.as_deref(),
            stale: status == Status::Stale,
            status: status.as_str(),
            foreign: l.foreign,
            info,
            info_error: l.info_error.as_deref(),
            details: &l.details,
            locations: Locations(&e.halves),
        }
    }
}

/// One JSON array, written element by element (no whole document in memory).
pub fn write_json_list<E: std::borrow::Borrow<Entry>>(
    out: &mut dyn Write,
    entries: &[E],
    ctx: &Ctx,
) -> io::Result<()> {
    let mut json = serde_json::Serializer::pretty(&mut *out);
    // io::Error::from keeps a write error's kind (a closed pipe ends quietly).
    json.collect_seq(entries.iter().map(|e| JsonLock::new(e.borrow(), ctx)))
        .map_err(io::Error::from)?;
    out.write_all(b"\n")
}

/// One JSON object per line.
pub fn write_json_lines<E: std::borrow::Borrow<Entry>>(
    out: &mut dyn Write,
    entries: &[E],
    ctx: &Ctx,
) -> io::Result<()> {
    for e in entries {
        serde_json::to_writer(&mut *out, &JsonLock::new(e.borrow(), ctx))
            .map_err(io::Error::from)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// Everything known about one lock, for `inspect` and before a break.
pub fn details(e: &Entry, ctx: &Ctx) -> String {
    let l = e.lock();
    let status = ctx.status(l);
    let mut s = String::new();
    let line = |s: &mut String, k: &str, v: &str| s.push_str(&format!("  {k:<10} {}\n", safe(v)));
    s.push_str(&format!("Lock {} ({})\n", safe(or_unknown(&l.id)), status));
    line(&mut s, "Backend:", &e.backends());
    for h in &e.halves {
        line(&mut s, "Target:", &h.lock.target);
        line(&mut s, "Location:", &h.lock.location);
    }
    let state = l.state.as_deref().unwrap_or(&l.path);
    line(&mut s, "State:", or_unknown(state));
    if let Some(ws) = &l.workspace {
        line(&mut s, "Workspace:", ws);
    }
    let created = l
        .created()
        .map(|c| go_time(Some(c)))
        .unwrap_or_else(|| "unknown".into());
    line(
        &mut s,
        "Age:",
        &format!("{} (created {created})", age(e, ctx)),
    );
    let why = match status {
        Status::Held => format!(
            "held by {}: the holder is alive",
            l.holder.as_deref().unwrap_or("a live process")
        ),
        Status::Active => format!(
            "holder not visible; younger than --stale-after {}",
            tflock_core::duration::human(ctx.stale_after)
        ),
        Status::Stale if l.held == Some(false) => {
            "no process holds it: a leftover from a crashed run".into()
        }
        Status::Stale => format!(
            "holder not visible; older than --stale-after {}",
            tflock_core::duration::human(ctx.stale_after)
        ),
        Status::Foreign => {
            "locked without Terraform lock metadata (another tool, or a crash mid-lock)".into()
        }
        Status::Unreadable => format!(
            "lock metadata unreadable: {}",
            l.info_error.as_deref().unwrap_or("?")
        ),
    };
    line(&mut s, "Status:", &format!("{status}: {why}"));
    if !l.aliases.is_empty() {
        line(&mut s, "Aliases:", &l.aliases.join(", "));
    }
    for (k, v) in &l.details {
        line(&mut s, &format!("{}:", safe(k)), v);
    }
    if let Some(err) = &l.info_error {
        if status != Status::Unreadable {
            line(&mut s, "Warning:", err);
        }
    }
    if let Some(info) = &l.info {
        for text in info.terraform_block().lines() {
            s.push_str(&safe(text));
            s.push('\n');
        }
    }
    s
}

/// The exact command that breaks this lock, naming its targets the way they were
/// found, every argument quoted for a POSIX shell.
pub fn break_command(e: &Entry) -> String {
    let l = e.lock();
    let mut words = vec![
        "tflock".to_string(),
        "break".to_string(),
        "--id".to_string(),
        shell_quote(l.name()),
    ];
    let mut seen: Vec<&Vec<String>> = Vec::new();
    for h in &e.halves {
        if !seen.contains(&h.selector.as_ref()) {
            seen.push(&h.selector);
            words.extend(h.selector.iter().map(|w| shell_quote(w)));
        }
    }
    words.join(" ")
}

pub fn break_hint(e: &Entry) -> String {
    format!("Break it with:\n  {}\n", break_command(e))
}
