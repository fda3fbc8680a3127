//! Names: GitLab's state addresses (what a backend block's `address` holds), state names
//! in URLs, and the LockInfo tflock sends when it asks for a lock to learn its holder.

use crate::client::CLIENT_OPTIONS;
use chrono::Utc;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use tflock_core::{Error, LockInfo, Target};
use url::Url;

/// tflock's options on an `http(s)://` target. Any other query item belongs to the lock
/// address itself (a server may want `?name=prod`).
pub(crate) fn http_options() -> Vec<&'static str> {
    let own: &[&str] = &[
        "unlock_address",
        "lock_method",
        "unlock_method",
        "address",
        "update_method",
    ];
    [own, CLIENT_OPTIONS, &["probe"]].concat()
}

/// `url` without `user:password@`, and what was there: an address in a backend block may
/// carry Basic credentials (Go's client sends them), which must never be shown.
pub(crate) fn split_userinfo(url: &Url) -> (Url, Option<(String, String)>) {
    if url.username().is_empty() && url.password().is_none() {
        return (url.clone(), None);
    }
    let user = percent_decode(url.username()).unwrap_or_default();
    let pass = url.password().and_then(percent_decode).unwrap_or_default();
    let mut bare = url.clone();
    let _ = bare.set_username("");
    let _ = bare.set_password(None);
    (bare, Some((user, pass)))
}

/// Refuses `user:password@` in a target URL: the URL is the target's name, shown in
/// listings, errors and the audit log.
pub(crate) fn refuse_userinfo(target: &Target) -> Result<(), Error> {
    let authority = target.url.split_once("://").map_or("", |(_, rest)| {
        rest.split(['/', '?', '#']).next().unwrap_or("")
    });
    if authority.contains('@') {
        let shown = format!(
            "{}://***@{}",
            target.scheme,
            authority.rsplit_once('@').map_or("", |(_, h)| h)
        );
        return Err(Error::usage(
            shown,
            "credentials in the URL would be shown in output and the audit log; set username/password in tflock.toml, or use TF_HTTP_USERNAME / TF_HTTP_PASSWORD (GITLAB_TOKEN for GitLab)",
        ));
    }
    Ok(())
}

/// The address an `http(s)://` target names: its URL without tflock's options (which
/// stay in `target.params`), the address's own query kept byte for byte.
pub(crate) fn address_of(target: &Target) -> Result<Url, Error> {
    // The address as written (the shown name masks its query values).
    let (base, query) = match target.raw.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (target.raw.as_str(), None),
    };
    let options = http_options();
    let kept: Vec<&str> = query
        .unwrap_or("")
        .split('&')
        .filter(|pair| !pair.is_empty())
        .filter(|pair| {
            let key = pair.split_once('=').map_or(*pair, |(k, _)| k);
            !options.contains(&percent_decode(key).unwrap_or_default().as_str())
        })
        .collect();
    let text = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    let url = Url::parse(&text)
        .map_err(|e| Error::usage(&target.url, format!("not a valid URL ({e})")))?;
    // `http:///x` parses as host `x`: judge the host as written.
    if target.host.is_empty() || url.host_str().is_none_or(str::is_empty) {
        return Err(Error::usage(&target.url, "no host in the address"));
    }
    Ok(url)
}

/// A GitLab state address taken apart:
/// `<base>/api/v4/projects/<project>/terraform/state/<name>[/lock]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GitLabAddress {
    /// `scheme://host[:port][/relative-root]`, no trailing slash.
    pub base: Url,
    /// The project as written there, decoded: a numeric ID or `group/sub/project`.
    pub project: String,
    /// The state name, decoded (`%2F` is a `/` in the name, as GitLab reads it).
    pub state: String,
}

