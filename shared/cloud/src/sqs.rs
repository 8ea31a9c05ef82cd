//! The trigger consumer: SQS messages of the triggers queue → runs.
//!
//! A message names its organisation and queue in two String **message attributes**, `org`
//! and `queue`; its body is the message (what a local queue's message is in `dev`). Every
//! published workflow of the organisation whose `trigger.queue` reads that queue gets a run
//! (idempotent by `queue:<message id>`), exactly as the embedded queue poller does.
//!
//! A message that started every run it should is done. Any other outcome — no attributes, no
//! workflow reads the queue, the body does not fit the trigger, a run could not start — is
//! reported as a batch item failure (the event source mapping needs
//! `FunctionResponseTypes: [ReportBatchItemFailures]`): SQS makes it visible again after the
//! visibility timeout, and after the queue's `maxReceiveCount` receives moves it to the
//! dead-letter queue (alarmed on in the stack). Nothing is dropped silently.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use cm_api::AppState;
use cm_api::runtime::Runtime;
use cm_api::triggers::{DeliveryError, deliver_queue_message};
use cm_nodes::trigger::queue::QueueMessage;
use cm_store::{Created, RouteIndex, Store};
use std::collections::BTreeMap;

/// The message attribute naming the organisation.
pub const ORG_ATTRIBUTE: &str = "org";
/// The message attribute naming the queue (a `trigger.queue`'s `queue`).
pub const QUEUE_ATTRIBUTE: &str = "queue";

/// Why one message started no (or not every) run.
#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    /// The record has no message id (SQS always sends one; a hand-made event may not).
    #[error("the record has no messageId")]
    NoId,
    /// A required message attribute is missing or not a string.
    #[error(
        "message {id}: no String message attribute `{attribute}` (send the organisation as `org` and the queue as `queue`)"
    )]
    NoAttribute {
        /// The message.
        id: String,
        /// The attribute.
        attribute: &'static str,
    },
    /// The delivery failed.
    #[error("message {id}: {error}")]
    Delivery {
        /// The message.
        id: String,
        /// What went wrong (boxed: it carries API and node errors).
        error: Box<DeliveryError>,
    },
}

/// What one batch did (logged; the response is [`Outcome::response`]).
#[derive(Debug, Default)]
pub struct Outcome {
    /// Runs started.
    pub started: usize,
    /// Runs found started already by an earlier receive.
    pub existing: usize,
    /// Messages left on the queue, with why.
    pub failed: Vec<(String, MessageError)>,
}

impl Outcome {
    /// The Lambda response: the failed messages' ids.
    pub fn response(&self) -> SqsBatchResponse {
        let mut r = SqsBatchResponse::default();
        r.batch_item_failures = self
            .failed
            .iter()
            .map(|(id, _)| {
                let mut f = BatchItemFailure::default();
                f.item_identifier = id.clone();
                f
            })
            .collect();
        r
    }
}

fn string_attribute(m: &SqsMessage, name: &str) -> Option<String> {
    m.message_attributes
        .get(name)
        .and_then(|a| a.string_value.clone())
        .filter(|v| !v.is_empty())
}

async fn deliver<S: Store + RouteIndex, R: Runtime>(
    st: &AppState<S, R>,
    m: SqsMessage,
    out: &mut Outcome,
) -> Result<(), MessageError> {
    let id = m.message_id.clone().ok_or(MessageError::NoId)?;
    let need = |attribute: &'static str| {
        string_attribute(&m, attribute).ok_or_else(|| MessageError::NoAttribute {
            id: id.clone(),
            attribute,
        })
    };
    let org = need(ORG_ATTRIBUTE)?;
    let queue = need(QUEUE_ATTRIBUTE)?;
    // The same attributes the embedded poller passes (a FIFO queue's group).
    let attributes: BTreeMap<String, String> = m
        .attributes
        .get("MessageGroupId")
        .map(|g| BTreeMap::from([("MessageGroupId".to_owned(), g.clone())]))
        .unwrap_or_default();
    let message = QueueMessage {
        attributes,
        ..QueueMessage::new(id.clone(), m.body.clone().unwrap_or_default())
    };
    let runs = deliver_queue_message(st, &org, &queue, message)
        .await
        .map_err(|error| MessageError::Delivery {
            id: id.clone(),
            error: Box::new(error),
        })?;
    for r in runs {
        match r {
            Created::New(_) => out.started += 1,
            Created::Existing(_) => out.existing += 1,
        }
    }
    Ok(())
}

/// Handles one batch: every message on its own (one failing does not fail the others).
pub async fn handle<S: Store + RouteIndex, R: Runtime>(
    st: &AppState<S, R>,
    event: SqsEvent,
) -> Outcome {
    let mut out = Outcome::default();
    for m in event.records {
        let id = m.message_id.clone().unwrap_or_default();
        if let Err(e) = deliver(st, m, &mut out).await {
            tracing::warn!(message = %id, error = %e, "trigger message left on the queue");
            out.failed.push((id, e));
        }
    }
    tracing::info!(
        started = out.started,
        existing = out.existing,
        failed = out.failed.len(),
        "trigger batch"
    );
    out
}

/// The trigger-consumer function's handler: [`handle`], answered with the failed messages.
pub async fn lambda_handler<S: Store + RouteIndex, R: Runtime>(
    st: &AppState<S, R>,
    event: lambda_runtime::LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, lambda_runtime::Diagnostic> {
    // Boxed: the future is deep enough to overflow layout computation in the binary.
    Ok(Box::pin(handle(st, event.payload)).await.response())
}
