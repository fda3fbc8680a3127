//! `tflock list`: every lock in the targets.

use super::App;
use super::{partial_exit, write_out, write_with};
use crate::cli::{Format, ListArgs};
use crate::exit;
use crate::settings::{chrono_duration, Ctx};
use crate::ui::render;
use tflock_core::{Error, Status};

pub async fn run(args: ListArgs, app: &mut App<'_, '_>) -> Result<i32, Error> {
    let ctx = Ctx::new(args.targets.stale_after);
    let min_age = args.older_than.map(chrono_duration);
    let mut listing = app.list(&args.targets).await?;
    listing.entries.retain(|e| e.old_enough(&ctx, min_age));
    let format = if args.json { Format::Json } else { args.output };
    match format {
        Format::Json => write_with(app.io, |out| {
            render::write_json_list(out, &listing.entries, &ctx)
        })?,
        Format::Jsonl => write_with(app.io, |out| {
            render::write_json_lines(out, &listing.entries, &ctx)
        })?,
        Format::Table if listing.entries.is_empty() => write_out(
            app.io,
            &format!("No locks held. Looked in: {}\n", listing.names()),
        )?,
        Format::Table => write_out(app.io, &render::table(&listing.entries, &ctx, app.io.color))?,
    }
    let code = partial_exit(&listing, app.io);
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
