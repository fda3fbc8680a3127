//! The tflock command line: parse, resolve targets once, list / inspect / break / wait,
//! render, and map every outcome to an exit code. Backends live in `crates/` and are
//! registered in [`backends`]; this crate never names a cloud SDK type.
//!
//! Layers, each using only the ones below it:
//! `commands` -> `inventory` (listing, merging halves) -> `settings` (targets, context)
//! -> `backends` (the registry) ; `ui` renders and asks; `audit` records breaks.

mod audit;
pub mod backends;
pub mod cli;
mod commands;
mod config;
mod discover;
pub mod exit;
mod inventory;
mod settings;
mod ui;

use clap::FromArgMatches;
use std::ffi::OsString;
use std::io::{BufRead, Write};

pub use backends::{DefaultResolver, Resolver};

/// Entry points for the fuzz targets in `fuzz/` (the same code paths the commands use).
#[doc(hidden)]
pub mod fuzzing {
    use tflock_core::BackendBlock;

    /// `tflock.toml` text -> named targets.
    pub fn config(text: &str) {
        let _ = crate::config::parse(text, "tflock.toml");
    }

    /// A `*.tf` (`json`: `*.tf.json`) file's text -> its backend block -> the targets of
    /// every driver that reads that backend type.
    pub fn backend_block(text: &str, json: bool) {
        let file = std::path::Path::new(if json { "main.tf.json" } else { "main.tf" });
        if let Ok(Some((kind, config))) = crate::discover::backend_in(text, file) {
            let block = BackendBlock {
                kind,
                config,
                source: "fuzz".into(),
                dir: ".".into(),
            };
            for d in crate::backends::drivers() {
                if d.terraform_backends().contains(&block.kind.as_str()) {
                    let _ = d.discover(&block);
                }
            }
        }
    }
}

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
    let parsed = cli::command()
        .try_get_matches_from(args)
        .and_then(|m| cli::Cli::from_arg_matches(&m));
    let cli = match parsed {
        Ok(cli) => cli,
        Err(e) => {
            // clap quotes the offending argument as given: keep its lines, escape the rest.
            let text: Vec<String> = e
                .render()
                .to_string()
                .split('\n')
                .map(|line| tflock_core::text::escape_control(line).into_owned())
                .collect();
            let text = text.join("\n");
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
