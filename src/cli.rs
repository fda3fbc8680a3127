//! Command-line definitions: the one place flags are declared and documented. `--help`,
//! `tflock man` and `tflock completions` are all generated from these.

use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;

/// `--flag DUR`: `90s`, `15m`, `1h30m`, `2d`; range-checked, never a panic.
fn duration(text: &str) -> Result<Duration, String> {
    crate::settings::parse_duration(text)
}

/// `--request-timeout DUR`: more than zero.
fn positive_duration(text: &str) -> Result<Duration, String> {
    match duration(text)? {
        d if d.is_zero() => Err("must be more than 0s".into()),
        d => Ok(d),
    }
}

/// `--concurrency N`: at least 1.
fn concurrency(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(n) if (1..=1024).contains(&n) => Ok(n),
        _ => Err(format!("{text:?} is not a number from 1 to 1024")),
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "tflock",
    version,
    about = "Find, explain and safely break Terraform / OpenTofu state locks",
    // after_help: see `command()`, which adds the target forms of every backend.
)]
pub struct Cli {
    /// Give up on one backend request, retries included, after this long (e.g. 10s, 1m).
    #[arg(
        long,
        global = true,
        default_value = "10s",
        value_name = "DUR",
        env = "TFLOCK_REQUEST_TIMEOUT",
        value_parser = positive_duration
    )]
    pub request_timeout: Duration,
    /// How many per-lock reads run at once.
    #[arg(long, global = true, default_value = "64", value_name = "N", value_parser = concurrency)]
    pub concurrency: usize,
    #[command(subcommand)]
    pub command: Command,
}

/// The command line as clap sees it, with the targets of every registered backend in the
/// help text. `--help`, `tflock man` and `tflock completions` all come from this.
pub fn command() -> clap::Command {
    let targets: Vec<String> = crate::backends::drivers()
        .iter()
        .flat_map(|d| d.schemes())
        .map(|s| format!("  {:<38} {}", s.form, s.about))
        .collect();
    <Cli as clap::CommandFactory>::command().after_help(format!(
        "Targets (-t):\n{}\n\
With no target, the Terraform working directory (--dir, default .) is read: its initialised backend, \
else its backend block, else the local backend.\n\n\
Exit codes: 0 ok, 1 operational error (or some targets failed), 2 usage error, 3 no such lock, \
4 refused or changed since read, 5 stale locks found (list --exit-code), wait timed out, or problems found (doctor).",
        targets.join("\n")
    ))
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List every lock held in the targets.
    List(ListArgs),
    /// Show everything known about one lock, by ID or state path.
    Inspect(InspectArgs),
    /// Remove exactly one lock (--id) or every stale one (--stale), only if each is still the lock that was read.
    Break(BreakArgs),
    /// Wait until a lock is gone (exit 0) or the timeout passes (exit 5).
    Wait(WaitArgs),
    /// Find what blocks Terraform around its locks (a DynamoDB digest that does not match
    /// the state, orphan lockfiles, lock halves that disagree, foreign leases), with the
    /// evidence and the exact fix; --fix applies the safe ones.
    Doctor(DoctorArgs),
    /// Print a shell completion script.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff).
    Man,
}

#[derive(Debug, Args)]
pub struct TargetArgs {
    /// Where to look (repeatable): a directory or a URL such as s3://BUCKET (see the list below).
    #[arg(short = 't', long = "target", value_name = "TARGET")]
    pub targets: Vec<String>,
    /// Targets from the config file, by name (repeatable; default: all of them).
    #[arg(short = 'T', long = "target-name", value_name = "NAME")]
    pub names: Vec<String>,
    /// Config file naming targets (default: ./tflock.toml, else $XDG_CONFIG_HOME/tflock/config.toml).
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Terraform working directory whose backend is used when no target is given.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// A lock whose holder cannot be seen counts as stale once it is this old.
    #[arg(long, default_value = "1h", value_name = "DUR", value_parser = duration)]
    pub stale_after: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    /// One JSON array.
    Json,
    /// One JSON object per line, written as each lock is ready.
    Jsonl,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub targets: TargetArgs,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value = "table")]
    pub output: Format,
    /// Same as --output json.
    #[arg(long)]
    pub json: bool,
    /// Only locks at least this old.
    #[arg(long, value_name = "DUR", value_parser = duration)]
    pub older_than: Option<Duration>,
    /// Exit 5 when any listed lock is stale (for monitors and cron).
    #[arg(long)]
    pub exit_code: bool,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("what").required(true).args(["query", "from_error"])))]
