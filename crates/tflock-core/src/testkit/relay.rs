//! A loopback HTTP/1.1 relay in front of an emulator, for fault tests every HTTP backend
//! shares: it records each request, and can lose the reply of a request (after or
//! instead of forwarding it), answer it itself, or strip headers (a store that ignores a
//! precondition). One request per connection (`Connection: close` both ways), which every
//! HTTP client handles and which keeps the framing simple.
//!
//! Also: [`closed_port`] (nothing listens) and [`silent_endpoint`] (accepts, never answers).

use super::wire::{listen, read_message, request_line_and_headers, serve_each, Task};
use std::sync::{Arc, Mutex};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// A request as the relay saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub method: String,
    /// Path and query.
    pub target: String,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    /// Anything but GET and HEAD, and but the read actions of a service that POSTs every
    /// call (DynamoDB: `X-Amz-Target: DynamoDB_20120810.GetItem`).
    pub fn is_write(&self) -> bool {
        const READS: [&str; 6] = [
            "GetItem",
            "BatchGetItem",
            "Query",
            "Scan",
            "DescribeTable",
            "ListTables",
        ];
        let read_action = self
            .header("x-amz-target")
            .and_then(|t| t.rsplit('.').next())
            .is_some_and(|action| READS.contains(&action));
        !matches!(self.method.as_str(), "GET" | "HEAD") && !read_action
    }
}

/// What the relay does with one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Forward it and return the answer.
    Forward,
    /// Forward it without these headers (lower-case names).
    ForwardWithout(Vec<String>),
    /// Forward it, wait for the answer, and close the client's connection without it:
    /// the request was applied and its reply lost.
    LoseReply,
    /// Close the client's connection without forwarding: never applied, no reply.
    Drop,
    /// Answer with this status and body; the emulator never sees the request.
    Answer(u16, String),
}

type Rule = dyn Fn(&Seen) -> Verdict + Send + Sync;

/// A running relay; stops when dropped.
pub struct Relay {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    rule: Arc<Mutex<Arc<Rule>>>,
    _task: Task,
}

impl Relay {
    /// Starts a relay to `upstream` (`http://127.0.0.1:PORT`) that forwards everything.
    pub async fn start(upstream: &str) -> Relay {
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .split('/')
            .next()
            .unwrap_or_default()
            .to_string();
        let (listener, url) = listen("the relay").await;
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let rule: Arc<Mutex<Arc<Rule>>> =
            Arc::new(Mutex::new(Arc::new(|_: &Seen| Verdict::Forward)));
        let (s, r) = (seen.clone(), rule.clone());
        let task = serve_each(listener, move |conn| {
            let (s, r, up) = (s.clone(), r.clone(), upstream.clone());
            async move {
                let _ = serve(conn, &up, &s, &r).await;
            }
        });
        Relay {
            url,
            seen,
            rule,
            _task: task,
        }
    }

    /// Replaces the rule deciding what happens to each request from now on.
    pub fn set_rule(&self, rule: impl Fn(&Seen) -> Verdict + Send + Sync + 'static) {
        *self.rule.lock().unwrap_or_else(|p| p.into_inner()) = Arc::new(rule);
    }

    /// The first write request (not GET/HEAD) from now on gets `verdict`; the rest are
    /// forwarded.
    pub fn next_write(&self, verdict: Verdict) {
        let once = Mutex::new(Some(verdict));
        self.set_rule(move |seen| {
            if seen.is_write() {
                if let Some(v) = once.lock().unwrap_or_else(|p| p.into_inner()).take() {
                    return v;
                }
            }
            Verdict::Forward
        });
    }

    /// Every request seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Forgets the requests seen so far.
    pub fn clear(&self) {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

/// A loopback port nothing listens on: connections are refused at once.
pub fn closed_port() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let addr = l.local_addr().expect("local addr");
    drop(l);
    format!("http://{addr}")
}

/// A loopback endpoint that accepts connections and never answers; stops when dropped.
pub struct Silent {
    pub url: String,
    _task: Task,
}

pub async fn silent_endpoint() -> Silent {
    let (listener, url) = listen("the silent endpoint").await;
    let task = Task::spawn(async move {
        let mut held = Vec::new();
        while let Ok((conn, _)) = listener.accept().await {
            held.push(conn);
        }
    });
    Silent { url, _task: task }
}

/// The head with `Connection: close` and without `drop` headers.
fn rewrite_head(head: &str, drop: &[String]) -> String {
    let mut out = String::new();
    for (i, line) in head.split("\r\n").enumerate() {
        if line.is_empty() {
            continue;
        }
        if i > 0 {
            let name = line
                .split(':')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            if name == "connection" || drop.contains(&name) {
                continue;
            }
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str("Connection: close\r\n\r\n");
    out
}

async fn serve(
    mut client: TcpStream,
    upstream: &str,
    seen: &Mutex<Vec<Seen>>,
    rule: &Mutex<Arc<Rule>>,
) -> std::io::Result<()> {
    let (head, body) = read_message(&mut client, false).await?;
    let (method, target, headers) = request_line_and_headers(&head);
    let request = Seen {
        method,
        target,
        headers,
    };
    seen.lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(request.clone());
    let verdict = {
        let rule = rule.lock().unwrap_or_else(|p| p.into_inner()).clone();
        rule(&request)
    };
    let drop_headers = match &verdict {
        Verdict::Drop => return Ok(()),
        Verdict::Answer(status, text) => {
            let reply = format!(
                "HTTP/1.1 {status} Relay\r\nContent-Length: {}\r\nContent-Type: application/xml\r\nConnection: close\r\n\r\n{text}",
                text.len()
            );
            return client.write_all(reply.as_bytes()).await;
        }
        Verdict::ForwardWithout(h) => h.clone(),
        Verdict::Forward | Verdict::LoseReply => Vec::new(),
    };
    let mut up = TcpStream::connect(upstream).await?;
    up.write_all(rewrite_head(&head, &drop_headers).as_bytes())
        .await?;
    up.write_all(&body).await?;
    let (rhead, rbody) = read_message(&mut up, true).await?;
    if verdict == Verdict::LoseReply {
        return Ok(());
    }
    client
        .write_all(rewrite_head(&rhead, &[]).as_bytes())
        .await?;
    client.write_all(&rbody).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dynamodb_reads_are_not_writes() {
        let seen = |method: &str, target: Option<&str>| Seen {
            method: method.into(),
            target: "/".into(),
            headers: target
                .map(|t| vec![("x-amz-target".to_string(), t.to_string())])
                .unwrap_or_default(),
        };
        assert!(!seen("GET", None).is_write());
        assert!(!seen("HEAD", None).is_write());
        assert!(seen("DELETE", None).is_write());
        assert!(seen("POST", None).is_write());
        assert!(!seen("POST", Some("DynamoDB_20120810.GetItem")).is_write());
        assert!(!seen("POST", Some("DynamoDB_20120810.BatchGetItem")).is_write());
        assert!(seen("POST", Some("DynamoDB_20120810.DeleteItem")).is_write());
        assert!(seen("POST", Some("DynamoDB_20120810.PutItem")).is_write());
    }
}
