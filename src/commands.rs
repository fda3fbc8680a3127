//! list / inspect / wait, and the dispatch of every command.

use crate::cli::{Cli, Command, Format, InspectArgs, ListArgs, WaitArgs};
use crate::listing::{ctx, list_all, not_found, old_enough, older_than, partial_exit, Entry};
use crate::{breaking, duration, render, Io, Resolver};
use tflock_core::error::exit;
use tflock_core::{ConnectOptions, Error, Status};

pub async fn dispatch(cli: Cli, io: &mut Io<'_>, resolver: &dyn Resolver) -> i32 {
    let opts = match duration::parse(&cli.request_timeout) {
        Ok(d) if d > chrono::Duration::zero() => ConnectOptions {
            timeout: d.to_std().unwrap_or(std::time::Duration::from_secs(10)),
            concurrency: cli.concurrency.max(1),
        },
        Ok(_) => return usage(io, "--request-timeout must be more than 0s"),
        Err(e) => return usage(io, &format!("--request-timeout: {e}")),
    };
    let result = match cli.command {
        Command::List(a) => list(a, io, resolver, &opts).await,
        Command::Inspect(a) => inspect(a, io, resolver, &opts).await,
        Command::Break(a) => breaking::break_cmd(a, io, resolver, &opts).await,
        Command::Wait(a) => wait(a, io, resolver, &opts).await,
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "tflock", io.out);
            Ok(exit::OK)
        }
        Command::Man => {
            let cmd = <Cli as clap::CommandFactory>::command();
            clap_mangen::Man::new(cmd)
                .render(io.out)
                .map(|_| exit::OK)
                .map_err(|e| Error::backend("stdout", e.to_string()))
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            let _ = writeln!(io.err, "error: {e}");
            e.exit_code()
        }
    }
}

fn usage(io: &mut Io<'_>, msg: &str) -> i32 {
    let _ = writeln!(io.err, "error: {msg}");
    exit::USAGE
}

pub(crate) fn write_out(io: &mut Io<'_>, text: &str) -> Result<(), Error> {
    io.out
        .write_all(text.as_bytes())
        .map_err(|e| Error::backend("stdout", e.to_string()))
}

async fn list(
    args: ListArgs,
    io: &mut Io<'_>,
    resolver: &dyn Resolver,
    opts: &ConnectOptions,
) -> Result<i32, Error> {
    let ctx = ctx(&args.targets)?;
    let min_age = older_than(args.older_than.as_deref())?;
    let mut listing = list_all(&args.targets, io, resolver, opts).await?;
    listing.entries.retain(|e| old_enough(e, &ctx, min_age));
    let out = if args.json || args.output == Format::Json {
        render::json_list(&listing.entries, &ctx)
    } else if listing.entries.is_empty() {
        format!("No locks held. Looked in: {}\n", listing.targets.join(", "))
    } else {
        render::table(&listing.entries, &ctx, io.color)
    };
    write_out(io, &out)?;
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

async fn inspect(
    args: InspectArgs,
    io: &mut Io<'_>,
    resolver: &dyn Resolver,
    opts: &ConnectOptions,
) -> Result<i32, Error> {
    let ctx = ctx(&args.targets)?;
    let listing = list_all(&args.targets, io, resolver, opts).await?;
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
        return Err(not_found("ID or state path", &args.query, &listing));
    }
    let out = if args.json {
        render::json_list(&found, &ctx)
    } else {
        found
            .iter()
            .map(|e| render::details(e, &ctx) + &render::break_hint(e))
            .collect::<Vec<_>>()
            .join("\n")
    };
    write_out(io, &out)?;
    Ok(partial_exit(&listing, io))
}

async fn wait(
    args: WaitArgs,
    io: &mut Io<'_>,
    resolver: &dyn Resolver,
    opts: &ConnectOptions,
) -> Result<i32, Error> {
    let timeout =
        duration::parse(&args.timeout).map_err(|e| Error::usage(format!("--timeout: {e}")))?;
    let interval =
        duration::parse(&args.interval).map_err(|e| Error::usage(format!("--interval: {e}")))?;
    let interval = interval
        .to_std()
        .unwrap_or_default()
        .max(std::time::Duration::from_millis(100));
    let deadline = std::time::Instant::now() + timeout.to_std().unwrap_or_default();
    loop {
        match list_all(&args.targets, io, resolver, opts).await {
            Ok(listing)
                if listing.failed == 0
                    && !listing.entries.iter().any(|e| e.matches_id(&args.id)) =>
            {
                let _ = writeln!(io.out, "Lock {} is gone.", args.id);
                return Ok(exit::OK);
            }
            Ok(_) => {}
            Err(e @ Error::Usage { .. }) => return Err(e),
            // A failing listing proves nothing: keep waiting until the deadline.
            Err(e) => {
                let _ = writeln!(io.err, "warning: {e}");
            }
        }
        if std::time::Instant::now() + interval > deadline {
            let _ = writeln!(
                io.err,
                "error: lock {} is still held after {}",
                args.id,
                duration::human(timeout)
            );
            return Ok(exit::ATTENTION);
        }
        tokio::time::sleep(interval).await;
    }
}
