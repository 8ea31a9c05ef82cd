//! Plugin executors against a real local HTTP server: the event they receive, and how every
//! kind of answer maps to an output or a named error.
#![allow(clippy::unwrap_used)]

use cm_nodes::plugin::{MAX_ANSWER_BYTES, PluginExecutor};
use cm_nodes::secrets::LocalSecrets;
use cm_nodes::{NodeError, NodeEvent, NodeOutput, NodeRunner};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the test server answers.
enum Reply {
    /// A status, extra headers and a body.
    Answer(u16, Vec<(&'static str, String)>, Vec<u8>),
    /// Never answer (until the client hangs up).
    Hang,
}

fn json_reply(status: u16, body: Value) -> Reply {
    Reply::Answer(status, vec![], body.to_string().into_bytes())
}

type Received = Arc<Mutex<Vec<Value>>>;

/// A tiny HTTP/1.1 server on 127.0.0.1: one request per connection, answered by `reply`.
/// Returns the URL to POST to and the request bodies received.
async fn serve(reply: impl Fn(&Value) -> Reply + Send + Sync + 'static) -> (String, Received) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/run", listener.local_addr().unwrap());
    let received: Received = Arc::default();
    let seen = received.clone();
    let reply = Arc::new(reply);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let reply = reply.clone();
            let seen = seen.clone();
            tokio::spawn(async move {
                let _ = handle(stream, &*reply, &seen).await;
            });
        }
    });
    (url, received)
}

async fn handle(
    mut stream: TcpStream,
    reply: &(dyn Fn(&Value) -> Reply + Send + Sync),
    seen: &Received,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    assert!(head.starts_with("POST /run HTTP/1.1\r\n"), "{head}");
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body: Value = serde_json::from_slice(&buf[head_end..head_end + length]).unwrap();
    let answer = reply(&body);
    seen.lock().unwrap().push(body);
    match answer {
        Reply::Hang => {
            // Wait for the client to give up and close the connection.
            while stream.read(&mut chunk).await? > 0 {}
            Ok(())
        }
        Reply::Answer(status, headers, body) => {
            let mut out = format!(
                "HTTP/1.1 {status} Whatever\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
                body.len()
            );
            for (k, v) in headers {
                out.push_str(&format!("{k}: {v}\r\n"));
            }
            out.push_str("\r\n");
            stream.write_all(out.as_bytes()).await?;
            stream.write_all(&body).await?;
            stream.shutdown().await
        }
    }
}

/// A runner whose `acme.echo` type runs on `executor`, with secret `TOKEN`.
fn runner(executor: PluginExecutor) -> NodeRunner {
    let mut services =
        cm_nodes::test_util::services(LocalSecrets::new().insert("TOKEN", "s3cr3t-token"));
    services.plugins.insert("acme.echo", executor);
    NodeRunner::builtin(services)
}

fn event(config: Value) -> NodeEvent {
    serde_json::from_value(json!({
        "node": {"id": "lookup", "type": "acme.echo", "typeVersion": 2},
        "config": config,
        "input": {"email": "ada@example.com"},
        "context": {
            "executionId": "arn:aws:states:eu-west-1:1:execution:wf:run-1",
            "executionName": "run-1",
            "workflowId": "wf",
            "workflowVersion": 3,
            "stateName": "lookup",
            "attempt": 1
        }
    }))
    .unwrap()
}

async fn run_with(
    reply: impl Fn(&Value) -> Reply + Send + Sync + 'static,
) -> Result<NodeOutput, NodeError> {
    let (url, _) = serve(reply).await;
    runner(PluginExecutor::new(&url).unwrap())
        .run(event(json!({"q": 1})))
        .await
}

#[tokio::test]
async fn the_executor_receives_the_node_event_and_its_answer_is_the_output() {
    let (url, received) = serve(|ev| {
        json_reply(
            200,
            json!({"output": {"echo": ev["config"], "n": 7}, "port": "found"}),
        )
    })
    .await;
    let runner = runner(PluginExecutor::new(&url).unwrap());
    let out = runner
        .run(event(
            json!({"auth": "Bearer {{ secrets.TOKEN }}", "email": "ada@example.com"}),
        ))
        .await
        .unwrap();
    // The secret reached the plugin, but its echo is redacted from the output.
    assert_eq!(out.port, "found");
    assert_eq!(
        out.output,
        json!({"echo": {"auth": "Bearer ***", "email": "ada@example.com"}, "n": 7})
    );
    let got = received.lock().unwrap().clone();
    assert_eq!(
        got,
        vec![json!({
            "node": {"id": "lookup", "type": "acme.echo", "typeVersion": 2},
            "config": {"auth": "Bearer s3cr3t-token", "email": "ada@example.com"},
            "input": {"email": "ada@example.com"},
            "context": {
                "executionId": "arn:aws:states:eu-west-1:1:execution:wf:run-1",
                "executionName": "run-1",
                "workflowId": "wf",
                "workflowVersion": 3,
                "stateName": "lookup",
                "attempt": 1
            }
        })]
    );
}

