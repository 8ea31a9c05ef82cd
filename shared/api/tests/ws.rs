//! `GET /ws` over a real socket: subscribe, live events in order, replay after a reconnect
//! with no gap and no duplicate, errors for bad messages and other organisations' runs.
#![allow(clippy::unwrap_used)]

mod support;

use cm_api::auth::Role;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use support::{Api, hello};
use tokio_tungstenite::tungstenite::Message;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn serve(api: &Api) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = api.app.clone();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("ws://{addr}/ws")
}

async fn connect(url: &str, token: &str) -> Socket {
    tokio_tungstenite::connect_async(format!("{url}?token={token}"))
        .await
        .unwrap()
        .0
}

async fn send(ws: &mut Socket, v: Value) {
    ws.send(Message::Text(v.to_string().into())).await.unwrap();
}

/// The next non-heartbeat frame; a missing frame fails the test (after 30 s) instead of
/// hanging it.
async fn next(ws: &mut Socket) -> Value {
    loop {
        let frame = tokio::time::timeout(std::time::Duration::from_secs(30), ws.next())
            .await
            .expect("no frame within 30 s");
        match frame.unwrap().unwrap() {
            Message::Text(t) => {
                let v: Value = serde_json::from_str(&t).unwrap();
                if v["type"] != "heartbeat" {
                    return v;
                }
            }
            _ => continue,
        }
    }
}

/// Reads frames until `run.finished`, returning every event frame.
async fn until_finished(ws: &mut Socket) -> Vec<Value> {
    let mut out = Vec::new();
    loop {
        let v = next(ws).await;
        let done = v["type"] == "run.finished";
        out.push(v);
        if done {
            return out;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_events_resume_without_gaps() {
    let api = Api::new().await;
    let url = serve(&api).await;
    let t = api.token("acme", Role::Editor);
    let (_, _) = api
        .call(
            "POST",
            "/v1/workflows",
            Some(&t),
            Some(json!({"definition": hello("hello")})),
        )
        .await;
    api.call("POST", "/v1/workflows/hello/publish", Some(&t), None)
        .await;

    // A workflow subscription sees the whole run live.
    let mut ws = connect(&url, &t).await;
    send(
        &mut ws,
        json!({"action": "subscribe", "topic": "workflow:hello"}),
    )
    .await;
    assert_eq!(next(&mut ws).await["type"], "subscribed");
    let (_, run) = api
        .call(
            "POST",
            "/v1/workflows/hello/runs",
            Some(&t),
            Some(json!({"input": {"name": "Ada"}})),
        )
        .await;
    let run_id = run["id"].as_str().unwrap().to_owned();
    let live = until_finished(&mut ws).await;
    let kinds: Vec<(&str, Option<&str>)> = live
        .iter()
        .map(|e| (e["type"].as_str().unwrap(), e["nodeId"].as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("run.started", None),
            ("node.started", Some("start")),
            ("node.succeeded", Some("start")),
            ("node.started", Some("greet")),
            ("node.succeeded", Some("greet")),
            ("run.finished", None)
        ],
        "{live:?}"
    );
    assert!(
        live.iter()
            .all(|e| e["runId"] == json!(run_id) && e["topic"] == "workflow:hello")
    );
    let ids: Vec<u64> = live
        .iter()
        .map(|e| e["eventId"].as_u64().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    assert_eq!(live[4]["outputPreview"], json!(r#"{"text":"Hello Ada"}"#));
    assert_eq!(live[5]["status"], "SUCCEEDED");
    assert!(live[4]["durationMs"].is_i64());

    // A client that saw up to the third event reconnects: it gets exactly the rest.
    let mut again = connect(&url, &t).await;
    send(
        &mut again,
        json!({"action": "subscribe", "topic": format!("run:{run_id}"), "after": ids[2]}),
    )
    .await;
    assert_eq!(next(&mut again).await["type"], "subscribed");
    let rest = until_finished(&mut again).await;
    let rest_ids: Vec<u64> = rest
        .iter()
        .map(|e| e["eventId"].as_u64().unwrap())
        .collect();
    assert_eq!(rest_ids, ids[3..].to_vec());
    // From the start: everything.
    send(
        &mut again,
        json!({"action": "unsubscribe", "topic": format!("run:{run_id}")}),
    )
    .await;
    assert_eq!(next(&mut again).await["type"], "unsubscribed");

    // Errors: bad messages, unknown topics, another organisation's run.
    send(&mut again, json!({"action": "dance"})).await;
    assert_eq!(next(&mut again).await["code"], "bad_request");
    send(&mut again, json!({"action": "subscribe", "topic": "nope"})).await;
    assert_eq!(next(&mut again).await["code"], "bad_request");
    let other = api.token("globex", Role::Admin);
    let mut stranger = connect(&url, &other).await;
    send(
        &mut stranger,
        json!({"action": "subscribe", "topic": format!("run:{run_id}"), "after": 0}),
    )
    .await;
    assert_eq!(next(&mut stranger).await["code"], "not_found");
    send(&mut stranger, json!({"action": "ping"})).await;
    assert_eq!(next(&mut stranger).await["type"], "pong");
}

#[tokio::test]
async fn the_upgrade_needs_a_token() {
    let api = Api::new().await;
    let url = serve(&api).await;
    let err = tokio_tungstenite::connect_async(url.clone())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("401"), "{err}");
    let err = tokio_tungstenite::connect_async(format!("{url}?token=bad"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("401"), "{err}");
}

#[tokio::test]
async fn a_live_ticket_opens_the_socket_for_a_minute() {
    let api = Api::new().await;
    let url = serve(&api).await;
    let viewer = api.token("acme", Role::Viewer);
    let (status, ticket) = api
        .call("POST", "/v1/live/tickets", Some(&viewer), None)
        .await;
    assert_eq!(status, axum::http::StatusCode::CREATED, "{ticket}");
    assert_eq!(ticket["expiresInSeconds"], 60);
    let claims = api
        .state
        .tokens
        .verify(ticket["token"].as_str().unwrap(), cm_api::auth::now_s())
        .unwrap();
    assert_eq!((claims.org.as_str(), claims.role), ("acme", Role::Viewer));
    assert!(
        (claims.exp - cm_api::auth::now_s() - 60).abs() <= 1,
        "{claims:?}"
    );
    assert_eq!(
        ticket["expiresAt"],
        cm_engine::time::iso(claims.exp * 1000).as_str()
    );
    // The socket takes it; after its minute it is refused.
    let mut ws = connect(&url, ticket["token"].as_str().unwrap()).await;
    send(&mut ws, json!({"action": "ping"})).await;
    assert_eq!(next(&mut ws).await["type"], "pong");
    assert!(
        api.state
            .tokens
            .verify(ticket["token"].as_str().unwrap(), claims.exp + 1)
            .is_err()
    );
    // Only for callers with a token.
    let (status, body) = api.call("POST", "/v1/live/tickets", None, None).await;
    assert_eq!(status, axum::http::StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["code"], "unauthorized");
}
