//! Parses what on-call engineers paste from a CI log: Terraform's or OpenTofu's
//! `Error acquiring the state lock` output (its `Lock Info:` block), and the s3 backend's
//! digest-mismatch error.
//!
//! Pure and bounded: no I/O, linear in the input, never panics, and refuses inputs over
//! [`MAX_INPUT`]. Every line is cleaned the same way before anything is matched:
//!
//! 1. lines end at `\n`, `\r\n` or a lone `\r` (so GitLab's `section_start:…\r\e[0K` marker
//!    becomes a line of its own);
//! 2. escape sequences go (CSI such as `\e[31m`, OSC/APC/DCS strings such as hyperlinks or
//!    Buildkite's `\e_bk;t=…\a`, two-byte escapes), and so do other control characters;
//! 3. a CI prefix goes: an ISO timestamp (GitHub Actions / Azure DevOps
//!    `2026-12-01T10:00:00.1234567Z `, `[…]`-bracketed for Jenkins, `[HH:MM:SS]`) and
//!    GitLab's stream marker after it (`00O `, `01E+`);
//! 4. a line that is a JSON object (`-json` output, or a log shipper's wrapper) is replaced by
//!    the lines of its `diagnostic` (`Error: <summary>`, blank, `<detail>`), or else by the
//!    lines of its string values;
//! 5. the diagnostic gutter goes: leading spaces, a `> ` quote, colour codes whose escape
//!    character was lost in a copy (`[31m`), and one `│`; `╷` and `╵` lines become blank.
//!
//! What Terraform 1.11.4 prints (real samples in `tests/fixtures/lock-errors/`): the
//! `Lock Info:` lines are indented, so Terraform never word-wraps them; the `Error message:`
//! paragraph is wrapped at the terminal width (78 columns when not a terminal), and is
//! unwrapped here by joining its lines with one space.

use chrono::{DateTime, FixedOffset, NaiveDateTime, TimeZone, Utc};
use serde_json::Value;
use std::fmt;

use crate::LockInfo;

/// Inputs longer than this many bytes are refused: a lock error is a few hundred bytes, and a
/// whole CI log rarely passes a few MiB.
pub const MAX_INPUT: usize = 16 * 1024 * 1024;

/// Which program printed the error, from its own wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    /// "Terraform acquires a state lock …"
    Terraform,
    /// "OpenTofu acquires a state lock …"
    OpenTofu,
    /// The text does not say (only the `Lock Info:` block was pasted).
    Unknown,
}

/// One Lock Info block as Terraform/OpenTofu printed it.
///
/// Values are what follows `Key:` with the surrounding spaces removed (Terraform pads them;
/// CI logs and editors trim trailing ones): a value's own leading or trailing whitespace
/// cannot be recovered from a paste. A line that is missing leaves its field empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PastedLock {
    pub id: String,
    pub path: String,
    pub operation: String,
    pub who: String,
    pub version: String,
    pub info: String,
    /// `Created:` (Go's `time.Time.String()`, any zone) in UTC; `None` when missing, not a
    /// time, or Go's zero time.
    pub created: Option<DateTime<Utc>>,
    /// From the surrounding wording.
    pub tool: Tool,
}

impl PastedLock {
    /// The same lock as the [`LockInfo`] model the backends read.
    pub fn lock_info(&self) -> LockInfo {
        LockInfo {
            id: self.id.clone(),
            operation: self.operation.clone(),
            info: self.info.clone(),
            who: self.who.clone(),
            version: self.version.clone(),
            created: self.created,
            path: self.path.clone(),
        }
    }
}

/// What [`parse_lock_error`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pasted {
    /// The last Lock Info block in the text.
    pub lock: PastedLock,
    /// How many Lock Info blocks the text held (the LAST one is returned).
    pub blocks: usize,
    /// The "Error message:" text, unwrapped to one line, if present (for Terraform < 0.15,
    /// the text after `Error acquiring the state lock:`).
    pub message: Option<String>,
}

/// Why a paste could not be read. `Display` is one line that says what was missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasteError {
    /// Nothing but whitespace and escape codes.
    Empty,
    /// Over [`MAX_INPUT`] bytes.
    TooLarge { len: usize },
    /// No `Lock Info:` block at all.
    NoLockInfo,
    /// A lock error whose text has no `Lock Info:` block: Terraform could not read who holds
    /// the lock. Carries the unwrapped `Error message:` when there is one.
    LockErrorWithoutInfo { message: Option<String> },
    /// The s3 backend's digest-mismatch error, which is not a lock: see
    /// [`parse_digest_error`].
    DigestMismatch,
    /// The last `Lock Info:` block has no (or an empty) `ID:` line.
    NoId,
}

