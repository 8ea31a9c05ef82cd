//! The status-pusher's work: a batch of decoded stream records → live events → frames to
//! each topic's subscribers.
//!
//! For each record (in stream order): its events ([`events::run_events`],
//! [`events::node_events`]; a node item's workflow id comes from a run record of the same
//! batch, else `RunStore::get_run`), then the connections of the run's organisation
//! subscribed to `run:<id>` or `workflow:<workflow>` (a connection subscribed to both gets each
//! event once, with the run topic, as in `cm_api::ws`). Each event goes to every connection
//! (concurrently), the events of a record one after the other. A connection that answers
//! `410 Gone` is deleted (with its subscriptions) and skipped for the rest of the batch; other
//! post failures are logged and counted — live status is best effort, and retrying a batch
//! would resend its frames to everyone.
//!
//! A store failure (reading subscribers or a run) stops the batch at that record:
//! [`Report::retry_from`] names it, for a batch item failure (Lambda then retries from it,
//! with `ReportBatchItemFailures` on the event source mapping). Subscribers are read once per
//! topic and batch; a subscription recorded while a batch runs can miss that batch's events
//! written before it, which a resume (`after`) replays.

use crate::events::{self, Write};
use crate::frames;
use crate::poster::{PostError, Poster};
use cm_store::{Connection, ConnectionStore, RunStore, StoreError};
use cm_store_dynamodb::stream::Change;
use futures_util::future::join_all;
use std::collections::{HashMap, HashSet};

/// One stream record, decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Its id for a batch item failure (the stream sequence number).
    pub id: String,
    /// `INSERT`, `MODIFY` or `REMOVE`.
    pub write: Write,
    /// The item after the write (`None`: not a run or node execution, or no new image).
    pub new: Option<Change>,
    /// The item before the write (`NEW_AND_OLD_IMAGES` streams only).
    pub old: Option<Change>,
}

/// What a batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Live events derived.
    pub events: usize,
    /// Frames delivered.
    pub frames: usize,
    /// Frames not delivered (other than to gone connections).
    pub failed: usize,
    /// Connections found gone and deleted.
    pub gone: Vec<String>,
    /// The record the batch stopped at after a store failure: it and the ones after it need
    /// another delivery.
    pub retry_from: Option<String>,
}

/// Subscribers of one record's run: connection id → topic.
type Targets = Vec<(Connection, String)>;

struct Batch<'a, S, P> {
    store: &'a S,
    poster: &'a P,
    /// (org, run id) → workflow id.
    workflows: HashMap<(String, String), String>,
    /// (org, topic) → subscribers.
    subscribers: HashMap<(String, String), Vec<Connection>>,
    gone: HashSet<String>,
    report: Report,
}

