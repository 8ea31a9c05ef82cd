//! The status-pusher Lambda: DynamoDB Streams of the control-plane table (event source
//! mapping; view type `NEW_IMAGE`, or `NEW_AND_OLD_IMAGES` for exact status changes) → live
//! events → frames to the WebSocket connections subscribed to the run or its workflow,
//! through the Management API ([`cm_live_cloud::push`]).
//!
//! Each record's images are converted to DynamoDB attribute maps ([`item`]) and decoded by the
//! store's own readers ([`cm_store_dynamodb::stream::decode`]): run items and node-execution
//! items become events, every other item is skipped, and so is an item that does not decode
//! (logged: a retry could not fix it). A store failure stops the batch at its record and
//! answers it as a batch item failure (`itemIdentifier` = its sequence number): set
//! `FunctionResponseTypes: [ReportBatchItemFailures]` on the event source mapping, so that
//! Lambda retries from that record rather than dropping or repeating the batch. Post failures
//! do not fail the batch; connections answering `410 Gone` are deleted.
//!
//! Settings: `CONCERTMASTER_TABLE`, `CONCERTMASTER_WS_ENDPOINT` (required: the WebSocket
//! API stage's Management API endpoint), `CONCERTMASTER_ENDPOINT_URL`
//! ([`cm_live_cloud::Config`]).

use aws_lambda_events::dynamodb::{Event, EventRecord};
use aws_lambda_events::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use cm_live_cloud::Poster;
use cm_live_cloud::events::Write;
use cm_live_cloud::push::{self, Record, Report};
use cm_store::{ConnectionStore, RunStore};
use cm_store_dynamodb::stream::{Change, decode};
use lambda_runtime::{Diagnostic, LambdaEvent};
use std::collections::HashMap;

/// One attribute value of a stream image as the DynamoDB SDK's.
pub fn value(v: &serde_dynamo::AttributeValue) -> AttributeValue {
    use serde_dynamo::AttributeValue as V;
    match v {
        V::N(n) => AttributeValue::N(n.clone()),
        V::S(s) => AttributeValue::S(s.clone()),
        V::Bool(b) => AttributeValue::Bool(*b),
        V::B(b) => AttributeValue::B(Blob::new(b.clone())),
        V::Null(b) => AttributeValue::Null(*b),
        V::M(m) => AttributeValue::M(m.iter().map(|(k, v)| (k.clone(), value(v))).collect()),
        V::L(l) => AttributeValue::L(l.iter().map(value).collect()),
        V::Ss(s) => AttributeValue::Ss(s.clone()),
        V::Ns(n) => AttributeValue::Ns(n.clone()),
        V::Bs(b) => AttributeValue::Bs(b.iter().map(|b| Blob::new(b.clone())).collect()),
    }
}

/// A stream image (`NewImage`, `OldImage`) as a DynamoDB item.
pub fn item(image: &serde_dynamo::Item) -> HashMap<String, AttributeValue> {
    image.iter().map(|(k, v)| (k.clone(), value(v))).collect()
}

fn change(image: &serde_dynamo::Item, which: &str, id: &str) -> Option<Change> {
    decode(&item(image))
        .inspect_err(|e| tracing::error!(record = id, image = which, error = %e, "undecodable item; skipped"))
        .ok()
        .flatten()
}

/// One stream record decoded (`None` for an unknown `eventName`).
pub fn record(r: &EventRecord) -> Option<Record> {
    let write = Write::parse(&r.event_name)?;
    let id = r
        .change
        .sequence_number
        .clone()
        .unwrap_or_else(|| r.event_id.clone());
    let new = change(&r.change.new_image, "NewImage", &id);
    let old = change(&r.change.old_image, "OldImage", &id);
    Some(Record {
        id,
        write,
        new,
        old,
    })
}

/// The batch item failures of a report (the record to retry from, if any).
pub fn response(report: &Report) -> DynamoDbEventResponse {
    let mut out = DynamoDbEventResponse::default();
    if let Some(id) = &report.retry_from {
        let mut failure = DynamoDbBatchItemFailure::default();
        failure.item_identifier = Some(id.clone());
        out.batch_item_failures.push(failure);
    }
    out
}

/// Handles one batch of stream records.
pub async fn handle<S, P>(store: &S, poster: &P, event: &Event) -> (Report, DynamoDbEventResponse)
where
    S: RunStore + ConnectionStore,
    P: Poster,
{
    let records: Vec<Record> = event.records.iter().filter_map(record).collect();
    let report = push::push(store, poster, &records).await;
    tracing::info!(
        records = event.records.len(),
        events = report.events,
        frames = report.frames,
        failed = report.failed,
        gone = report.gone.len(),
        retry_from = report.retry_from.as_deref().unwrap_or_default(),
        "batch pushed"
    );
    let response = response(&report);
    (report, response)
}

/// The Lambda handler ([`handle`]).
pub async fn handler<S, P>(
    store: &S,
    poster: &P,
    event: LambdaEvent<Event>,
) -> Result<DynamoDbEventResponse, Diagnostic>
where
    S: RunStore + ConnectionStore,
    P: Poster,
{
    Ok(handle(store, poster, &event.payload).await.1)
}
