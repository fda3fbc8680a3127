//! A Terraform `backend "TYPE" { ... }` block, as `terraform init` recorded it in
//! `.terraform/terraform.tfstate` or as written in `*.tf` / `*.tf.json`, for a driver to
//! read with its own typed settings struct.

use crate::error::{Error, Kind};
use serde::de::{DeserializeOwned, Deserializer};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::path::PathBuf;

#[derive(Debug, Clone)]
pub struct BackendBlock {
    /// The backend type: `s3`, `azurerm`, `gcs`, `local`, ...
    pub kind: String,
    /// Its settings. From `terraform init`, unset settings are `null`.
    pub config: Map<String, Value>,
    /// Where it was read, for messages: `backend "s3" block in ./main.tf`.
    pub source: String,
    /// The working directory.
    pub dir: PathBuf,
}

impl BackendBlock {
    /// A block of type `kind` with these settings, read in the current directory.
    pub fn new(kind: &str, config: Map<String, Value>) -> BackendBlock {
        BackendBlock {
            kind: kind.to_string(),
            config,
            source: format!("backend \"{kind}\" block"),
            dir: ".".into(),
        }
    }

    /// The block's settings as the driver's typed struct. Values are never echoed in
    /// the error: a block holds keys and tokens.
    pub fn settings<T: DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_value(Value::Object(self.config.clone())).map_err(|e| {
            Error::new(
                Kind::Usage,
                format!(
                    "the {} backend ({}) has a setting tflock cannot read: {}",
                    self.kind,
                    self.source,
                    without_quoted(&e.to_string())
                ),
            )
        })
    }

    /// The usage error for required settings the block does not set.
    pub fn missing(&self, keys: &[&str]) -> Error {
        Error::new(
            Kind::Usage,
            format!(
                "the {} backend ({}) does not set {}; run terraform init (for -backend-config values) or pass -t",
                self.kind,
                self.source,
                keys.join(", ")
            ),
        )
    }
}

/// serde's messages quote the offending value (`invalid type: string "s3cr3t"`).
fn without_quoted(msg: &str) -> String {
    let mut out = String::new();
    let mut quoted = false;
    for c in msg.chars() {
        if c == '"' {
            if !quoted {
                out.push_str("\"…");
            } else {
                out.push('"');
            }
            quoted = !quoted;
        } else if !quoted {
            out.push(c);
        }
    }
    out
}

/// Settings readers for the shapes HCL and JSON give the same setting: use with
/// `#[serde(default, deserialize_with = "...")]`.
pub mod de {
    use super::*;

    /// A string setting: trimmed, `None` when null or empty. Numbers and booleans are
    /// taken as their text.
    pub fn text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        Ok(match Value::deserialize(d)? {
            Value::String(s) => Some(s.trim().to_string()).filter(|s| !s.is_empty()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        })
    }

    /// A boolean setting: `true`, `"true"`; null is `None`.
    pub fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
        Ok(match Value::deserialize(d)? {
            Value::Bool(b) => Some(b),
            Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "1" => Some(true),
                "false" | "0" => Some(false),
                _ => None,
            },
            _ => None,
        })
    }

    /// A list of strings (`["a", "b"]`), or one string; empties dropped.
    pub fn list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
        let items = match Value::deserialize(d)? {
            Value::Array(items) => items,
            other => vec![other],
        };
        Ok(items
            .into_iter()
            .filter_map(|v| v.as_str().map(|s| s.trim().to_string()))
            .filter(|s| !s.is_empty())
            .collect())
    }

    /// A nested block (`assume_role { ... }`, `endpoints = { ... }`): an object, or the
    /// first object of a list (JSON configs), or nothing.
    pub fn nested<'de, D: Deserializer<'de>, T: DeserializeOwned>(
        d: D,
    ) -> Result<Option<T>, D::Error> {
        let v = match Value::deserialize(d)? {
            Value::Array(items) => items.into_iter().find(Value::is_object),
            v @ Value::Object(_) => Some(v),
            _ => None,
        };
        v.map(|v| serde_json::from_value(v).map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize, Debug, Default)]
    struct Inner {
        #[serde(default, deserialize_with = "de::text")]
        sts: Option<String>,
    }

    #[derive(Deserialize, Debug)]
    struct Settings {
        #[serde(default, deserialize_with = "de::text")]
        bucket: Option<String>,
        #[serde(default, deserialize_with = "de::flag")]
        use_lockfile: Option<bool>,
        #[serde(default, deserialize_with = "de::list")]
        files: Vec<String>,
        #[serde(default, deserialize_with = "de::nested")]
        endpoints: Option<Inner>,
        #[serde(default)]
        strict: Option<bool>,
    }

    fn block(json: &str) -> BackendBlock {
        BackendBlock::new("s3", serde_json::from_str(json).unwrap())
    }

    #[test]
    fn hcl_and_json_shapes_read_the_same() {
        let a: Settings = block(
            r#"{"bucket":" b ","use_lockfile":"true","files":"x","endpoints":[{"sts":"http://s"}]}"#,
        )
        .settings()
        .unwrap();
        assert_eq!(a.bucket.as_deref(), Some("b"));
        assert_eq!(a.use_lockfile, Some(true));
        assert_eq!(a.files, ["x"]);
        assert_eq!(a.endpoints.unwrap().sts.as_deref(), Some("http://s"));
        let b: Settings = block(r#"{"bucket":null,"use_lockfile":null,"files":null}"#)
            .settings()
            .unwrap();
        assert_eq!(b.bucket, None);
        assert_eq!(b.use_lockfile, None);
        assert_eq!(b.strict, None);
        assert!(b.files.is_empty());
    }

    #[test]
    fn errors_never_echo_values() {
        let err = block(r#"{"strict":"s3cr3t-value"}"#)
            .settings::<Settings>()
            .unwrap_err();
        let text = err.to_string();
        assert_eq!(err.kind(), Kind::Usage);
        assert!(!text.contains("s3cr3t"), "{text}");
        assert!(
            text.contains("the s3 backend (backend \"s3\" block)"),
            "{text}"
        );
    }
}
