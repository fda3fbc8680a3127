//! Shared Key (account key) request signing, which the 1.x Azure SDK does not ship.
//!
//! Implements "Authorize with Shared Key" for the Blob service (version 2009-09-19 and
//! later) as a per-try pipeline policy: it runs after the retry policy, so every retry
//! gets a fresh `x-ms-date` and signature, and after the SDK has set every `x-ms-*`
//! header it signs.

use crate::client::transport::send_next;
use azure_core::credentials::Secret;
use azure_core::http::policies::{Policy, PolicyResult};
use azure_core::http::{Context, Method, Request, Url};
use azure_core::time::{to_rfc7231, OffsetDateTime};
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Signs every request with the account key.
pub(crate) struct SharedKeyPolicy {
    account: String,
    key: Vec<u8>,
}

impl std::fmt::Debug for SharedKeyPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        f.debug_struct("SharedKeyPolicy")
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

impl SharedKeyPolicy {
    /// `key` is the account key as Azure shows it (base64). Errors name no secret.
    pub(crate) fn new(account: &str, key: &Secret) -> Result<SharedKeyPolicy, String> {
        let key = base64::engine::general_purpose::STANDARD
            .decode(key.secret().trim())
            .map_err(|_| "the account key is not valid base64".to_string())?;
        if key.is_empty() {
            return Err("the account key is empty".into());
        }
        Ok(SharedKeyPolicy {
            account: account.to_string(),
            key,
        })
    }

    fn sign(&self, request: &mut Request) {
        let now = to_rfc7231(&OffsetDateTime::now_utc());
        request.insert_header("x-ms-date", now);
        let string_to_sign = string_to_sign(
            &self.account,
            request.method(),
            request.url(),
            &headers_of(request),
            request.body().len().unwrap_or(0),
        );
        let signature = hmac_sha256(&self.key, &string_to_sign);
        request.insert_header(
            "authorization",
            format!("SharedKey {}:{signature}", self.account),
        );
    }
}

#[async_trait::async_trait]
impl Policy for SharedKeyPolicy {
    async fn send(
        &self,
        ctx: &Context,
        request: &mut Request,
        next: &[Arc<dyn Policy>],
    ) -> PolicyResult {
        self.sign(request);
        send_next(ctx, request, next, "shared key").await
    }
}

/// Request headers with lowercase names (the SDK already stores them lowercase).
fn headers_of(request: &Request) -> BTreeMap<String, String> {
    request
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_ascii_lowercase(), v.as_str().to_string()))
        .collect()
}

