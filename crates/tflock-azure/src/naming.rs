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

/// Decodes a `terraformlockid` value to the LockInfo JSON text, or says why it cannot.
pub(crate) fn decode(value: &str) -> Result<String, String> {
    let value = value.trim();
    if value.is_empty() {
        return Err("blob metadata terraformlockid is empty".into());
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value)
        .map_err(|e| format!("blob metadata terraformlockid is not base64 ({e})"))?;
    String::from_utf8(bytes)
        .map_err(|_| "blob metadata terraformlockid is not UTF-8 text once decoded".to_string())
}

#[cfg(any(test, feature = "testing"))]
pub(crate) fn encode(json: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(json.as_bytes())
}

/// The workspace of a state blob: `<key>env:<ws>` names workspace `ws`, anything else is
/// `default`.
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
    fn workspaces_from_blob_names() {
        assert_eq!(workspace_of("terraform.tfstate"), "default");
        assert_eq!(workspace_of("prod.terraform.tfstateenv:dev"), "dev");
        assert_eq!(workspace_of("team/app.tfstateenv:feature-1"), "feature-1");
        assert_eq!(workspace_of("env:"), "default");
    }
}