impl fmt::Display for PasteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PasteError::Empty => f.write_str(
                "nothing to read: paste the whole `Error acquiring the state lock` output",
            ),
            PasteError::TooLarge { len } => write!(
                f,
                "input is {len} bytes, over the {} MiB limit: paste only the failing step's output",
                MAX_INPUT / (1024 * 1024)
            ),
            PasteError::NoLockInfo => f.write_str(
                "no `Lock Info:` block found: paste the whole `Error acquiring the state lock` output",
            ),
            PasteError::LockErrorWithoutInfo { message: Some(m) } => write!(
                f,
                "the lock error has no `Lock Info:` block (Terraform could not read who holds the lock); its error message: {m}"
            ),
            PasteError::LockErrorWithoutInfo { message: None } => f.write_str(
                "the lock error has no `Lock Info:` block (Terraform could not read who holds the lock)",
            ),
            PasteError::DigestMismatch => f.write_str(
                "this is the s3 backend's digest mismatch (`state data in S3 does not have the expected content`), not a lock error: no `Lock Info:` block",
            ),
            PasteError::NoId => f.write_str(
                "the `Lock Info:` block has no `ID:` line: paste the whole block",
            ),
        }
    }
}

impl std::error::Error for PasteError {}

/// Reads the `Lock Info:` block out of a pasted `Error acquiring the state lock` text, in any
/// form Terraform or OpenTofu prints it (colour and box, `-no-color`, `-json`, the
/// `Error locking state: …` form before 0.15), with CI prefixes and noise around it.
pub fn parse_lock_error(text: &str) -> Result<Pasted, PasteError> {
    if text.len() > MAX_INPUT {
        return Err(PasteError::TooLarge { len: text.len() });
    }
    let lines = clean_lines(text);
    if lines.iter().all(|l| l.text.trim().is_empty()) {
        return Err(PasteError::Empty);
    }

    let mut blocks = 0usize;
    // (header index, end index, index where the previous block ended, fields)
    let mut last: Option<(usize, usize, usize, Fields)> = None;
    let mut prev_end = 0usize;
    let mut i = 0usize;
    while i < lines.len() {
        if header_prefix(&lines[i].text).is_some() {
            let (fields, end) = read_fields(&lines, i + 1);
            if fields.any {
                blocks += 1;
                last = Some((i, end, prev_end, fields));
                prev_end = end;
                i = end;
                continue;
            }
        }
        i += 1;
    }

    let Some((header, end, floor, fields)) = last else {
        if lines.iter().any(|l| l.text.contains(DIGEST_PHRASE)) {
            return Err(PasteError::DigestMismatch);
        }
        if let Some(at) = lines
            .iter()
            .rposition(|l| l.text.contains(LOCK_SUMMARY) || l.text.contains(OLD_MARKER))
        {
            let message = message_after(&lines, at);
            return Err(PasteError::LockErrorWithoutInfo { message });
        }
        return Err(PasteError::NoLockInfo);
    };
    if fields.id.is_empty() {
        return Err(PasteError::NoId);
    }
    let message = message_before(&lines, header, floor);
    let tool = tool_after(&lines, end).unwrap_or(lines[header].hint);
    Ok(Pasted {
        lock: PastedLock {
            id: fields.id,
            path: fields.path,
            operation: fields.operation,
            who: fields.who,
            version: fields.version,
            info: fields.info,
            created: fields.created.as_deref().and_then(parse_go_time_string),
            tool,
        },
        blocks,
        message,
    })
}

/// The s3 backend's digest-mismatch error (Terraform's
/// internal/backend/remote-state/s3/client.go): the state object's MD5 differs from the
/// `Digest` its DynamoDB `-md5` row holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestMismatch {
    /// `Calculated checksum:`, the MD5 of the state object in S3, lowercase hex; empty when
    /// the state object is missing (Terraform then says to remove the Digest value). The old
    /// wording (Terraform before the `Bucket:`/`Key:` form, OpenTofu) gives it as
    /// `… to the following value: <hex>`.
    pub calculated: String,
    /// `Stored checksum:`, the `Digest` in the `-md5` row; empty when the text does not say
    /// (the old wording never prints it).
    pub stored: String,
    /// The LockID of the `-md5` row: `<Bucket>/<Key>-md5` from the `Bucket:` and `Key:`
    /// lines, else a `…/…-md5` token the text names.
    pub digest_row: Option<String>,
}

