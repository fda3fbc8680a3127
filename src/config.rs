//! `tflock.toml`: named targets with their options, so one command covers every team's
//! state.
//!
//! ```toml
//! [targets.prod]
//! url = "s3://acme-tf-state"
//! region = "eu-west-1"
//! profile = "ops"
//!
//! [targets.prod-locks]
//! url = "dynamodb://tf-locks"
//! region = "eu-west-1"
//! ```
//! Every key other than `url` is an option of that target (the same as `?key=value` on
//! the URL): `region`, `profile`, `endpoint`, ...

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tflock_core::{Error, Kind, Target};

fn usage(message: impl Into<String>) -> Error {
    Error::new(Kind::Usage, message)
}

/// The config file to read: `-c FILE`, else `./tflock.toml`, else
/// `$XDG_CONFIG_HOME/tflock/config.toml` (`~/.config/...`). `None` when there is none.
pub fn locate(explicit: Option<&Path>) -> Result<Option<PathBuf>, Error> {
    if let Some(p) = explicit {
        // Anything there is read (and refused with the reason if it is not a regular
        // file); only a missing file is "not found".
        if std::fs::symlink_metadata(p).is_err() {
            return Err(usage(format!("{}: config file not found", p.display())));
        }
        return Ok(Some(p.to_path_buf()));
    }
    let local = PathBuf::from("tflock.toml");
    if local.is_file() {
        return Ok(Some(local));
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")));
    Ok(base
        .map(|b| b.join("tflock").join("config.toml"))
        .filter(|p| p.is_file()))
}

/// Named targets, in file order of their names (sorted).
pub fn load(path: &Path) -> Result<BTreeMap<String, Target>, Error> {
    let text = tflock_core::fsread::read_text_bounded(path, tflock_core::fsread::CONFIG_MAX)
        .map_err(|e| usage(e.to_string()))?;
    parse(&text, &path.display().to_string())
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

pub fn parse(text: &str, file: &str) -> Result<BTreeMap<String, Target>, Error> {
    let doc: toml::Table = toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| line_of(text, s.start)).unwrap_or(1);
        usage(format!("{file}:{line}: {}", e.message()))
    })?;
    // Spans for messages about valid TOML with wrong content.
    let spanned: toml::Spanned<toml::Table> =
        toml::from_str(text).map_err(|e| usage(format!("{file}: {e}")))?;
    let at = |needle: &str| {
        text.find(needle)
            .map(|o| line_of(text, o))
            .unwrap_or_else(|| line_of(text, spanned.span().start))
    };
    for key in doc.keys() {
        if key != "targets" {
            return Err(usage(format!(
                "{file}:{}: unknown section or key {key:?} (expected [targets.NAME] tables)",
                at(key)
            )));
        }
    }
    let mut out = BTreeMap::new();
    let Some(targets) = doc.get("targets") else {
        return Err(usage(format!("{file}: no [targets.NAME] tables")));
    };
    let Some(targets) = targets.as_table() else {
        return Err(usage(format!(
            "{file}:{}: targets must be tables: [targets.NAME]",
            at("targets")
        )));
    };
    for (name, value) in targets {
        let here = at(&format!("targets.{name}"));
        let Some(table) = value.as_table() else {
            return Err(usage(format!(
                "{file}:{here}: targets.{name} must be a table with url = \"...\""
            )));
        };
        let Some(url) = table.get("url").and_then(|u| u.as_str()) else {
            return Err(usage(format!(
                "{file}:{here}: targets.{name} has no url = \"...\""
            )));
        };
        let mut target =
            Target::parse(url).map_err(|e| usage(format!("{file}:{here}: targets.{name}: {e}")))?;
        for (k, v) in table {
            if k == "url" {
                continue;
            }
            let v = match v {
                toml::Value::String(s) => s.clone(),
                toml::Value::Boolean(b) => b.to_string(),
                toml::Value::Integer(i) => i.to_string(),
                _ => {
                    return Err(usage(format!(
                        "{file}:{}: targets.{name}.{k} must be a string, number or boolean",
                        at(&format!("{k} ="))
                    )))
                }
            };
            target.params.insert(k.clone(), v);
        }
        out.insert(name.clone(), target);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_targets_with_options() {
        let t = parse(
            "[targets.prod]\nurl = \"s3://state/team\"\nregion = \"eu-west-1\"\n\n[targets.gcs]\nurl = \"gs://b\"\nendpoint = \"http://127.0.0.1:1\"\n",
            "tflock.toml",
        )
        .unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t["prod"].url, "s3://state/team");
        assert_eq!(t["prod"].param("region"), Some("eu-west-1"));
        assert_eq!(t["gcs"].param("endpoint"), Some("http://127.0.0.1:1"));
    }

    #[test]
    fn errors_name_file_and_line() {
        let e = parse("[targets.a]\nurl = \"s3://x\"\nregion = \n", "c.toml")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("c.toml:3:"), "{e}");
        let e = parse(
            "[targets.a]\nurl = \"s3://x\"\n\n[targets.b]\nregion = \"x\"\n",
            "c.toml",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(e, "c.toml:4: targets.b has no url = \"...\"");
        let e = parse("[target.a]\nurl = \"s3://x\"\n", "c.toml")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("c.toml:1: unknown section"), "{e}");
        let e = parse("[targets.a]\nurl = \"s3://x\"\ntags = [1]\n", "c.toml")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "c.toml:3: targets.a.tags must be a string, number or boolean"
        );
    }
}
