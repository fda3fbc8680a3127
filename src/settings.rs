//! Settings every command uses, resolved once from the flags: which targets a command
//! covers (and how to name each again on a command line), the time and stale threshold,
//! and the connection options. Commands never re-parse flags or re-resolve targets.

use crate::cli::TargetArgs;
use crate::{config, discover};
use chrono::{DateTime, Utc};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tflock_core::{Error, Kind, Lock, Status, Target};

/// Durations on the command line: `90s`, `15m`, `1h30m`, `2d` (the workspace's one
/// parser: range-checked, never a panic).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    tflock_core::duration::parse(text).map_err(|e| e.to_string())
}

/// A std duration as chrono's, saturating.
pub fn chrono_duration(d: Duration) -> chrono::Duration {
    tflock_core::duration::to_chrono(d)
}

/// The time and threshold a command judges locks by.
pub struct Ctx {
    pub now: DateTime<Utc>,
    pub stale_after: chrono::Duration,
}

impl Ctx {
    pub fn new(stale_after: Duration) -> Ctx {
        Ctx {
            now: Utc::now(),
            stale_after: chrono_duration(stale_after),
        }
    }
    pub fn status(&self, lock: &Lock) -> Status {
        lock.status(self.now, self.stale_after)
    }
}

/// One target of a command, and how to name it again on a command line (for the printed
/// `tflock break` command): `-t '...'`, `-T name`, or nothing in the working directory it
/// was discovered from.
pub struct Resolved {
    pub target: Target,
    pub selector: Vec<String>,
}

/// The targets of one command.
pub struct Scope {
    pub targets: Vec<Resolved>,
    /// The working directory's current workspace, when the targets were discovered.
    pub current_workspace: Option<String>,
}

/// Which targets a command covers: `-t` (plus `-T` names), else the config file when
/// `-T`/`-c` are given, else the Terraform working directory (`--dir`, or the current
/// directory when it holds a configuration), else every target of a config file found
/// by default, else the local backend of the current directory.
pub fn resolve(args: &TargetArgs) -> Result<Scope, Error> {
    let mut targets = Vec::new();
    for t in &args.targets {
        let target = Target::parse(t)?;
        let selector = vec!["-t".to_string(), target.url.clone()];
        targets.push(Resolved { target, selector });
    }
    let explicit_config = !args.names.is_empty() || args.config.is_some();
    if !targets.is_empty() || explicit_config {
        if args.dir.is_some() {
            return Err(Error::new(
                Kind::Usage,
                "--dir reads a working directory's backend; it cannot be combined with -t, -T or -c",
            ));
        }
        if explicit_config {
            let Some(path) = config::locate(args.config.as_deref())? else {
                return Err(Error::new(
                    Kind::Usage,
                    "-T names a target of the config file, but there is none (./tflock.toml, $XDG_CONFIG_HOME/tflock/config.toml, or -c FILE)",
                ));
            };
            targets.extend(named(&path, &args.names, args.config.is_some())?);
        }
        return Ok(Scope {
            targets,
            current_workspace: None,
        });
    }
    let cwd = PathBuf::from(".");
    let dir = match &args.dir {
        Some(d) => Some(d.clone()),
        None if discover::is_terraform_dir(&cwd) => Some(cwd.clone()),
        None => None,
    };
    if dir.is_none() {
        if let Some(path) = config::locate(None)? {
            return Ok(Scope {
                targets: named(&path, &[], false)?,
                current_workspace: None,
            });
        }
    }
    let found = discover::discover(dir.as_deref().unwrap_or(&cwd))?;
    let selector = match &args.dir {
        Some(d) => vec!["--dir".to_string(), d.display().to_string()],
        None => Vec::new(),
    };
    Ok(Scope {
        targets: found
            .targets
            .into_iter()
            .map(|target| Resolved {
                target,
                selector: selector.clone(),
            })
            .collect(),
        current_workspace: Some(found.current_workspace),
    })
}

fn named(path: &Path, names: &[String], explicit: bool) -> Result<Vec<Resolved>, Error> {
    let all = config::load(path)?;
    let selector = |n: &str| {
        let mut s = Vec::new();
        if explicit {
            s.extend(["-c".to_string(), path.display().to_string()]);
        }
        s.extend(["-T".to_string(), n.to_string()]);
        s
    };
    if names.is_empty() {
        return Ok(all
            .into_iter()
            .map(|(n, target)| Resolved {
                target,
                selector: selector(&n),
            })
            .collect());
    }
    names
        .iter()
        .map(|n| match all.get(n) {
            Some(t) => Ok(Resolved {
                target: t.clone(),
                selector: selector(n),
            }),
            None => Err(Error::new(
                Kind::Usage,
                format!(
                    "{}: no target named {n:?} (it has: {})",
                    path.display(),
                    all.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            )),
        })
        .collect()
}
