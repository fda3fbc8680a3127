//! `tflock inspect ID|STATE-PATH`: everything known about a lock, and how to break it.

use super::{partial_exit, write_out, write_with};
use crate::cli::InspectArgs;
use crate::inventory::{list_all, Entry};
use crate::settings::{resolve, Ctx};
use crate::ui::render;
use crate::{Io, Resolver};
use tflock_core::{ConnectOptions, Error};

pub async fn run(
    args: InspectArgs,
    io: &mut Io<'_>,
    resolver: &dyn Resolver,
    opts: &ConnectOptions,
) -> Result<i32, Error> {
    let ctx = Ctx::new(args.targets.stale_after);
    let listing = list_all(resolve(&args.targets)?, io, resolver, opts).await?;
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
        return Err(listing.not_found("ID or state path", &args.query));
    }
    if args.json {
        write_with(io, |out| render::write_json_list(out, &found, &ctx))?;
    } else {
        let text = found
            .iter()
            .map(|e| render::details(e, &ctx) + &render::break_hint(e))
            .collect::<Vec<_>>()
            .join("\n");
        write_out(io, &text)?;
    }
    Ok(partial_exit(&listing, io))
}
