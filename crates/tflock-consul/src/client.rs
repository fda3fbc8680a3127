//! The connection to a Consul agent: address, scheme and datacenter as Terraform's
//! backend and `api.DefaultConfig` take them, one reqwest client with our timeouts, and
//! requests sent once (never retried).

use crate::auth::{self, Auth};
use crate::error::{timed_out, transport};
use base64::Engine as _;
use std::time::Duration;
use tflock_core::exchange::{client_builder, exchange, NoReply, Reply};
use tflock_core::{ConnectOptions, Error, Target};

/// `api.DefaultConfig`'s address when nothing else says.
pub const DEFAULT_ADDRESS: &str = "127.0.0.1:8500";

pub struct Conn {
    /// The target URL: the subject of every message.
    pub target: String,
    /// `http://host:port`
    pub base: url::Url,
    pub datacenter: Option<String>,
    pub auth: Auth,
    pub timeout: Duration,
    http: reqwest::Client,
}

/// The agent's base URL from the target (`consul://HOST[:PORT]/...`, `?scheme=`), else
/// `CONSUL_HTTP_ADDR` (which may carry the scheme), else 127.0.0.1:8500;
/// `CONSUL_HTTP_SSL=true` means https when nothing names a scheme.
pub fn base_url(target: &Target, env: &dyn Fn(&str) -> Option<String>) -> Result<url::Url, Error> {
    let t = target.url.as_str();
    let (address, from) = if target.host.is_empty() {
        match env("CONSUL_HTTP_ADDR") {
            Some(a) => (a, "CONSUL_HTTP_ADDR"),
            None => (DEFAULT_ADDRESS.to_string(), "the default address"),
        }
    } else {
        (target.host.clone(), "the target")
    };
    let (mut scheme, host) = match address.split_once("://") {
        Some((s, rest)) => (
            Some(s.to_ascii_lowercase()),
            rest.trim_end_matches('/').to_string(),
        ),
        None => (None, address.trim_end_matches('/').to_string()),
    };
    if let Some(s) = target.param("scheme") {
        scheme = Some(s.to_ascii_lowercase());
    }
    let scheme = scheme.unwrap_or_else(|| {
        match env("CONSUL_HTTP_SSL").as_deref() {
            Some("true") | Some("1") => "https",
            _ => "http",
        }
        .to_string()
    });
    if scheme != "http" && scheme != "https" {
        return Err(Error::usage(
            t,
            format!("scheme {scheme:?} (from {from} or ?scheme=) must be http or https; unix sockets are not supported"),
        ));
    }
    let url = url::Url::parse(&format!("{scheme}://{host}")).map_err(|e| {
        Error::usage(
            t,
            format!("the Consul address {host:?} from {from} is not host[:port] ({e})"),
        )
    })?;
    if url.host_str().is_none() || url.path() != "/" {
        return Err(Error::usage(
            t,
            format!("the Consul address {host:?} from {from} must be host[:port]"),
        ));
    }
    Ok(url)
}

impl Conn {
    pub fn new(
        target: &Target,
        opts: &ConnectOptions,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Conn, Error> {
        let t = target.url.as_str();
        let base = base_url(target, env)?;
        let auth = auth::auth(target, env)?;
        let mut b = client_builder(opts.timeout, base.scheme() == "https");
        if let Some(ca) = &auth.ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(ca)
                .map_err(|_| Error::usage(t, "the CA file (ca_file / CONSUL_CACERT) is not PEM"))?;
            b = b.tls_certs_only(certs);
        }
        if let Some(pem) = &auth.identity_pem {
            let id = reqwest::Identity::from_pem(pem.0.as_bytes()).map_err(|_| {
                Error::usage(
                    t,
                    "the client certificate or key (cert_file / key_file) is not PEM",
                )
            })?;
            b = b.identity(id);
        }
        if auth.insecure {
            b = b.danger_accept_invalid_certs(true);
        }
        let http = b
            .build()
            .map_err(|e| Error::backend(t, format!("cannot build the HTTP client: {e}")))?;
        Ok(Conn {
            target: target.url.clone(),
            base,
            datacenter: target.param("datacenter").map(str::to_string),
            auth,
            timeout: opts.timeout,
            http,
        })
    }

