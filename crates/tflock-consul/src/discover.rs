//! The consul backend as a driver: `consul://` targets and the `backend "consul"` block
//! (`backend.go` `Configure`: path, address, scheme, datacenter, access_token, http_auth,
//! ca_file/cert_file/key_file over `api.DefaultConfig`'s environment).

use serde::Deserialize;
use tflock_core::block::de;
use tflock_core::{BackendBlock, Error, Scheme, Target};

#[derive(Deserialize, Default)]
struct Settings {
    #[serde(default, deserialize_with = "de::text")]
    path: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    address: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    scheme: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    datacenter: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    access_token: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    http_auth: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    ca_file: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    cert_file: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    key_file: Option<String>,
}

/// The target of a `backend "consul"` block, `env` standing for the environment.
pub fn targets(
    block: &BackendBlock,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<Target>, Error> {
    let s: Settings = block.settings()?;
    let Some(path) = s.path.clone() else {
        return Err(block.missing(&["path"]));
    };
    // The address as the Consul client resolves it, shown in the target so it says
    // where it looks: the block's, else CONSUL_HTTP_ADDR, else the default.
    let address = s
        .address
        .clone()
        .or_else(|| env("CONSUL_HTTP_ADDR"))
        .unwrap_or_else(|| crate::client::DEFAULT_ADDRESS.to_string());
    let (from_address, host) = match address.split_once("://") {
        Some((scheme, rest)) => (
            Some(scheme.to_string()),
            rest.trim_end_matches('/').to_string(),
        ),
        None => (None, address.trim_end_matches('/').to_string()),
    };
    let scheme = s.scheme.clone().or(from_address).or_else(|| {
        env("CONSUL_HTTP_SSL")
            .filter(|v| v == "true" || v == "1")
            .map(|_| "https".to_string())
    });
    let mut query = Vec::new();
    if let Some(sc) = &scheme {
        query.push(format!("scheme={sc}"));
    }
    if let Some(dc) = &s.datacenter {
        query.push(format!("datacenter={dc}"));
    }
    let url = if query.is_empty() {
        format!("consul://{host}/{path}")
    } else {
        format!("consul://{host}/{path}?{}", query.join("&"))
    };
    Ok(vec![Target::parse(&url)?
        .with("access_token", s.access_token)
        .with("http_auth", s.http_auth)
        .with("ca_file", s.ca_file)
        .with("cert_file", s.cert_file)
        .with("key_file", s.key_file)])
}

pub const SCHEMES: &[Scheme] = &[Scheme {
    name: "consul",
    backend: "consul",
    form: "consul://[HOST[:PORT]]/PATH",
    about: "the consul backend's <path>/.lock keys held by sessions (lock ID = session ID)",
}];

#[cfg(test)]
mod tests {
    use super::*;
    use tflock_core::Kind;

    fn block(json: &str) -> BackendBlock {
        BackendBlock::new("consul", serde_json::from_str(json).unwrap())
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn the_block_becomes_a_target_with_hidden_secrets() {
        let b = block(
            r#"{"path":"tf/app","address":"consul.example:8501","scheme":"https","datacenter":"eu1",
                "access_token":"s3cr3t-token","http_auth":"ops:pw","ca_file":"/ca.pem",
                "cert_file":null,"key_file":null,"gzip":null,"lock":null}"#,
        );
        let t = &targets(&b, &no_env).unwrap()[0];
        assert_eq!(
            t.url,
            "consul://consul.example:8501/tf/app?scheme=https&datacenter=eu1"
        );
        assert_eq!(t.path, "tf/app");
        assert_eq!(t.param("access_token"), Some("s3cr3t-token"));
        assert_eq!(t.param("http_auth"), Some("ops:pw"));
        assert_eq!(t.param("ca_file"), Some("/ca.pem"));
        assert!(!format!("{t:?}").contains("s3cr3t"));
    }

    #[test]
    fn the_address_comes_from_the_environment_or_the_default() {
        let t = &targets(&block(r#"{"path":"a/b"}"#), &no_env).unwrap()[0];
        assert_eq!(t.url, "consul://127.0.0.1:8500/a/b");
        let env = |k: &str| match k {
            "CONSUL_HTTP_ADDR" => Some("https://c.example:8501".to_string()),
            _ => None,
        };
        let t = &targets(&block(r#"{"path":"a/b"}"#), &env).unwrap()[0];
        assert_eq!(t.url, "consul://c.example:8501/a/b?scheme=https");
        let ssl = |k: &str| match k {
            "CONSUL_HTTP_ADDR" => Some("c:1".to_string()),
            "CONSUL_HTTP_SSL" => Some("true".to_string()),
            _ => None,
        };
        let t = &targets(&block(r#"{"path":"a/b"}"#), &ssl).unwrap()[0];
        assert_eq!(t.url, "consul://c:1/a/b?scheme=https");
    }

    #[test]
    fn a_block_without_path_is_a_usage_error() {
        let err = targets(&block(r#"{"address":"x"}"#), &no_env).unwrap_err();
        assert_eq!(err.kind(), Kind::Usage);
        assert!(err.to_string().contains("path"), "{err}");
    }
}