/// Finds the last digest-mismatch error in the text (same cleaning as
/// [`parse_lock_error`]); `None` when there is none, or it carries no checksum.
pub fn parse_digest_error(text: &str) -> Option<DigestMismatch> {
    if text.len() > MAX_INPUT {
        return None;
    }
    let lines = clean_lines(text);
    let at = lines.iter().rposition(|l| l.text.contains(DIGEST_PHRASE))?;
    let mut bucket = None;
    let mut key = None;
    let mut calculated = None;
    let mut stored = None;
    let mut old_value = None;
    let stop = lines.len().min(at + 40);
    for j in at..stop {
        let t = lines[j].text.trim();
        if let Some(v) = t.strip_prefix("Bucket:") {
            bucket.get_or_insert_with(|| v.trim().to_string());
        } else if let Some(v) = t.strip_prefix("Key:") {
            key.get_or_insert_with(|| v.trim().to_string());
        } else if let Some(v) = t.strip_prefix("Calculated checksum:") {
            calculated.get_or_insert_with(|| hex_token(v));
        } else if let Some(v) = t.strip_prefix("Stored checksum:") {
            stored.get_or_insert_with(|| hex_token(v));
        }
        if let Some(pos) = t.find(OLD_DIGEST_VALUE) {
            let rest = t[pos + OLD_DIGEST_VALUE.len()..].trim();
            let rest = if rest.is_empty() {
                // The value was wrapped onto the next line.
                lines
                    .get(j + 1)
                    .map(|l| l.text.trim().to_string())
                    .unwrap_or_default()
            } else {
                rest.to_string()
            };
            let v = hex_token(&rest);
            if !v.is_empty() {
                old_value.get_or_insert(v);
            }
        }
    }
    let (calculated, stored) = match (calculated, stored, old_value) {
        (Some(c), s, _) => (c, s.unwrap_or_default()),
        (None, Some(s), _) => (String::new(), s),
        (None, None, Some(v)) => (v, String::new()),
        (None, None, None) => return None,
    };
    let digest_row = match (bucket, key) {
        (Some(b), Some(k)) if !b.is_empty() && !k.is_empty() => Some(format!("{b}/{k}-md5")),
        _ => lines.iter().find_map(|l| md5_row_token(&l.text)),
    };
    Some(DigestMismatch {
        calculated,
        stored,
        digest_row,
    })
}

const LOCK_SUMMARY: &str = "Error acquiring the state lock";
/// Before 0.15 the lock error was one summary: `Error locking state: Error acquiring the
/// state lock: <err>` with `<err>` running into the `Lock Info:` block.
const OLD_MARKER: &str = "Error acquiring the state lock:";
const MESSAGE_MARKER: &str = "Error message:";
const DIGEST_PHRASE: &str = "state data in S3 does not have the expected content";
const OLD_DIGEST_VALUE: &str = "to the following value:";

/// How many lines the message is looked for above a block, and the tool wording below it.
const MESSAGE_REACH: usize = 400;
const TOOL_REACH: usize = 12;
/// Nesting of JSON inside JSON strings that is unpacked (log shippers wrap `-json` lines).
const JSON_DEPTH: usize = 2;

/// One cleaned line, with the tool a JSON wrapper named (`@module`), if any.
struct Line {
    text: String,
    hint: Tool,
}

#[derive(Default)]
struct Fields {
    any: bool,
    id: String,
    path: String,
    operation: String,
    who: String,
    version: String,
    created: Option<String>,
    info: String,
}

const KEYS: [&str; 7] = [
    "ID:",
    "Path:",
    "Operation:",
    "Who:",
    "Version:",
    "Created:",
    "Info:",
];

/// `Some(prefix)` when the line is a `Lock Info:` header; `prefix` is what precedes it on
/// the line (`Error message: ` when the lock error had no error of its own).
fn header_prefix(line: &str) -> Option<&str> {
    let t = line.trim();
    let before = t.strip_suffix("Lock Info:")?;
    if before.is_empty() || before.ends_with(": ") {
        Some(before)
    } else {
        None
    }
}

/// Reads `Key: value` lines from `start`: stops at a line that is not an unseen key (blank
/// lines between keys are skipped). Returns the fields and the index after the block.
fn read_fields(lines: &[Line], start: usize) -> (Fields, usize) {
    let mut f = Fields::default();
    let mut seen = [false; 7];
    let mut j = start;
    let mut end = start;
    while j < lines.len() && j < start + 64 {
        let t = lines[j].text.trim();
        if t.is_empty() {
            j += 1;
            continue;
        }
        let Some((k, value)) = KEYS
            .iter()
            .enumerate()
            .find_map(|(k, key)| t.strip_prefix(key).map(|v| (k, v.trim())))
        else {
            break;
        };
        if seen[k] {
            break;
        }
        seen[k] = true;
        f.any = true;
        let value = value.to_string();
        match k {
            0 => f.id = value,
            1 => f.path = value,
            2 => f.operation = value,
            3 => f.who = value,
            4 => f.version = value,
            5 => f.created = Some(value),
            _ => f.info = value,
        }
        j += 1;
        end = j;
        if seen.iter().all(|s| *s) {
            break;
        }
    }
    (f, end)
}

