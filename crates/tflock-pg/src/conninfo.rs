//! Connection settings as libpq (psql) and lib/pq (terraform's pg driver) read them: a
//! `postgres://` URL or a `key=value` string (the backend's `conn_str`), the `PG*`
//! environment variables, then the defaults. tokio-postgres reads no environment, so
//! these rules live here.
//!
//! Settings that would change where or how tflock connects and that it cannot honour
//! (`service`, `hostaddr`, several hosts, CRLs, `requirepeer`) are refused, never ignored.
//! Errors name the setting, never its value: a conn_str holds a password.

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use std::fmt;
use std::path::PathBuf;

/// The settings as written, before defaults. Later sources fill only what earlier ones
/// leave unset ([`ConnInfo::or`]).
#[derive(Default, Clone, PartialEq, Eq)]
pub struct ConnInfo {
    pub host: Option<String>,
    pub port: Option<String>,
    pub user: Option<String>,
    /// Secret: never shown (`Debug` says only whether it is set).
    pub password: Option<String>,
    pub dbname: Option<String>,
    pub sslmode: Option<String>,
    pub sslrootcert: Option<String>,
    pub sslcert: Option<String>,
    pub sslkey: Option<String>,
    pub passfile: Option<String>,
    pub channel_binding: Option<String>,
}

impl fmt::Debug for ConnInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnInfo")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("dbname", &self.dbname)
            .field("sslmode", &self.sslmode)
            .finish_non_exhaustive()
    }
}

/// Settings whose effect tflock cannot reproduce: refusing them beats connecting
/// somewhere else, or less safely, than the user asked.
const REFUSED_KEYS: &[(&str, &str)] = &[
    ("hostaddr", "give the address as host"),
    (
        "service",
        "tflock does not read pg_service.conf (terraform's lib/pq does not either); give host, port, user and dbname",
    ),
    ("sslcrl", "certificate revocation lists are not supported"),
    ("sslcrldir", "certificate revocation lists are not supported"),
    ("requirepeer", "peer credential checks are not supported"),
    ("sslpassword", "encrypted client keys are not supported; decrypt the key file"),
];

/// Environment variables of the same kind, refused when set.
const REFUSED_ENV: &[(&str, &str)] = &[
    ("PGSERVICE", "tflock does not read pg_service.conf, and terraform's pg backend crashes on it; unset it and give host, port, user and database"),
    ("PGHOSTADDR", "unset it and give the address in PGHOST"),
    ("PGREQUIRESSL", "unset it and use PGSSLMODE=require"),
    ("PGSSLCRL", "certificate revocation lists are not supported"),
    ("PGSSLCRLDIR", "certificate revocation lists are not supported"),
    ("PGREQUIREPEER", "peer credential checks are not supported"),
];

impl ConnInfo {
    /// A `postgres://` / `postgresql://` URL or a `key=value` conninfo string.
    pub fn parse(text: &str) -> Result<ConnInfo, String> {
        let trimmed = text.trim();
        for scheme in ["postgresql://", "postgres://"] {
            if trimmed.len() >= scheme.len() && trimmed[..scheme.len()].eq_ignore_ascii_case(scheme)
            {
                return parse_url(&trimmed[scheme.len()..]);
            }
        }
        parse_kv(trimmed)
    }

    /// The `PG*` variables libpq and lib/pq read, through `get` (the process environment
    /// in production, a map in tests).
    pub fn from_env(get: &dyn Fn(&str) -> Option<String>) -> Result<ConnInfo, String> {
        for (var, why) in REFUSED_ENV {
            if get(var).is_some_and(|v| !v.is_empty()) {
                return Err(format!("{var} is set: {why}"));
            }
        }
        let mut info = ConnInfo::default();
        for (var, key) in [
            ("PGHOST", "host"),
            ("PGPORT", "port"),
            ("PGUSER", "user"),
            ("PGPASSWORD", "password"),
            ("PGDATABASE", "dbname"),
            ("PGSSLMODE", "sslmode"),
            ("PGSSLROOTCERT", "sslrootcert"),
            ("PGSSLCERT", "sslcert"),
            ("PGSSLKEY", "sslkey"),
            ("PGPASSFILE", "passfile"),
            ("PGCHANNELBINDING", "channel_binding"),
        ] {
            if let Some(v) = get(var).filter(|v| !v.is_empty()) {
                info.set(key, v).map_err(|e| format!("{var}: {e}"))?;
            }
        }
        Ok(info)
    }

