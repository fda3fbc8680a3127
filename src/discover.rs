//! With no target: find the backend block a Terraform working directory uses, the way
//! Terraform does, and the current workspace; the backend's own driver turns the block
//! into targets.
//!
//! Order: the initialised backend in `.terraform/terraform.tfstate` (type and resolved
//! config), else the `backend` block in `*.tf` / `*.tf.json`, else the local backend.

use crate::backends::drivers;
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};
use tflock_core::fsread::{read_text_bounded, ReadErrorKind, CONFIG_MAX};
use tflock_core::{BackendBlock, Error, Kind, Target};

/// A path for a message (a file name can hold control characters).
fn safe_path(p: &Path) -> String {
    tflock_core::text::escape_control(&p.display().to_string()).into_owned()
}

/// The result of discovery for one working directory.
pub struct Discovery {
    pub targets: Vec<Target>,
    /// `TF_WORKSPACE`, else `.terraform/environment`, else `default`.
    pub current_workspace: String,
}

fn is_tf_file(name: &str) -> bool {
    name.ends_with(".tf") || name.ends_with(".tf.json")
}

/// Whether `dir` holds a Terraform configuration (or an initialised one).
pub fn is_terraform_dir(dir: &Path) -> bool {
    dir.join(".terraform").is_dir()
        || std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| is_tf_file(&e.file_name().to_string_lossy()))
}

pub fn discover(dir: &Path) -> Result<Discovery, Error> {
    if !dir.is_dir() {
        return Err(Error::new(
            Kind::Usage,
            format!(
                "{}: not a directory (pass the Terraform working directory with --dir)",
                dir.display()
            ),
        ));
    }
    let block = backend_block(dir)?;
    let Some(driver) = drivers()
        .iter()
        .find(|d| d.terraform_backends().contains(&block.kind.as_str()))
    else {
        let known: Vec<&str> = drivers()
            .iter()
            .flat_map(|d| d.terraform_backends())
            .copied()
            .collect();
        return Err(Error::new(
            Kind::Usage,
            format!(
                "the {} backend ({}) is not supported yet; tflock reads {} backends",
                block.kind,
                block.source,
                known.join(", ")
            ),
        ));
    };
    Ok(Discovery {
        targets: driver.discover(&block)?,
        current_workspace: current_workspace(dir),
    })
}

fn current_workspace(dir: &Path) -> String {
    if let Ok(ws) = std::env::var("TF_WORKSPACE") {
        if !ws.trim().is_empty() {
            return ws.trim().to_string();
        }
    }
    read_text_bounded(&dir.join(".terraform").join("environment"), 4096)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "default".into())
}

/// The backend block Terraform would use: the initialised one, else the one in the
/// configuration, else `local`.
fn backend_block(dir: &Path) -> Result<BackendBlock, Error> {
    let block = |kind: String, config: Map<String, Value>, source: String| BackendBlock {
        kind,
        config,
        source,
        dir: dir.to_path_buf(),
    };
    let initialised = dir.join(".terraform").join("terraform.tfstate");
    // Only an absent file falls back to the configuration: an unreadable or corrupt one
    // is an error, or tflock would look in the wrong place and say "no locks".
    let recorded = match read_text_bounded(&initialised, CONFIG_MAX) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == ReadErrorKind::NotFound => None,
        Err(e) => {
            return Err(Error::new(
                Kind::Usage,
                format!("{e}; fix it or run terraform init again"),
            ))
        }
    };
    if let Some(text) = recorded {
        let v: Value = serde_json::from_str(&text).map_err(|e| {
            Error::new(
                Kind::Usage,
                format!(
                    "{}: not valid JSON (line {}, column {}); run terraform init again",
                    safe_path(&initialised),
                    e.line(),
                    e.column()
                ),
            )
        })?;
        if let Some(b) = v.get("backend").filter(|b| !b.is_null()) {
            return Ok(block(
                b.get("type")
                    .and_then(Value::as_str)
                    .unwrap_or("local")
                    .to_string(),
                b.get("config")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default(),
                initialised.display().to_string(),
            ));
        }
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| {
            Error::new(
                Kind::Usage,
                format!("{}: cannot read directory ({e})", dir.display()),
            )
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| is_tf_file(p.file_name().and_then(|n| n.to_str()).unwrap_or("")))
        .collect();
    files.sort();
    for file in files {
        let text = read_text_bounded(&file, CONFIG_MAX)
            .map_err(|e| Error::new(Kind::Usage, e.to_string()))?;
        if let Some((kind, config)) = backend_in(&text, &file)? {
            let source = format!("backend \"{kind}\" block in {}", file.display());
            return Ok(block(kind, config, source));
        }
    }
    Ok(block(
        "local".into(),
        Map::new(),
        format!("{} (no backend configured: local)", dir.display()),
    ))
}

/// A backend type and its settings.
pub type Settings = (String, Map<String, Value>);

/// The `terraform { backend "TYPE" { ... } }` block in one `*.tf` / `*.tf.json` file's
/// text: its type and settings. Errors name the file, line and column, never the source
/// text: a backend block holds keys and tokens.
pub fn backend_in(text: &str, file: &Path) -> Result<Option<Settings>, Error> {
    let parsed: Value = if file.to_string_lossy().ends_with(".json") {
        serde_json::from_str(text).map_err(|e| {
            Error::new(
                Kind::Usage,
                format!(
                    "{}:{}:{}: not valid JSON",
                    safe_path(file),
                    e.line(),
                    e.column()
                ),
            )
        })?
    } else {
        hcl::from_str(text).map_err(|e| {
            let at = match &e {
                hcl::Error::Parse(p) => {
                    format!(":{}:{}", p.location().line(), p.location().column())
                }
                _ => String::new(),
            };
            Error::new(
                Kind::Usage,
                format!("{}{at}: cannot parse HCL", safe_path(file)),
            )
        })?
    };
    for terraform in as_list(parsed.get("terraform")) {
        for backend in as_list(terraform.get("backend")) {
            if let Some((kind, body)) = backend.as_object().and_then(|m| m.iter().next()) {
                let config = as_list(Some(body))
                    .into_iter()
                    .next()
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                return Ok(Some((kind.clone(), config)));
            }
        }
    }
    Ok(None)
}

/// HCL blocks decode to objects, JSON configs may use arrays of them: accept both.
fn as_list(v: Option<&Value>) -> Vec<&Value> {
    match v {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(Value::Null) | None => Vec::new(),
        Some(other) => vec![other],
    }
}