    /// `http://host:port`, for messages.
    pub fn server(&self) -> String {
        self.base.as_str().trim_end_matches('/').to_string()
    }

    /// `/v1/<api...>/<key>` with each key segment escaped, and the query.
    fn url(&self, api: &[&str], key: Option<&str>, query: &[(&str, &str)]) -> url::Url {
        let mut u = self.base.clone();
        if let Ok(mut segs) = u.path_segments_mut() {
            segs.clear().extend(api);
            if let Some(k) = key {
                segs.extend(k.split('/'));
            }
        }
        let mut pairs: Vec<(&str, &str)> = query.to_vec();
        if let Some(dc) = &self.datacenter {
            pairs.push(("dc", dc));
        }
        if !pairs.is_empty() {
            let mut q = u.query_pairs_mut();
            for (k, v) in pairs {
                if v.is_empty() {
                    q.append_key_only(k);
                } else {
                    q.append_pair(k, v);
                }
            }
        }
        u
    }

    /// Sends one request, once. A write that gets no answer is `OutcomeUnknown` unless it
    /// provably never left (connection refused).
    pub async fn send(
        &self,
        method: reqwest::Method,
        api: &[&str],
        key: Option<&str>,
        query: &[(&str, &str)],
        write: bool,
        what: &str,
    ) -> Result<Reply, Error> {
        let mut req = self.http.request(method, self.url(api, key, query));
        if let Some(tok) = &self.auth.token {
            let mut v = reqwest::header::HeaderValue::from_str(&tok.0).map_err(|_| {
                Error::usage(
                    &self.target,
                    "the Consul token holds characters a header cannot",
                )
            })?;
            v.set_sensitive(true);
            req = req.header("x-consul-token", v);
        }
        if let Some((user, pass)) = &self.auth.basic {
            let pair =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{}", pass.0));
            let mut v =
                reqwest::header::HeaderValue::from_str(&format!("Basic {pair}")).map_err(|_| {
                    Error::usage(&self.target, "http_auth holds characters a header cannot")
                })?;
            v.set_sensitive(true);
            req = req.header("authorization", v);
        }
        exchange(req, self.timeout).await.map_err(|e| match e {
            NoReply::Transport(e) => transport(self, what, &e, write),
            NoReply::TimedOut => timed_out(self, what, write),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(url: &str, env: &[(&str, &str)]) -> Result<String, Error> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        base_url(&Target::parse(url).unwrap(), &get).map(|u| u.to_string())
    }

    #[test]
    fn address_and_scheme_as_the_consul_client_takes_them() {
        assert_eq!(
            base("consul://c.example:8501/p", &[]).unwrap(),
            "http://c.example:8501/"
        );
        assert_eq!(
            base("consul://c.example/p?scheme=https", &[]).unwrap(),
            "https://c.example/"
        );
        assert_eq!(base("consul:///p", &[]).unwrap(), "http://127.0.0.1:8500/");
        assert_eq!(
            base(
                "consul:///p",
                &[("CONSUL_HTTP_ADDR", "https://a.example:8501")]
            )
            .unwrap(),
            "https://a.example:8501/"
        );
        assert_eq!(
            base(
                "consul:///p",
                &[("CONSUL_HTTP_ADDR", "a:1"), ("CONSUL_HTTP_SSL", "true")]
            )
            .unwrap(),
            "https://a:1/"
        );
        for bad in ["consul://h/p?scheme=ftp", "consul://h:notaport/p"] {
            assert_eq!(
                base(bad, &[]).unwrap_err().kind(),
                tflock_core::Kind::Usage,
                "{bad}"
            );
        }
        let unix = base(
            "consul:///p",
            &[("CONSUL_HTTP_ADDR", "unix:///run/consul.sock")],
        );
        assert!(unix.unwrap_err().to_string().contains("unix"));
    }
}
