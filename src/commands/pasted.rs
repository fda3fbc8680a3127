//! `--from-error FILE|-`: start from what the operator has, Terraform's pasted
//! `Error acquiring the state lock` output, and find exactly that lock.

use crate::backends;
use crate::inventory::{Entry, Listing};
use crate::{ui, Io};
use std::path::Path;
use tflock_core::pasted::{self, PastedLock};
use tflock_core::{Error, Kind};

/// Reads and parses the pasted text (`-`: stdin). Says so when the log held several
/// Lock Info blocks (the last one is used: the most recent attempt).
pub fn read(from: &Path, io: &mut Io<'_>) -> Result<PastedLock, Error> {
    let text = if from.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(
            &mut std::io::Read::take(&mut io.input, pasted::MAX_INPUT as u64 + 1),
            &mut buf,
        )
        .map_err(|e| {
            Error::new(
                Kind::Usage,
                format!("reading the pasted error from stdin: {e}"),
            )
        })?;
        String::from_utf8_lossy(&buf).into_owned()
    } else {
        tflock_core::fsread::read_bounded(from, pasted::MAX_INPUT as u64)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .map_err(|e| Error::new(Kind::Usage, e.to_string()))?
    };
    let parsed = pasted::parse_lock_error(&text).map_err(|e| {
        Error::new(
            Kind::Usage,
            format!("{}: {e}", ui::safe(&from.display().to_string())),
        )
    })?;
    let mut lock = parsed.lock;
    // The http backend (Terraform up to 1.14) prints the holder's ID only in the message,
    // `HTTP remote state already locked: ID=<holder>`; the Lock Info block below it is the
    // refused run's own.
    if let Some(holder) = parsed.message.as_deref().and_then(holder_in_message) {
        if holder != lock.id {
            ui::warn_text(
                io,
                &format!(
                    "the Lock Info block is the refused run's own (ID {}); looking for the holder named in the message, ID {holder}",
                    lock.id
                ),
            );
            lock.id = holder;
        }
    }
    if parsed.blocks > 1 {
        ui::warn_text(
            io,
            &format!(
                "the text holds {} Lock Info blocks; using the last one (ID {})",
                parsed.blocks, lock.id
            ),
        );
    }
    Ok(lock)
}

/// `... already locked: ID=<id>` in an error message.
fn holder_in_message(message: &str) -> Option<String> {
    let at = message.find("already locked")?;
    let rest = &message[at..];
    let id = rest[rest.find("ID=")? + 3..].split_whitespace().next()?;
    let id = id.trim_end_matches([',', '.', ';']);
    (!id.is_empty()).then(|| id.to_string())
}

/// The listed lock the paste names: same ID (or alias), and the same state path when the
/// paste has one. Not found: gone (exit 3, the usual case after someone else fixed it),
/// re-taken by another lock, or in a place the targets do not cover (which `-t` to add).
pub fn find<'a>(listing: &'a Listing, want: &PastedLock) -> Result<&'a Entry, Error> {
    let same_path = |e: &Entry| want.path.is_empty() || e.matches_path(&want.path);
    if let Some(e) = listing
        .entries
        .iter()
        .find(|e| e.matches_id(&want.id) && same_path(e))
    {
        return Ok(e);
    }
    let here = || format!("lock {} on {}", want.id, ui::safe(&want.path));
    if !want.path.is_empty() {
        if let Some(other) = listing.entries.iter().find(|e| e.matches_path(&want.path)) {
            return Err(Error::changed(
                listing.names(),
                format!(
                    "{} is gone, and {} is locked again by another lock ({}, {})",
                    here(),
                    ui::safe(&want.path),
                    ui::safe(other.lock().name()),
                    ui::safe(other.lock().info.as_ref().map_or("?", |i| &i.who))
                ),
            )
            .with_hint("run `tflock inspect` on it before doing anything"));
        }
        // Which backends the path's shape fits (`bucket/key` fits more than one), and
        // whether the targets cover any of them.
        let suggested: Vec<String> = backends::drivers()
            .iter()
            .filter_map(|d| d.target_for_path(&want.path))
            .collect();
        let covered = suggested.iter().any(|t| {
            tflock_core::Target::parse(t).is_ok_and(|st| {
                listing
                    .targets
                    .iter()
                    .any(|lt| st.scheme == lt.scheme && st.host == lt.host)
            })
        });
        if !suggested.is_empty() && !covered {
            let adds: Vec<String> = suggested
                .iter()
                .map(|t| format!("-t {}", tflock_core::text::shell_quote(t)))
                .collect();
            return Err(Error::not_found(
                listing.names(),
                format!("{} is not in these targets", here()),
            )
            .with_hint(format!(
                "its path points at another place: add {}",
                ui::safe(&adds.join(" or "))
            )));
        }
    }
    Err(Error::not_found(
        listing.names(),
        format!("{} is gone: it was already released or broken", here()),
    )
    .with_hint("run `tflock list` to see what is locked now"))
}