/// The error message above the header at `header`, looked for no further up than `floor`
/// (the end of the previous block) and no further than the diagnostic's own summary line.
fn message_before(lines: &[Line], header: usize, floor: usize) -> Option<String> {
    let low = floor.max(header.saturating_sub(MESSAGE_REACH));
    let mut m = header;
    loop {
        let t = lines[m].text.trim();
        if let Some(rest) = after_marker(t) {
            let mut parts: Vec<&str> = Vec::new();
            let first = if m == header {
                rest.strip_suffix("Lock Info:").unwrap_or(rest)
            } else {
                rest
            };
            parts.push(first);
            if m < header {
                for line in lines.get(m + 1..header).unwrap_or(&[]) {
                    parts.push(line.text.trim());
                }
                parts.push(header_prefix(&lines[header].text).unwrap_or(""));
            }
            return join_words(&parts);
        }
        if m != header && (t.starts_with("Error:") || t.starts_with("Warning:")) {
            return None;
        }
        if m <= low {
            return None;
        }
        m -= 1;
    }
}

/// The message of a lock error that has no `Lock Info:` block: from the marker line on,
/// up to the first blank line or the tool's explanation.
fn message_after(lines: &[Line], at: usize) -> Option<String> {
    let mut start = None;
    for (j, line) in lines.iter().enumerate().skip(at).take(8) {
        if let Some(rest) = after_marker(line.text.trim()) {
            start = Some((j, rest));
            break;
        }
    }
    let (j, first) = start?;
    let mut parts = vec![first];
    for line in lines.iter().skip(j + 1).take(MESSAGE_REACH) {
        let t = line.text.trim();
        if t.is_empty() || t.contains(" acquires a state lock") {
            break;
        }
        parts.push(t);
    }
    join_words(&parts)
}

/// The text after `Error message:` (or the old `Error acquiring the state lock:`).
fn after_marker(t: &str) -> Option<&str> {
    if let Some(p) = t.find(MESSAGE_MARKER) {
        return Some(&t[p + MESSAGE_MARKER.len()..]);
    }
    t.find(OLD_MARKER).map(|p| &t[p + OLD_MARKER.len()..])
}

/// Joins wrapped lines with single spaces; `None` when nothing is left.
fn join_words(parts: &[&str]) -> Option<String> {
    let mut out = String::new();
    for p in parts {
        let p = p.trim();
        if p.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(p);
    }
    (!out.is_empty()).then_some(out)
}

/// "Terraform acquires a state lock" / "OpenTofu acquires a state lock" in the few lines
/// after a block (joined, since a narrow terminal wraps them).
fn tool_after(lines: &[Line], end: usize) -> Option<Tool> {
    let mut joined = String::new();
    for line in lines.iter().skip(end).take(TOOL_REACH) {
        let t = line.text.trim();
        if header_prefix(t).is_some() {
            break;
        }
        // Bounded: the wording sits at the start of a line.
        let t = t.get(..t.len().min(200)).unwrap_or(t);
        joined.push_str(t);
        joined.push(' ');
    }
    let tf = joined.find("Terraform acquires a state lock");
    let tofu = joined.find("OpenTofu acquires a state lock");
    match (tf, tofu) {
        (Some(a), Some(b)) => Some(if a < b {
            Tool::Terraform
        } else {
            Tool::OpenTofu
        }),
        (Some(_), None) => Some(Tool::Terraform),
        (None, Some(_)) => Some(Tool::OpenTofu),
        (None, None) => None,
    }
}

/// Leading hex digits of a value (`b5aa…` of `b5aa…,` or `b5aa… `).
fn hex_token(v: &str) -> String {
    v.trim()
        .chars()
        .take_while(|c| c.is_ascii_hexdigit())
        .collect::<String>()
        .to_ascii_lowercase()
}

/// A `bucket/key-md5` token on the line, without quotes or punctuation around it.
fn md5_row_token(line: &str) -> Option<String> {
    line.split(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '`' | ',' | '{' | '}'))
        .map(|w| w.trim_end_matches(['.', ';', ')']))
        .find(|w| w.ends_with("-md5") && w.contains('/') && !w.starts_with('/'))
        .map(str::to_string)
}