pub(crate) fn hmac_sha256(key: &[u8], data: &str) -> String {
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = match <Hmac<Sha256> as KeyInit>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    };
    mac.update(data.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The string Shared Key signs: verb, the standard headers in their fixed order,
/// the canonicalized `x-ms-*` headers, then the canonicalized resource.
pub(crate) fn string_to_sign(
    account: &str,
    method: Method,
    url: &Url,
    headers: &BTreeMap<String, String>,
    body_len: u64,
) -> String {
    let h = |name: &str| headers.get(name).map(String::as_str).unwrap_or("");
    // Content-Length is the empty string when zero (versions 2015-02-21 and later).
    let content_length = match headers.get("content-length") {
        Some(v) if v.trim() != "0" => v.trim().to_string(),
        Some(_) => String::new(),
        None if body_len > 0 => body_len.to_string(),
        None => String::new(),
    };
    let mut out = String::with_capacity(256);
    out.push_str(method.as_str());
    out.push('\n');
    for value in [
        h("content-encoding"),
        h("content-language"),
        &content_length,
        h("content-md5"),
        h("content-type"),
        h("date"),
        h("if-modified-since"),
        h("if-match"),
        h("if-none-match"),
        h("if-unmodified-since"),
        h("range"),
    ] {
        out.push_str(value);
        out.push('\n');
    }
    out.push_str(&canonicalized_headers(headers));
    out.push_str(&canonicalized_resource(account, url));
    out
}

/// Every `x-ms-` header, lowercase name, sorted by name, `name:value\n`.
fn canonicalized_headers(headers: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    // BTreeMap iterates in byte order of the (lowercase) names, which is what the service
    // sorts by.
    for (name, value) in headers.iter().filter(|(n, _)| n.starts_with("x-ms-")) {
        out.push_str(name);
        out.push(':');
        out.push_str(&unfold(value));
        out.push('\n');
    }
    out
}

/// Trims the value and replaces runs of whitespace by one space.
fn unfold(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `/account/path` then `\nname:v1,v2` per query parameter, names lowercase and sorted,
/// values decoded and sorted. The path is the URL's own (percent-encoded) path, so a
/// path-style URL (`http://127.0.0.1:10000/acct/container/blob`) gives the account twice.
pub(crate) fn canonicalized_resource(account: &str, url: &Url) -> String {
    let mut out = format!("/{account}");
    let path = url.path();
    out.push_str(if path.is_empty() { "/" } else { path });
    let mut params: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in url.query_pairs() {
        params
            .entry(name.to_lowercase())
            .or_default()
            .push(value.into_owned());
    }
    for (name, mut values) in params {
        values.sort();
        out.push('\n');
        out.push_str(&name);
        out.push(':');
        out.push_str(&values.join(","));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    /// The canonicalized resource examples of the "Authorize with Shared Key" page.
    #[test]
    fn canonicalized_resource_matches_the_spec_examples() {
        assert_eq!(
            canonicalized_resource(
                "myaccount",
                &url("https://myaccount.blob.core.windows.net/mycontainer?restype=container&comp=metadata")
            ),
            "/myaccount/mycontainer\ncomp:metadata\nrestype:container"
        );
        assert_eq!(
            canonicalized_resource(
                "myaccount",
                &url("https://myaccount.blob.core.windows.net/mycontainer?restype=container&comp=list&include=snapshots&include=metadata&include=uncommittedblobs")
            ),
            "/myaccount/mycontainer\ncomp:list\ninclude:metadata,snapshots,uncommittedblobs\nrestype:container"
        );
        assert_eq!(
            canonicalized_resource(
                "myaccount",
                &url("https://myaccount-secondary.blob.core.windows.net/mycontainer/myblob")
            ),
            "/myaccount/mycontainer/myblob"
        );
        // Path-style (emulator) URL: the account appears twice, as the service expects.
        assert_eq!(
            canonicalized_resource(
                "tflockacct",
                &url(
                    "http://127.0.0.1:10000/tflockacct/tfstate/terraform.tfstateenv:dev?comp=lease"
                )
            ),
            "/tflockacct/tflockacct/tfstate/terraform.tfstateenv:dev\ncomp:lease"
        );
        // Values are decoded; names are lowercased.
        assert_eq!(
            canonicalized_resource(
                "a",
                &url("https://a.blob.core.windows.net/c?Prefix=env%3A%2Fx&comp=list")
            ),
            "/a/c\ncomp:list\nprefix:env:/x"
        );
    }

    /// The string-to-sign example of the spec page (Get Container Metadata, 2009-09-19).
    #[test]
    fn string_to_sign_matches_the_spec_example() {
        let mut headers = BTreeMap::new();
        headers.insert("x-ms-date".into(), "Sun, 11 Oct 2009 21:49:13 GMT".into());
        headers.insert("x-ms-version".into(), "2009-09-19".into());
        let s = string_to_sign(
            "myaccount",
            Method::Get,
            &url("https://myaccount.blob.core.windows.net/myaccount/mycontainer?restype=container&comp=metadata&timeout=20"),
            &headers,
            0,
        );
        assert_eq!(
            s,
            "GET\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:Sun, 11 Oct 2009 21:49:13 GMT\nx-ms-version:2009-09-19\n/myaccount/myaccount/mycontainer\ncomp:metadata\nrestype:container\ntimeout:20"
        );
    }

    #[test]
    fn standard_headers_keep_their_slots() {
        let mut headers = BTreeMap::new();
        headers.insert("if-match".into(), "\"0x8D\"".into());
        headers.insert("content-length".into(), "0".into());
        headers.insert("content-type".into(), "application/json".into());
        headers.insert("x-ms-meta-owner".into(), "  team   a ".into());
        headers.insert("x-ms-lease-id".into(), "abc".into());
        headers.insert("x-ms-date".into(), "D".into());
        let s = string_to_sign(
            "acct",
            Method::Put,
            &url("https://acct.blob.core.windows.net/c/b?comp=metadata"),
            &headers,
            0,
        );
        assert_eq!(
            s,
            "PUT\n\n\n\n\napplication/json\n\n\n\"0x8D\"\n\n\n\nx-ms-date:D\nx-ms-lease-id:abc\nx-ms-meta-owner:team a\n/acct/c/b\ncomp:metadata"
        );
        // A body without an explicit header still counts.
        let s = string_to_sign(
            "acct",
            Method::Put,
            &url("https://acct.blob.core.windows.net/c/b"),
            &BTreeMap::new(),
            12,
        );
        assert!(s.starts_with("PUT\n\n\n12\n"), "{s:?}");
    }

    /// HMAC-SHA256 vector computed independently with
    /// `printf 'GET\n/acct/c' | openssl dgst -sha256 -hmac 'tflock-test-account-key-0123456789' -binary | base64`.
    #[test]
    fn signature_vector() {
        assert_eq!(
            hmac_sha256(b"tflock-test-account-key-0123456789", "GET\n/acct/c"),
            "bh5rezTCIWq2VKuSWiKyRv5Nzcr6dXWkHpLRMC5MUWE="
        );
    }

    #[test]
    fn bad_keys_are_rejected_without_echoing_them() {
        let err = SharedKeyPolicy::new("a", &Secret::new("not base64!!")).unwrap_err();
        assert!(!err.contains("not base64!!"));
        assert!(SharedKeyPolicy::new("a", &Secret::new("")).is_err());
        let p = SharedKeyPolicy::new("a", &Secret::new("a2V5")).unwrap();
        assert!(!format!("{p:?}").contains("a2V5"));
    }
}
