//! Credentials and TLS settings as the Consul API client (`api.DefaultConfig`) and
//! Terraform's consul backend read them: the block's `access_token` (a hidden target
//! option), else `CONSUL_HTTP_TOKEN`, else the file in `CONSUL_HTTP_TOKEN_FILE`;
//! `http_auth` else `CONSUL_HTTP_AUTH` (`user[:password]`); `ca_file` / `cert_file` /
//! `key_file` else `CONSUL_CACERT` / `CONSUL_CLIENT_CERT` / `CONSUL_CLIENT_KEY`;
//! `CONSUL_HTTP_SSL_VERIFY=false` turns verification off. No value is ever shown.

use tflock_core::fsread::read_bounded;
use tflock_core::{Error, Kind, Target};

/// A secret string: never shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Debug, Default, Clone)]
pub struct Auth {
    /// Sent as `X-Consul-Token`.
    pub token: Option<Secret>,
    /// Where the token came from, for the 403 hint.
    pub token_from: Option<&'static str>,
    pub basic: Option<(String, Secret)>,
    pub ca_pem: Option<Vec<u8>>,
    /// PEM certificate followed by the PEM key.
    pub identity_pem: Option<Secret>,
    pub insecure: bool,
}

fn read(target: &str, path: &str, what: &str) -> Result<Vec<u8>, Error> {
    read_bounded(std::path::Path::new(path), 1 << 20)
        .map_err(|e| Error::usage(target, format!("cannot read {what} {e}")))
}

pub fn auth(target: &Target, env: &dyn Fn(&str) -> Option<String>) -> Result<Auth, Error> {
    let t = target.url.as_str();
    let mut a = Auth::default();
    if let Some(tok) = target.param("access_token") {
        a.token = Some(Secret(tok.trim().to_string()));
        a.token_from = Some("the backend's access_token");
    } else if let Some(tok) = env("CONSUL_HTTP_TOKEN") {
        a.token = Some(Secret(tok));
        a.token_from = Some("CONSUL_HTTP_TOKEN");
    } else if let Some(file) = env("CONSUL_HTTP_TOKEN_FILE") {
        let bytes = read(t, &file, "CONSUL_HTTP_TOKEN_FILE")
            .map_err(|e| e.with_kind(Kind::Unauthenticated))?;
        a.token = Some(Secret(String::from_utf8_lossy(&bytes).trim().to_string()));
        a.token_from = Some("CONSUL_HTTP_TOKEN_FILE");
    }
    if let Some(auth) = target
        .param("http_auth")
        .map(str::to_string)
        .or_else(|| env("CONSUL_HTTP_AUTH"))
    {
        let (user, pass) = auth.split_once(':').unwrap_or((auth.as_str(), ""));
        a.basic = Some((user.to_string(), Secret(pass.to_string())));
    }
    let setting = |key: &str, var: &str| target.param(key).map(str::to_string).or_else(|| env(var));
    if let Some(ca) = setting("ca_file", "CONSUL_CACERT") {
        a.ca_pem = Some(read(t, &ca, "the CA file")?);
    }
    match (
        setting("cert_file", "CONSUL_CLIENT_CERT"),
        setting("key_file", "CONSUL_CLIENT_KEY"),
    ) {
        (Some(cert), Some(key)) => {
            let mut pem = read(t, &cert, "the client certificate")?;
            pem.push(b'\n');
            pem.extend(read(t, &key, "the client key")?);
            a.identity_pem = Some(Secret(String::from_utf8_lossy(&pem).into_owned()));
        }
        (None, None) => {}
        _ => return Err(Error::usage(
            t,
            "cert_file (CONSUL_CLIENT_CERT) and key_file (CONSUL_CLIENT_KEY) must be set together",
        )),
    }
    a.insecure = env("CONSUL_HTTP_SSL_VERIFY").is_some_and(|v| v == "false" || v == "0");
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_blocks_token_wins_and_nothing_is_shown() {
        let env = |k: &str| match k {
            "CONSUL_HTTP_TOKEN" => Some("env-token-1234".to_string()),
            "CONSUL_HTTP_AUTH" => Some("ops:pw-5678".to_string()),
            _ => None,
        };
        let t = Target::parse("consul://h/p").unwrap();
        let a = auth(&t, &env).unwrap();
        assert_eq!(a.token, Some(Secret("env-token-1234".into())));
        assert_eq!(a.basic, Some(("ops".into(), Secret("pw-5678".into()))));
        let t = t.with("access_token", Some("block-token-9"));
        let a = auth(&t, &env).unwrap();
        assert_eq!(a.token, Some(Secret("block-token-9".into())));
        assert_eq!(a.token_from, Some("the backend's access_token"));
        let shown = format!("{a:?}");
        assert!(
            !shown.contains("block-token") && !shown.contains("pw-5678"),
            "{shown}"
        );
    }

    #[test]
    fn token_file_and_half_a_client_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "file-token\n").unwrap();
        let f = file.display().to_string();
        let env = |k: &str| (k == "CONSUL_HTTP_TOKEN_FILE").then(|| f.clone());
        let t = Target::parse("consul://h/p").unwrap();
        assert_eq!(
            auth(&t, &env).unwrap().token,
            Some(Secret("file-token".into()))
        );
        let t = t.with("cert_file", Some(f.clone()));
        let err = auth(&t, &|_| None).unwrap_err();
        assert_eq!(err.kind(), Kind::Usage);
    }
}