/// Parses Go's `time.Time.String()`: `2026-12-01 10:00:00.462280312 +0000 UTC`, fraction
/// optional, any zone (`+0100 CET`), an optional monotonic suffix `m=+0.012345678`.
/// RFC 3339 is accepted too. Go's zero time and anything else give `None`.
pub fn parse_go_time_string(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if s.is_empty() || s.len() > 200 {
        return None;
    }
    let mut words = s.split_whitespace();
    let date = words.next()?;
    let t = match words.next() {
        Some(time) => {
            let naive =
                NaiveDateTime::parse_from_str(&format!("{date} {time}"), "%Y-%m-%d %H:%M:%S%.f")
                    .ok()?;
            let offset = match words.next() {
                Some(z) if z.starts_with(['+', '-']) => parse_offset(z)?,
                Some("UTC") | Some("Z") | None => 0,
                Some(_) => return None,
            };
            FixedOffset::east_opt(offset)?
                .from_local_datetime(&naive)
                .single()?
                .with_timezone(&Utc)
        }
        None => DateTime::parse_from_rfc3339(date).ok()?.with_timezone(&Utc),
    };
    if t.timestamp() == GO_ZERO_UNIX {
        return None;
    }
    Some(t)
}

/// Seconds from the Unix epoch to Go's zero time, 0001-01-01T00:00:00Z.
const GO_ZERO_UNIX: i64 = -62_135_596_800;

/// `+0100`, `-0530` (also `+01:00`, `+01`) as seconds east of UTC.
fn parse_offset(z: &str) -> Option<i32> {
    let sign = if z.starts_with('-') { -1 } else { 1 };
    let digits: String = z[1..].chars().filter(|c| *c != ':').collect();
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (h, m) = match digits.len() {
        2 => (digits.parse::<i32>().ok()?, 0),
        4 => (
            digits.get(..2)?.parse::<i32>().ok()?,
            digits.get(2..)?.parse::<i32>().ok()?,
        ),
        _ => return None,
    };
    if h > 23 || m > 59 {
        return None;
    }
    Some(sign * (h * 3600 + m * 60))
}

// ---------------------------------------------------------------------------------------
// Line cleaning

fn clean_lines(text: &str) -> Vec<Line> {
    let mut out = Vec::new();
    clean_into(text, 0, Tool::Unknown, &mut out);
    out
}

fn clean_into(text: &str, depth: usize, hint: Tool, out: &mut Vec<Line>) {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    for raw in split_lines(text) {
        let no_escapes = strip_escapes(raw);
        let line = strip_ci_prefix(&no_escapes);
        let trimmed = line.trim();
        if depth < JSON_DEPTH && trimmed.starts_with('{') && trimmed.ends_with('}') {
            if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(trimmed) {
                expand_json(&map, depth, hint, out);
                continue;
            }
        }
        out.push(Line {
            text: strip_gutter(line).to_string(),
            hint,
        });
    }
}

/// The lines of one JSON object: its `diagnostic` as Terraform prints it, or else the lines
/// of each string value (a log shipper's `{"log": "…"}`).
fn expand_json(
    map: &serde_json::Map<String, Value>,
    depth: usize,
    hint: Tool,
    out: &mut Vec<Line>,
) {
    let hint = match map.get("@module").and_then(Value::as_str) {
        Some(m) if m.starts_with("tofu") => Tool::OpenTofu,
        Some(m) if m.starts_with("terraform") => Tool::Terraform,
        _ => hint,
    };
    if let Some(Value::Object(diag)) = map.get("diagnostic") {
        let severity = match diag.get("severity").and_then(Value::as_str) {
            Some("warning") => "Warning",
            _ => "Error",
        };
        let summary = diag.get("summary").and_then(Value::as_str).unwrap_or("");
        clean_into(&format!("{severity}: {summary}"), depth + 1, hint, out);
        out.push(Line {
            text: String::new(),
            hint,
        });
        if let Some(detail) = diag.get("detail").and_then(Value::as_str) {
            clean_into(detail, depth + 1, hint, out);
        }
        return;
    }
    let mut stack: Vec<&Value> = map.values().rev().collect();
    while let Some(v) = stack.pop() {
        match v {
            Value::String(s) => clean_into(s, depth + 1, hint, out),
            Value::Array(a) => stack.extend(a.iter().rev()),
            Value::Object(o) => stack.extend(o.values().rev()),
            _ => {}
        }
    }
}

/// Lines end at `\n`, `\r\n` or a lone `\r`.
fn split_lines(text: &str) -> impl Iterator<Item = &str> {
    let bytes = text.as_bytes();
    let mut start = 0usize;
    let mut i = 0usize;
    std::iter::from_fn(move || {
        while i < bytes.len() {
            let b = bytes[i];
            if b == b'\n' || b == b'\r' {
                let line = &text[start..i];
                i += if b == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
                    2
                } else {
                    1
                };
                start = i;
                return Some(line);
            }
            i += 1;
        }
        if start < bytes.len() {
            let line = &text[start..];
            start = bytes.len();
            return Some(line);
        }
        None
    })
}

