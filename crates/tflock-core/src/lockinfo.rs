//! Terraform's `LockInfo` (internal/states/statemgr/locker.go): a tolerant reader and a
//! writer of Terraform's exact compact JSON.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use serde_json::Value;
use std::fmt;

/// The lock metadata Terraform and OpenTofu store with every lock.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LockInfo {
    /// `ID`: 16 random bytes as 8-4-4-4-12 hex. Not a v4 UUID: never validated as one.
    pub id: String,
    pub operation: String,
    pub info: String,
    pub who: String,
    pub version: String,
    /// `Created`; `None` for Go's zero time or when absent.
    pub created: Option<DateTime<Utc>>,
    pub path: String,
}

/// Why a lock's metadata could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InfoError(pub String);

impl fmt::Display for InfoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InfoError {}

/// 16 bytes as 8-4-4-4-12 hex: the shape of Terraform's lock IDs (random bytes, no UUID
/// version bits).
pub fn id_from_bytes(bytes: [u8; 16]) -> String {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let parts = [
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32],
    ];
    parts.join("-")
}

/// 16 well-mixed bytes from `seed` (splitmix64): for IDs where no random source is at
/// hand, and for reproducible ones in tests.
pub fn seeded_bytes(seed: u64) -> [u8; 16] {
    fn splitmix(mut x: u64) -> u64 {
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        x ^ (x >> 31)
    }
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&splitmix(seed).to_be_bytes());
    bytes[8..].copy_from_slice(&splitmix(seed ^ 0xD1B5_4A32_D192_ED03).to_be_bytes());
    bytes
}

const KEYS: [&str; 7] = [
    "ID",
    "Operation",
    "Info",
    "Who",
    "Version",
    "Created",
    "Path",
];

impl LockInfo {
    /// Reads LockInfo the way Go's encoding/json does: keys match case-insensitively (an
    /// exact match wins), unknown keys are ignored, missing keys stay empty.
    pub fn parse(text: &str) -> Result<LockInfo, InfoError> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(InfoError("lock info is empty".into()));
        }
        let value: Value = serde_json::from_str(trimmed)
            .map_err(|e| InfoError(format!("lock info is not valid JSON ({e})")))?;
        let Value::Object(map) = value else {
            return Err(InfoError("lock info is JSON but not an object".into()));
        };
        let field = |key: &str| -> Result<Option<String>, InfoError> {
            let found = map.get(key).or_else(|| {
                map.iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(key))
                    .map(|(_, v)| v)
            });
            match found {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(other) => Err(InfoError(format!(
                    "lock info field {key} is {} instead of a string",
                    json_kind(other)
                ))),
            }
        };
        let created = match field("Created")? {
            None => None,
            Some(s) => parse_go_time(&s)?,
        };
        Ok(LockInfo {
            id: field("ID")?.unwrap_or_default(),
            operation: field("Operation")?.unwrap_or_default(),
            info: field("Info")?.unwrap_or_default(),
            who: field("Who")?.unwrap_or_default(),
            version: field("Version")?.unwrap_or_default(),
            created,
            path: field("Path")?.unwrap_or_default(),
        })
    }

    /// Terraform's exact compact form: keys in Go struct order, `<`, `>`, `&`, U+2028 and
    /// U+2029 escaped as Go does, `Created` in RFC 3339 with trailing zeros trimmed.
    pub fn to_terraform_json(&self) -> String {
        let mut out = String::with_capacity(256);
        out.push('{');
        let values = [
            &self.id,
            &self.operation,
            &self.info,
            &self.who,
            &self.version,
            &go_time(self.created),
            &self.path,
        ];
        for (i, (key, value)) in KEYS.iter().zip(values).enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push('"');
            out.push_str(key);
            out.push_str("\":");
            push_go_string(&mut out, value);
        }
        out.push('}');
        out
    }

    /// Terraform's human `Lock Info:` block, as printed by `Error acquiring the state lock`.
    pub fn terraform_block(&self) -> String {
        let created = match self.created {
            Some(t) => format!("{} +0000 UTC", go_time_human(t)),
            None => "0001-01-01 00:00:00 +0000 UTC".to_string(),
        };
        format!(
            "Lock Info:\n  ID:        {}\n  Path:      {}\n  Operation: {}\n  Who:       {}\n  Version:   {}\n  Created:   {}\n  Info:      {}\n",
            self.id, self.path, self.operation, self.who, self.version, created, self.info
        )
    }
}

