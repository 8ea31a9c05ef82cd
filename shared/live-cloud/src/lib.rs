//! Live run status in the cloud: what the WebSocket API's four Lambda functions do, over the
//! `cm-store` ports and a narrow [`Poster`] for the API Gateway Management API.
//!
//! Locally `concertmaster dev` serves `GET /ws` from one process (`cm_api::ws`). In the cloud
//! an API Gateway **WebSocket API** calls one function per route and clients receive frames
//! posted through the Management API (`PostToConnection`):
//!
//! | function | trigger | here |
//! |---|---|---|
//! | `ws-connect` | route `$connect` | [`connect::connect`]: a token (`?token=`, HS256) or the authorizer's context → [`Connection`](cm_store::Connection) recorded; `401` refuses the upgrade |
//! | `ws-disconnect` | route `$disconnect` | `ConnectionStore::delete_connection` (its subscriptions go with it) |
//! | `ws-message` | routes `$default` / `subscribe` | [`message::handle`]: the client messages of `cm_api::ws` (`subscribe` with optional `after`, `unsubscribe`, `ping`), answered through [`Poster`] |
//! | `status-pusher` | DynamoDB Streams on the table | [`push::push`]: run and node-execution writes → [`LiveEvent`](cm_api::live::LiveEvent)s → frames to the topic's subscribers; `410 Gone` connections are deleted |
//!
//! Each function's `main.rs` reads [`Config`], builds the clients once per container
//! ([`sdk_config`]: one AWS configuration for DynamoDB and the Management API) and runs a thin
//! handler generic over the ports, so the handlers run in tests over
//! [`MemoryStore`](cm_store::memory::MemoryStore) and the fakes of `test_util` (feature
//! `test-util`).
//!
//! # Events and their ids in the cloud
//!
//! The status-pusher derives events from the **stored** run and node-execution items (see
//! [`events`]): `run.started` when a run item is inserted, `run.finished` when its status
//! becomes final, `node.started` / `node.succeeded` / `node.failed` from node-execution items.
//! Step Functions history event ids are not in those items, so **`eventId` is the event's time
//! in milliseconds** (`run.started`: the run's start; `node.started`: the visit's start; a
//! node's or the run's end: its end), not the embedded server's history event id. Ids order a
//! run's events by time; several events can share one (same millisecond): `(eventId, type,
//! nodeId)` identifies an event.
//!
//! Resume (`subscribe` with `after`) replays the run's **stored state** — the run item and its
//! node executions (`RunStore::list_node_executions`), see [`events::replay`] — not the
//! execution history, so it uses the same ids as the live events. It is weaker than the
//! embedded server's gapless, duplicate-free resume:
//!
//! - events with `eventId >= after` are replayed (not `> after`): events of the millisecond
//!   the client saw last are sent again, so none of that millisecond is lost; clients drop
//!   events they have seen (same `eventId`, `type`, `nodeId`);
//! - live frames and replayed frames can interleave and arrive out of `eventId` order, and an
//!   event can come twice (written between the subscription and the replay's read, or a
//!   stream record retried); no event is lost between the two;
//! - node executions are written as run-events follows the execution logs (batches that can
//!   come late or out of order): each node's events are in order, two nodes' events need not
//!   be, so a resume `after` the newest id can miss an older event written since — clients
//!   resubscribe with `after: 0` and keep each node's newest news (the builder does);
//! - replay rebuilds the *current* state: a visit replaced since (same node and step), or a
//!   run's earlier end before a redrive, is not replayed; node failures carry `error` but no
//!   `cause` (node executions do not store it);
//! - with a `NEW_IMAGE` stream the status-pusher cannot tell a run's status change from another
//!   write of a finished run (a late node execution bumps the run item's counter), so
//!   `run.finished` can be repeated with the same id; `NEW_AND_OLD_IMAGES` avoids that.
//!
//! Frames are the embedded server's: events with a `topic`, `subscribed`, `unsubscribed`,
//! `pong`, `error` (`code`, `message`); there is no `heartbeat` (a function cannot keep a timer
//! per connection; API Gateway closes a connection idle for 10 minutes, so clients send `ping`).
//! Every frame is at most [`frames::MAX_FRAME_BYTES`] (128 KB, the Management API's limit):
//! previews are cut at [`PREVIEW_BYTES`](cm_api::live::PREVIEW_BYTES) as in `cm_api::live`,
//! error names at [`frames::ERROR_BYTES`] and causes at [`frames::CAUSE_BYTES`].

pub mod config;
pub mod connect;
pub mod events;
pub mod frames;
pub mod message;
pub mod poster;
pub mod push;
#[cfg(feature = "test-util")]
pub mod test_util;

pub use config::{Config, init_tracing, log_filter, sdk_config};
pub use poster::{PostError, Poster, SdkPoster};
