//! Target URLs: `scheme://host/path?k=v`, or a plain directory.

use crate::error::{Error, Kind};
use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
use std::collections::BTreeMap;

/// A parsed target URL: `scheme://host/path?k=v`, or a plain directory (scheme `file`).
/// `params` may carry secrets (from tflock.toml or a backend block): `Debug` shows their
/// names only, and only `url` is ever shown to users.
#[derive(Clone, PartialEq, Eq)]
pub struct Target {
    /// The target's name, used in every message about it: the text given, with the
    /// values of options that may be secret masked (see [`SHOWN_OPTIONS`]).
    pub url: String,
    /// The text as given, for a backend whose address is the target itself (an http
    /// lock address with its own query). Never shown: it may hold secrets.
    pub raw: String,
    pub scheme: String,
    /// Bucket, table or account; empty for `file`.
    pub host: String,
    /// What follows the host, without the leading `/` (prefix, container); the directory
    /// for `file`.
    pub path: String,
    pub params: BTreeMap<String, String>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("url", &self.url)
            .field("raw", &"..")
            .field("scheme", &self.scheme)
            .field("host", &self.host)
            .field("path", &self.path)
            .field("params", &self.params.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Option names whose values are harmless to show in a target's name; every other value
/// on a URL (a SAS signature, a token pasted by mistake) is shown as `***`.
pub const SHOWN_OPTIONS: &[&str] = &[
    "region",
    "endpoint",
    "profile",
    "segments",
    "key",
    "workspace_key_prefix",
    "bucket",
    "prefix",
    "nested",
    "environment",
    "use_azuread_auth",
    "use_path_style",
    "s3_endpoint",
    "sts_endpoint",
    "schema_name",
    "table_name",
    "sslmode",
    "scheme",
    "namespace",
    "secret_suffix",
    "context",
    "path",
    "datacenter",
    "state",
    "probe",
];

/// The name a target is shown by: secret-looking values masked; a user name without a
/// password (`pg://tf@db/x`) is not a secret and stays.
fn shown_name(scheme: &str, text: &str) -> String {
    let rest = text.split_once("://").map_or("", |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    match authority.rsplit_once('@') {
        Some((user, _)) if !user.contains(':') => {
            let without = format!("{scheme}://{}", &rest[user.len() + 1..]);
            let masked = crate::redact::url_keeping(&without, SHOWN_OPTIONS);
            let tail = masked.split_once("://").map_or("", |(_, t)| t);
            format!("{scheme}://{user}@{tail}")
        }
        _ => crate::redact::url_keeping(text, SHOWN_OPTIONS),
    }
}

impl Target {
    /// A plain directory (the local backend).
    pub fn directory(dir: &str) -> Target {
        Target {
            url: dir.to_string(),
            raw: dir.to_string(),
            scheme: "file".into(),
            host: String::new(),
            path: dir.to_string(),
            params: BTreeMap::new(),
        }
    }

    /// The same target with a hidden option (from tflock.toml or a backend block): it
    /// reaches the backend but is not part of the name shown.
    pub fn with(mut self, key: &str, value: Option<impl Into<String>>) -> Target {
        if let Some(v) = value {
            self.params.insert(key.to_string(), v.into());
        }
        self
    }

    pub fn parse(text: &str) -> Result<Target, Error> {
        let text = text.trim();
        if text.is_empty() {
            return Err(Error::new(
                Kind::Usage,
                "empty target: pass a directory or a URL such as s3://BUCKET",
            ));
        }
        let Some((scheme, rest)) = text.split_once("://") else {
            return Ok(Target::directory(text));
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if let Some((userinfo, _)) = authority.rsplit_once('@') {
            if userinfo.contains(':') {
                return Err(Error::usage(
                    crate::redact::url(text),
                    "a password in the URL would be shown in output and the audit log; put credentials in tflock.toml or the backend's environment variables",
                ));
            }
        }
        let scheme = scheme.to_ascii_lowercase();
        let (rest, query) = match rest.split_once('?') {
            Some((r, q)) => (r, Some(q)),
            None => (rest, None),
        };
        let mut params = BTreeMap::new();
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            params.insert(percent_decode(k), percent_decode(v));
        }
        let (host, path) = if scheme == "file" {
            (String::new(), rest.to_string())
        } else {
            let (h, p) = rest.split_once('/').unwrap_or((rest, ""));
            (h.to_string(), p.trim_start_matches('/').to_string())
        };
        Ok(Target {
            // The name shown everywhere: values that may be secret are masked.
            url: shown_name(&scheme, text),
            raw: text.to_string(),
            scheme,
            host,
            path,
            params,
        })
    }

    /// A query parameter, rejecting unknown ones so a typo is not silently ignored.
    pub fn check_params(&self, known: &[&str]) -> Result<(), Error> {
        for key in self.params.keys() {
            if !known.contains(&key.as_str()) {
                let list = if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                };
                return Err(Error::usage(
                    &self.url,
                    format!("unknown option ?{key}= (this target takes: {list})"),
                ));
            }
        }
        Ok(())
    }

    /// Refuses `secrets` written into the URL: the URL is the target's name, shown in
    /// listings, errors and the audit log. Secrets reach a backend as options from
    /// tflock.toml or discovery instead (in `params`, never in `url`). `hint` says where
    /// to put them.
    pub fn refuse_secrets_in_url(&self, secrets: &[&str], hint: &str) -> Result<(), Error> {
        let Some((base, query)) = self.url.split_once('?') else {
            return Ok(());
        };
        for pair in query.split('&') {
            let key = percent_decode(pair.split_once('=').map_or(pair, |(k, _)| k));
            if secrets.contains(&key.as_str()) {
                return Err(Error::usage(
                    base,
                    format!(
                        "?{key}= on the URL would be shown in output and the audit log; {hint}"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The host part (a bucket, a table), or a usage error naming what is missing and the
    /// target's form: `missing bucket name (s3://BUCKET[/PREFIX])`.
    pub fn required_host(&self, what: &str, form: &str) -> Result<&str, Error> {
        if self.host.is_empty() {
            return Err(Error::usage(&self.url, format!("missing {what} ({form})")));
        }
        Ok(&self.host)
    }

    pub fn param(&self, key: &str) -> Option<&str> {
        self.params
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

/// `%XX` decoded (invalid sequences kept as they are, invalid UTF-8 replaced).
pub fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// What a query value must have escaped for [`Target::parse`] to give it back unchanged:
/// `%`, `&` and `#` (read as an escape, a separator and a fragment); spaces and anything
/// unprintable too, so the shown target stays one readable word. Non-ASCII is always
/// escaped.
const QUERY_VALUE: &AsciiSet = &CONTROLS.add(b' ').add(b'%').add(b'&').add(b'#');

/// `value` as a target query value (`?key=VALUE`) that [`Target::parse`] gives back
/// unchanged; the rest stays as typed (`env:/dev/app.tfstate`).
pub fn query_value(value: &str) -> String {
    utf8_percent_encode(value, QUERY_VALUE).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

        /// Any value (a state key, a workspace prefix) survives the trip through a
        /// target's name, and the name stays one word without control characters.
        #[test]
        fn query_values_come_back_unchanged(value in "\\PC{1,40}|[ -~]{1,40}|[\\x00-\\x7f]{1,20}") {
            let url = format!("s3://b?key={}&x=1", query_value(&value));
            let t = Target::parse(&url).unwrap();
            prop_assert_eq!(t.params.get("key").map(String::as_str), Some(value.as_str()));
            prop_assert_eq!(t.param("x"), Some("1"));
            prop_assert!(!url.chars().any(|c| c.is_control() || c == ' ' || c == '#'), "{}", url);
        }
    }

    #[test]
    fn secrets_on_the_url_are_refused_without_echoing_them() {
        let hint = "put it in tflock.toml";
        let t = Target::parse("azblob://a/c?endpoint=x&access%5Fkey=c2VjcmV0").unwrap();
        let err = t.refuse_secrets_in_url(&["access_key"], hint).unwrap_err();
        assert_eq!(err.kind(), Kind::Usage);
        assert_eq!(
            err.to_string(),
            "azblob://a/c: ?access_key= on the URL would be shown in output and the audit log; put it in tflock.toml"
        );
        // The same option set out of sight (tflock.toml, discovery) is fine.
        let mut t = Target::parse("azblob://a/c?endpoint=x").unwrap();
        t.params.insert("access_key".into(), "c2VjcmV0".into());
        assert!(t.refuse_secrets_in_url(&["access_key"], hint).is_ok());
    }

    #[test]
    fn secrets_on_a_url_are_never_part_of_its_name() {
        // A pasted SAS: the values are masked in the name shown everywhere.
        let t =
            Target::parse("azblob://a/c?sv=2024-01-01&sig=S3CR3TSIG&endpoint=http://127.0.0.1:1")
                .unwrap();
        assert!(!t.url.contains("S3CR3TSIG"), "{}", t.url);
        assert!(t.url.contains("endpoint=http://127.0.0.1:1"), "{}", t.url);
        let err = t.check_params(&["endpoint"]).unwrap_err().to_string();
        assert!(!err.contains("S3CR3TSIG") && err.contains("?sig="), "{err}");
        // A password in the URL is refused without being echoed.
        for url in [
            "s3://AKIAXXXX:S3CR3TSIG@bucket",
            "https://user:S3CR3TSIG@gitlab.example/g/p",
            "pg://tf:S3CR3TSIG@127.0.0.1:5432/db",
        ] {
            let e = Target::parse(url).unwrap_err();
            assert_eq!(e.kind(), Kind::Usage, "{url}");
            assert!(!e.to_string().contains("S3CR3TSIG"), "{e}");
        }
        // A user without a password is fine, and shown (pg://user@host).
        let t = Target::parse("pg://tf@127.0.0.1/db?sslmode=disable&sig=x").unwrap();
        assert_eq!(t.url, "pg://tf@127.0.0.1/db?sslmode=disable&sig=***");
    }

    #[test]
    fn debug_never_shows_param_values() {
        let mut t = Target::parse("azblob://a/c").unwrap();
        t.params
            .insert("access_key".into(), "c2VjcmV0LWtleQ==".into());
        let shown = format!("{t:?}");
        assert!(
            shown.contains("access_key") && !shown.contains("c2VjcmV0"),
            "{shown}"
        );
    }

    #[test]
    fn parses_targets() {
        let t = Target::parse("s3://bucket/team/a?region=eu-west-1&profile=ops").unwrap();
        assert_eq!(
            (t.scheme.as_str(), t.host.as_str(), t.path.as_str()),
            ("s3", "bucket", "team/a")
        );
        assert_eq!(t.param("region"), Some("eu-west-1"));
        let t = Target::parse("/tmp/x").unwrap();
        assert_eq!((t.scheme.as_str(), t.path.as_str()), ("file", "/tmp/x"));
        let t = Target::parse("file:///tmp/x").unwrap();
        assert_eq!(t.path, "/tmp/x");
        let t = Target::parse("azblob://acct/cont?endpoint=http%3A%2F%2F127.0.0.1%3A1").unwrap();
        assert_eq!(t.param("endpoint"), Some("http://127.0.0.1:1"));
        assert!(t.check_params(&["endpoint"]).is_ok());
        assert!(t
            .check_params(&["region"])
            .unwrap_err()
            .to_string()
            .contains("?endpoint="));
        assert!(Target::parse(" ").is_err());
        assert_eq!(percent_decode("a%2"), "a%2");
    }
}
