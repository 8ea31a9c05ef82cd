//! Where the engine keeps state machines, executions and their histories.
//!
//! [`Store`] is the narrow port; [`memory::MemoryStore`] (tests, benchmarks, `asl run`) and
//! [`sqlite::SqliteStore`] (the durable default: one file, WAL, group commit) implement it.
//! Writes return an [`Ack`]: the engine awaits it before acting on what it journaled.

pub mod memory;
pub mod sqlite;

use crate::history::HistoryEvent;
use serde_json::Value;
use tokio::sync::oneshot;

/// A store failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The database reported an error (disk full, locked past the busy timeout, corrupt file).
    #[error("database error: {0}")]
    Database(String),
    /// A stored row could not be decoded (written by an incompatible version, or edited by hand).
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
    /// The store's writer has shut down (the engine is closing).
    #[error("the store is closed")]
    Closed,
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Database(e.to_string())
    }
}

/// Completion of a write: ready at once (memory) or after the group commit that holds it.
#[derive(Debug)]
pub enum Ack<T> {
    /// Already done.
    Ready(Result<T, StoreError>),
    /// Done when the writer commits.
    Pending(oneshot::Receiver<Result<T, StoreError>>),
}

impl<T> Ack<T> {
    /// Waits until the write is durable.
    pub async fn wait(self) -> Result<T, StoreError> {
        match self {
            Ack::Ready(r) => r,
            Ack::Pending(rx) => rx.await.unwrap_or(Err(StoreError::Closed)),
        }
    }
}

/// Standard or Express (Express has no `RedriveCount` in its context object and its ARNs
/// differ).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MachineType {
    /// Standard workflow.
    #[default]
    Standard,
    /// Express workflow.
    Express,
}

impl MachineType {
    /// `STANDARD` / `EXPRESS`.
    pub fn as_str(self) -> &'static str {
        match self {
            MachineType::Standard => "STANDARD",
            MachineType::Express => "EXPRESS",
        }
    }

    /// From `STANDARD` / `EXPRESS`.
    pub fn parse(s: &str) -> Option<MachineType> {
        match s {
            "STANDARD" => Some(MachineType::Standard),
            "EXPRESS" => Some(MachineType::Express),
            _ => None,
        }
    }
}

/// A registered state machine (its current revision).
#[derive(Debug, Clone, PartialEq)]
pub struct StateMachineRecord {
    /// `arn:aws:states:<region>:<account>:stateMachine:<name>`.
    pub arn: String,
    /// Name.
    pub name: String,
    /// Workflow type.
    pub machine_type: MachineType,
    /// The ASL definition (JSON text as given).
    pub definition: String,
    /// 1 for the first definition; each update adds one. Executions keep their revision.
    pub revision: u64,
    /// When it was created (ms since the epoch).
    pub created_ms: i64,
}

/// Execution status, as Step Functions names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// Running (or waiting: on a timer, a callback or a retry).
    Running,
    /// Ended in a terminal state.
    Succeeded,
    /// Ended in a failure.
    Failed,
    /// Ran past the state machine's `TimeoutSeconds`.
    TimedOut,
    /// Stopped by StopExecution.
    Aborted,
}

impl Status {
    /// `RUNNING`, `SUCCEEDED`, …
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Running => "RUNNING",
            Status::Succeeded => "SUCCEEDED",
            Status::Failed => "FAILED",
            Status::TimedOut => "TIMED_OUT",
            Status::Aborted => "ABORTED",
        }
    }

    /// From `RUNNING`, `SUCCEEDED`, …
    pub fn parse(s: &str) -> Option<Status> {
        Some(match s {
            "RUNNING" => Status::Running,
            "SUCCEEDED" => Status::Succeeded,
            "FAILED" => Status::Failed,
            "TIMED_OUT" => Status::TimedOut,
            "ABORTED" => Status::Aborted,
            _ => return None,
        })
    }
}

/// An execution.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionRecord {
    /// Engine-wide creation sequence number (listing order, paging cursor, history key).
    pub seq: u64,
    /// `arn:aws:states:<region>:<account>:execution:<machine>:<name>`.
    pub arn: String,
    /// Name (caller-supplied or generated).
    pub name: String,
    /// The state machine.
    pub state_machine_arn: String,
    /// The state machine revision it runs.
    pub revision: u64,
    /// Workflow type.
    pub machine_type: MachineType,
    /// Status.
    pub status: Status,
    /// Input.
    pub input: Value,
    /// Output when it succeeded.
    pub output: Option<Value>,
    /// Error name when it failed, timed out or was aborted.
    pub error: Option<String>,
    /// Cause text.
    pub cause: Option<String>,
    /// Start (ms since the epoch).
    pub start_ms: i64,
    /// Stop (ms since the epoch), once closed.
    pub stop_ms: Option<i64>,
    /// How many times it was redriven.
    pub redrive_count: u32,
    /// The execution that started it (`states:startExecution`), if any.
    pub parent: Option<String>,
}

