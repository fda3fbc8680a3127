//! Command-line definitions: the one place flags are declared and documented.

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "tflock",
    version,
    about = "Find, explain and safely break Terraform / OpenTofu state locks",
    after_help = "Targets: a directory (local backend), file://DIR, dynamodb://TABLE, s3://BUCKET[/PREFIX], \
azblob://ACCOUNT/CONTAINER[/PREFIX], gs://BUCKET[/PREFIX]. Default: the current directory.\n\
Exit codes: 0 ok, 1 operational error, 2 usage error, 3 no such lock, 4 refused or changed since read."
)]
pub struct Cli {
    /// Give up on a backend request after this long (e.g. 10s, 1m).
    #[arg(long, global = true, default_value = "10s", value_name = "DUR")]
    pub timeout: String,
    /// How many per-lock reads run at once.
    #[arg(long, global = true, default_value_t = 16, value_name = "N")]
    pub concurrency: usize,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List every lock held in the targets.
    List(ListArgs),
    /// Show everything known about one lock, by ID or state path.
    Inspect(InspectArgs),
    /// Remove exactly one lock, only if it is still the lock that was read.
    Break(BreakArgs),
}

#[derive(Debug, Args)]
pub struct TargetArgs {
    /// Where to look (repeatable): a directory, file://DIR, dynamodb://TABLE, s3://BUCKET[/PREFIX],
    /// azblob://ACCOUNT/CONTAINER[/PREFIX], gs://BUCKET[/PREFIX].
    #[arg(short = 't', long = "target", value_name = "TARGET")]
    pub targets: Vec<String>,
    /// A lock whose holder cannot be seen counts as stale once it is this old.
    #[arg(long, default_value = "1h", value_name = "DUR")]
    pub stale_after: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
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
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// A lock ID (as Terraform printed it) or a state path.
    #[arg(value_name = "ID|STATE-PATH")]
    pub query: String,
    #[command(flatten)]
    pub targets: TargetArgs,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct BreakArgs {
    /// The ID of the lock to break (as `tflock list` or Terraform printed it).
    #[arg(long, value_name = "ID")]
    pub id: String,
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
}
