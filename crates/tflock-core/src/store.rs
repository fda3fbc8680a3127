//! The trait every backend implements, and the target URLs that pick a backend.

use crate::error::Error;
use crate::lock::{Backend, Lock};
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::time::Duration;

/// A place where Terraform keeps locks (a directory, a table, a bucket, a container),
/// seen through one backend. Named for statemgr's `Locker`, from the other side: it finds
/// and breaks locks instead of taking them.
///
/// Safety contract: `list` never returns state objects or digest rows, and `break_lock`
/// removes a lock only if it is still exactly the one in the snapshot that `list` returned
/// (compare-and-delete). If it changed or vanished, nothing is removed and the result is
/// [`Error::Changed`].
#[async_trait]
pub trait LockStore: Send + Sync {
    fn backend(&self) -> Backend;
    /// The target as the user can pass it to `-t`.
    fn target(&self) -> &str;
    /// Every lock held in this place.
    async fn list(&self) -> Result<Vec<Lock>, Error>;
    /// Removes `lock` if it is still the one that was read. Implementations call
    /// [`check_breakable`] first.
    async fn break_lock(&self, lock: &Lock, opts: &BreakOptions) -> Result<Broken, Error>;
}

/// Options that change what a break may do.
#[derive(Debug, Clone, Default)]
pub struct BreakOptions {
    /// Break leases that carry no Terraform lock metadata.
    pub force_foreign: bool,
}

/// What a successful break removed, one line per thing, for the user and the audit log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Broken {
    pub removed: Vec<String>,
}

/// Refuses to break what must not be broken, before anything is sent.
pub fn check_breakable(lock: &Lock, opts: &BreakOptions) -> Result<(), Error> {
    let name = if lock.id.is_empty() {
        &lock.location
    } else {
        &lock.id
    };
    if lock.held == Some(true) {
        let who = lock.holder.as_deref().unwrap_or("a live process");
        return Err(Error::refused(
            &lock.target,
            format!("lock {name} on {} is held by {who}; stop that process instead of breaking its lock", lock.path),
        ));
    }
    if lock.foreign && !opts.force_foreign {
        return Err(Error::refused(
            &lock.target,
            format!(
                "{} is locked by something other than Terraform (no lock metadata); pass --force-foreign to break it anyway",
                lock.location
            ),
        ));
    }
    Ok(())
}

/// Settings every backend honours when it connects.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Upper bound for one request, including connecting; a dead endpoint fails this fast.
    pub timeout: Duration,
    /// How many per-lock reads run at once.
    pub concurrency: usize,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            timeout: Duration::from_secs(10),
            concurrency: 16,
        }
    }
}

/// A parsed target URL: `scheme://host/path?k=v`, or a plain directory (scheme `file`).
/// `params` may carry secrets (from tflock.toml or a backend block): `Debug` shows their
/// names only, and only `url` is ever shown to users.
#[derive(Clone, PartialEq, Eq)]
pub struct Target {
    /// The text the user gave, used in every message about this target.
    pub url: String,
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
            .field("scheme", &self.scheme)
            .field("host", &self.host)
            .field("path", &self.path)
            .field("params", &self.params.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Target {
    pub fn parse(text: &str) -> Result<Target, Error> {
        let text = text.trim();
        if text.is_empty() {
            return Err(Error::usage(
                "empty target: pass a directory or a URL such as s3://BUCKET",
            ));
        }
        let Some((scheme, rest)) = text.split_once("://") else {
            return Ok(Target {
                url: text.to_string(),
                scheme: "file".into(),
                host: String::new(),
                path: text.to_string(),
                params: BTreeMap::new(),
            });
        };
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
            url: text.to_string(),
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
                return Err(Error::usage(format!(
                    "{}: unknown option ?{key}= (this target takes: {list})",
                    self.url
                )));
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
                return Err(Error::usage(format!(
                    "{base}: ?{key}= on the URL would be shown in output and the audit log; {hint}"
                )));
            }
        }
        Ok(())
    }

    pub fn param(&self, key: &str) -> Option<&str> {
        self.params
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_on_the_url_are_refused_without_echoing_them() {
        let hint = "put it in tflock.toml";
        let t = Target::parse("azblob://a/c?endpoint=x&access%5Fkey=c2VjcmV0").unwrap();
        let err = t.refuse_secrets_in_url(&["access_key"], hint).unwrap_err();
        assert_eq!(err.exit_code(), 2);
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