#[tokio::test]
async fn the_port_defaults_to_out_and_any_json_is_an_output() {
    let out = run_with(|_| json_reply(201, json!({"output": [1, "two", null]})))
        .await
        .unwrap();
    assert_eq!(out, NodeOutput::out(json!([1, "two", null])));
    let out = run_with(|_| json_reply(200, json!({"output": null, "port": null})))
        .await
        .unwrap();
    assert_eq!(out, NodeOutput::out(Value::Null));
}

#[tokio::test]
async fn an_error_body_names_the_error_whatever_the_status() {
    for status in [400, 422, 500, 503] {
        let e = run_with(move |_| {
            json_reply(
                status,
                json!({"error": "Acme.ContactNotFound", "cause": "no contact ada@example.com"}),
            )
        })
        .await
        .unwrap_err();
        assert_eq!(e.name(), "Acme.ContactNotFound", "status {status}");
        assert_eq!(e.cause(), "no contact ada@example.com");
    }
    // Built-in names pass through too (the default retry policies match them).
    let e = run_with(|_| json_reply(500, json!({"error": "ConcertMaster.Retryable"})))
        .await
        .unwrap_err();
    assert_eq!(e.name(), "ConcertMaster.Retryable");
    assert_eq!(e.cause(), "");
}

#[tokio::test]
async fn an_error_status_without_an_error_body_maps_by_status() {
    let e = run_with(|_| Reply::Answer(503, vec![], b"upstream down".to_vec()))
        .await
        .unwrap_err();
    assert_eq!(e.name(), "ConcertMaster.Http.5xx");
    assert!(e.cause().contains("upstream down"), "{}", e.cause());
    assert!(e.cause().contains("acme.echo"), "{}", e.cause());

    let e = run_with(|_| json_reply(404, json!({"detail": "nope"})))
        .await
        .unwrap_err();
    assert!(matches!(e, NodeError::Http4xx { status: 404, .. }), "{e:?}");

    let e = run_with(|_| Reply::Answer(429, vec![("Retry-After", "7".into())], vec![]))
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            NodeError::Http429 {
                retry_after: Some(7),
                ..
            }
        ),
        "{e:?}"
    );

    let e = run_with(|_| Reply::Answer(302, vec![("Location", "http://x/".into())], vec![]))
        .await
        .unwrap_err();
    assert_eq!(e.name(), "ConcertMaster.Internal");
}

#[tokio::test]
async fn a_malformed_success_answer_is_internal() {
    for body in [
        b"not json".to_vec(),
        b"[1, 2]".to_vec(),
        br#"{"words": 3}"#.to_vec(),
        br#"{"output": 1, "port": ""}"#.to_vec(),
    ] {
        let shown = String::from_utf8_lossy(&body).to_string();
        let e = run_with(move |_| Reply::Answer(200, vec![], body.clone()))
            .await
            .unwrap_err();
        assert_eq!(e.name(), "ConcertMaster.Internal", "{shown}");
        assert!(e.cause().contains("broke the executor contract"), "{e}");
    }
}

#[tokio::test]
async fn an_answer_over_the_limit_is_too_large() {
    let e = run_with(|_| {
        let big = "x".repeat(MAX_ANSWER_BYTES);
        json_reply(200, json!({"output": big}))
    })
    .await
    .unwrap_err();
    assert_eq!(e.name(), "ConcertMaster.Http.ResponseTooLarge");
}

#[tokio::test]
async fn a_refused_connection_is_retryable() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let e = runner(PluginExecutor::new(&format!("http://{addr}/run")).unwrap())
        .run(event(json!({})))
        .await
        .unwrap_err();
    assert_eq!(e.name(), "ConcertMaster.Retryable");
    assert!(e.is_transient());
    assert!(e.cause().contains("unreachable"), "{e}");
}

#[tokio::test]
async fn an_executor_that_does_not_answer_in_time_is_a_timeout() {
    let (url, received) = serve(|_| Reply::Hang).await;
    let started = std::time::Instant::now();
    let e = runner(PluginExecutor::new(&url).unwrap().with_timeout_seconds(1))
        .run(event(json!({})))
        .await
        .unwrap_err();
    assert_eq!(e.name(), "ConcertMaster.Timeout");
    assert!(e.cause().contains("within 1 s"), "{e}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert_eq!(received.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_type_without_handler_or_executor_is_unknown() {
    let runner = runner(PluginExecutor::new("http://127.0.0.1:9/run").unwrap());
    let mut ev = event(json!({}));
    ev.node.node_type = "acme.other".into();
    let e = runner.run(ev).await.unwrap_err();
    assert_eq!(e.name(), "ConcertMaster.UnknownNodeType");
}

#[tokio::test]
async fn secrets_are_resolved_before_the_call_and_missing_ones_fail_without_it() {
    let (url, received) = serve(|_| json_reply(200, json!({"output": 1}))).await;
    let e = runner(PluginExecutor::new(&url).unwrap())
        .run(event(json!({"key": "{{ secrets.MISSING }}"})))
        .await
        .unwrap_err();
    assert_eq!(e.name(), "ConcertMaster.SecretNotFound");
    assert!(received.lock().unwrap().is_empty());
}
