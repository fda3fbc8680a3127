//! HTTP for both stores: one client with the request timeout on connecting and on each
//! request, TLS settings of the backend block, no automatic retries and no redirects.
//! Reads are retried here (twice, only on 429/5xx); a write is sent once and its failure
//! says whether it left the machine.

use crate::auth::Credentials;
use crate::error::Service;
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, LOCATION};
use reqwest::Method;
use std::time::Duration;
use tflock_core::error::root_cause;
use tflock_core::exchange::client_builder;
use tflock_core::{redact, ConnectOptions, Error, Kind, Target};
use url::Url;

/// Answers larger than this are cut: a lock answer is a few hundred bytes, a GraphQL
/// page of 100 states a few tens of kilobytes.
const MAX_BODY: usize = 4 << 20;
/// Reads are retried at most this many times, only on 429 and 5xx.
const READ_RETRIES: u32 = 2;

/// The options [`Client::new`] reads (credentials and TLS), which every target of this
/// crate takes.
pub(crate) const CLIENT_OPTIONS: &[&str] = &[
    "username",
    "password",
    "token",
    "skip_cert_verification",
    "client_ca_certificate_pem",
    "client_certificate_pem",
    "client_private_key_pem",
];

/// Which credentials a request carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Auth {
    /// `username:password`, as Terraform sends them (GitLab's state API).
    Basic,
    /// The token as a bearer token (GitLab's GraphQL and project API).
    Bearer,
}

/// An answer: status, body (cut at [`MAX_BODY`]) and where a redirect points.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
    pub location: Option<String>,
}

impl Reply {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Why a write has no answer.
#[derive(Debug)]
pub(crate) enum WriteError {
    /// It never left: the connection could not be made. Nothing was applied.
    NotSent(Error),
    /// It was sent and no answer came (dropped, timed out): it may have been applied.
    NoReply(Error),
}

impl WriteError {
    pub fn into_error(self) -> Error {
        match self {
            WriteError::NotSent(e) => e,
            WriteError::NoReply(e) => e.with_kind(Kind::OutcomeUnknown),
        }
    }
}

/// TLS settings of the backend block (`skip_cert_verification`,
/// `client_ca_certificate_pem` / `TF_HTTP_CLIENT_CA_CERTIFICATE_PEM`).
#[derive(Debug, Clone, Default)]
pub(crate) struct Tls {
    pub skip_verify: bool,
    pub ca_pem: Option<String>,
}

impl Tls {
    pub fn from_target(
        target: &Target,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Tls, Error> {
        let skip_verify = match target.param("skip_cert_verification") {
            None => false,
            Some(v) => match v.trim().to_ascii_lowercase().as_str() {
                "true" | "1" => true,
                "false" | "0" => false,
                _ => {
                    return Err(Error::usage(
                        &target.url,
                        format!("skip_cert_verification={v} must be true or false"),
                    ))
                }
            },
        };
        let cert = target
            .param("client_certificate_pem")
            .map(str::to_string)
            .or_else(|| env("TF_HTTP_CLIENT_CERTIFICATE_PEM"));
        let key = target
            .param("client_private_key_pem")
            .map(str::to_string)
            .or_else(|| env("TF_HTTP_CLIENT_PRIVATE_KEY_PEM"));
        if cert.is_some() || key.is_some() {
            return Err(Error::usage(
                &target.url,
                "client_certificate_pem / client_private_key_pem (mutual TLS) are not supported by tflock yet",
            )
            .with_hint("run tflock from a host the server accepts without a client certificate"));
        }
        let ca_pem = target
            .param("client_ca_certificate_pem")
            .map(str::to_string)
            .or_else(|| env("TF_HTTP_CLIENT_CA_CERTIFICATE_PEM"));
        Ok(Tls {
            skip_verify,
            ca_pem,
        })
    }
}

pub(crate) struct Client {
    http: reqwest::Client,
    /// The target URL: the subject of every message.
    pub target: String,
    timeout: Duration,
    creds: Credentials,
}

impl Client {
    pub fn new(
        target: &Target,
        opts: &ConnectOptions,
        creds: Credentials,
        tls: &Tls,
        urls: &[&Url],
    ) -> Result<Client, Error> {
        let https = urls.iter().any(|u| u.scheme() == "https");
        // Sent once means once: no retry either.
        let mut builder = client_builder(opts.timeout, https).retry(reqwest::retry::never());
        if tls.skip_verify {
            builder = builder.tls_danger_accept_invalid_certs(true);
        }
        if let Some(pem) = &tls.ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem.as_bytes())
                .ok()
                .filter(|c| !c.is_empty())
                .ok_or_else(|| {
                    Error::usage(
                        &target.url,
                        "client_ca_certificate_pem holds no PEM certificate",
                    )
                })?;
            // As Terraform: the given CA replaces the system roots.
            builder = builder.tls_certs_only(certs);
        }
        let http = builder.build().map_err(|e| {
            Error::backend(
                &target.url,
                format!("cannot build the HTTP client: {}", root_cause(&e)),
            )
        })?;
        Ok(Client {
            http,
            target: target.url.clone(),
            timeout: opts.timeout,
            creds,
        })
    }

    pub fn creds(&self) -> &Credentials {
        &self.creds
    }

