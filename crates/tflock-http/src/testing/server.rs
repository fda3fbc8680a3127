//! A small HTTP/1.1 server on a loopback port for the fakes: keep-alive, Content-Length
//! and chunked request bodies, one handler for every request, and a log of what came.

use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A request as it arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// The path as sent (still percent-encoded).
    pub path: String,
    /// The raw query string, without `?` (empty when none).
    pub query: String,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Decoded query items (`+` is a space, as Rack reads them).
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(self.query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    pub fn query_param(&self, key: &str) -> Option<String> {
        self.query_pairs()
            .into_iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }
}

/// An answer.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub content_type: Option<&'static str>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json(status: u16, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            content_type: Some("application/json"),
            body: body.into(),
        }
    }
    pub fn empty(status: u16) -> Response {
        Response {
            status,
            content_type: None,
            body: Vec::new(),
        }
    }
}

pub(crate) type Handler = dyn Fn(&Request) -> Response + Send + Sync;

/// A running server; stops when dropped.
pub(crate) struct Server {
    pub url: String,
    pub log: Arc<Mutex<Vec<Request>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Server {
    /// Binds a free loopback port and serves on a thread of its own (its own runtime),
    /// so sync tests and any async runtime can use it alike.
    pub fn start(handler: Arc<Handler>) -> Server {
        let std_listener =
            std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port for the fake");
        std_listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let url = format!(
            "http://{}",
            std_listener.local_addr().expect("local address")
        );
        let log: Arc<Mutex<Vec<Request>>> = Arc::default();
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let thread_log = log.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("a runtime for the fake");
            rt.block_on(async move {
                let listener = TcpListener::from_std(std_listener).expect("tokio listener");
                loop {
                    tokio::select! {
                        _ = &mut stopped => break,
                        accepted = listener.accept() => {
                            let Ok((conn, _)) = accepted else { continue };
                            let (h, l) = (handler.clone(), thread_log.clone());
                            tokio::spawn(async move {
                                let _ = serve(conn, &*h, &l).await;
                            });
                        }
                    }
                }
            });
            rt.shutdown_background();
        });
        Server {
            url,
            log,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Request> {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Forgets the requests so far.
    pub fn clear_requests(&self) {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Reads `n` more bytes into `buf` beyond `have`, from what is buffered first.
async fn fill(conn: &mut TcpStream, buf: &mut Vec<u8>, need: usize) -> std::io::Result<()> {
    let mut chunk = [0u8; 16 * 1024];
    while buf.len() < need {
        let n = conn.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(())
}

/// Decodes a chunked body at the start of `buf`, reading more as needed. Returns the
/// body and how many bytes of `buf` it used.
async fn chunked(conn: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<(Vec<u8>, usize)> {
    let mut body = Vec::new();
    let mut at = 0;
    loop {
        let line_end = loop {
            if let Some(i) = find(&buf[at..], b"\r\n") {
                break at + i;
            }
            let need = buf.len() + 1;
            fill(conn, buf, need).await?;
        };
        let size_text = String::from_utf8_lossy(&buf[at..line_end]).into_owned();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| std::io::Error::other("bad chunk size"))?;
        at = line_end + 2;
        if size == 0 {
            // Trailers end with an empty line.
            loop {
                if let Some(i) = find(&buf[at..], b"\r\n") {
                    let empty = i == 0;
                    at += i + 2;
                    if empty {
                        return Ok((body, at));
                    }
                } else {
                    let need = buf.len() + 1;
                    fill(conn, buf, need).await?;
                }
            }
        }
        fill(conn, buf, at + size + 2).await?;
        body.extend_from_slice(&buf[at..at + size]);
        at += size + 2;
    }
}

async fn serve(
    mut conn: TcpStream,
    handler: &Handler,
    log: &Mutex<Vec<Request>>,
) -> std::io::Result<()> {
    let mut buf: Vec<u8> = Vec::new();
    loop {
        let head_end = loop {
            if let Some(i) = find(&buf, b"\r\n\r\n") {
                break i + 4;
            }
            if buf.len() > 64 * 1024 {
                return Ok(());
            }
            let mut chunk = [0u8; 16 * 1024];
            let n = conn.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let mut first = lines.next().unwrap_or_default().split(' ');
        let method = first.next().unwrap_or_default().to_string();
        let target = first.next().unwrap_or_default().to_string();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let header = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        buf.drain(..head_end);
        let body = if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
        {
            let (body, used) = chunked(&mut conn, &mut buf).await?;
            buf.drain(..used);
            body
        } else {
            let len = header("content-length")
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0);
            fill(&mut conn, &mut buf, len).await?;
            buf.drain(..len).collect()
        };
        let close = header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p.to_string(), q.to_string()),
            None => (target.clone(), String::new()),
        };
        let request = Request {
            method,
            path,
            query,
            headers,
            body,
        };
        log.lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(request.clone());
        let response = handler(&request);
        let reason = match response.status {
            200 => "OK",
            204 => "No Content",
            400 => "Bad Request",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "Not Found",
            405 => "Method Not Allowed",
            409 => "Conflict",
            422 => "Unprocessable Entity",
            423 => "Locked",
            500 => "Internal Server Error",
            _ => "Status",
        };
        let mut out = format!("HTTP/1.1 {} {reason}\r\n", response.status);
        if let Some(ct) = response.content_type {
            out.push_str(&format!("Content-Type: {ct}\r\n"));
        }
        if response.status != 204 {
            out.push_str(&format!("Content-Length: {}\r\n", response.body.len()));
        }
        if close {
            out.push_str("Connection: close\r\n");
        }
        out.push_str("\r\n");
        conn.write_all(out.as_bytes()).await?;
        if response.status != 204 {
            conn.write_all(&response.body).await?;
        }
        conn.flush().await?;
        if close {
            return Ok(());
        }
    }
}
