//! `GET /ws`: live run status over a WebSocket.
//!
//! Authenticate with `Authorization: Bearer <token>` or `?token=<token>` (browsers cannot set
//! headers on the upgrade). Then send JSON messages:
//!
//! - `{"action": "subscribe", "topic": "run:<id>", "after": 12}` — events of one run; with
//!   `after`, every event with a larger id is replayed from the run's history first, then live
//!   events follow with no gap and no duplicate (resume after a reconnect);
//! - `{"action": "subscribe", "topic": "workflow:<id>"}` — live events of every run of a
//!   workflow (no replay);
//! - `{"action": "unsubscribe", "topic": "…"}`, `{"action": "ping"}`.
//!
//! The server sends [`LiveEvent`](crate::live::LiveEvent)s with a `topic` field,
//! `{"type": "subscribed", "topic"}`, `{"type": "error", "code", "message"}`, `{"type": "pong"}`
//! and a `{"type": "heartbeat", "atMs"}` every 20 s. Frames stay under 128 KB (previews are
//! capped).

use crate::auth::Caller;
use crate::live::{LiveEvent, RunTracker};
use crate::routes::now_ms;
use crate::runtime::Runtime;
use crate::state::AppState;
use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use cm_store::{Connection, Store};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Heartbeat period.
pub const HEARTBEAT: Duration = Duration::from_secs(20);

#[derive(Debug, Deserialize)]
#[serde(tag = "action", rename_all = "lowercase")]
enum ClientMessage {
    Subscribe {
        topic: String,
        #[serde(default)]
        after: Option<u64>,
    },
    Unsubscribe {
        topic: String,
    },
    Ping,
}

/// What one connection sent of one run: the newest event id and the events sent for it (one
/// execution event can give several live events: failed nodes, then `run.finished`).
#[derive(Debug, Default)]
pub struct Sent {
    last: u64,
    at_last: HashSet<(String, Option<String>)>,
}

impl Sent {
    /// Nothing sent yet, but the client has seen everything up to `after`.
    pub fn after(after: u64) -> Sent {
        // Everything up to `after` is seen; the next id is the first that can be new.
        Sent {
            last: after + 1,
            at_last: HashSet::new(),
        }
    }

    /// Whether `ev` is new (and records it).
    pub fn first_time(&mut self, ev: &LiveEvent) -> bool {
        if ev.event_id < self.last {
            return false;
        }
        if ev.event_id > self.last {
            self.last = ev.event_id;
            self.at_last.clear();
        }
        self.at_last.insert((ev.kind.clone(), ev.node_id.clone()))
    }
}

/// The upgrade handler.
pub async fn upgrade<S: Store, R: Runtime>(
    State(st): State<AppState<S, R>>,
    caller: Caller,
    ws: WebSocketUpgrade,
) -> Response {
    ws.max_frame_size(64 * 1024)
        .max_message_size(64 * 1024)
        .on_upgrade(move |socket| session(st, caller, socket))
}

fn frame(v: &Value) -> Message {
    Message::Text(v.to_string().into())
}

fn error(code: &str, message: String) -> Message {
    frame(&json!({"type": "error", "code": code, "message": message}))
}

fn event_frame(topic: &str, ev: &LiveEvent) -> Message {
    let mut v = serde_json::to_value(ev).unwrap_or_default();
    v["topic"] = json!(topic);
    frame(&v)
}