    fn request(&self, method: Method, url: &Url, auth: Auth) -> reqwest::RequestBuilder {
        let mut req = self.http.request(method, url.clone());
        let value = match auth {
            Auth::Basic => self.creds.basic(),
            Auth::Bearer => self.creds.bearer(),
        };
        if let Some(v) = value.and_then(|v| HeaderValue::from_str(&v).ok()) {
            let mut v = v;
            v.set_sensitive(true);
            req = req.header(AUTHORIZATION, v);
        }
        req
    }

    /// A GET, retried at most twice on 429/5xx. Any answer is returned, the caller
    /// decides what a status means; only a missing answer is an error.
    pub async fn read(&self, what: &str, url: &Url, auth: Auth) -> Result<Reply, Error> {
        let mut attempt = 0;
        loop {
            let sent = self.request(Method::GET, url, auth).send().await;
            match sent {
                Ok(resp) => {
                    let reply = collect(resp).await;
                    if attempt < READ_RETRIES && (reply.status == 429 || reply.status >= 500) {
                        attempt += 1;
                        tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
                        continue;
                    }
                    return Ok(reply);
                }
                Err(e) => return Err(self.transport(what, url, &e)),
            }
        }
    }

    /// A write, sent once. `body` goes as `application/json`, as Terraform sends LockInfo.
    pub async fn write(
        &self,
        what: &str,
        method: &Method,
        url: &Url,
        auth: Auth,
        body: Option<Vec<u8>>,
    ) -> Result<Reply, WriteError> {
        let mut req = self.request(method.clone(), url, auth);
        if let Some(body) = body {
            req = req
                .header(CONTENT_TYPE, "application/json")
                .header("content-md5", content_md5(&body))
                .body(body);
        }
        match req.send().await {
            Ok(resp) => Ok(collect(resp).await),
            Err(e) if e.is_connect() => Err(WriteError::NotSent(self.transport(what, url, &e))),
            Err(e) => Err(WriteError::NoReply(self.transport(what, url, &e))),
        }
    }

    /// One line for a request that got no answer: unreachable, timed out, or cut off.
    fn transport(&self, what: &str, url: &Url, e: &reqwest::Error) -> Error {
        let origin = origin(url);
        let msg = |detail: String| Error::backend(&self.target, format!("{what} failed: {detail}"));
        let cause = self.hide(&root_cause(e));
        if e.is_timeout() {
            return msg(format!(
                "no answer from {origin} within {}s",
                self.timeout.as_secs_f32()
            ))
            .with_hint("check the address and the network, or raise --request-timeout")
            .with_kind(Kind::Timeout);
        }
        if e.is_connect() {
            let hint = if cause.contains("certificate") || cause.contains("Certificate") {
                "the server's TLS certificate is not trusted: set client_ca_certificate_pem (TF_HTTP_CLIENT_CA_CERTIFICATE_PEM) to its CA, or skip_cert_verification = true for a test server"
            } else {
                "check the address and the network"
            };
            return msg(format!("cannot connect to {origin} ({cause})"))
                .with_hint(hint)
                .with_kind(Kind::Unreachable);
        }
        msg(format!(
            "{origin} closed the connection without an answer ({cause})"
        ))
        .with_hint("check the address and the network")
    }

    /// A server's answer that is not the one asked for, as an error of this target.
    pub fn status_error(&self, what: &str, reply: &Reply, service: Service, place: &str) -> Error {
        crate::error::status_error(
            &self.target,
            what,
            reply,
            service,
            place,
            &self.creds.secrets(),
        )
    }

    /// Blanks the credentials out of text that came from elsewhere.
    pub fn hide(&self, text: &str) -> String {
        redact::secrets(text, &self.creds.secrets())
    }
}

/// `scheme://host:port`: what a network error is about, never a path or query (a lock
/// address may carry a secret there).
pub(crate) fn origin(url: &Url) -> String {
    match url.port() {
        Some(p) => format!("{}://{}:{p}", url.scheme(), url.host_str().unwrap_or("")),
        None => format!("{}://{}", url.scheme(), url.host_str().unwrap_or("")),
    }
}

/// Status and body; a body cut short (or over [`MAX_BODY`]) is kept as far as it came:
/// the status is what was decided.
async fn collect(mut resp: reqwest::Response) -> Reply {
    let status = resp.status().as_u16();
    let location = resp
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(redact::url);
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_BODY {
            body.truncate(MAX_BODY);
            break;
        }
    }
    Reply {
        status,
        body,
        location,
    }
}

/// `Content-MD5` as Terraform's http client sets it: base64 of the body's MD5.
pub(crate) fn content_md5(body: &[u8]) -> String {
    use base64::Engine;
    use md5::Digest;
    base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(body))
}

/// An HTTP method from a backend setting (`LOCK`, `POST`, ...).
pub(crate) fn method(target: &str, setting: &str, value: &str) -> Result<Method, Error> {
    Method::from_bytes(value.trim().as_bytes())
        .map_err(|_| Error::usage(target, format!("{setting}={value:?} is not an HTTP method")))
}

#[cfg(test)]
mod tests {
    #[test]
    fn content_md5_is_terraforms() {
        // The header of terraform force-unlock's empty body, as the research recorded it.
        assert_eq!(super::content_md5(b""), "1B2M2Y8AsgTpgAmY7PhCfg==");
    }
}
