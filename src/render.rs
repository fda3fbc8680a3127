//! Table, JSON and detail views of locks. docs/json.md documents the JSON.

use crate::duration;
use crate::listing::{Ctx, Entry};
use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, Color, ContentArrangement, Table};
use serde_json::{json, Value};
use tflock_core::lockinfo::go_time;
use tflock_core::Status;

fn age(entry: &Entry, ctx: &Ctx) -> String {
    entry
        .lock()
        .age(ctx.now)
        .map(duration::human)
        .unwrap_or_else(|| "?".into())
}

fn status_color(s: Status) -> Color {
    match s {
        Status::Held | Status::Active => Color::Green,
        Status::Stale => Color::Red,
        Status::Foreign | Status::Unreadable => Color::Yellow,
    }
}

fn short_id(id: &str) -> &str {
    if id.is_empty() {
        "?"
    } else {
        id
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
            status_text.push_str(&format!(" ({h})"));
        }
        let mut status_cell = Cell::new(status_text);
        if color {
            status_cell = status_cell.fg(status_color(status));
        }
        let mut row = vec![
            Cell::new(e.backends()),
            Cell::new(if l.path.is_empty() {
                &l.location
            } else {
                &l.path
            }),
            Cell::new(short_id(&l.id)),
            Cell::new(info.map(|i| i.operation.as_str()).unwrap_or("?")),
            Cell::new(info.map(|i| i.who.as_str()).unwrap_or("?")),
            Cell::new(age(e, ctx)),
            status_cell,
        ];
        if discovered {
            let ws = l.workspace.clone().unwrap_or_else(|| "?".into());
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

pub fn json_value(e: &Entry, ctx: &Ctx) -> Value {
    let l = e.lock();
    let info = l.info.as_ref();
    let status = ctx.status(l);
    json!({
        "backend": l.backend.as_str(),
        "target": l.target,
        "path": l.path,
        "id": l.id,
        "aliases": l.aliases,
        "workspace": l.workspace,
        "current_workspace": e.current,
        "location": l.location,
        "operation": info.map(|i| i.operation.as_str()),
        "who": info.map(|i| i.who.as_str()),
        "version": info.map(|i| i.version.as_str()),
        "created": l.created().map(|c| go_time(Some(c))),
        "age_seconds": l.age(ctx.now).map(|a| a.num_seconds()),
        "held": l.held,
        "holder": l.holder,
        "stale": status == Status::Stale,
        "status": status.as_str(),
        "foreign": l.foreign,
        "info": info,
        "info_error": l.info_error,
        "details": l.details,
        "locations": e.halves.iter().map(|h| json!({
            "backend": h.lock.backend.as_str(),
            "target": h.lock.target,
            "location": h.lock.location,
        })).collect::<Vec<_>>(),
    })
}

pub fn json_list<E: std::borrow::Borrow<Entry>>(entries: &[E], ctx: &Ctx) -> String {
    let arr: Vec<Value> = entries
        .iter()
        .map(|e| json_value(e.borrow(), ctx))
        .collect();
    let mut s = serde_json::to_string_pretty(&Value::Array(arr)).unwrap_or_else(|_| "[]".into());
    s.push('\n');
    s
}

/// Everything known about one lock, for `inspect` and before a break.
pub fn details(e: &Entry, ctx: &Ctx) -> String {
    let l = e.lock();
    let status = ctx.status(l);
    let mut s = String::new();
    let line = |s: &mut String, k: &str, v: &str| s.push_str(&format!("  {k:<10} {v}\n"));
    s.push_str(&format!("Lock {} ({})\n", short_id(&l.id), status));
    line(&mut s, "Backend:", &e.backends());
    for h in &e.halves {
        line(&mut s, "Target:", &h.lock.target);
        line(&mut s, "Location:", &h.lock.location);
    }
    // gcs names the lock object in Path; the state object beside it is what people know.
    let state = l.details.get("state_object").unwrap_or(&l.path);
    line(&mut s, "State:", if state.is_empty() { "?" } else { state });
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
            duration::human(ctx.stale_after)
        ),
        Status::Stale if l.held == Some(false) => {
            "no process holds it: a leftover from a crashed run".into()
        }
        Status::Stale => format!(
            "holder not visible; older than --stale-after {}",
            duration::human(ctx.stale_after)
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
        line(&mut s, &format!("{k}:"), v);
    }
    if let Some(err) = &l.info_error {
        if status != Status::Unreadable {
            line(&mut s, "Warning:", err);
        }
    }
    if let Some(info) = &l.info {
        s.push_str(&info.terraform_block());
    }
    s
}

/// The exact command that breaks this lock, naming its targets the way they were found.
pub fn break_hint(e: &Entry) -> String {
    let l = e.lock();
    let id = if l.id.is_empty() { &l.location } else { &l.id };
    let mut selectors: Vec<&str> = Vec::new();
    for h in &e.halves {
        if !h.selector.is_empty() && !selectors.contains(&h.selector.as_str()) {
            selectors.push(&h.selector);
        }
    }
    let mut cmd = format!("tflock break --id '{id}'");
    for s in selectors {
        cmd.push(' ');
        cmd.push_str(s);
    }
    format!("Break it with:\n  {cmd}\n")
}