impl Serialize for LockInfo {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(KEYS.len()))?;
        m.serialize_entry("ID", &self.id)?;
        m.serialize_entry("Operation", &self.operation)?;
        m.serialize_entry("Info", &self.info)?;
        m.serialize_entry("Who", &self.who)?;
        m.serialize_entry("Version", &self.version)?;
        m.serialize_entry("Created", &go_time(self.created))?;
        m.serialize_entry("Path", &self.path)?;
        m.end()
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Go's `time.Time` JSON: RFC 3339 with 0-9 fractional digits and any offset.
/// The zero time `0001-01-01T00:00:00Z` means "not set".
pub fn parse_go_time(s: &str) -> Result<Option<DateTime<Utc>>, InfoError> {
    if s.is_empty() {
        return Ok(None);
    }
    let t = DateTime::parse_from_rfc3339(s).map_err(|e| {
        InfoError(format!(
            "lock info Created {s:?} is not an RFC 3339 time ({e})"
        ))
    })?;
    let t = t.with_timezone(&Utc);
    if t.timestamp() == GO_ZERO_UNIX {
        return Ok(None);
    }
    Ok(Some(t))
}

/// Seconds from the Unix epoch to Go's zero time, 0001-01-01T00:00:00Z.
const GO_ZERO_UNIX: i64 = -62_135_596_800;

/// Go's `time.RFC3339Nano` for a UTC time: fraction with trailing zeros trimmed, `Z`.
pub fn go_time(t: Option<DateTime<Utc>>) -> String {
    match t {
        None => "0001-01-01T00:00:00Z".to_string(),
        Some(t) => {
            let s = t.to_rfc3339_opts(SecondsFormat::Nanos, true);
            trim_fraction(&s, 'Z')
        }
    }
}

fn go_time_human(t: DateTime<Utc>) -> String {
    let s = t.format("%Y-%m-%d %H:%M:%S%.9f").to_string();
    trim_fraction(&(s + "\u{0}"), '\u{0}')
}

/// Removes trailing zeros (and a bare dot) from the fraction that ends just before `end`.
fn trim_fraction(s: &str, end: char) -> String {
    let Some(body) = s.strip_suffix(end) else {
        return s.to_string();
    };
    let suffix = if end == '\u{0}' {
        String::new()
    } else {
        end.to_string()
    };
    match body.rfind('.') {
        Some(dot) if body[dot + 1..].bytes().all(|b| b.is_ascii_digit()) => {
            let frac = body[dot + 1..].trim_end_matches('0');
            if frac.is_empty() {
                format!("{}{suffix}", &body[..dot])
            } else {
                format!("{}.{frac}{suffix}", &body[..dot])
            }
        }
        _ => format!("{body}{suffix}"),
    }
}

