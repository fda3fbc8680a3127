//! A loopback HTTP/1.1 server for in-repo fakes of services no emulator exists for
//! (a Kubernetes API server, a Consul agent): the fake is a function from [`Request`] to
//! [`Response`]; this module does the framing. One request per connection
//! (`Connection: close`), as the [`relay`](super::relay) does.

use super::wire::{listen, read_message, request_line_and_headers, serve_each, Task};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// One request, as the fake sees it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// The path, percent-decoded, without the query.
    pub path: String,
    /// The raw path as sent (still percent-encoded), without the query.
    pub raw_path: String,
    /// Query parameters, decoded; a key without `=` has an empty value.
    pub query: BTreeMap<String, String>,
    /// Header names lower-cased.
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
    pub fn param(&self, key: &str) -> Option<&str> {
        self.query.get(key).map(String::as_str)
    }
    pub fn has_param(&self, key: &str) -> bool {
        self.query.contains_key(key)
    }
}

/// One answer.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }
    /// A JSON answer (`Content-Type: application/json`).
    pub fn json(status: u16, value: &serde_json::Value) -> Response {
        Response::new(status, value.to_string()).with_header("Content-Type", "application/json")
    }
    pub fn with_header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
}

type Handler = dyn Fn(Request) -> Pin<Box<dyn Future<Output = Response> + Send>> + Send + Sync;

/// A running fake; stops when dropped.
pub struct Server {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    _task: Task,
}

impl Server {
    /// Serves `handler` on a free loopback port.
    pub async fn start<F, Fut>(handler: F) -> Server
    where
        F: Fn(Request) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response> + Send + 'static,
    {
        let handler: Arc<Handler> = Arc::new(move |r| Box::pin(handler(r)));
        let (listener, url) = listen("the fake").await;
        let task = serve_each(listener, move |conn| {
            let handler = handler.clone();
            async move {
                let _ = serve(conn, handler).await;
            }
        });
        Server { url, _task: task }
    }
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

async fn serve(mut conn: TcpStream, handler: Arc<Handler>) -> std::io::Result<()> {
    let (head, body) = read_message(&mut conn, false).await?;
    let (method, target, headers) = request_line_and_headers(&head);
    let (raw_path, raw_query) = target.split_once('?').unwrap_or((&target, ""));
    let query = raw_query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect();
    let request = Request {
        method,
        path: percent_encoding::percent_decode_str(raw_path)
            .decode_utf8_lossy()
            .into_owned(),
        raw_path: raw_path.to_string(),
        query,
        headers: headers.into_iter().collect(),
        body,
    };
    let response = handler(request).await;
    let reason = match response.status {
        200 => "OK",
        201 => "Created",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        409 => "Conflict",
        412 => "Precondition Failed",
        422 => "Unprocessable Entity",
        500 => "Internal Server Error",
        _ => "Status",
    };
    let mut out = format!("HTTP/1.1 {} {reason}\r\n", response.status);
    for (k, v) in &response.headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        response.body.len()
    ));
    conn.write_all(out.as_bytes()).await?;
    conn.write_all(&response.body).await?;
    conn.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn serves_requests_with_decoded_path_query_and_body() {
        let server = Server::start(|r: Request| async move {
            Response::json(
                201,
                &serde_json::json!({
                    "method": r.method, "path": r.path, "raw": r.raw_path,
                    "q": r.param("a"), "flag": r.has_param("recurse"),
                    "auth": r.header("Authorization"),
                    "body": String::from_utf8_lossy(&r.body),
                }),
            )
        })
        .await;
        let addr = server.url.trim_start_matches("http://").to_string();
        let mut conn = TcpStream::connect(&addr).await.unwrap();
        let body = "hello";
        let req = format!(
            "PUT /v1/kv/a%2Fb/-env%3Adev?a=x%20y&recurse HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer t\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        conn.write_all(req.as_bytes()).await.unwrap();
        let mut out = String::new();
        conn.read_to_string(&mut out).await.unwrap();
        assert!(out.starts_with("HTTP/1.1 201 Created\r\n"), "{out}");
        let json: serde_json::Value =
            serde_json::from_str(out.split("\r\n\r\n").nth(1).unwrap()).unwrap();
        assert_eq!(json["method"], "PUT");
        assert_eq!(json["path"], "/v1/kv/a/b/-env:dev");
        assert_eq!(json["raw"], "/v1/kv/a%2Fb/-env%3Adev");
        assert_eq!(json["q"], "x y");
        assert_eq!(json["flag"], true);
        assert_eq!(json["auth"], "Bearer t");
        assert_eq!(json["body"], "hello");
    }
}
