//! `concertmaster dev` as users run it: starts, prints its URL and a token, serves the API,
//! stops on SIGTERM, and on the next start finishes the runs that were in flight.
#![allow(clippy::unwrap_used)]

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Server {
    child: Child,
    addr: String,
    token: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(data: &std::path::Path) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_concertmaster"))
        .args(["dev", "--port", "0", "--data-dir"])
        .arg(data)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut addr = String::new();
    let mut token = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("ConcertMaster dev server on http://") {
            addr = rest.trim().to_owned();
        }
        if let Some(rest) = line.trim().strip_prefix("token:") {
            token = rest.trim().to_owned();
            break;
        }
    }
    assert!(
        !addr.is_empty() && !token.is_empty(),
        "the server printed no URL/token"
    );
    // Keep draining stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Server { child, addr, token }
}

/// One HTTP/1.1 request (Connection: close); returns status and JSON body.
fn call(s: &Server, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut stream = TcpStream::connect(&s.addr).unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nhost: {}\r\nauthorization: Bearer {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        s.addr,
        s.token,
        body.len()
    )
    .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let status: u16 = text[9..12].parse().unwrap();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or_default();
    // The body may be chunked: take the JSON between the first `{` and the last `}`.
    let json = match (body.find('{'), body.rfind('}')) {
        (Some(a), Some(b)) => serde_json::from_str(&body[a..=b]).unwrap_or(Value::Null),
        _ => Value::Null,
    };
    (status, json)
}

#[cfg(unix)]
fn terminate(s: &mut Server) {
    let _ = Command::new("kill")
        .args(["-TERM", &s.child.id().to_string()])
        .status();
    let status = s.child.wait().unwrap();
    assert!(
        status.success(),
        "dev should exit cleanly on SIGTERM: {status}"
    );
}

#[cfg(unix)]
#[test]
fn dev_serves_the_api_and_resumes_runs_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut s = start(&data);
    let (status, list) = call(&s, "GET", "/v1/templates", None);
    assert_eq!(status, 200);
    assert_eq!(
        list["items"].as_array().unwrap().len(),
        6,
        "the examples are templates"
    );
    let wf = json!({"id": "nap", "name": "Nap", "nodes": [
        {"id": "start", "type": "trigger.manual"},
        {"id": "wait", "type": "flow.wait", "config": {"seconds": 2}},
        {"id": "done", "type": "transform.set", "config": {"fields": {"ok": true}}}],
        "edges": [{"from": "start", "to": "wait"}, {"from": "wait", "to": "done"}]});
    assert_eq!(
        call(&s, "POST", "/v1/workflows", Some(json!({"definition": wf}))).0,
        201
    );
    assert_eq!(call(&s, "POST", "/v1/workflows/nap/publish", None).0, 200);
    let (status, run) = call(
        &s,
        "POST",
        "/v1/workflows/nap/runs",
        Some(json!({"input": {}})),
    );
    assert_eq!(status, 201, "{run}");
    let id = run["id"].as_str().unwrap().to_owned();
    // Stop while the run waits; start again on the same data directory.
    terminate(&mut s);
    let s = start(&data);
    // The new token is signed with the same key from the data directory.
    let (status, run) = call(&s, "GET", &format!("/v1/runs/{id}"), None);
    assert_eq!(status, 200, "{run}");
    // The server is another process with no event stream for this test to wait on: poll, with
    // a deadline far above the 2 s wait.
    let deadline = Instant::now() + Duration::from_secs(30);
    let run = loop {
        let (_, run) = call(&s, "GET", &format!("/v1/runs/{id}"), None);
        if run["status"] != "RUNNING" || Instant::now() > deadline {
            break run;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    assert_eq!(run["output"]["nodes"]["done"]["output"]["ok"], true);
    // A token minted by `concertmaster token` with the same data directory works too.
    let out = Command::new(env!("CARGO_BIN_EXE_concertmaster"))
        .args(["token", "--org", "dev", "--role", "viewer", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(out.status.success());
    let viewer = Server {
        child: Command::new("true").spawn().unwrap(),
        addr: s.addr.clone(),
        token: String::from_utf8(out.stdout).unwrap().trim().to_owned(),
    };
    assert_eq!(call(&viewer, "GET", "/v1/workflows/nap", None).0, 200);
    assert_eq!(
        call(&viewer, "POST", "/v1/workflows/nap/runs", Some(json!({}))).0,
        403
    );
}