    /// Each setting from `self`, else from `other`.
    pub fn or(self, other: ConnInfo) -> ConnInfo {
        ConnInfo {
            host: self.host.or(other.host),
            port: self.port.or(other.port),
            user: self.user.or(other.user),
            password: self.password.or(other.password),
            dbname: self.dbname.or(other.dbname),
            sslmode: self.sslmode.or(other.sslmode),
            sslrootcert: self.sslrootcert.or(other.sslrootcert),
            sslcert: self.sslcert.or(other.sslcert),
            sslkey: self.sslkey.or(other.sslkey),
            passfile: self.passfile.or(other.passfile),
            channel_binding: self.channel_binding.or(other.channel_binding),
        }
    }

    /// One setting. Keys lib/pq passes to the server as run-time parameters
    /// (`application_name`, `search_path`, ...) and client-side tuning
    /// (`connect_timeout`, `keepalives`) do not change which lock is seen: ignored.
    pub fn set(&mut self, key: &str, value: String) -> Result<(), String> {
        if let Some((_, why)) = REFUSED_KEYS.iter().find(|(k, _)| *k == key) {
            return Err(format!("{key} is not supported: {why}"));
        }
        let slot = match key {
            "host" | "port" if value.contains(',') => {
                return Err(format!(
                    "several hosts ({key}=a,b) are not supported: name the one server that holds the locks"
                ))
            }
            "gssencmode" if value == "require" => {
                return Err("gssencmode=require is not supported (no GSSAPI)".into())
            }
            "host" => &mut self.host,
            "port" => &mut self.port,
            "user" => &mut self.user,
            "password" => &mut self.password,
            "dbname" => &mut self.dbname,
            "sslmode" => &mut self.sslmode,
            "sslrootcert" => &mut self.sslrootcert,
            "sslcert" => &mut self.sslcert,
            "sslkey" => &mut self.sslkey,
            "passfile" => &mut self.passfile,
            "channel_binding" => &mut self.channel_binding,
            _ => return Ok(()),
        };
        *slot = Some(value);
        Ok(())
    }
}

/// `[user[:password]@][host][:port][/dbname][?key=value&...]`, percent-decoded.
fn parse_url(rest: &str) -> Result<ConnInfo, String> {
    let rest = rest.split('#').next().unwrap_or_default();
    let (main, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (authority, path) = main.split_once('/').unwrap_or((main, ""));
    let mut info = parse_authority(authority)?;
    let db = decode(path)?;
    if !db.is_empty() {
        info.dbname = Some(db);
    }
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').ok_or_else(|| {
            "a query parameter of the URL has no \"=\" (use ?key=value)".to_string()
        })?;
        info.set(&decode(k)?, decode(v)?)?;
    }
    Ok(info)
}

/// `[user[:password]@][host][:port]` of a URL (a `pg://` target's host part too).
pub fn parse_authority(authority: &str) -> Result<ConnInfo, String> {
    let mut info = ConnInfo::default();
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    if let Some(userinfo) = userinfo {
        let (user, password) = match userinfo.split_once(':') {
            Some((u, p)) => (u, Some(p)),
            None => (userinfo, None),
        };
        let user = decode(user)?;
        if !user.is_empty() {
            info.user = Some(user);
        }
        if let Some(p) = password {
            info.password = Some(decode(p)?);
        }
    }
    if hostport.contains(',') {
        return Err(
            "several hosts (host1,host2) are not supported: name the one server that holds the locks"
                .into(),
        );
    }
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or_else(|| "an IPv6 host in the URL lacks its closing \"]\"".to_string())?;
        match after {
            "" => (h.to_string(), None),
            p if p.starts_with(':') => (h.to_string(), Some(&p[1..])),
            _ => return Err("unexpected text after the IPv6 host in the URL".into()),
        }
    } else {
        match hostport.split_once(':') {
            Some((h, p)) => (decode(h)?, Some(p)),
            None => (decode(hostport)?, None),
        }
    };
    if !host.is_empty() {
        info.host = Some(host);
    }
    if let Some(p) = port.filter(|p| !p.is_empty()) {
        info.port = Some(p.to_string());
    }
    Ok(info)
}