async fn session<S: Store, R: Runtime>(st: AppState<S, R>, caller: Caller, mut socket: WebSocket) {
    let conn_id = format!("ws-{}", now_ms()) + &format!("-{:p}", &socket);
    let _ = st
        .store
        .put_connection(Connection {
            id: conn_id.clone(),
            org: caller.org.clone(),
            subject: caller.subject.clone(),
            connected_at_ms: now_ms(),
        })
        .await;
    let mut live = st.hub.subscribe();
    let mut topics: HashSet<String> = HashSet::new();
    // Per run: what was sent (replayed or live), so nothing is sent twice.
    let mut sent: HashMap<String, Sent> = HashMap::new();
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    heartbeat.tick().await;
    loop {
        tokio::select! {
            msg = socket.recv() => {
                let Some(Ok(msg)) = msg else { break };
                let text = match msg {
                    Message::Text(t) => t.to_string(),
                    Message::Close(_) => break,
                    _ => continue,
                };
                let parsed: Result<ClientMessage, _> = serde_json::from_str(&text);
                let reply = match parsed {
                    Err(e) => vec![error("bad_request", format!("not a message this server understands ({e}); send {{\"action\": \"subscribe\", \"topic\": \"run:<id>\"}}"))],
                    Ok(ClientMessage::Ping) => vec![frame(&json!({"type": "pong"}))],
                    Ok(ClientMessage::Unsubscribe { topic }) => {
                        topics.remove(&topic);
                        let _ = st.store.unsubscribe(&conn_id, &topic).await;
                        vec![frame(&json!({"type": "unsubscribed", "topic": topic}))]
                    }
                    Ok(ClientMessage::Subscribe { topic, after }) => {
                        subscribe(&st, &caller, &conn_id, &topic, after, &mut topics, &mut sent).await
                    }
                };
                for m in reply {
                    if socket.send(m).await.is_err() {
                        break;
                    }
                }
            }
            ev = live.recv() => {
                let ev = match ev {
                    Ok(ev) => ev,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        let _ = socket.send(error("lagged", format!("{n} events were dropped because this connection is slow; resubscribe with `after` to replay them"))).await;
                        continue;
                    }
                    Err(_) => break,
                };
                if ev.org != caller.org {
                    continue;
                }
                let e = &ev.event;
                let run_topic = format!("run:{}", e.run_id);
                let wf_topic = format!("workflow:{}", e.workflow_id);
                let topic = if topics.contains(&run_topic) {
                    run_topic
                } else if topics.contains(&wf_topic) {
                    wf_topic
                } else {
                    continue;
                };
                if !sent.entry(e.run_id.clone()).or_default().first_time(e) {
                    continue;
                }
                st.metrics.ws_events_sent.fetch_add(1, Ordering::Relaxed);
                if socket.send(event_frame(&topic, e)).await.is_err() {
                    break;
                }
            }
            _ = heartbeat.tick() => {
                if socket.send(frame(&json!({"type": "heartbeat", "atMs": now_ms()}))).await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = st.store.delete_connection(&conn_id).await;
}

async fn subscribe<S: Store, R: Runtime>(
    st: &AppState<S, R>,
    caller: &Caller,
    conn_id: &str,
    topic: &str,
    after: Option<u64>,
    topics: &mut HashSet<String>,
    sent: &mut HashMap<String, Sent>,
) -> Vec<Message> {
    let (kind, id) = match topic.split_once(':') {
        Some((k @ ("run" | "workflow"), id)) if !id.is_empty() => (k, id),
        _ => {
            return vec![error(
                "bad_request",
                format!("topic `{topic}` must be `run:<id>` or `workflow:<id>`"),
            )];
        }
    };
    let mut out = Vec::new();
    if kind == "workflow" {
        if let Err(e) = st.store.get_workflow(&caller.org, id).await {
            return vec![error("not_found", e.to_string())];
        }
        topics.insert(topic.to_owned());
        let _ = st.store.subscribe(conn_id, topic).await;
        out.push(frame(&json!({"type": "subscribed", "topic": topic})));
        return out;
    }
    let run = match st.store.get_run(&caller.org, id).await {
        Ok(r) => r,
        Err(e) => return vec![error("not_found", e.to_string())],
    };
    // Subscribed before the replay is read: live events that arrive meanwhile are buffered by
    // the hub receiver and deduplicated by event id.
    topics.insert(topic.to_owned());
    let _ = st.store.subscribe(conn_id, topic).await;
    out.push(frame(&json!({"type": "subscribed", "topic": topic})));
    if let Some(after) = after {
        let Some(nodes) = st
            .maps
            .get(
                &st.store,
                &caller.org,
                &run.workflow_id,
                run.workflow_version,
            )
            .await
        else {
            return out;
        };
        let mut tracker = RunTracker::new(&run.id, &run.workflow_id, nodes);
        match st
            .runtime
            .history_of_run(&run.execution_arn, run.started_at_ms, 0, usize::MAX)
            .await
        {
            Ok(events) => {
                let seen = sent
                    .entry(run.id.clone())
                    .or_insert_with(|| Sent::after(after));
                for e in &events {
                    for ev in tracker.feed(e) {
                        if seen.first_time(&ev) {
                            out.push(event_frame(topic, &ev));
                        }
                    }
                }
            }
            Err(e) => out.push(error("internal", format!("replaying run {id}: {e}"))),
        }
    }
    out
}
