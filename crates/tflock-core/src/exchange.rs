//! One HTTP exchange, bounded as a whole, for the backends that speak HTTP APIs with
//! reqwest (consul, kubernetes). Sent once: a destructive request is never retried.

use std::time::Duration;

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