fn decode(s: &str) -> Result<String, String> {
    percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| "the URL holds percent-encoded bytes that are not UTF-8".to_string())
}

/// `key=value key2='quoted \' value'`, as libpq and lib/pq read it.
fn parse_kv(text: &str) -> Result<ConnInfo, String> {
    let mut info = ConnInfo::default();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(info);
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            // The key is not echoed: a pasted password would be shown.
            return Err(
                "not a postgres:// URL and not key=value settings (a setting lacks \"=\")".into(),
            );
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    None => return Err(format!("the quoted value of {key} is not closed")),
                    Some('\'') => break,
                    Some('\\') => value.extend(chars.next()),
                    Some(c) => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                if c == '\\' {
                    value.extend(chars.next());
                } else {
                    value.push(c);
                }
            }
        }
        info.set(&key, value)?;
    }
}

/// How much TLS, as libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    /// libpq: plain first, TLS if refused. Treated as `prefer` (TLS when offered).
    Allow,
    /// TLS when the server offers it, plain otherwise; no certificate check.
    Prefer,
    /// TLS, no certificate check (unless a root certificate is given: then verify-ca).
    Require,
    /// TLS, the chain checked against the root certificates, not the host name.
    VerifyCa,
    /// TLS, chain and host name checked.
    VerifyFull,
}

impl SslMode {
    fn parse(s: &str) -> Result<SslMode, String> {
        Ok(match s {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => {
                return Err(
                    "sslmode must be disable, allow, prefer, require, verify-ca or verify-full"
                        .into(),
                )
            }
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// `channel_binding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelBinding {
    Disable,
    Prefer,
    Require,
}

/// Where the server is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    Tcp(String),
    /// A directory holding the server's socket (`host=/var/run/postgresql`).
    Unix(PathBuf),
}

/// TLS settings after defaults; file paths as given (read when connecting is prepared).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    pub mode: SslMode,
    pub root_cert: Option<String>,
    pub cert: Option<String>,
    pub key: Option<String>,
}

/// Everything needed to connect, defaults applied. The password is not here: it comes
/// from [`crate::auth`] once the rest is known (`.pgpass` matches on it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: Host,
    pub port: u16,
    pub user: String,
    pub dbname: String,
    pub tls: TlsSettings,
    pub channel_binding: ChannelBinding,
}