/// How an execution closes.
#[derive(Debug, Clone, PartialEq)]
pub struct Close {
    /// Terminal status.
    pub status: Status,
    /// Output (succeeded).
    pub output: Option<Value>,
    /// Error name.
    pub error: Option<String>,
    /// Cause.
    pub cause: Option<String>,
    /// When.
    pub stop_ms: i64,
}

/// Result of creating an execution: StartExecution's idempotency needs the existing one.
#[derive(Debug, Clone, PartialEq)]
pub enum Created {
    /// Stored.
    New,
    /// An execution with that name already exists for the state machine; nothing was written.
    Existing(Box<ExecutionRecord>),
}

/// A page request for executions, newest first.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// Only this state machine's executions.
    pub state_machine_arn: Option<String>,
    /// Only executions in this status.
    pub status: Option<Status>,
    /// Only executions created before this sequence number (the paging cursor).
    pub before_seq: Option<u64>,
    /// At most this many.
    pub limit: usize,
}

/// The storage port.
pub trait Store: Send + Sync + 'static {
    /// Creates or updates a state machine (a new revision).
    fn put_state_machine(&self, sm: StateMachineRecord) -> Ack<()>;
    /// The current revision of a state machine.
    fn state_machine(&self, arn: &str) -> Result<Option<StateMachineRecord>, StoreError>;
    /// One revision's definition.
    fn definition(&self, arn: &str, revision: u64) -> Result<Option<String>, StoreError>;
    /// Every state machine, by name.
    fn state_machines(&self) -> Result<Vec<StateMachineRecord>, StoreError>;
    /// Stores a new execution with its first events, unless one with the same name exists
    /// for the state machine (then nothing is written and the existing one is returned).
    fn create_execution(&self, rec: ExecutionRecord, events: Vec<HistoryEvent>) -> Ack<Created>;
    /// Appends events; with `close`, also closes the execution in the same commit.
    fn append(&self, seq: u64, events: Vec<HistoryEvent>, close: Option<Close>) -> Ack<()>;
    /// Reopens a closed execution for a redrive (status RUNNING, redrive count set).
    fn reopen(&self, seq: u64, redrive_count: u32, events: Vec<HistoryEvent>) -> Ack<()>;
    /// An execution by ARN.
    fn execution(&self, arn: &str) -> Result<Option<ExecutionRecord>, StoreError>;
    /// Executions, newest first.
    fn list_executions(&self, q: &ListQuery) -> Result<Vec<ExecutionRecord>, StoreError>;
    /// Events with `id > after` in ascending order (or `id < after` descending when
    /// `reverse`; `after = 0` with `reverse` means from the end), at most `limit`.
    fn events(
        &self,
        seq: u64,
        after: u64,
        limit: usize,
        reverse: bool,
    ) -> Result<Vec<HistoryEvent>, StoreError>;
    /// Executions left RUNNING (to resume after a restart).
    fn running(&self) -> Result<Vec<ExecutionRecord>, StoreError>;
    /// The highest execution sequence number in use.
    fn max_seq(&self) -> Result<u64, StoreError>;
}

/// Deepest JSON the store reads back: far above what the engine writes (values nest at most
/// `cm_asl::payload::MAX_DEPTH` levels, a few more inside an event), far below what would
/// exhaust the stack.
const MAX_STORED_DEPTH: usize = 2_048;

/// Parses JSON text the engine stored. serde_json refuses documents nested more than 128
/// levels by default, but the engine writes deeper ones (outputs up to
/// `cm_asl::payload::MAX_DEPTH` levels, definitions with nested Parallel and Map states), and
/// what it wrote it must read back, or a restart could not resume. The nesting is measured
/// first, without recursion, so that a damaged file cannot overflow the stack.
pub(crate) fn parse_json(text: &str) -> Result<Value, String> {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for b in text.bytes() {
        match (in_string, escaped, b) {
            (true, true, _) => escaped = false,
            (true, false, b'\\') => escaped = true,
            (true, false, b'"') | (false, _, b'"') => in_string = !in_string,
            (false, _, b'[' | b'{') => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            (false, _, b']' | b'}') => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    if deepest > MAX_STORED_DEPTH {
        return Err(format!(
            "nested {deepest} levels deep (at most {MAX_STORED_DEPTH} are read)"
        ));
    }
    let mut de = serde_json::Deserializer::from_str(text);
    de.disable_recursion_limit();
    let v = <Value as serde::Deserialize>::deserialize(&mut de).map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())?;
    Ok(v)
}

#[cfg(test)]
mod contract;
