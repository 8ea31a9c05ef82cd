//! `trigger.queue`: a run for each message received on a queue (SQS in the cloud, the local
//! queue embedded).
//!
//! The poller receives up to `batchSize` (1–10, default 1) messages at a time from `queue`
//! ([`QueueConfig`]) and hands them to [`accept`], which turns each into a run input:
//!
//! ```json
//! {"messageId": "…", "queue": "orders", "body": <the body>, "attributes": {"…": "…"}}
//! ```
//!
//! The body is parsed as JSON when it is JSON (`{"a":1}` → an object, `42` → a number);
//! anything else stays a string (`hello` → `"hello"`). Attributes are the message's
//! attributes as strings (SQS system and message attributes, flattened by the poller).
//!
//! A message whose run input cannot be built (today: over [`super::MAX_RUN_INPUT_BYTES`], or
//! an empty or repeated message id) is *rejected*: put it in the dead-letter queue
//! ([`super::dead_letter`]) and delete it from the source queue. Messages beyond `batchSize`
//! are *deferred*, untouched: leave them on the queue (do not delete them), and they are
//! delivered again after their visibility timeout.

use crate::NodeError;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// The most messages one batch may have (SQS's ReceiveMessage limit).
pub const MAX_BATCH_SIZE: u32 = 10;

/// The queue trigger's config.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct QueueConfig {
    /// The queue's name (`[A-Za-z0-9_-]{1,80}`).
    pub queue: String,
    /// How many messages to receive at a time (1–10).
    #[serde(default = "one")]
    pub batch_size: u32,
}

fn one() -> u32 {
    1
}

impl QueueConfig {
    /// Parses a `trigger.queue` config (`ConcertMaster.InvalidConfig` naming the field).
    pub fn parse(config: &Value) -> Result<QueueConfig, NodeError> {
        let cfg: QueueConfig = super::trigger_config(config)?;
        let name_ok = !cfg.queue.is_empty()
            && cfg.queue.len() <= 80
            && cfg
                .queue
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !name_ok {
            return Err(NodeError::InvalidConfig(format!(
                "config.queue: `{}` is not a queue name (1-80 of A-Z a-z 0-9 _ -)",
                cfg.queue
            )));
        }
        if !(1..=MAX_BATCH_SIZE).contains(&cfg.batch_size) {
            return Err(NodeError::InvalidConfig(format!(
                "config.batchSize: {} is out of range 1-{MAX_BATCH_SIZE}",
                cfg.batch_size
            )));
        }
        Ok(cfg)
    }
}

/// A message as the poller received it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueMessage {
    /// The queue's id for the message (SQS `MessageId`).
    pub id: String,
    /// The body, as text.
    pub body: String,
    /// The message's attributes.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

impl QueueMessage {
    /// A message with no attributes.
    pub fn new(id: impl Into<String>, body: impl Into<String>) -> QueueMessage {
        QueueMessage {
            id: id.into(),
            body: body.into(),
            attributes: BTreeMap::new(),
        }
    }
}

/// What [`accept`] made of a batch.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct QueueBatch {
    /// `(message id, run input)` for each message that starts a run, in order.
    pub accepted: Vec<(String, Value)>,
    /// `(message id, why)` for each message that cannot start a run: dead-letter them.
    pub rejected: Vec<(String, NodeError)>,
    /// Messages beyond `batchSize`, untouched: leave them on the queue.
    pub deferred: Vec<QueueMessage>,
}

/// The body as JSON if it is JSON, else as a string.
pub fn parse_body(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|_| Value::String(body.to_owned()))
}

/// Turns a batch of messages into run inputs (see the [module docs](self)).
/// `ConcertMaster.InvalidConfig` if the config is wrong; per-message problems are in
/// [`QueueBatch::rejected`].
pub fn accept(config: &Value, messages: Vec<QueueMessage>) -> Result<QueueBatch, NodeError> {
    let cfg = QueueConfig::parse(config)?;
    let mut batch = QueueBatch::default();
    let mut seen = BTreeSet::new();
    let limit = usize::try_from(cfg.batch_size).unwrap_or(1);
    for (i, message) in messages.into_iter().enumerate() {
        if i >= limit {
            batch.deferred.push(message);
            continue;
        }
        if message.id.is_empty() {
            batch.rejected.push((
                String::new(),
                NodeError::InvalidInput(format!(
                    "message {i} of the batch from queue `{}` has no id",
                    cfg.queue
                )),
            ));
            continue;
        }
        if !seen.insert(message.id.clone()) {
            batch.rejected.push((
                message.id.clone(),
                NodeError::InvalidInput(format!(
                    "message `{}` appears more than once in the batch from queue `{}`",
                    message.id, cfg.queue
                )),
            ));
            continue;
        }
        let input = json!({
            "messageId": message.id,
            "queue": cfg.queue,
            "body": parse_body(&message.body),
            "attributes": message.attributes,
        });
        match super::check_run_input_size(&input) {
            Ok(()) => batch.accepted.push((message.id, input)),
            Err(NodeError::InvalidInput(m)) => batch.rejected.push((
                message.id.clone(),
                NodeError::InvalidInput(format!("message `{}`: {m}", message.id)),
            )),
            Err(e) => batch.rejected.push((message.id, e)),
        }
    }
    Ok(batch)
}
