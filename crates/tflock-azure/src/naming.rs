//! What Terraform's azurerm backend writes on a locked state blob, read back: the
//! `terraformlockid` metadata (standard base64 of the LockInfo JSON) and the
//! `<key>env:<workspace>` blob naming.

use base64::Engine as _;
use std::collections::HashMap;

/// The metadata key Terraform writes (it comes back as `Terraformlockid` from some
/// services and SDKs: always match it case-insensitively).
pub const LOCK_KEY: &str = "terraformlockid";

/// The lock metadata value, if the blob has one.
pub(crate) fn lock_value(metadata: &HashMap<String, String>) -> Option<&str> {
    metadata
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(LOCK_KEY))
        .map(|(_, v)| v.as_str())
}

/// Every other metadata pair, which a break must keep.
pub(crate) fn other_metadata(metadata: &HashMap<String, String>) -> HashMap<String, String> {
    metadata
        .iter()
        .filter(|(k, _)| !k.eq_ignore_ascii_case(LOCK_KEY))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Azure's limit for all of a blob's metadata (names and values): a longer value did not
/// come from Azure, and is not decoded.
pub(crate) const MAX_VALUE: usize = 8 * 1024;

/// Decodes a `terraformlockid` value to the LockInfo JSON text, or says why it cannot.
pub(crate) fn decode(value: &str) -> Result<String, String> {
    let value = value.trim();
    if value.is_empty() {
        return Err("blob metadata terraformlockid is empty".into());
    }
    if value.len() > MAX_VALUE {
        return Err(format!(
            "blob metadata terraformlockid is {} bytes, more than the 8 KiB Azure allows for all of a blob's metadata",
            value.len()
        ));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value)
        .map_err(|e| format!("blob metadata terraformlockid is not base64 ({e})"))?;
    String::from_utf8(bytes)
        .map_err(|_| "blob metadata terraformlockid is not UTF-8 text once decoded".to_string())
}

/// Whether `id` can be a lease id: a GUID (Terraform proposes its lock IDs, 8-4-4-4-12
/// hex, as lease ids; Azure refuses anything that is not a GUID).
pub(crate) fn is_lease_id(id: &str) -> bool {
    let inner = id
        .strip_prefix('{')
        .and_then(|s| s.strip_suffix('}'))
        .unwrap_or(id);
    inner.len() <= 36
        && inner.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
        && inner.bytes().filter(u8::is_ascii_hexdigit).count() == 32
}

#[cfg(any(test, feature = "testing"))]
pub(crate) fn encode(json: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(json.as_bytes())
}

/// The workspace whose state blob is `blob` under backend key `key`: `<key>` is
/// `default`, `<key>env:<ws>` is `ws`; `None` for any other blob (another key's, or one
/// that merely starts with the key, such as `<key>.backup`).
pub(crate) fn workspace_under(key: &str, blob: &str) -> Option<String> {
    let rest = blob.strip_prefix(key)?;
    if rest.is_empty() {
        return Some("default".to_string());
    }
    rest.strip_prefix("env:")
        .filter(|ws| !ws.is_empty())
        .map(str::to_string)
}

/// The workspace of a state blob when the key is not known: `...env:<ws>` names
/// workspace `ws`, anything else is `default`.
pub(crate) fn workspace_of(blob: &str) -> String {
    match blob.rfind("env:") {
        Some(i) if i > 0 && i + 4 < blob.len() => blob[i + 4..].to_string(),
        _ => "default".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_terraform_metadata() {
        // What Terraform 1.11 writes: standard, padded base64 of compact LockInfo JSON.
        let json = r#"{"ID":"cd24335b-1181-d45c-3332-48dff0945500","Operation":"OperationTypeApply","Info":"","Who":"a@b","Version":"1.11.4","Created":"2025-05-21T11:46:36.2262448Z","Path":"tfstate/dev"}"#;
        let value = encode(json);
        assert!(value.ends_with('='), "padded: {value}");
        assert_eq!(decode(&value).unwrap(), json);
        assert!(decode("not base64!").unwrap_err().contains("not base64"));
        assert!(decode("").unwrap_err().contains("empty"));
        assert!(
            decode(&base64::engine::general_purpose::STANDARD.encode([0xff, 0xfe]))
                .unwrap_err()
                .contains("UTF-8")
        );
    }

    #[test]
    fn huge_values_are_not_decoded() {
        let json = format!(r#"{{"ID":"x","Info":"{}"}}"#, "a".repeat(MAX_VALUE));
        let err = decode(&encode(&json)).unwrap_err();
        assert!(err.contains("more than the 8 KiB"), "{err}");
        assert!(decode(&encode(r#"{"ID":"x"}"#)).is_ok());
    }

    #[test]
    fn lease_ids_are_guids() {
        assert!(is_lease_id("cd24335b-1181-d45c-3332-48dff0945500"));
        assert!(is_lease_id("{CD24335B-1181-D45C-3332-48DFF0945500}"));
        assert!(is_lease_id("cd24335b1181d45c333248dff0945500"));
        for bad in [
            "",
            "not-a-guid",
            "cd24335b-1181-d45c-3332-48dff0945500\r\nx-ms-lease-action: break",
            "cd24335b-1181-d45c-3332-48dff094550",
            "cd24335b-1181-d45c-3332-48dff0945500-0",
            "cd24335b-1181-d45c-3332-48dff094550g",
        ] {
            assert!(!is_lease_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn key_is_case_insensitive_and_others_are_kept() {
        let mut m = HashMap::new();
        m.insert("Terraformlockid".to_string(), "eA==".to_string());
        m.insert("owner".to_string(), "team-a".to_string());
        assert_eq!(lock_value(&m), Some("eA=="));
        let others = other_metadata(&m);
        assert_eq!(others.len(), 1);
        assert_eq!(others["owner"], "team-a");
    }

    #[test]
    fn workspaces_under_a_key() {
        let key = "prod.tfstate";
        assert_eq!(
            workspace_under(key, "prod.tfstate").as_deref(),
            Some("default")
        );
        assert_eq!(
            workspace_under(key, "prod.tfstateenv:dev").as_deref(),
            Some("dev")
        );
        assert_eq!(
            workspace_under(key, "prod.tfstateenv:a-env:b").as_deref(),
            Some("a-env:b")
        );
        for other in [
            "other.tfstate",
            "prod.tfstate.backup",
            "prod.tfstateenv:",
            "prod.tfstate2env:x",
            "x/prod.tfstate",
        ] {
            assert_eq!(workspace_under(key, other), None, "{other}");
        }
        // A key that itself contains `env:` (only the part after the key counts).
        assert_eq!(
            workspace_under("env:/a.tfstate", "env:/a.tfstate").as_deref(),
            Some("default")
        );
    }

    #[test]
    fn workspaces_from_blob_names() {
        assert_eq!(workspace_of("terraform.tfstate"), "default");
        assert_eq!(workspace_of("prod.terraform.tfstateenv:dev"), "dev");
        assert_eq!(workspace_of("team/app.tfstateenv:feature-1"), "feature-1");
        assert_eq!(workspace_of("env:"), "default");
    }
}