/// Go's encoding/json string escaping with HTML escaping on (the default).
fn push_go_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    // Written by Terraform 1.11.4 into a DynamoDB row (shape from FORMATS.md).
    const SAMPLE: &str = r#"{"ID":"2b6a6738-5dd5-0f6b-b6b1-2e3ac0c6d8a9","Operation":"OperationTypeApply","Info":"","Who":"runner@ci-7","Version":"1.11.4","Created":"2026-11-26T11:15:30.176359905Z","Path":"tf-state/app/terraform.tfstate"}"#;

    #[test]
    fn reads_terraform_sample() {
        let info = LockInfo::parse(SAMPLE).unwrap();
        assert_eq!(info.id, "2b6a6738-5dd5-0f6b-b6b1-2e3ac0c6d8a9");
        assert_eq!(info.operation, "OperationTypeApply");
        assert_eq!(info.who, "runner@ci-7");
        assert_eq!(info.version, "1.11.4");
        assert_eq!(info.path, "tf-state/app/terraform.tfstate");
        let created = info.created.unwrap();
        assert_eq!(created.timestamp_subsec_nanos(), 176_359_905);
        assert_eq!(created.to_rfc3339(), "2026-11-26T11:15:30.176359905+00:00");
    }

    #[test]
    fn round_trips_to_the_exact_bytes() {
        assert_eq!(LockInfo::parse(SAMPLE).unwrap().to_terraform_json(), SAMPLE);
    }

    #[test]
    fn escapes_like_go() {
        let info = LockInfo {
            info: "a<b>&c\"d\\\n\u{2028}".into(),
            who: "DOMAIN\\user@host".into(),
            ..Default::default()
        };
        let json = info.to_terraform_json();
        assert!(
            json.contains(r#""Info":"a\u003cb\u003e\u0026c\"d\\\n\u2028""#),
            "{json}"
        );
        assert!(json.contains(r#""Who":"DOMAIN\\user@host""#), "{json}");
        assert!(
            json.contains(r#""Created":"0001-01-01T00:00:00Z""#),
            "{json}"
        );
        assert_eq!(LockInfo::parse(&json).unwrap(), info);
    }

    #[test]
    fn keys_are_case_insensitive_and_exact_match_wins() {
        let info =
            LockInfo::parse(r#"{"id":"x","OPERATION":"init","who":"a@b","Who":"c@d"}"#).unwrap();
        assert_eq!(info.id, "x");
        assert_eq!(info.operation, "init");
        assert_eq!(info.who, "c@d");
    }

    #[test]
    fn missing_fields_and_unknown_keys_are_tolerated() {
        let info = LockInfo::parse(r#"{"ID":"abc","Extra":42}"#).unwrap();
        assert_eq!(info.id, "abc");
        assert_eq!(info.created, None);
        assert_eq!(info.operation, "");
    }

    #[test]
    fn go_time_forms() {
        for (text, nanos) in [
            ("2026-11-26T11:15:30Z", 0),
            ("2026-11-26T11:15:30.1Z", 100_000_000),
            ("2026-11-26T11:15:30.123456Z", 123_456_000),
            ("2026-11-26T12:15:30.000000001+01:00", 1),
        ] {
            let t = parse_go_time(text).unwrap().unwrap();
            assert_eq!(t.timestamp_subsec_nanos(), nanos, "{text}");
            assert_eq!(t.format("%H:%M:%S").to_string(), "11:15:30", "{text}");
        }
        assert_eq!(parse_go_time("0001-01-01T00:00:00Z").unwrap(), None);
        assert!(parse_go_time("yesterday").is_err());
        assert_eq!(
            go_time(parse_go_time("2026-11-26T11:15:30.1Z").unwrap()),
            "2026-11-26T11:15:30.1Z"
        );
        assert_eq!(
            go_time(parse_go_time("2026-11-26T11:15:30Z").unwrap()),
            "2026-11-26T11:15:30Z"
        );
    }

    #[test]
    fn human_block_matches_terraform() {
        let block = LockInfo::parse(SAMPLE).unwrap().terraform_block();
        assert!(
            block.contains("  Created:   2026-11-26 11:15:30.176359905 +0000 UTC\n"),
            "{block}"
        );
        assert!(
            block.starts_with("Lock Info:\n  ID:        2b6a6738"),
            "{block}"
        );
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        for bad in [
            "",
            "   ",
            "not json",
            "[1,2]",
            "\"str\"",
            r#"{"ID":5}"#,
            r#"{"Created":"nope"}"#,
            "{\"ID\":\"a\"",
        ] {
            assert!(LockInfo::parse(bad).is_err(), "{bad:?} parsed");
        }
        assert!(LockInfo::parse("[]")
            .unwrap_err()
            .0
            .contains("not an object"));
    }
}