impl ConnInfo {
    /// Applies the defaults libpq and lib/pq share: host `localhost`, port 5432, user =
    /// `os_user`, database = user, sslmode `prefer` (libpq's; see docs/backends/pg.md).
    pub fn endpoint(&self, os_user: Option<&str>) -> Result<Endpoint, String> {
        let host = match self.host.as_deref().filter(|h| !h.is_empty()) {
            Some(h) if h.starts_with('/') => Host::Unix(PathBuf::from(h)),
            Some(h) => Host::Tcp(h.to_string()),
            None => Host::Tcp("localhost".into()),
        };
        let port = match self.port.as_deref().filter(|p| !p.is_empty()) {
            None => 5432,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| "port must be a number from 1 to 65535".to_string())?,
        };
        let user = match self.user.as_deref().filter(|u| !u.is_empty()) {
            Some(u) => u.to_string(),
            None => os_user.map(str::to_string).ok_or_else(|| {
                "no user: set user in the connection settings or PGUSER".to_string()
            })?,
        };
        let dbname = self
            .dbname
            .clone()
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| user.clone());
        let mut mode = match self.sslmode.as_deref() {
            None | Some("") => SslMode::Prefer,
            Some(m) => SslMode::parse(m)?,
        };
        if matches!(host, Host::Unix(_)) {
            // libpq and lib/pq: no TLS over a local socket.
            mode = SslMode::Disable;
        }
        let channel_binding = match self.channel_binding.as_deref() {
            None | Some("") | Some("prefer") => ChannelBinding::Prefer,
            Some("disable") => ChannelBinding::Disable,
            Some("require") => ChannelBinding::Require,
            Some(_) => return Err("channel_binding must be disable, prefer or require".into()),
        };
        Ok(Endpoint {
            host,
            port,
            user,
            dbname,
            tls: TlsSettings {
                mode,
                root_cert: self.sslrootcert.clone().filter(|s| !s.is_empty()),
                cert: self.sslcert.clone().filter(|s| !s.is_empty()),
                key: self.sslkey.clone().filter(|s| !s.is_empty()),
            },
            channel_binding,
        })
    }
}

/// Characters kept as they are in a `pg://` URL part; everything else percent-encoded.
const URL_PART: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

pub fn encode(s: &str) -> String {
    utf8_percent_encode(s, URL_PART).to_string()
}

impl Endpoint {
    /// `host:port` (a socket directory as it is), for messages.
    pub fn address(&self) -> String {
        match &self.host {
            Host::Tcp(h) if h.contains(':') => format!("[{h}]:{}", self.port),
            Host::Tcp(h) => format!("{h}:{}", self.port),
            Host::Unix(dir) => format!("{}/.s.PGSQL.{}", dir.display(), self.port),
        }
    }

    /// The `pg://USER@HOST:PORT/DBNAME` naming this endpoint (no password, no TLS
    /// settings), as a `-t` value.
    pub fn url(&self) -> String {
        let host = match &self.host {
            Host::Tcp(h) if h.contains(':') => format!("[{h}]"),
            Host::Tcp(h) => encode(h),
            Host::Unix(dir) => encode(&dir.to_string_lossy()),
        };
        format!(
            "pg://{}@{host}:{}/{}",
            encode(&self.user),
            self.port,
            encode(&self.dbname)
        )
    }

