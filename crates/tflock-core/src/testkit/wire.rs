//! What the [`relay`](super::relay) and the [`http`](super::http) fake share: a loopback
//! listener that serves each connection in its own task, and HTTP/1.1 message framing.

use std::future::Future;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A background task that stops when dropped, so a test's server ends with the test.
pub(crate) struct Task(JoinHandle<()>);

impl Task {
    pub(crate) fn spawn(work: impl Future<Output = ()> + Send + 'static) -> Task {
        Task(tokio::spawn(work))
    }
}

impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A listener on a free loopback port and its URL (`http://127.0.0.1:PORT`); `what` names
/// the server in the panic if no port can be bound.
pub(crate) async fn listen(what: &str) -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind a loopback port for {what}: {e}"));
    let addr = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("local addr of {what}: {e}"));
    (listener, format!("http://{addr}"))
}

/// Accepts connections until dropped and serves each in a task of its own, so a client
/// that never finishes its request holds up no other.
pub(crate) fn serve_each<F, Fut>(listener: TcpListener, serve: F) -> Task
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    Task::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            tokio::spawn(serve(conn));
        }
    })
}

pub(crate) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Reads one HTTP message head (up to the blank line) and its body, by Content-Length or
/// chunked framing, or to EOF for a response without either.
pub(crate) async fn read_message(
    conn: &mut TcpStream,
    is_response: bool,
) -> std::io::Result<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i + 4;
        }
        let n = conn.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut body = buf[head_end..].to_vec();
    let header = |name: &str| {
        head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    };
    if let Some(len) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        while body.len() < len {
            let n = conn.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    } else if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        while find(&body, b"0\r\n\r\n").is_none() {
            let n = conn.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    } else if is_response {
        let no_body = head.starts_with("HTTP/1.1 204") || head.starts_with("HTTP/1.1 304");
        if !no_body {
            conn.read_to_end(&mut body).await?;
        }
    }
    Ok((head, body))
}

/// A request head's method, target (path and query) and headers (names lower-cased).
pub(crate) fn request_line_and_headers(head: &str) -> (String, String, Vec<(String, String)>) {
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or_default().split(' ');
    let method = first.next().unwrap_or_default().to_string();
    let target = first.next().unwrap_or_default().to_string();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (method, target, headers)
}
