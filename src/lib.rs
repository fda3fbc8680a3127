//! The tflock command line: parse, resolve targets, list / inspect / break, render, and
//! map every outcome to an exit code. Backends live in `crates/`; this crate never names
//! a cloud SDK type.

mod audit;
mod breaking;
pub mod cli;
mod commands;
mod config;
mod discover;
mod duration;
mod listing;
mod render;
pub mod targets;

use clap::Parser;
use std::ffi::OsString;
use std::io::{BufRead, Write};
use tflock_core::error::exit;

pub use targets::{DefaultResolver, Resolver};

/// Where the command reads and writes: the real terminal, or buffers in tests.
pub struct Io<'a> {
    pub out: &'a mut dyn Write,
    pub err: &'a mut dyn Write,
    pub input: &'a mut dyn BufRead,
    /// A person can answer a confirmation prompt.
    pub interactive: bool,
    /// Colours in the table (a terminal, and NO_COLOR unset).
    pub color: bool,
    /// A progress line on stderr while slow listings run (stderr is a terminal).
    pub progress: bool,
}

/// Runs one tflock command and returns its exit code.
pub fn run<I, T>(args: I, io: &mut Io<'_>, resolver: &dyn Resolver) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match cli::Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let text = e.render().to_string();
            if e.use_stderr() {
                let _ = write!(io.err, "{text}");
                return exit::USAGE;
            }
            let _ = write!(io.out, "{text}");
            return exit::OK;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = writeln!(io.err, "error: cannot start the async runtime: {e}");
            return exit::FAILED;
        }
    };
    let code = runtime.block_on(commands::dispatch(cli, io, resolver));
    let _ = io.out.flush();
    code
}