    /// `host:port/dbname` for lock locations.
    pub fn place(&self) -> String {
        format!("{}/{}", self.address(), self.dbname)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn urls_as_libpq_reads_them() {
        let c = ConnInfo::parse(
            "postgres://tf%40ops:p%40ss:w@db.example:6432/tf%2Fstate?sslmode=verify-full&application_name=x",
        )
        .unwrap();
        assert_eq!(c.user.as_deref(), Some("tf@ops"));
        assert_eq!(c.password.as_deref(), Some("p@ss:w"));
        assert_eq!(c.host.as_deref(), Some("db.example"));
        assert_eq!(c.port.as_deref(), Some("6432"));
        assert_eq!(c.dbname.as_deref(), Some("tf/state"));
        assert_eq!(c.sslmode.as_deref(), Some("verify-full"));
        let v6 = ConnInfo::parse("postgresql://[::1]:5433/db").unwrap();
        assert_eq!(
            (v6.host.as_deref(), v6.port.as_deref()),
            (Some("::1"), Some("5433"))
        );
        let sock = ConnInfo::parse("postgres:///db?host=%2Fvar%2Frun%2Fpostgresql").unwrap();
        assert_eq!(sock.host.as_deref(), Some("/var/run/postgresql"));
        assert_eq!(
            ConnInfo::parse("POSTGRES://h").unwrap().host.as_deref(),
            Some("h")
        );
        assert!(ConnInfo::parse("postgres://a,b/db").is_err());
        assert!(ConnInfo::parse("postgres://h/db?service=x").is_err());
        assert!(ConnInfo::parse("postgres://h/db?flag").is_err());
    }

    #[test]
    fn key_value_strings_as_libpq_reads_them() {
        let c = ConnInfo::parse(
            "host=db port = 5433 user=tf password='it\\'s a \\\\ secret' dbname=tf sslmode=require search_path=x",
        )
        .unwrap();
        assert_eq!(c.host.as_deref(), Some("db"));
        assert_eq!(c.port.as_deref(), Some("5433"));
        assert_eq!(c.password.as_deref(), Some("it's a \\ secret"));
        assert_eq!(c.sslmode.as_deref(), Some("require"));
        // As in libpq, blanks after '=' are skipped: an empty value is written ''.
        let empty = ConnInfo::parse("password='' host=h").unwrap();
        assert_eq!(empty.password.as_deref(), Some(""));
        assert_eq!(empty.host.as_deref(), Some("h"));
    }

    #[test]
    fn parse_errors_never_echo_values() {
        for (text, secret) in [
            ("s3cr3t-pass", "s3cr3t"),
            ("password='s3cr3t", "s3cr3t"),
            ("host=h hostaddr=10.9.8.7", "10.9.8.7"),
            ("postgres://u:s3cr3t@h/db?sslmode=s3cr3t", "s3cr3t"),
        ] {
            let e = ConnInfo::parse(text)
                .and_then(|c| c.endpoint(None))
                .unwrap_err();
            assert!(!e.contains(secret), "{e}");
        }
    }

    #[test]
    fn environment_fills_what_the_string_leaves_out() {
        let e = ConnInfo::from_env(&env(&[
            ("PGHOST", "envhost"),
            ("PGPORT", "7000"),
            ("PGUSER", "envuser"),
            ("PGPASSWORD", "envpw"),
            ("PGSSLMODE", "disable"),
        ]))
        .unwrap();
        let c = ConnInfo::parse("host=db dbname=tf").unwrap().or(e);
        let ep = c.endpoint(Some("osuser")).unwrap();
        assert_eq!(ep.host, Host::Tcp("db".into()));
        assert_eq!(
            (ep.port, ep.user.as_str(), ep.dbname.as_str()),
            (7000, "envuser", "tf")
        );
        assert_eq!(ep.tls.mode, SslMode::Disable);
        assert_eq!(c.password.as_deref(), Some("envpw"));
        let err = ConnInfo::from_env(&env(&[("PGSERVICE", "prod")])).unwrap_err();
        assert!(err.starts_with("PGSERVICE is set"), "{err}");
        assert!(ConnInfo::from_env(&env(&[("PGHOST", "a,b")])).is_err());
    }

    #[test]
    fn defaults_as_libpq() {
        let ep = ConnInfo::default().endpoint(Some("alice")).unwrap();
        assert_eq!(ep.host, Host::Tcp("localhost".into()));
        assert_eq!(
            (ep.port, ep.user.as_str(), ep.dbname.as_str()),
            (5432, "alice", "alice")
        );
        assert_eq!(ep.tls.mode, SslMode::Prefer);
        assert_eq!(ep.url(), "pg://alice@localhost:5432/alice");
        let sock = ConnInfo::parse("host=/run/pg sslmode=require user=u")
            .unwrap()
            .endpoint(None)
            .unwrap();
        assert_eq!(sock.tls.mode, SslMode::Disable);
        assert_eq!(sock.url(), "pg://u@%2Frun%2Fpg:5432/u");
        assert!(ConnInfo::default().endpoint(None).is_err());
        assert!(ConnInfo::parse("port=0 user=u")
            .unwrap()
            .endpoint(None)
            .is_err());
        assert!(ConnInfo::parse("port=x user=u")
            .unwrap()
            .endpoint(None)
            .is_err());
        assert!(ConnInfo::parse("sslmode=sometimes user=u")
            .unwrap()
            .endpoint(None)
            .is_err());
    }

    #[test]
    fn debug_hides_the_password() {
        let c = ConnInfo::parse("password=hunter2-secret").unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
