//! One PostgreSQL connection per operation, made from the resolved settings, bounded by
//! the request timeout (connecting, TLS and login included), named `tflock` in
//! `pg_stat_activity`.

use crate::conninfo::{ChannelBinding, Endpoint, Host, SslMode};
use crate::error::pg_error;
use rustls::ClientConfig;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tflock_core::{Error, Kind};
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::{Client, Config, NoTls, Socket};

pub struct Conn {
    /// The target as given: the name in every message.
    pub target: String,
    pub endpoint: Endpoint,
    password: Option<String>,
    /// Why the password file gave no password, for the hint of a failed login.
    pub passfile_note: Option<String>,
    tls: Option<Arc<ClientConfig>>,
    pub timeout: Duration,
}

impl Conn {
    pub fn new(
        target: String,
        endpoint: Endpoint,
        password: Option<String>,
        passfile_note: Option<String>,
        tls: Option<Arc<ClientConfig>>,
        timeout: Duration,
    ) -> Conn {
        Conn {
            target,
            endpoint,
            password,
            passfile_note,
            tls,
            timeout,
        }
    }

    /// `text` with the password blanked, wherever a server or library echoed it.
    pub fn scrub(&self, text: &str) -> String {
        match &self.password {
            Some(p) => tflock_core::redact::secrets(text, &[p.as_str()]),
            None => text.to_string(),
        }
    }

    fn config(&self) -> Config {
        let ep = &self.endpoint;
        let mut cfg = Config::new();
        match &ep.host {
            Host::Tcp(h) => cfg.host(h),
            Host::Unix(dir) => cfg.host_path(dir),
        };
        cfg.port(ep.port)
            .user(&ep.user)
            .dbname(&ep.dbname)
            .application_name("tflock")
            .connect_timeout(self.timeout)
            .ssl_mode(match ep.tls.mode {
                SslMode::Disable => tokio_postgres::config::SslMode::Disable,
                SslMode::Allow | SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
                _ => tokio_postgres::config::SslMode::Require,
            })
            .channel_binding(match ep.channel_binding {
                ChannelBinding::Disable => tokio_postgres::config::ChannelBinding::Disable,
                ChannelBinding::Prefer => tokio_postgres::config::ChannelBinding::Prefer,
                ChannelBinding::Require => tokio_postgres::config::ChannelBinding::Require,
            });
        if let Some(p) = &self.password {
            cfg.password(p);
        }
        cfg
    }

    /// A new session, or an error saying why not (nothing was sent but a login).
    pub async fn connect(&self, action: &str) -> Result<Client, Error> {
        let cfg = self.config();
        let started = match &self.tls {
            None => self.bounded(start(&cfg, NoTls)).await,
            Some(tls) => {
                let tls = tokio_postgres_rustls::MakeRustlsConnect::new((**tls).clone());
                self.bounded(start(&cfg, tls)).await
            }
        };
        match started {
            Some(Ok(client)) => Ok(client),
            Some(Err(e)) => Err(pg_error(self, action, &e)),
            None => Err(self.timed_out(action)),
        }
    }

    /// `fut` within the request timeout, `None` when it ran out.
    pub async fn bounded<T>(&self, fut: impl Future<Output = T>) -> Option<T> {
        tokio::time::timeout(self.timeout, fut).await.ok()
    }

    /// A read (a query that changes nothing) within the request timeout.
    pub async fn read<T>(
        &self,
        action: &str,
        fut: impl Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> Result<T, Error> {
        match self.bounded(fut).await {
            Some(Ok(v)) => Ok(v),
            Some(Err(e)) => Err(pg_error(self, action, &e)),
            None => Err(self.timed_out(action)),
        }
    }

    pub fn timed_out(&self, action: &str) -> Error {
        Error::new(
            Kind::Timeout,
            format!(
                "{action}: no answer from {} within {}",
                self.endpoint.address(),
                tflock_core::duration::human(self.timeout)
            ),
        )
        .at(&self.target)
        .with_hint("check the host and port and the network, or raise --request-timeout")
    }
}

/// Connects and runs the connection in the background; the session ends when the
/// returned client is dropped.
async fn start<T>(cfg: &Config, tls: T) -> Result<Client, tokio_postgres::Error>
where
    T: MakeTlsConnect<Socket>,
    T::Stream: Send + 'static,
{
    let (client, connection) = cfg.connect(tls).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}