/// Removes ECMA-48 escape sequences and other control characters (keeps tabs).
fn strip_escapes(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => match chars.next() {
                // CSI: parameters and intermediates, then one final byte.
                Some('[') => skip_csi(&mut chars),
                // OSC, DCS, SOS, PM, APC: a string ended by BEL or ST (ESC \).
                Some(']' | 'P' | 'X' | '^' | '_') => skip_string(&mut chars),
                // nF escapes (ESC ( B …): intermediates then a final byte.
                Some(' '..='/') => {
                    while let Some(&n) = chars.peek() {
                        chars.next();
                        if !(' '..='/').contains(&n) {
                            break;
                        }
                    }
                }
                // Fp/Fe/Fs: ESC and one byte.
                _ => {}
            },
            '\u{9b}' => skip_csi(&mut chars),
            '\u{9d}' | '\u{90}' | '\u{98}' | '\u{9e}' | '\u{9f}' => skip_string(&mut chars),
            '\t' => out.push('\t'),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

fn skip_csi(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    for n in chars.by_ref() {
        if ('\u{40}'..='\u{7e}').contains(&n) {
            break;
        }
        if !(' '..='?').contains(&n) {
            // Not a CSI byte: the sequence is broken; drop what was read.
            break;
        }
    }
}

fn skip_string(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    while let Some(n) = chars.next() {
        match n {
            '\u{7}' | '\u{9c}' => break,
            '\u{1b}' => {
                if chars.peek() == Some(&'\\') {
                    chars.next();
                }
                break;
            }
            _ => {}
        }
    }
}

/// Removes a CI runner's prefix: an ISO timestamp (optionally in brackets) or a bracketed
/// time of day, then GitLab's stream marker (`00O `, `01E+`).
fn strip_ci_prefix(line: &str) -> &str {
    let Some(rest) = strip_timestamp(line) else {
        return line;
    };
    strip_gitlab_stream(rest).unwrap_or(rest)
}

fn strip_timestamp(line: &str) -> Option<&str> {
    let b = line.as_bytes();
    let mut i = 0usize;
    let bracket = b.first() == Some(&b'[');
    if bracket {
        i += 1;
    }
    let digits = |i: &mut usize, n: usize| -> bool {
        let ok = b.len() >= *i + n && b[*i..*i + n].iter().all(u8::is_ascii_digit);
        if ok {
            *i += n;
        }
        ok
    };
    let lit = |i: &mut usize, c: u8| -> bool {
        let ok = b.get(*i) == Some(&c);
        if ok {
            *i += 1;
        }
        ok
    };
    let save = i;
    let has_date = digits(&mut i, 4)
        && lit(&mut i, b'-')
        && digits(&mut i, 2)
        && lit(&mut i, b'-')
        && digits(&mut i, 2)
        && (lit(&mut i, b'T') || lit(&mut i, b' '));
    if !has_date {
        if !bracket {
            return None;
        }
        i = save;
    }
    if !(digits(&mut i, 2)
        && lit(&mut i, b':')
        && digits(&mut i, 2)
        && lit(&mut i, b':')
        && digits(&mut i, 2))
    {
        return None;
    }
    if lit(&mut i, b'.') || lit(&mut i, b',') {
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
    }
    if has_date && !lit(&mut i, b'Z') && matches!(b.get(i), Some(b'+' | b'-')) {
        let start = i;
        i += 1;
        let ok = digits(&mut i, 2) && {
            lit(&mut i, b':');
            digits(&mut i, 2)
        };
        if !ok {
            i = start;
        }
    }
    if bracket && !lit(&mut i, b']') {
        return None;
    }
    match b.get(i) {
        None => Some(""),
        Some(b' ' | b'\t') => Some(&line[i + 1..]),
        _ => None,
    }
}

/// GitLab's timestamped logs: `00O ` / `00O+` / `01E ` after the timestamp.
fn strip_gitlab_stream(rest: &str) -> Option<&str> {
    let b = rest.as_bytes();
    if b.len() < 3
        || !b[0].is_ascii_hexdigit()
        || !b[1].is_ascii_hexdigit()
        || !matches!(b[2], b'O' | b'E')
    {
        return None;
    }
    let mut i = 3;
    if b.get(i) == Some(&b'+') {
        i += 1;
    }
    match b.get(i) {
        None => Some(""),
        Some(b' ') => Some(&rest[i + 1..]),
        _ => None,
    }
}

/// Removes the diagnostic gutter and what copying leaves around it: leading spaces, one
/// `> ` quote, colour codes that lost their escape character (`[31m`, `[0K`), one `│`;
/// at the end, trailing spaces and such colour codes. `╷` / `╵` alone become blank.
fn strip_gutter(line: &str) -> &str {
    let mut s = line;
    let mut quote = false;
    let mut bar = false;
    loop {
        let t = s.trim_start();
        if let Some(r) = strip_bare_sgr(t) {
            s = r;
        } else if !quote && !bar && (t.starts_with("> ") || t == ">") {
            quote = true;
            s = &t[1..];
        } else if !bar && t.starts_with('│') {
            bar = true;
            s = &t['│'.len_utf8()..];
        } else {
            s = t;
            break;
        }
    }
    loop {
        let t = s.trim_end();
        match strip_bare_sgr_end(t) {
            Some(r) => s = r,
            None => {
                s = t;
                break;
            }
        }
    }
    if s == "╷" || s == "╵" {
        return "";
    }
    s
}

/// `[`, digits and `;`, then `m` or `K`, at the start.
fn strip_bare_sgr(s: &str) -> Option<&str> {
    let b = s.as_bytes();
    if b.first() != Some(&b'[') {
        return None;
    }
    let mut i = 1;
    while i < b.len() && i < 32 && (b[i].is_ascii_digit() || b[i] == b';') {
        i += 1;
    }
    match b.get(i) {
        // At least one digit: `[main]` is text, `[0m` is a colour code.
        Some(b'm' | b'K') if i > 1 => Some(&s[i + 1..]),
        _ => None,
    }
}

/// The same at the end: `…[0m`.
fn strip_bare_sgr_end(s: &str) -> Option<&str> {
    let b = s.as_bytes();
    let last = *b.last()?;
    if last != b'm' && last != b'K' {
        return None;
    }
    let mut i = b.len() - 1;
    while i > 0 && b.len() - i < 32 {
        i -= 1;
        match b[i] {
            b'[' if i + 2 < b.len() => return Some(&s[..i]),
            b'[' => return None,
            c if c.is_ascii_digit() || c == b';' => {}
            _ => return None,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn go_time_forms() {
        assert_eq!(
            parse_go_time_string("2026-12-01 10:00:00.462280312 +0000 UTC"),
            Some(ts("2026-12-01T10:00:00.462280312Z"))
        );
        assert_eq!(
            parse_go_time_string("2026-12-01 10:00:00 +0000 UTC"),
            Some(ts("2026-12-01T10:00:00Z"))
        );
        assert_eq!(
            parse_go_time_string("2026-12-01 11:00:00.5 +0100 CET"),
            Some(ts("2026-12-01T10:00:00.5Z"))
        );
        assert_eq!(
            parse_go_time_string("2026-12-01 04:30:00.1 -0530 -0530"),
            Some(ts("2026-12-01T10:00:00.1Z"))
        );
        assert_eq!(
            parse_go_time_string("2026-12-01 10:00:00.46228 +0000 UTC m=+0.012345678"),
            Some(ts("2026-12-01T10:00:00.46228Z"))
        );
        assert_eq!(
            parse_go_time_string("2026-12-01T10:00:00.1Z"),
            Some(ts("2026-12-01T10:00:00.1Z"))
        );
        assert_eq!(parse_go_time_string("0001-01-01 00:00:00 +0000 UTC"), None);
        assert_eq!(parse_go_time_string("yesterday"), None);
        assert_eq!(parse_go_time_string("2026-13-01 10:00:00 +0000 UTC"), None);
        assert_eq!(parse_go_time_string("2026-12-01 10:00:00 +9900 X"), None);
        assert_eq!(parse_go_time_string(""), None);
    }

    #[test]
    fn escapes_go() {
        assert_eq!(strip_escapes("\u{1b}[31m│\u{1b}[0m \u{1b}[0mID:"), "│ ID:");
        assert_eq!(
            strip_escapes("\u{1b}]8;;http://x\u{7}link\u{1b}]8;;\u{1b}\\ end"),
            "link end"
        );
        assert_eq!(strip_escapes("\u{1b}_bk;t=1733050000000\u{7}text"), "text");
        assert_eq!(strip_escapes("\u{1b}(Ba\u{1b}7b\u{7}c\td"), "abc\td");
        assert_eq!(strip_escapes("\u{1b}[38;5;196mred"), "red");
        assert_eq!(strip_escapes("cut \u{1b}["), "cut ");
        assert_eq!(strip_escapes("\u{1b}"), "");
    }

    #[test]
    fn ci_prefixes_go() {
        assert_eq!(
            strip_ci_prefix("2026-12-01T10:00:00.1234567Z Lock Info:"),
            "Lock Info:"
        );
        assert_eq!(strip_ci_prefix("2026-12-01T10:00:00Z   ID: x"), "  ID: x");
        assert_eq!(
            strip_ci_prefix("2026-12-01T10:00:00.123456Z 00O+ text"),
            "text"
        );
        assert_eq!(
            strip_ci_prefix("2026-12-01T10:00:00.123456Z 01E text"),
            "text"
        );
        assert_eq!(strip_ci_prefix("[2026-12-01T10:00:00.123Z] text"), "text");
        assert_eq!(strip_ci_prefix("[10:00:00] text"), "text");
        assert_eq!(
            strip_ci_prefix("2026-12-01 10:00:00,123+01:00 text"),
            "text"
        );
        assert_eq!(strip_ci_prefix("2026-12-01T10:00:00.1Z"), "");
        assert_eq!(
            strip_ci_prefix("10:00:00 not a prefix"),
            "10:00:00 not a prefix"
        );
        assert_eq!(strip_ci_prefix("2026-12-01Tx"), "2026-12-01Tx");
    }

    #[test]
    fn gutter_goes() {
        assert_eq!(strip_gutter("│   ID:        x  "), "ID:        x");
        assert_eq!(strip_gutter("│"), "");
        assert_eq!(strip_gutter("╷"), "");
        assert_eq!(strip_gutter("[31m│[0m [0m  Info:      [0m"), "Info:");
        assert_eq!(strip_gutter("> │ Lock Info:"), "Lock Info:");
        assert_eq!(strip_gutter("  Path: a[0m b"), "Path: a[0m b");
    }

    #[test]
    fn lines_split_on_every_ending() {
        let got: Vec<&str> = split_lines("a\r\nb\rc\n\nd").collect();
        assert_eq!(got, ["a", "b", "c", "", "d"]);
        assert_eq!(split_lines("").count(), 0);
        assert_eq!(split_lines("x\n").collect::<Vec<_>>(), ["x"]);
    }

    #[test]
    fn header_forms() {
        assert_eq!(header_prefix("Lock Info:"), Some(""));
        assert_eq!(
            header_prefix("Error message: Lock Info:"),
            Some("Error message: ")
        );
        assert_eq!(header_prefix("Terraform's own Lock Info:"), None);
        assert_eq!(header_prefix("the `Lock Info:` block"), None);
    }

    #[test]
    fn terraform_block_round_trips() {
        let info = LockInfo {
            id: "2b6a6738-5dd5-0f6b-b6b1-2e3ac0c6d8a9".into(),
            operation: "OperationTypeApply".into(),
            info: String::new(),
            who: "DOMAIN\\runner@ci-7".into(),
            version: "1.11.4".into(),
            created: Some(ts("2026-11-26T11:15:30.17635Z")),
            path: "tf-state/app/terraform.tfstate".into(),
        };
        let got = parse_lock_error(&info.terraform_block()).unwrap();
        assert_eq!(got.lock.lock_info(), info);
        assert_eq!(got.lock.tool, Tool::Unknown);
        assert_eq!(got.blocks, 1);
        assert_eq!(got.message, None);
    }

    #[test]
    fn errors_say_what_is_missing() {
        assert_eq!(parse_lock_error(""), Err(PasteError::Empty));
        assert_eq!(parse_lock_error(" \n\u{1b}[0m\n"), Err(PasteError::Empty));
        assert_eq!(parse_lock_error("hello"), Err(PasteError::NoLockInfo));
        assert_eq!(
            parse_lock_error("Lock Info:\n  Path: x\n"),
            Err(PasteError::NoId)
        );
        let e = parse_lock_error("Error: Error acquiring the state lock\n\nError message: boom\nwrapped\n\nTerraform acquires a state lock to protect").unwrap_err();
        assert_eq!(
            e,
            PasteError::LockErrorWithoutInfo {
                message: Some("boom wrapped".into())
            }
        );
        assert!(e.to_string().contains("no `Lock Info:` block"));
        let big = "x".repeat(MAX_INPUT + 1);
        let e = parse_lock_error(&big).unwrap_err();
        assert_eq!(e, PasteError::TooLarge { len: MAX_INPUT + 1 });
        assert!(e.to_string().contains("16 MiB"));
        for e in [
            PasteError::Empty,
            PasteError::NoLockInfo,
            PasteError::NoId,
            PasteError::DigestMismatch,
            PasteError::LockErrorWithoutInfo { message: None },
        ] {
            assert!(!e.to_string().contains('\n'));
        }
    }

    #[test]
    fn message_on_the_header_line() {
        // LockError with no Err of its own: "Error message: " + "Lock Info:".
        let got = parse_lock_error("Error message: Lock Info:\n  ID:        abc\n").unwrap();
        assert_eq!(got.message, None);
        assert_eq!(got.lock.id, "abc");
    }

    #[test]
    fn message_does_not_reach_into_another_diagnostic() {
        let text = "Error: Something else\n\nError message: unrelated\n\nError: Another\n\nLock Info:\n  ID:        abc\n";
        assert_eq!(parse_lock_error(text).unwrap().message, None);
    }
}
