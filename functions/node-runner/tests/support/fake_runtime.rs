//! A tiny fake of the Lambda Runtime API (HTTP/1.1 on 127.0.0.1) for the runtime-loop test
//! and the cold-start harness: serves queued invocations on
//! `GET /2018-06-01/runtime/invocation/next` and records what the function posts to
//! `…/invocation/{id}/response` and `…/invocation/{id}/error`.

use serde_json::Value;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, mpsc};

/// What the function posted for one invocation.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The invocation's request id.
    pub request_id: String,
    /// `true` for `/response`, `false` for `/error`.
    pub ok: bool,
    /// The posted body (JSON).
    pub body: Value,
    /// The posted headers, names lowercased.
    pub headers: Vec<(String, String)>,
    /// When the post was fully received.
    pub at: Instant,
}

/// A running fake Runtime API.
pub struct FakeRuntime {
    /// Where it listens (`AWS_LAMBDA_RUNTIME_API` is `addr` as `host:port`).
    pub addr: SocketAddr,
    queue: mpsc::UnboundedSender<(String, Value)>,
    outcomes: mpsc::UnboundedReceiver<Outcome>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeRuntime {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// The function ARN the fake hands out.
pub const FUNCTION_ARN: &str = "arn:aws:lambda:eu-west-1:123456789012:function:node-runner";

impl FakeRuntime {
    /// Starts listening on a free port of 127.0.0.1.
    pub async fn start() -> std::io::Result<FakeRuntime> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (queue, pending) = mpsc::unbounded_channel::<(String, Value)>();
        let (report, outcomes) = mpsc::unbounded_channel::<Outcome>();
        let pending = Arc::new(Mutex::new(pending));
        let server = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                let pending = pending.clone();
                let report = report.clone();
                tokio::spawn(async move {
                    let _ = connection(stream, pending, report).await;
                });
            }
        });
        Ok(FakeRuntime {
            addr,
            queue,
            outcomes,
            server,
        })
    }

    /// Queues an invocation; the function receives it on its next poll.
    pub fn invoke(&self, request_id: &str, payload: Value) {
        let _ = self.queue.send((request_id.to_owned(), payload));
    }

    /// The next outcome the function posted, or `None` after `wait`.
    pub async fn outcome(&mut self, wait: Duration) -> Option<Outcome> {
        tokio::time::timeout(wait, self.outcomes.recv())
            .await
            .ok()
            .flatten()
    }

    /// The environment the Lambda service gives a function using this API.
    pub fn lambda_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_LAMBDA_RUNTIME_API", self.addr.to_string()),
            ("AWS_LAMBDA_FUNCTION_NAME", "node-runner".into()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".into()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
            (
                "AWS_LAMBDA_LOG_STREAM_NAME",
                "2026/11/25/[$LATEST]0123456789abcdef".into(),
            ),
            (
                "AWS_LAMBDA_LOG_GROUP_NAME",
                "/aws/lambda/node-runner".into(),
            ),
        ]
    }
}

struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// Serves one keep-alive connection until the client closes it.
async fn connection(
    mut stream: TcpStream,
    pending: Arc<Mutex<mpsc::UnboundedReceiver<(String, Value)>>>,
    report: mpsc::UnboundedSender<Outcome>,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    while let Some(req) = read_request(&mut stream, &mut buf).await? {
        let (status, extra, body) =
            if req.method == "GET" && req.path == "/2018-06-01/runtime/invocation/next" {
                // One poller at a time; with nothing queued the poll stays open.
                let next = pending.lock().await.recv().await;
                let Some((id, payload)) = next else {
                    return Ok(());
                };
                let deadline = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis())
                    + 60_000;
                let headers = vec![
                ("Lambda-Runtime-Aws-Request-Id", id),
                ("Lambda-Runtime-Deadline-Ms", deadline.to_string()),
                ("Lambda-Runtime-Invoked-Function-Arn", FUNCTION_ARN.to_owned()),
                (
                    "Lambda-Runtime-Trace-Id",
                    "Root=1-5f84c7a9-0123456789abcdef01234567;Parent=0123456789abcdef;Sampled=0"
                        .to_owned(),
                ),
            ];
                (200, headers, payload.to_string())
            } else if req.method == "POST"
                && let Some(rest) = req.path.strip_prefix("/2018-06-01/runtime/invocation/")
                && let Some((id, kind)) = rest.split_once('/')
                && (kind == "response" || kind == "error")
            {
                let body = serde_json::from_slice(&req.body).unwrap_or_else(|_| {
                    Value::String(String::from_utf8_lossy(&req.body).into_owned())
                });
                let _ = report.send(Outcome {
                    request_id: id.to_owned(),
                    ok: kind == "response",
                    body,
                    headers: req.headers,
                    at: Instant::now(),
                });
                (202, vec![], r#"{"status":"OK"}"#.to_owned())
            } else {
                (
                    404,
                    vec![],
                    format!(
                        r#"{{"errorMessage":"no route {} {}"}}"#,
                        req.method, req.path
                    ),
                )
            };
        let mut head = format!(
            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (k, v) in extra {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        head.push_str(&body);
        stream.write_all(head.as_bytes()).await?;
    }
    Ok(())
}

/// Reads one request (`Content-Length` or chunked body); `None` when the client closed.
async fn read_request(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
) -> std::io::Result<Option<Request>> {
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if !fill(stream, buf).await? {
            return Ok(None);
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    buf.drain(..head_end);
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or_default().split(' ');
    let method = first.next().unwrap_or_default().to_owned();
    let path = first.next().unwrap_or_default().to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let body = if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        let mut body = Vec::new();
        loop {
            let line_end = loop {
                if let Some(i) = buf.windows(2).position(|w| w == b"\r\n") {
                    break i;
                }
                if !fill(stream, buf).await? {
                    return Ok(None);
                }
            };
            let size_text = String::from_utf8_lossy(&buf[..line_end]).into_owned();
            let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("0").trim(), 16)
                .unwrap_or(0);
            buf.drain(..line_end + 2);
            if size == 0 {
                // Trailers until an empty line.
                loop {
                    if let Some(i) = buf.windows(2).position(|w| w == b"\r\n") {
                        buf.drain(..i + 2);
                        if i == 0 {
                            break;
                        }
                        continue;
                    }
                    if !fill(stream, buf).await? {
                        return Ok(None);
                    }
                }
                break;
            }
            while buf.len() < size + 2 {
                if !fill(stream, buf).await? {
                    return Ok(None);
                }
            }
            body.extend_from_slice(&buf[..size]);
            buf.drain(..size + 2);
        }
        body
    } else {
        let length: usize = header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        while buf.len() < length {
            if !fill(stream, buf).await? {
                return Ok(None);
            }
        }
        buf.drain(..length).collect()
    };
    Ok(Some(Request {
        method,
        path,
        headers,
        body,
    }))
}

/// Reads more bytes into `buf`; `false` at end of stream.
async fn fill(stream: &mut (impl AsyncRead + Unpin), buf: &mut Vec<u8>) -> std::io::Result<bool> {
    let mut chunk = [0u8; 16 * 1024];
    let n = stream.read(&mut chunk).await?;
    buf.extend_from_slice(&chunk[..n]);
    Ok(n > 0)
}
