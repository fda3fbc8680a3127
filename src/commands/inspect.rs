//! `tflock inspect ID|STATE-PATH`: everything known about a lock, and how to break it.

use super::App;
use super::{partial_exit, write_out, write_with};
use crate::cli::InspectArgs;
use crate::inventory::Entry;
use crate::settings::Ctx;
use crate::ui::render;

use tflock_core::Error;

pub async fn run(args: InspectArgs, app: &mut App<'_, '_>) -> Result<i32, Error> {
    let ctx = Ctx::new(args.targets.stale_after);
    let pasted = match &args.from_error {
        Some(from) => Some(super::pasted::read(from, app.io)?),
        None => None,
    };
    let listing = app.list(&args.targets).await?;
    let found: Vec<&Entry> = match (&pasted, args.query.as_deref()) {
        (Some(p), _) => vec![super::pasted::find(&listing, p)?],
        (None, Some(query)) => {
            let by_id: Vec<&Entry> = listing
                .entries
                .iter()
                .filter(|e| e.matches_id(query))
                .collect();
            let found = if by_id.is_empty() {
                listing
                    .entries
                    .iter()
                    .filter(|e| e.matches_path(query))
                    .collect()
            } else {
                by_id
            };
            if found.is_empty() {
                return Err(listing.not_found("ID or state path", query));
            }
            found
        }
        (None, None) => {
            return Err(Error::new(
                tflock_core::Kind::Usage,
                "name the lock: an ID, a state path, or --from-error FILE",
            ))
        }
    };
    if args.json {
        write_with(app.io, |out| render::write_json_list(out, &found, &ctx))?;
    } else {
        let text = found
            .iter()
            .map(|e| render::details(e, &ctx) + &render::break_hint(e))
            .collect::<Vec<_>>()
            .join("\n");
        write_out(app.io, &text)?;
    }
    Ok(partial_exit(&listing, app.io))
}
