//! `tflock list`: every lock in the targets.

use super::{partial_exit, write_out, write_with};
use crate::cli::{Format, ListArgs};
use crate::inventory::list_all;
use crate::settings::{chrono_duration, resolve, Ctx};
use crate::ui::render;
use crate::{exit, Io, Resolver};
use tflock_core::{ConnectOptions, Error, Status};

pub async fn run(
    args: ListArgs,
    io: &mut Io<'_>,
    resolver: &dyn Resolver,
    opts: &ConnectOptions,
) -> Result<i32, Error> {
    let ctx = Ctx::new(args.targets.stale_after);
    let min_age = args.older_than.map(chrono_duration);
    let scope = resolve(&args.targets)?;
    let mut listing = list_all(scope, io, resolver, opts).await?;
    listing.entries.retain(|e| e.old_enough(&ctx, min_age));
    let format = if args.json { Format::Json } else { args.output };
    match format {
        Format::Json => write_with(io, |out| {
            render::write_json_list(out, &listing.entries, &ctx)
        })?,
        Format::Jsonl => write_with(io, |out| {
            render::write_json_lines(out, &listing.entries, &ctx)
        })?,
        Format::Table if listing.entries.is_empty() => write_out(
            io,
            &format!("No locks held. Looked in: {}\n", listing.names()),
        )?,
        Format::Table => write_out(io, &render::table(&listing.entries, &ctx, io.color))?,
    }
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