impl<S: RunStore + ConnectionStore, P: Poster> Batch<'_, S, P> {
    async fn workflow_of(&mut self, org: &str, run_id: &str) -> Result<Option<String>, StoreError> {
        let key = (org.to_owned(), run_id.to_owned());
        if let Some(w) = self.workflows.get(&key) {
            return Ok(Some(w.clone()));
        }
        match self.store.get_run(org, run_id).await {
            Ok(r) => {
                self.workflows.insert(key, r.workflow_id.clone());
                Ok(Some(r.workflow_id))
            }
            Err(StoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn subscribers_of(
        &mut self,
        org: &str,
        topic: &str,
    ) -> Result<&[Connection], StoreError> {
        let key = (org.to_owned(), topic.to_owned());
        if !self.subscribers.contains_key(&key) {
            let subs = self.store.subscribers(org, topic).await?;
            self.subscribers.insert(key.clone(), subs);
        }
        Ok(self.subscribers.get(&key).map_or(&[], Vec::as_slice))
    }

    async fn targets(
        &mut self,
        org: &str,
        run_id: &str,
        workflow_id: &str,
    ) -> Result<Targets, StoreError> {
        let run_topic = format!("run:{run_id}");
        let wf_topic = format!("workflow:{workflow_id}");
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for topic in [run_topic, wf_topic] {
            let subs = self.subscribers_of(org, &topic).await?.to_vec();
            for c in subs {
                // Subscriptions belong to the organisation (the store's rule); check anyway.
                if c.org == org && !self.gone.contains(&c.id) && seen.insert(c.id.clone()) {
                    out.push((c, topic.clone()));
                }
            }
        }
        Ok(out)
    }

    /// The events of one record and who gets them.
    async fn record(&mut self, r: &Record) -> Result<(), StoreError> {
        let Some(new) = &r.new else { return Ok(()) };
        let org = new.org().to_owned();
        let (evs, workflow_id) = match new {
            Change::Run { run, .. } => {
                self.workflows
                    .insert((org.clone(), run.id.clone()), run.workflow_id.clone());
                let old = match &r.old {
                    Some(Change::Run { run, .. }) => Some(run),
                    _ => None,
                };
                (
                    events::run_events(r.write, run, old),
                    run.workflow_id.clone(),
                )
            }
            Change::Node { run_id, node, .. } => {
                let Some(wf) = self.workflow_of(&org, run_id).await? else {
                    tracing::warn!(org = %org, run = %run_id, "node execution of an unknown run; skipped");
                    return Ok(());
                };
                let old = match &r.old {
                    Some(Change::Node { node, .. }) => Some(node),
                    _ => None,
                };
                (events::node_events(r.write, &wf, run_id, node, old), wf)
            }
        };
        if evs.is_empty() {
            return Ok(());
        }
        self.report.events += evs.len();
        let targets = self.targets(&org, new.run_id(), &workflow_id).await?;
        for ev in &evs {
            let mut bytes: HashMap<&str, Vec<u8>> = HashMap::new();
            let live: Vec<&(Connection, String)> = targets
                .iter()
                .filter(|(c, _)| !self.gone.contains(&c.id))
                .collect();
            for (_, topic) in &live {
                bytes
                    .entry(topic.as_str())
                    .or_insert_with(|| frames::event(topic, ev));
            }
            let results = join_all(live.iter().map(|(c, topic)| {
                let frame = bytes.get(topic.as_str()).cloned().unwrap_or_default();
                self.poster.post(&c.id, frame)
            }))
            .await;
            for ((c, _), result) in live.iter().zip(results) {
                match result {
                    Ok(()) => self.report.frames += 1,
                    Err(PostError::Gone) => {
                        self.gone.insert(c.id.clone());
                        self.report.gone.push(c.id.clone());
                        tracing::info!(connection = %c.id, "gone; deleting it");
                        if let Err(e) = self.store.delete_connection(&c.id).await {
                            tracing::warn!(connection = %c.id, error = %e, "deleting a gone connection");
                        }
                    }
                    Err(PostError::Other(e)) => {
                        self.report.failed += 1;
                        tracing::warn!(connection = %c.id, error = %e, kind = %ev.kind, "frame not delivered");
                    }
                }
            }
        }
        Ok(())
    }
}

/// Pushes the live events of `records` (in order) to their subscribers.
pub async fn push<S, P>(store: &S, poster: &P, records: &[Record]) -> Report
where
    S: RunStore + ConnectionStore,
    P: Poster,
{
    let mut batch = Batch {
        store,
        poster,
        workflows: HashMap::new(),
        subscribers: HashMap::new(),
        gone: HashSet::new(),
        report: Report::default(),
    };
    for r in records {
        // Boxed: the record's future nests deeply (store, poster, join_all); unboxed, the
        // functions' main futures exceed the compiler's layout query depth.
        if let Err(e) = Box::pin(batch.record(r)).await {
            tracing::error!(record = %r.id, error = %e, "store failure; the batch stops here");
            batch.report.retry_from = Some(r.id.clone());
            break;
        }
    }
    batch.report
}
