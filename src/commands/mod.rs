//! One file per command, each taking the settings resolved once; `dispatch` runs one
//! and turns its outcome into the exit code.

#[path = "break.rs"]
mod break_cmd;
mod doctor;
mod inspect;
mod list;
mod pasted;
mod wait;

use crate::cli::{Cli, Command, TargetArgs};
use crate::inventory::{list_all, Listing};
use crate::settings::resolve;
use crate::{exit, ui, Io, Resolver};
use tflock_core::{ConnectOptions, Error, Kind};

/// What every command works with: where it reads and writes, how targets are opened, and
/// the connection settings resolved from the flags.
pub struct App<'a, 'io> {
    pub io: &'a mut Io<'io>,
    pub resolver: &'a dyn Resolver,
    pub opts: ConnectOptions,
}

impl App<'_, '_> {
    /// Resolves the command's targets and lists them all.
    pub async fn list(&mut self, targets: &TargetArgs) -> Result<Listing, Error> {
        list_all(resolve(targets)?, self.io, self.resolver, &self.opts).await
    }
}

/// Marks an error as "stdout was closed by its reader" (`tflock list | head -1`): the
/// command ends quietly with 0, as ripgrep does.
const CLOSED_STDOUT: &str = "<stdout closed>";

pub async fn dispatch(cli: Cli, io: &mut Io<'_>, resolver: &dyn Resolver) -> i32 {
    let mut app = App {
        io,
        resolver,
        opts: ConnectOptions {
            timeout: cli.request_timeout,
            concurrency: cli.concurrency,
        },
    };
    let result = match cli.command {
        Command::List(a) => list::run(a, &mut app).await,
        Command::Inspect(a) => inspect::run(a, &mut app).await,
        Command::Break(a) => break_cmd::run(a, &mut app).await,
        Command::Wait(a) => wait::run(a, &mut app).await,
        Command::Doctor(a) => doctor::run(a, &mut app).await,
        Command::Completions { shell } => {
            let mut cmd = crate::cli::command();
            clap_complete::generate(shell, &mut cmd, "tflock", app.io.out);
            Ok(exit::OK)
        }
        Command::Man => clap_mangen::Man::new(crate::cli::command())
            .render(app.io.out)
            .map(|_| exit::OK)
            .or_else(|e| stdout_error(e).map(|_| exit::OK)),
    };
    match result {
        Ok(code) => code,
        Err(e) if e.target() == Some(CLOSED_STDOUT) => exit::OK,
        Err(e) => {
            ui::error(app.io, &e);
            exit::of(&e)
        }
    }
}

fn stdout_error(e: std::io::Error) -> Result<(), Error> {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        Err(Error::new(Kind::Backend, "closed").at(CLOSED_STDOUT))
    } else {
        Err(Error::backend("stdout", e.to_string()))
    }
}

/// Writes command output; a closed stdout ends the command quietly.
pub(crate) fn write_out(io: &mut Io<'_>, text: &str) -> Result<(), Error> {
    io.out.write_all(text.as_bytes()).or_else(stdout_error)
}

/// Streams command output through `f`; a closed stdout ends the command quietly.
pub(crate) fn write_with(
    io: &mut Io<'_>,
    f: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>,
) -> Result<(), Error> {
    let mut out = std::io::BufWriter::new(&mut *io.out);
    f(&mut out)
        .and_then(|_| std::io::Write::flush(&mut out))
        .or_else(stdout_error)
}

/// Exit 1 with a summary when some targets could not be listed, else 0.
pub(crate) fn partial_exit(listing: &crate::inventory::Listing, io: &mut Io<'_>) -> i32 {
    if listing.failed > 0 {
        let _ = writeln!(
            io.err,
            "error: {} of {} targets could not be listed (see warnings above)",
            listing.failed,
            listing.targets.len()
        );
        exit::FAILED
    } else {
        exit::OK
    }
}
