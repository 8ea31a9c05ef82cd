//! A tiny scripted HTTP/1.1 server for the `action.http` tests: binds `127.0.0.1:0`, answers
//! each path with a scripted sequence of behaviours (the last one repeats) and records every
//! request. One request per connection (`Connection: close`).

#![allow(dead_code, clippy::unwrap_used)]

use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A scripted answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Omit `Content-Length` (the body ends when the connection closes).
    pub no_length: bool,
}

impl Reply {
    pub fn new(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            no_length: false,
        }
    }

    pub fn json(status: u16, v: Value) -> Reply {
        Reply::new(status)
            .header("Content-Type", "application/json")
            .body(v.to_string())
    }

    pub fn text(status: u16, s: &str) -> Reply {
        Reply::new(status)
            .header("Content-Type", "text/plain")
            .body(s)
    }

    pub fn redirect(status: u16, location: &str) -> Reply {
        Reply::new(status).header("Location", location)
    }

    pub fn header(mut self, k: &str, v: &str) -> Reply {
        self.headers.push((k.into(), v.into()));
        self
    }

    pub fn body(mut self, b: impl Into<Vec<u8>>) -> Reply {
        self.body = b.into();
        self
    }

    pub fn without_length(mut self) -> Reply {
        self.no_length = true;
        self
    }
}

/// What the server does for a request.
#[derive(Debug, Clone)]
pub enum Behavior {
    /// Answers with a fixed reply.
    Reply(Reply),
    /// Answers `status` with the request as JSON: `{method, path, headers, body}`.
    Echo(u16),
    /// Never answers (keeps the connection open).
    Hang,
}

/// A recorded request.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// Path and query.
    pub target: String,
    /// Lowercase names.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or_default()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn to_json(&self) -> Value {
        let headers: serde_json::Map<String, Value> = self
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        json!({"method": self.method, "path": self.target, "headers": headers, "body": self.body_text()})
    }
}

type Routes = Arc<Mutex<HashMap<String, VecDeque<Behavior>>>>;

/// The server; stops accepting when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    routes: Routes,
    requests: Arc<Mutex<Vec<Recorded>>>,
    task: JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestServer {
    pub async fn start() -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let routes: Routes = Arc::default();
        let requests: Arc<Mutex<Vec<Recorded>>> = Arc::default();
        let (r, q) = (routes.clone(), requests.clone());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, r.clone(), q.clone()));
            }
        });
        TestServer {
            addr,
            routes,
            requests,
            task,
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `http://127.0.0.1:PORT<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Scripts `path` (without query): each request takes the next behaviour; the last
    /// repeats.
    pub fn route(&self, path: &str, behaviors: Vec<Behavior>) {
        self.routes
            .lock()
            .unwrap()
            .insert(path.into(), behaviors.into());
    }

    /// Scripts `path` with one reply, always.
    pub fn reply(&self, path: &str, reply: Reply) {
        self.route(path, vec![Behavior::Reply(reply)]);
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    /// Requests to `path` (without query).
    pub fn hits(&self, path: &str) -> usize {
        self.requests().iter().filter(|r| r.path() == path).count()
    }

    pub fn last(&self) -> Recorded {
        self.requests().last().cloned().unwrap()
    }
}

async fn serve(mut stream: TcpStream, routes: Routes, requests: Arc<Mutex<Vec<Recorded>>>) {
    let Some(request) = read_request(&mut stream).await else {
        return;
    };
    requests.lock().unwrap().push(request.clone());
    let behavior = {
        let mut routes = routes.lock().unwrap();
        match routes.get_mut(request.path()) {
            Some(q) if q.len() > 1 => q.pop_front(),
            Some(q) => q.front().cloned(),
            None => None,
        }
    };
    let reply = match behavior {
        None => Reply::text(404, "no such route"),
        Some(Behavior::Reply(r)) => r,
        Some(Behavior::Echo(status)) => Reply::json(status, request.to_json()),
        Some(Behavior::Hang) => {
            tokio::time::sleep(Duration::from_secs(120)).await;
            return;
        }
    };
    let mut head = format!(
        "HTTP/1.1 {} Scripted\r\nConnection: close\r\n",
        reply.status
    );
    for (k, v) in &reply.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !reply.no_length {
        head.push_str(&format!("Content-Length: {}\r\n", reply.body.len()));
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes()).await;
    if request.method != "HEAD" {
        let _ = stream.write_all(&reply.body).await;
    }
    let _ = stream.shutdown().await;
}

async fn read_request(stream: &mut TcpStream) -> Option<Recorded> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_owned();
    let target = first.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Recorded {
        method,
        target,
        headers,
        body,
    })
}
