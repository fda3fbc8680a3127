//! `tflock wait --id ID`: until the lock is gone (exit 0) or the timeout (exit 5).

use super::App;
use crate::cli::WaitArgs;
use crate::settings::chrono_duration;
use crate::{exit, ui};
use tflock_core::{Error, Kind};

pub async fn run(args: WaitArgs, app: &mut App<'_, '_>) -> Result<i32, Error> {
    let interval = args.interval.max(std::time::Duration::from_millis(100));
    let deadline = std::time::Instant::now()
        .checked_add(args.timeout)
        .unwrap_or_else(|| {
            std::time::Instant::now() + std::time::Duration::from_secs(86_400 * 365)
        });
    loop {
        match app.list(&args.targets).await {
            Ok(listing)
                if listing.failed == 0
                    && !listing.entries.iter().any(|e| e.matches_id(&args.id)) =>
            {
                let _ = writeln!(app.io.out, "Lock {} is gone.", ui::safe(&args.id));
                return Ok(exit::OK);
            }
            Ok(_) => {}
            Err(e) if e.kind() == Kind::Usage => return Err(e),
            // A failing listing proves nothing: keep waiting until the deadline.
            Err(e) => ui::warn(app.io, &e),
        }
        if std::time::Instant::now() + interval > deadline {
            let _ = writeln!(
                app.io.err,
                "error: lock {} is still held after {}",
                ui::safe(&args.id),
                tflock_core::duration::human(chrono_duration(args.timeout))
            );
            return Ok(exit::ATTENTION);
        }
        tokio::time::sleep(interval).await;
    }
}
