//! A loopback relay that speaks enough of the PostgreSQL protocol (v3 framing) to fail
//! like a real network would around tflock's break: it forwards every message, answers
//! `N` to TLS requests itself (so, to the client, it is a server without TLS), counts the
//! statements that call `pg_terminate_backend`, and for the next one can
//! - `LoseReply`: forward it, let the server run it, and close the client's connection
//!   without the answer (applied, reply lost);
//! - `Drop`: close the client's connection without forwarding it (never applied).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    None,
    LoseReply,
    Drop,
}

struct Inner {
    upstream: String,
    fault: Mutex<Fault>,
    terminates: AtomicUsize,
    tls_refused: AtomicUsize,
}

pub struct PgRelay {
    /// `http://127.0.0.1:PORT`, the form the conformance suite hands out.
    pub url: String,
    /// `127.0.0.1:PORT`
    pub addr: String,
    inner: Arc<Inner>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for PgRelay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

const SSL_REQUEST: u32 = 80_877_103;
const GSSENC_REQUEST: u32 = 80_877_104;

impl PgRelay {
    /// A relay to `upstream` (`127.0.0.1:PORT`).
    pub async fn start(upstream: &str) -> PgRelay {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind relay");
        let addr = listener.local_addr().expect("addr").to_string();
        let inner = Arc::new(Inner {
            upstream: upstream.to_string(),
            fault: Mutex::new(Fault::None),
            terminates: AtomicUsize::new(0),
            tls_refused: AtomicUsize::new(0),
        });
        let i = inner.clone();
        let task = tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let i = i.clone();
                tokio::spawn(async move {
                    let _ = serve(conn, i).await;
                });
            }
        });
        PgRelay {
            url: format!("http://{addr}"),
            addr,
            inner,
            task,
        }
    }

    /// What happens to the next statement that calls `pg_terminate_backend`.
    pub fn next_terminate(&self, fault: Fault) {
        *self.inner.fault.lock().unwrap() = fault;
    }

    /// How many statements calling `pg_terminate_backend` reached the relay.
    pub fn terminates_seen(&self) -> usize {
        self.inner.terminates.load(Ordering::SeqCst)
    }

    /// How many TLS requests it answered with `N`.
    pub fn tls_refused(&self) -> usize {
        self.inner.tls_refused.load(Ordering::SeqCst)
    }
}

/// One protocol message: type byte, length, body.
async fn read_message<R: AsyncRead + Unpin>(r: &mut R) -> std::io::Result<Vec<u8>> {
    let mut head = [0u8; 5];
    r.read_exact(&mut head).await?;
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    if !(4..=64 << 20).contains(&len) {
        return Err(std::io::ErrorKind::InvalidData.into());
    }
    let mut msg = head.to_vec();
    msg.resize(1 + len, 0);
    r.read_exact(&mut msg[5..]).await?;
    Ok(msg)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

async fn serve(client: TcpStream, inner: Arc<Inner>) -> std::io::Result<()> {
    let (mut cr, mut cw) = client.into_split();
    // The untyped startup packets: answer TLS / GSS requests, forward the startup.
    let startup = loop {
        let mut len = [0u8; 4];
        cr.read_exact(&mut len).await?;
        let n = u32::from_be_bytes(len) as usize;
        if !(8..=10_000).contains(&n) {
            return Ok(());
        }
        let mut body = vec![0u8; n - 4];
        cr.read_exact(&mut body).await?;
        let code = u32::from_be_bytes([body[0], body[1], body[2], body[3]]);
        if code == SSL_REQUEST || code == GSSENC_REQUEST {
            inner.tls_refused.fetch_add(1, Ordering::SeqCst);
            cw.write_all(b"N").await?;
            continue;
        }
        let mut packet = len.to_vec();
        packet.extend_from_slice(&body);
        break packet;
    };
    let upstream = TcpStream::connect(&inner.upstream).await?;
    let (mut ur, mut uw) = upstream.into_split();
    uw.write_all(&startup).await?;

    let lose = Arc::new(AtomicBool::new(false));
    let lose_down = lose.clone();
    let down = tokio::spawn(async move {
        loop {
            let Ok(msg) = read_message(&mut ur).await else {
                let _ = cw.shutdown().await;
                return;
            };
            if lose_down.load(Ordering::SeqCst) {
                // The server finished the statement (ReadyForQuery): cut the client off
                // without any of its answer.
                if msg[0] == b'Z' {
                    let _ = cw.shutdown().await;
                    return;
                }
                continue;
            }
            if cw.write_all(&msg).await.is_err() {
                return;
            }
        }
    });

    let mut armed = false;
    loop {
        let Ok(msg) = read_message(&mut cr).await else {
            break;
        };
        if msg[0] == b'P' && contains(&msg, b"pg_terminate_backend") {
            inner.terminates.fetch_add(1, Ordering::SeqCst);
            armed = true;
        }
        // Bind starts the execution of the parsed statement.
        if armed && msg[0] == b'B' {
            armed = false;
            let fault = std::mem::replace(&mut *inner.fault.lock().unwrap(), Fault::None);
            match fault {
                Fault::Drop => {
                    down.abort();
                    return Ok(());
                }
                Fault::LoseReply => lose.store(true, Ordering::SeqCst),
                Fault::None => {}
            }
        }
        if uw.write_all(&msg).await.is_err() {
            break;
        }
    }
    let _ = down.await;
    Ok(())
}
