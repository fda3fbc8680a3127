//! The connection to the API server: one reqwest client built from the resolved
//! kubeconfig (CA, client certificate, proxy, timeouts), the credential (run once, at the
//! first request), and requests that are sent once and never retried.

use crate::auth::{self, Credential, Resolved, Secret};
use crate::error::{timed_out, transport};
use base64::Engine as _;
use std::time::Duration;
use tflock_core::exchange::{client_builder, exchange, NoReply, Reply};
use tflock_core::{ConnectOptions, Error, Kind};
use tokio::sync::OnceCell;

/// A token file or exec plugin may take a moment (SSO refresh, a cloud CLI); a dead API
/// server must still fail within the request timeout, so this bounds only the plugin.
const EXEC_LIMIT: Duration = Duration::from_secs(30);

struct Ready {
    http: reqwest::Client,
    /// `Authorization` value, if any. Never logged.
    auth: Option<Secret>,
}

pub struct Conn {
    /// The target URL: the subject of every message.
    pub target: String,
    pub resolved: Resolved,
    pub timeout: Duration,
    ready: OnceCell<Ready>,
}

impl Conn {
    pub fn new(target: &str, resolved: Resolved, opts: &ConnectOptions) -> Conn {
        Conn {
            target: target.to_string(),
            resolved,
            timeout: opts.timeout,
            ready: OnceCell::new(),
        }
    }

    /// The server as shown in messages (no userinfo, no query).
    pub fn server(&self) -> String {
        let s = &self.resolved.server;
        let port = s.port().map(|p| format!(":{p}")).unwrap_or_default();
        format!("{}://{}{port}", s.scheme(), s.host_str().unwrap_or(""))
    }

    async fn ready(&self) -> Result<&Ready, Error> {
        self.ready.get_or_try_init(|| self.connect()).await
    }

    async fn connect(&self) -> Result<Ready, Error> {
        let r = &self.resolved;
        let t = self.target.as_str();
        let mut client_cert = r.client_cert.clone();
        let auth = match &r.credential {
            Credential::None => None,
            Credential::Bearer(tok) => Some(Secret(format!("Bearer {}", tok.0))),
            Credential::BearerFile(path) => {
                let bytes = tflock_core::fsread::read_bounded(path, 1 << 20).map_err(|e| {
                    Error::new(
                        Kind::Unauthenticated,
                        format!("cannot read the token file {e}"),
                    )
                    .at(t)
                })?;
                let tok = String::from_utf8_lossy(&bytes).trim().to_string();
                Some(Secret(format!("Bearer {tok}")))
            }
            Credential::Basic { user, password } => {
                let pair = base64::engine::general_purpose::STANDARD
                    .encode(format!("{user}:{}", password.0));
                Some(Secret(format!("Basic {pair}")))
            }
            Credential::Exec(exec) => {
                let out = auth::run_exec(t, exec, &r.server, EXEC_LIMIT).await?;
                if out.client_cert.is_some() {
                    client_cert = out.client_cert;
                }
                out.token.map(|tok| Secret(format!("Bearer {}", tok.0)))
            }
        };
        // Certificates are needed for an https server, or an https proxy in front of it.
        let https = r.server.scheme() == "https"
            || r.proxy_url
                .as_deref()
                .is_some_and(|p| p.starts_with("https:"));
        let mut b = client_builder(self.timeout, https).pool_max_idle_per_host(4);
        if let Some(ca) = &r.ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(ca).map_err(|_| {
                Error::usage(
                    t,
                    format!("the certificate authority of {} is not PEM", r.source),
                )
            })?;
            // As client-go: a cluster CA replaces the system roots.
            b = b.tls_certs_only(certs);
        }
        if r.insecure {
            b = b.danger_accept_invalid_certs(true);
        }
        if let Some((cert, key)) = &client_cert {
            let mut pem = cert.clone();
            pem.push(b'\n');
            pem.extend_from_slice(key.0.as_bytes());
            let id = reqwest::Identity::from_pem(&pem).map_err(|_| {
                Error::usage(
                    t,
                    format!("the client certificate or key of {} is not PEM", r.source),
                )
            })?;
            b = b.identity(id);
        }
        if let Some(name) = &r.tls_server_name {
            // tls-server-name: dial the server's address but verify (and send SNI for)
            // this name, by resolving the name to the server's socket address.
            let port = r.server.port_or_known_default().unwrap_or(443);
            if let Some(addr) = r
                .server
                .socket_addrs(|| Some(port))
                .ok()
                .and_then(|a| a.into_iter().next())
            {
                b = b.resolve(name, addr);
            }
        }
        if let Some(p) = &r.proxy_url {
            let proxy = reqwest::Proxy::all(p)
                .map_err(|_| Error::usage(t, format!("proxy-url of {} is not a URL", r.source)))?;
            b = b.proxy(proxy);
        }
        let http = b
            .build()
            .map_err(|e| Error::backend(t, format!("cannot build the HTTP client: {e}")))?;
        Ok(Ready { http, auth })
    }

    /// The URL of an API path (`/apis/...`), honouring a server URL with a path prefix
    /// (a proxy such as Rancher's `https://host/k8s/clusters/c-1`), and `tls-server-name`.
    fn url(&self, path_and_query: &str) -> String {
        let r = &self.resolved;
        let mut base = r.server.clone();
        if let Some(name) = &r.tls_server_name {
            let _ = base.set_host(Some(name));
        }
        let prefix = base.path().trim_end_matches('/').to_string();
        base.set_path("");
        base.set_query(None);
        format!(
            "{}{prefix}{path_and_query}",
            base.as_str().trim_end_matches('/')
        )
    }

    /// Sends one request, once. `write` requests that get no answer are
    /// [`Kind::OutcomeUnknown`] unless they provably never left (connection refused).
    /// `what` names the action for messages: `listing leases in namespace x`.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path_and_query: &str,
        body: Option<Vec<u8>>,
        write: bool,
        what: &str,
    ) -> Result<Reply, Error> {
        let ready = self.ready().await?;
        let mut req = ready
            .http
            .request(method, self.url(path_and_query))
            .header("accept", "application/json");
        if let Some(a) = &ready.auth {
            let mut v = reqwest::header::HeaderValue::from_str(&a.0).map_err(|_| {
                Error::usage(
                    &self.target,
                    "the credential holds characters a header cannot",
                )
            })?;
            v.set_sensitive(true);
            req = req.header("authorization", v);
        }
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b);
        }
        exchange(req, self.timeout).await.map_err(|e| match e {
            NoReply::Transport(e) => transport(self, what, &e, write),
            NoReply::TimedOut => timed_out(self, what, write),
        })
    }
}