fn decode(segment: &str) -> Option<String> {
    let text = percent_decode(segment)?;
    (!text.is_empty()).then_some(text)
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Recognises GitLab's Terraform state API in an http(s) URL, with or without the
/// trailing `/lock`. Anything else (another shape, a query string) is not GitLab's.
pub(crate) fn parse_gitlab_address(url: &Url) -> Option<GitLabAddress> {
    if !matches!(url.scheme(), "http" | "https") || url.query().is_some() {
        return None;
    }
    url.host_str()?;
    let segments: Vec<&str> = url.path().split('/').collect();
    let at = segments
        .windows(3)
        .rposition(|w| w == ["api", "v4", "projects"])?;
    let rest = &segments[at + 3..];
    let (project, name) = match rest {
        [project, "terraform", "state", name] | [project, "terraform", "state", name, "lock"] => {
            (decode(project)?, decode(name)?)
        }
        _ => return None,
    };
    let mut base = url.clone();
    base.set_path(&segments[..at].join("/"));
    base.set_fragment(None);
    let base = Url::parse(base.as_str().trim_end_matches('/')).ok()?;
    Some(GitLabAddress {
        base,
        project,
        state: name,
    })
}

/// A path segment with everything but unreserved characters escaped: a project path's
/// `/` becomes `%2F` as GitLab's `:id` wants, and so does a state name's.
pub(crate) fn segment(s: &str) -> String {
    utf8_percent_encode(s, NOT_UNRESERVED).to_string()
}

/// RFC 3986's unreserved characters stay; everything else is escaped.
const NOT_UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `<base>/api/v4/projects/<project>` (the project API, and the root of its state API).
pub(crate) fn project_url(base: &Url, project: &str) -> Url {
    join(base, &format!("api/v4/projects/{}", segment(project)))
}

/// `<base>/api/v4/projects/<project>/terraform/state/<name>`: what a backend block's
/// `address` holds, and the state path tflock shows.
pub(crate) fn state_url(base: &Url, project: &str, state: &str) -> Url {
    join(
        base,
        &format!(
            "api/v4/projects/{}/terraform/state/{}",
            segment(project),
            segment(state)
        ),
    )
}

/// The state's lock endpoint: `<state address>/lock`.
pub(crate) fn lock_url(base: &Url, project: &str, state: &str) -> Url {
    let state = state_url(base, project, state);
    join(&state, "lock")
}

pub(crate) fn graphql_url(base: &Url) -> Url {
    join(base, "api/graphql")
}

/// `base` + `/` + `tail` (which is already escaped), keeping any relative root.
fn join(base: &Url, tail: &str) -> Url {
    let mut url = base.clone();
    let path = format!("{}/{tail}", base.path().trim_end_matches('/'));
    url.set_path(&path);
    url
}

/// 16 random bytes as 8-4-4-4-12 hex, the shape of Terraform's lock IDs.
pub(crate) fn random_id() -> String {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    let from_os = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .is_ok();
    if !from_os {
        // No /dev/urandom: time, pid and a counter still make IDs unique per run.
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let seed = Utc::now().timestamp_nanos_opt().unwrap_or_default() as u64
            ^ ((std::process::id() as u64) << 32)
            ^ N.fetch_add(1, Ordering::SeqCst)
                .wrapping_mul(0x9E37_79B9_7F4A_7C15);
        bytes = tflock_core::lockinfo::seeded_bytes(seed);
    }
    tflock_core::lockinfo::id_from_bytes(bytes)
}

/// What tflock's probe says about itself: a server that grants it the lock stores this
/// for the few milliseconds until tflock releases it, and anyone who sees it then (a
/// `terraform plan` refused meanwhile) can tell what it was.
pub const PROBE_OPERATION: &str = "tflock-probe";

/// The LockInfo of one probe, with a fresh ID of its own.
pub(crate) fn probe_info() -> LockInfo {
    LockInfo {
        id: random_id(),
        operation: PROBE_OPERATION.into(),
        info: "tflock is reading the lock ID; a lock granted to it is released at once".into(),
        who: format!("{}@{}", user(), host()),
        version: format!("tflock {}", env!("CARGO_PKG_VERSION")),
        created: Some(Utc::now()),
        path: String::new(),
    }
}

fn user() -> String {
    ["USER", "LOGNAME"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
        .unwrap_or_default()
}

fn host() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into our buffer.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return String::new();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Option<GitLabAddress> {
        parse_gitlab_address(&Url::parse(s).unwrap())
    }

    #[test]
    fn gitlab_addresses_are_recognised_with_or_without_lock() {
        let a =
            parse("https://gitlab.example.com/api/v4/projects/42/terraform/state/prod").unwrap();
        assert_eq!(a.base.as_str(), "https://gitlab.example.com/");
        assert_eq!((a.project.as_str(), a.state.as_str()), ("42", "prod"));
        let b = parse("https://gitlab.example.com/api/v4/projects/42/terraform/state/prod/lock")
            .unwrap();
        assert_eq!(a, b);
        let c = parse("http://127.0.0.1:8080/gitlab/api/v4/projects/grp%2Fsub%2Fapp/terraform/state/env%2Fprod.v1").unwrap();
        assert_eq!(c.base.as_str(), "http://127.0.0.1:8080/gitlab");
        assert_eq!(c.project, "grp/sub/app");
        assert_eq!(c.state, "env/prod.v1");
        for other in [
            "https://h/api/v4/projects/42/terraform/state/",
            "https://h/api/v4/projects/42/terraform/state/prod/extra",
            "https://h/api/v4/projects/42/terraform/state/prod?x=1",
            "https://h/state/prod",
            "https://h/api/v4/projects/42/terraform/state/%ZZ",
        ] {
            assert_eq!(parse(other), None, "{other}");
        }
    }

    #[test]
    fn urls_escape_projects_and_names_and_keep_a_relative_root() {
        let base = Url::parse("http://127.0.0.1:8080/gitlab").unwrap();
        assert_eq!(
            lock_url(&base, "grp/app", "a b/c?").as_str(),
            "http://127.0.0.1:8080/gitlab/api/v4/projects/grp%2Fapp/terraform/state/a%20b%2Fc%3F/lock"
        );
        let root = Url::parse("https://gitlab.com").unwrap();
        assert_eq!(
            state_url(&root, "42", "prod").as_str(),
            "https://gitlab.com/api/v4/projects/42/terraform/state/prod"
        );
        assert_eq!(
            graphql_url(&root).as_str(),
            "https://gitlab.com/api/graphql"
        );
        // What is built is read back the same.
        let back = parse_gitlab_address(&lock_url(&base, "grp/app", "a b/c?")).unwrap();
        assert_eq!(
            (back.project.as_str(), back.state.as_str()),
            ("grp/app", "a b/c?")
        );
    }

    #[test]
    fn tflock_options_leave_the_address_and_its_own_query_stays() {
        let t = Target::parse("https://s:8443/lock?name=prod&lock_method=POST&x=a%26b").unwrap();
        assert_eq!(
            address_of(&t).unwrap().as_str(),
            "https://s:8443/lock?name=prod&x=a%26b"
        );
        let t = Target::parse("http://s/lock?unlock%5Faddress=http://s/unlock").unwrap();
        assert_eq!(address_of(&t).unwrap().as_str(), "http://s/lock");
        assert!(address_of(&Target::parse("http:///lock").unwrap()).is_err());
    }

    #[test]
    fn credentials_in_urls_are_split_off_and_refused_on_targets() {
        let (bare, creds) = split_userinfo(&Url::parse("https://u%40x:p%2Fw@s/lock").unwrap());
        assert_eq!(bare.as_str(), "https://s/lock");
        assert_eq!(creds, Some(("u@x".to_string(), "p/w".to_string())));
        assert_eq!(split_userinfo(&Url::parse("https://s/l").unwrap()).1, None);
        // A password on a target URL is refused already when it is parsed.
        let e = Target::parse("https://u:s3cret@s/lock?a=1").unwrap_err();
        assert!(!e.to_string().contains("s3cret"), "{e}");
        let e = refuse_userinfo(&Target::parse("https://u@s/lock?a=1").unwrap()).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("https://***@s: credentials in the URL"),
            "{e}"
        );
        assert!(refuse_userinfo(&Target::parse("gitlab://h/g/p?x=a@b").unwrap()).is_ok());
    }

    #[test]
    fn probe_ids_are_fresh_and_shaped_like_terraforms() {
        let (a, b) = (probe_info(), probe_info());
        assert_ne!(a.id, b.id);
        assert_eq!(a.id.len(), 36);
        assert_eq!(a.id.matches('-').count(), 4);
        assert_eq!(a.operation, PROBE_OPERATION);
        assert!(a.to_terraform_json().contains("\"Path\":\"\""));
    }
}
