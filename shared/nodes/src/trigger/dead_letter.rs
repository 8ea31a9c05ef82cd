//! Dead letters: trigger events whose run could not be started, kept so they can be re-driven.
//!
//! A trigger event becomes a dead letter when it cannot become a run and the sender cannot be
//! told: a queue message [`rejected`](super::queue::QueueBatch::rejected), or any accepted
//! event (webhook, form, schedule tick, queue message) whose `StartExecution` failed after the
//! poller's or API's own retries. Requests refused synchronously (a bad webhook signature, an
//! invalid form) are answered with an error instead and are not kept.
//!
//! A [`DeadLetter`] stores the workflow, the trigger's node type, the **payload** — the run
//! input that could not be started (for a rejected queue message, the message as
//! `{messageId, body, attributes}`) — the last error's name and message, how many attempts
//! failed and when the first and last failed. The [`DeadLetters`] port stores them (SQLite
//! embedded, DynamoDB in the cloud; `MemoryDeadLetters` with feature `test-util`).
//!
//! [`redrive`] takes one letter and retries the start with its payload: on success the letter
//! is removed; on failure it stays, with `attempts` bumped and the new error recorded. The
//! start may run more than once for the same letter (a crash between a successful start and
//! the removal), so make it idempotent: name the execution after the letter
//! (`dl-<id>`), and Step Functions returns the existing execution for a repeated name.

use crate::{BoxFuture, NodeError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::future::Future;

/// A trigger event that could not start its run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetter {
    /// Random id (32 lowercase hex digits).
    pub id: String,
    /// The workflow whose run could not start.
    pub workflow_id: String,
    /// The organisation the workflow belongs to, where the deployment has several (the HTTP
    /// API lists and re-drives only its caller's organisation's letters); empty otherwise.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub org: String,
    /// The trigger's node type (`trigger.queue`, …).
    pub trigger: String,
    /// The run input to start the run with (see the module docs).
    pub payload: Value,
    /// The last error's stable name (`ConcertMaster.InvalidInput`, `States.…`, …).
    pub error: String,
    /// The last error's message.
    pub message: String,
    /// How many attempts failed (1 when recorded).
    pub attempts: u32,
    /// When the first attempt failed (ms since the epoch).
    pub first_failed_ms: i64,
    /// When the last attempt failed (ms since the epoch).
    pub last_failed_ms: i64,
}

impl DeadLetter {
    /// A letter for an event that just failed once (`attempts` 1), with a fresh random id.
    pub fn new(
        workflow_id: impl Into<String>,
        trigger: impl Into<String>,
        payload: Value,
        error: &NodeError,
        now_ms: i64,
    ) -> Result<DeadLetter, NodeError> {
        Ok(DeadLetter {
            id: super::random_id()?,
            workflow_id: workflow_id.into(),
            org: String::new(),
            trigger: trigger.into(),
            payload,
            error: error.name().to_owned(),
            message: error.cause(),
            attempts: 1,
            first_failed_ms: now_ms,
            last_failed_ms: now_ms,
        })
    }

    /// The letter of a workflow of organisation `org`.
    pub fn in_org(mut self, org: impl Into<String>) -> DeadLetter {
        self.org = org.into();
        self
    }

    /// Records another failed attempt: bumps `attempts`, sets the error and `last_failed_ms`.
    pub fn failed_again(&mut self, error: &NodeError, now_ms: i64) {
        self.attempts = self.attempts.saturating_add(1);
        self.error = error.name().to_owned();
        self.message = error.cause();
        self.last_failed_ms = now_ms;
    }
}

/// Where dead letters are kept.
pub trait DeadLetters: Send + Sync {
    /// Stores a letter, replacing one with the same id.
    fn put<'a>(&'a self, letter: DeadLetter) -> BoxFuture<'a, Result<(), NodeError>>;

    /// Up to `limit` letters, oldest first (by `first_failed_ms`, then id); only the workflow's
    /// when `workflow_id` is given.
    fn list<'a>(
        &'a self,
        workflow_id: Option<&'a str>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<DeadLetter>, NodeError>>;

    /// The letter with this id, if there is one.
    fn get<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<DeadLetter>, NodeError>>;

    /// Removes the letter; whether there was one.
    fn remove<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<bool, NodeError>>;
}

/// What [`redrive`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Redrive<T> {
    /// The run started (the start's answer); the letter was removed.
    Started(T),
    /// The start failed again; the letter as it is now stored (attempts bumped, new error).
    Failed(Box<DeadLetter>),
    /// There is no letter with that id.
    NotFound,
}

/// Re-drives one letter: reads it, calls `start` with it (start the run of
/// `letter.workflow_id` with `letter.payload`), then removes it on success or stores it with
/// the failure recorded ([`DeadLetter::failed_again`] at `now_ms`). `Err` only when the store
/// fails.
pub async fn redrive<T, F, Fut>(
    dlq: &dyn DeadLetters,
    id: &str,
    now_ms: i64,
    start: F,
) -> Result<Redrive<T>, NodeError>
where
    F: FnOnce(DeadLetter) -> Fut,
    Fut: Future<Output = Result<T, NodeError>>,
{
    let Some(mut letter) = dlq.get(id).await? else {
        return Ok(Redrive::NotFound);
    };
    match start(letter.clone()).await {
        Ok(started) => {
            dlq.remove(id).await?;
            Ok(Redrive::Started(started))
        }
        Err(e) => {
            letter.failed_again(&e, now_ms);
            dlq.put(letter.clone()).await?;
            Ok(Redrive::Failed(Box::new(letter)))
        }
    }
}

#[cfg(any(test, feature = "test-util"))]
pub use memory::MemoryDeadLetters;

#[cfg(any(test, feature = "test-util"))]
mod memory {
    use super::{DeadLetter, DeadLetters};
    use crate::{BoxFuture, NodeError};
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    /// Dead letters in a map (feature `test-util`).
    #[derive(Debug, Default)]
    pub struct MemoryDeadLetters {
        letters: Mutex<BTreeMap<String, DeadLetter>>,
    }

    impl MemoryDeadLetters {
        fn with<R>(
            &self,
            f: impl FnOnce(&mut BTreeMap<String, DeadLetter>) -> R,
        ) -> Result<R, NodeError> {
            self.letters
                .lock()
                .map(|mut m| f(&mut m))
                .map_err(|_| NodeError::Internal("dead letters poisoned".into()))
        }
    }

    impl DeadLetters for MemoryDeadLetters {
        fn put<'a>(&'a self, letter: DeadLetter) -> BoxFuture<'a, Result<(), NodeError>> {
            let r = self.with(|m| {
                m.insert(letter.id.clone(), letter);
            });
            Box::pin(async move { r })
        }

        fn list<'a>(
            &'a self,
            workflow_id: Option<&'a str>,
            limit: usize,
        ) -> BoxFuture<'a, Result<Vec<DeadLetter>, NodeError>> {
            let r = self.with(|m| {
                let mut v: Vec<DeadLetter> = m
                    .values()
                    .filter(|l| workflow_id.is_none_or(|w| l.workflow_id == w))
                    .cloned()
                    .collect();
                v.sort_by(|a, b| (a.first_failed_ms, &a.id).cmp(&(b.first_failed_ms, &b.id)));
                v.truncate(limit);
                v
            });
            Box::pin(async move { r })
        }

        fn get<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<DeadLetter>, NodeError>> {
            let r = self.with(|m| m.get(id).cloned());
            Box::pin(async move { r })
        }

        fn remove<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<bool, NodeError>> {
            let r = self.with(|m| m.remove(id).is_some());
            Box::pin(async move { r })
        }
    }
}