pub struct InspectArgs {
    /// A lock ID (as Terraform printed it) or a state path.
    #[arg(value_name = "ID|STATE-PATH")]
    pub query: Option<String>,
    /// Find the lock named in a pasted `Error acquiring the state lock` output (a file, or
    /// - for stdin): colour, -no-color, -json and CI-log forms are all read.
    #[arg(long, value_name = "FILE|-")]
    pub from_error: Option<PathBuf>,
    #[command(flatten)]
    pub targets: TargetArgs,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("which").required(true).args(["id", "stale", "from_error"])))]
pub struct BreakArgs {
    /// The ID of the lock to break (as `tflock list` or Terraform printed it).
    #[arg(long, value_name = "ID")]
    pub id: Option<String>,
    /// Break the lock named in a pasted `Error acquiring the state lock` output (a file,
    /// or - for stdin), matched by ID and path.
    #[arg(long, value_name = "FILE|-")]
    pub from_error: Option<PathBuf>,
    /// Break every stale lock in the targets (see --older-than, --max).
    #[arg(long)]
    pub stale: bool,
    /// With --stale: locks at least this old whose holder cannot be seen count as stale
    /// (overrides --stale-after for this run).
    #[arg(long, value_name = "DUR", requires = "stale", value_parser = duration)]
    pub older_than: Option<Duration>,
    /// With --stale: refuse to run when more than N locks would be broken.
    #[arg(long, value_name = "N", requires = "stale")]
    pub max: Option<usize>,
    #[command(flatten)]
    pub targets: TargetArgs,
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Show what would be removed and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Also break a lease that carries no Terraform lock metadata (Azure).
    #[arg(long)]
    pub force_foreign: bool,
    /// Append one JSON line per break attempt here (default: $TFLOCK_AUDIT_LOG, else
    /// $XDG_STATE_HOME/tflock/audit.jsonl).
    #[arg(long, value_name = "FILE")]
    pub audit_log: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct WaitArgs {
    /// The ID of the lock to wait for.
    #[arg(long, value_name = "ID")]
    pub id: String,
    #[command(flatten)]
    pub targets: TargetArgs,
    /// Give up after this long (exit 5).
    #[arg(long, default_value = "10m", value_name = "DUR", value_parser = duration)]
    pub timeout: Duration,
    /// How often to look.
    #[arg(long, default_value = "5s", value_name = "DUR", value_parser = duration)]
    pub interval: Duration,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    #[command(flatten)]
    pub targets: TargetArgs,
    /// Apply the fixes offered, each only if what it was decided on is unchanged (asks
    /// for 'yes'; see --yes, --dry-run).
    #[arg(long)]
    pub fix: bool,
    /// With --fix: do not ask for confirmation.
    #[arg(long, short = 'y', requires = "fix")]
    pub yes: bool,
    /// Show what --fix would change, and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Start from a pasted "state data in S3 does not have the expected content" error (a
    /// file, or - for stdin): check only that state.
    #[arg(long, value_name = "FILE|-")]
    pub from_error: Option<PathBuf>,
    /// Append one JSON line per fix attempt here (default: $TFLOCK_AUDIT_LOG, else
    /// $XDG_STATE_HOME/tflock/audit.jsonl).
    #[arg(long, value_name = "FILE")]
    pub audit_log: Option<PathBuf>,
}
