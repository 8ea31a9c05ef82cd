//! Client messages (routes `$default` / `subscribe`): the messages of `cm_api::ws`, answered
//! through a [`Poster`].
//!
//! - `{"action": "subscribe", "topic": "run:<id>", "after": <eventId>}` — checks the run is in
//!   the connection's organisation, records the subscription, answers `subscribed`, then (with
//!   `after`) replays the run's stored events from `after` on ([`events::replay`]);
//! - `{"action": "subscribe", "topic": "workflow:<id>"}` — live only;
//! - `{"action": "unsubscribe", "topic"}` → `unsubscribed`; `{"action": "ping"}` → `pong`;
//! - anything else → `error` `bad_request`; an unknown run or workflow, or one of another
//!   organisation → `error` `not_found`; a connection that was never recorded → `error`
//!   `unauthorized`; a store failure → `error` `internal`.

use crate::events;
use crate::frames;
use crate::poster::{PostError, Poster};
use cm_store::{ConnectionStore, RunStore, StoreError, WorkflowStore};
use serde::Deserialize;

/// A message from a client (as `cm_api::ws` parses them).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "action", rename_all = "lowercase")]
pub enum ClientMessage {
    /// Subscribe to `run:<id>` (replaying from `after`) or `workflow:<id>`.
    Subscribe {
        /// The topic.
        topic: String,
        /// Replay a run's events from this event id on.
        #[serde(default)]
        after: Option<u64>,
    },
    /// Stop receiving a topic.
    Unsubscribe {
        /// The topic.
        topic: String,
    },
    /// Answered with `pong`.
    Ping,
}

fn store_error(e: &StoreError, doing: &str) -> Vec<u8> {
    match e {
        StoreError::NotFound { .. } => frames::error("not_found", &e.to_string()),
        _ => {
            tracing::error!(error = %e, "{doing}");
            frames::error("internal", &format!("{doing}: {e}"))
        }
    }
}

/// The frames that answer `body`, a message of connection `connection_id`, in order; with the
/// store writes it implies (subscriptions).
pub async fn reply<S>(store: &S, connection_id: &str, body: &str) -> Vec<Vec<u8>>
where
    S: RunStore + WorkflowStore + ConnectionStore,
{
    let message = match serde_json::from_str::<ClientMessage>(body) {
        Ok(m) => m,
        Err(e) => {
            return vec![frames::error(
                "bad_request",
                &format!(
                    "not a message this server understands ({e}); send {{\"action\": \"subscribe\", \"topic\": \"run:<id>\"}}"
                ),
            )];
        }
    };
    if message == ClientMessage::Ping {
        return vec![frames::pong()];
    }
    let connection = match store.get_connection(connection_id).await {
        Ok(Some(c)) => c,
        Ok(None) => {
            return vec![frames::error(
                "unauthorized",
                &format!("connection {connection_id} is not registered; reconnect"),
            )];
        }
        Err(e) => return vec![store_error(&e, "looking the connection up")],
    };
    let org = connection.org.as_str();
    match message {
        ClientMessage::Ping => vec![frames::pong()],
        ClientMessage::Unsubscribe { topic } => {
            if let Err(e) = store.unsubscribe(connection_id, &topic).await {
                return vec![store_error(&e, "unsubscribing")];
            }
            vec![frames::unsubscribed(&topic)]
        }
        ClientMessage::Subscribe { topic, after } => {
            let (kind, id) = match topic.split_once(':') {
                Some((k @ ("run" | "workflow"), id)) if !id.is_empty() => (k, id),
                _ => {
                    return vec![frames::error(
                        "bad_request",
                        &format!("topic `{topic}` must be `run:<id>` or `workflow:<id>`"),
                    )];
                }
            };
            let run = if kind == "workflow" {
                if let Err(e) = store.get_workflow(org, id).await {
                    return vec![store_error(&e, "reading the workflow")];
                }
                None
            } else {
                match store.get_run(org, id).await {
                    Ok(r) => Some(r),
                    Err(e) => return vec![store_error(&e, "reading the run")],
                }
            };
            // Subscribed before the replay is read: what is written meanwhile is pushed live
            // (and may also be replayed: clients drop events they have).
            if let Err(e) = store.subscribe(connection_id, &topic).await {
                return vec![store_error(&e, "subscribing")];
            }
            let mut out = vec![frames::subscribed(&topic)];
            if let (Some(run), Some(after)) = (run, after) {
                match store.list_node_executions(org, &run.id).await {
                    Ok(nodes) => out.extend(
                        events::replay(&run, &nodes, after)
                            .iter()
                            .map(|ev| frames::event(&topic, ev)),
                    ),
                    Err(e) => out.push(frames::error(
                        "internal",
                        &format!("replaying run {id}: {e}"),
                    )),
                }
            }
            out
        }
    }
}

/// Answers `body`, a message of connection `connection_id`, through `poster` ([`reply`]). A
/// connection that is gone meanwhile is forgotten; other post failures are logged.
pub async fn handle<S, P>(store: &S, poster: &P, connection_id: &str, body: &str)
where
    S: RunStore + WorkflowStore + ConnectionStore,
    P: Poster,
{
    // Boxed: store futures nest deeply; unboxed, the function's main future exceeds the
    // compiler's layout query depth.
    let frames = Box::pin(reply(store, connection_id, body)).await;
    for frame in frames {
        match poster.post(connection_id, frame).await {
            Ok(()) => {}
            Err(PostError::Gone) => {
                tracing::info!(connection = connection_id, "gone while answering");
                if let Err(e) = store.delete_connection(connection_id).await {
                    tracing::warn!(connection = connection_id, error = %e, "forgetting a gone connection");
                }
                return;
            }
            Err(PostError::Other(e)) => {
                tracing::warn!(connection = connection_id, error = %e, "answer not delivered");
            }
        }
    }
}
