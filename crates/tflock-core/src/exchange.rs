//! The reqwest client of the backends that speak HTTP APIs (consul, kubernetes, http,
//! gcs), and one HTTP exchange, bounded as a whole. Sent once: a destructive request is
//! never retried.

use std::time::Duration;

/// A client builder with what every HTTP backend wants: `timeout` for connecting and for
/// each request, no redirect followed (a lock request goes where it was sent, once), and
/// tflock's user agent. When no endpoint is `https`, no certificate is loaded: nothing is
/// verified over plain http, and the platform verifier would read every system
/// certificate when the client is built (an emulator or a local agent pays that at every
/// start). A backend adds its own CA, client identity or proxy on top.
pub fn client_builder(timeout: Duration, https: bool) -> reqwest::ClientBuilder {
    let builder = reqwest::Client::builder()
        .connect_timeout(timeout)
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("tflock/", env!("CARGO_PKG_VERSION")));
    if https {
        builder
    } else {
        builder.tls_certs_only(Vec::new())
    }
}

/// One HTTP answer, body read in full.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Why an exchange has no [`Reply`].
#[derive(Debug)]
pub enum NoReply {
    /// Connecting, sending or reading failed (or the client's own timeout fired).
    Transport(reqwest::Error),
    /// The whole exchange took longer than its limit.
    TimedOut,
}

/// Sends `req` and reads the whole body. The client's timeout covers connect, send and
/// the body; `timeout` (plus a grace of 250 ms, so the client's own error wins when it
/// fires) also covers a server that trickles bytes forever.
pub async fn exchange(req: reqwest::RequestBuilder, timeout: Duration) -> Result<Reply, NoReply> {
    let whole = async {
        let res = req.send().await?;
        let status = res.status().as_u16();
        let body = res.bytes().await?.to_vec();
        Ok::<_, reqwest::Error>(Reply { status, body })
    };
    match tokio::time::timeout(timeout + Duration::from_millis(250), whole).await {
        Ok(Ok(reply)) => Ok(reply),
        Ok(Err(e)) => Err(NoReply::Transport(e)),
        Err(_) => Err(NoReply::TimedOut),
    }
}
