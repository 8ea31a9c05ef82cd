//! Control-plane storage for ConcertMaster: narrow ports ([`WorkflowStore`], [`RunStore`],
//! [`FormStore`], [`ConnectionStore`], [`AuditStore`], [`RouteStore`], and [`RouteIndex`] for the
//! embedded scheduler and queue poller) and their adapters:
//! [`memory::MemoryStore`] (tests, fakes), [`sqlite::SqliteStore`] (the embedded default) and,
//! in `cm-store-dynamodb`, DynamoDB (the cloud). `contract` (feature `contract`) is one test
//! suite every adapter runs.
//!
//! Every call is scoped to an organisation (`org`): an item of another organisation is
//! [`StoreError::NotFound`], never visible. Lists are newest first (runs, responses, audit) or
//! by id (workflows) and paged with opaque cursors ([`Page::next_cursor`]). Times are
//! milliseconds since the Unix epoch, given by the caller (the store never reads a clock).
//!
//! The traits use `impl Future + Send` returns, so callers are generic over the adapter (no
//! boxing); adapters implement them with `async fn`.

pub mod memory;
pub mod sqlite;

#[cfg(feature = "contract")]
pub mod contract;

mod cursor;

pub use cursor::{Cursor, parse_record_cursor, record_cursor};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::future::Future;

/// Errors of every adapter.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StoreError {
    /// No such item in this organisation.
    #[error("{what} `{id}` does not exist")]
    NotFound {
        /// What kind of item (`workflow`, `run`, …).
        what: &'static str,
        /// Its id.
        id: String,
    },
    /// The write conflicts with the stored state: the item exists already, or a conditional
    /// write saw another version (optimistic concurrency).
    #[error("{0}")]
    Conflict(String),
    /// The request is malformed for the store (a bad cursor, a limit out of range, an item too
    /// large for the backend).
    #[error("{0}")]
    Invalid(String),
    /// The backend failed (I/O, the database, the network to DynamoDB).
    #[error("storage backend: {0}")]
    Backend(String),
}

impl StoreError {
    /// A stable code (`not_found`, `conflict`, `invalid`, `backend`).
    pub fn code(&self) -> &'static str {
        match self {
            StoreError::NotFound { .. } => "not_found",
            StoreError::Conflict(_) => "conflict",
            StoreError::Invalid(_) => "invalid",
            StoreError::Backend(_) => "backend",
        }
    }

    /// `NotFound` for `what` `id`.
    pub fn not_found(what: &'static str, id: impl Into<String>) -> StoreError {
        StoreError::NotFound {
            what,
            id: id.into(),
        }
    }
}

/// Result of the store.
pub type Result<T> = std::result::Result<T, StoreError>;

/// Largest page a list returns.
pub const MAX_PAGE: usize = 500;

/// One page of a list and the cursor of the next, if there is more.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Opaque cursor for the next page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Checks a page size: 1..=[`MAX_PAGE`].
pub fn check_limit(limit: usize) -> Result<usize> {
    if limit == 0 || limit > MAX_PAGE {
        return Err(StoreError::Invalid(format!(
            "limit must be between 1 and {MAX_PAGE}, got {limit}"
        )));
    }
    Ok(limit)
}

// ---------------------------------------------------------------- workflows

/// A workflow's current state (without its definition).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowSummary {
    /// Workflow id (unique in the organisation).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Description.
    pub description: String,
    /// The newest version (1 when created).
    pub latest_version: u32,
    /// The published version, if any.
    pub published_version: Option<u32>,
    /// What the published version runs as (state machine ARN).
    pub state_machine: Option<String>,
    /// Listed as a template.
    pub is_template: bool,
    /// Created (ms).
    pub created_at_ms: i64,
    /// Created by (subject).
    pub created_by: String,
    /// Last changed (ms).
    pub updated_at_ms: i64,
    /// Last changed by.
    pub updated_by: String,
}

/// One immutable version of a workflow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowVersion {
    /// Workflow id.
    pub workflow_id: String,
    /// Version number (1, 2, …).
    pub version: u32,
    /// The workflow document (JSON) of this version.
    pub definition: Value,
    /// Created (ms).
    pub created_at_ms: i64,
    /// Created by.
    pub created_by: String,
}

/// What creating or updating a workflow writes.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowWrite {
    /// Display name.
    pub name: String,
    /// Description.
    pub description: String,
    /// The workflow document.
    pub definition: Value,
    /// Listed as a template.
    pub is_template: bool,
    /// Who writes.
    pub actor: String,
    /// When (ms).
    pub at_ms: i64,
}

/// Workflow list filter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorkflowQuery {
    /// Case-insensitive substring of the id, name or description.
    pub search: Option<String>,
    /// Only templates (`Some(true)`), only non-templates (`Some(false)`).
    pub templates: Option<bool>,
    /// Cursor from the previous page.
    pub cursor: Option<String>,
    /// Page size (1..=500).
    pub limit: usize,
}

/// Workflows and their immutable versions.
pub trait WorkflowStore: Send + Sync + 'static {
    /// Creates workflow `id` at version 1. An existing (or deleted) id is a `Conflict`.
    fn create_workflow(
        &self,
        org: &str,
        id: &str,
        write: WorkflowWrite,
    ) -> impl Future<Output = Result<WorkflowSummary>> + Send;

    /// The workflow.
    fn get_workflow(
        &self,
        org: &str,
        id: &str,
    ) -> impl Future<Output = Result<WorkflowSummary>> + Send;

    /// Workflows by id.
    fn list_workflows(
        &self,
        org: &str,
        query: WorkflowQuery,
    ) -> impl Future<Output = Result<Page<WorkflowSummary>>> + Send;

    /// Writes a new version. With `expected_version`, the write only happens if it is still
    /// the latest (else `Conflict` naming the latest).
    fn update_workflow(
        &self,
        org: &str,
        id: &str,
        expected_version: Option<u32>,
        write: WorkflowWrite,
    ) -> impl Future<Output = Result<WorkflowSummary>> + Send;

    /// Deletes the workflow (its versions go with it; its id cannot be reused).
    fn delete_workflow(&self, org: &str, id: &str) -> impl Future<Output = Result<()>> + Send;

    /// One version.
    fn get_version(
        &self,
        org: &str,
        id: &str,
        version: u32,
    ) -> impl Future<Output = Result<WorkflowVersion>> + Send;

    /// Versions, newest first.
    fn list_versions(
        &self,
        org: &str,
        id: &str,
        cursor: Option<String>,
        limit: usize,
    ) -> impl Future<Output = Result<Page<WorkflowVersion>>> + Send;

    /// Points the published pointer at `version` (which must exist), recording what it runs
    /// as.
    fn publish(
        &self,
        org: &str,
        id: &str,
        version: u32,
        state_machine: &str,
        actor: &str,
        at_ms: i64,
    ) -> impl Future<Output = Result<WorkflowSummary>> + Send;
}

// ---------------------------------------------------------------- runs

/// Where a run stands (the execution statuses of Step Functions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RunStatus {
    /// Running (or waiting).
    Running,
    /// Finished with an output.
    Succeeded,
    /// Finished with an error.
    Failed,
    /// Hit the machine's timeout.
    TimedOut,
    /// Cancelled.
    Aborted,
}

impl RunStatus {
    /// The status as written (`RUNNING`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "RUNNING",
            RunStatus::Succeeded => "SUCCEEDED",
            RunStatus::Failed => "FAILED",
            RunStatus::TimedOut => "TIMED_OUT",
            RunStatus::Aborted => "ABORTED",
        }
    }

    /// Parses `RUNNING`, ….
    pub fn parse(s: &str) -> Option<RunStatus> {
        [
            RunStatus::Running,
            RunStatus::Succeeded,
            RunStatus::Failed,
            RunStatus::TimedOut,
            RunStatus::Aborted,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }
}

/// One run of a workflow version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunRecord {
    /// Run id (the execution name).
    pub id: String,
    /// The workflow.
    pub workflow_id: String,
    /// The version that runs.
    pub workflow_version: u32,
    /// The execution ARN.
    pub execution_arn: String,
    /// Status.
    pub status: RunStatus,
    /// The trigger type that started it (`trigger.manual`, …).
    pub trigger: String,
    /// Run input.
    pub input: Value,
    /// Output, once succeeded.
    pub output: Option<Value>,
    /// Error name, once failed.
    pub error: Option<String>,
    /// Error cause.
    pub cause: Option<String>,
    /// The client's idempotency key, if it gave one.
    pub idempotency_key: Option<String>,
    /// Who started it.
    pub started_by: String,
    /// Started (ms).
    pub started_at_ms: i64,
    /// Ended (ms).
    pub ended_at_ms: Option<i64>,
    /// The run this one re-runs (redrive/retry), if any.
    pub retry_of: Option<String>,
}

/// What [`RunStore::create_run`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Created<T> {
    /// Stored.
    New(T),
    /// An item with the same idempotency key exists: that one.
    Existing(T),
}

impl<T> Created<T> {
    /// The item either way.
    pub fn into_inner(self) -> T {
        match self {
            Created::New(t) | Created::Existing(t) => t,
        }
    }
}

/// Run list filter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunQuery {
    /// Only this workflow's runs.
    pub workflow_id: Option<String>,
    /// Only runs with this status.
    pub status: Option<RunStatus>,
    /// Cursor.
    pub cursor: Option<String>,
    /// Page size (1..=500).
    pub limit: usize,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub struct RunEnd {
    /// The final status (not `Running`).
    pub status: RunStatus,
    /// Output.
    pub output: Option<Value>,
    /// Error name.
    pub error: Option<String>,
    /// Error cause.
    pub cause: Option<String>,
    /// When (ms).
    pub at_ms: i64,
}

/// One node's visit in a run (for the live view and history).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeExecution {
    /// The node.
    pub node_id: String,
    /// Distinguishes visits of the same node (for-each items, redrives): the engine's step
    /// key.
    pub step: String,
    /// `running`, `succeeded`, `failed`.
    pub status: String,
    /// Started (ms).
    pub started_at_ms: i64,
    /// Ended (ms).
    pub ended_at_ms: Option<i64>,
    /// Output preview (size-capped JSON text).
    pub output_preview: Option<String>,
    /// Error name.
    pub error: Option<String>,
}

/// Runs and their node executions.
pub trait RunStore: Send + Sync + 'static {
    /// Stores a new run. If the run has an idempotency key already used for the same workflow,
    /// nothing is written and the existing run is returned; an existing run id is a `Conflict`.
    fn create_run(
        &self,
        org: &str,
        run: RunRecord,
    ) -> impl Future<Output = Result<Created<RunRecord>>> + Send;

    /// The run.
    fn get_run(&self, org: &str, id: &str) -> impl Future<Output = Result<RunRecord>> + Send;

    /// Runs, newest first.
    fn list_runs(
        &self,
        org: &str,
        query: RunQuery,
    ) -> impl Future<Output = Result<Page<RunRecord>>> + Send;

    /// Records how a running run ended; a run that already ended is a `Conflict`.
    fn finish_run(
        &self,
        org: &str,
        id: &str,
        end: RunEnd,
    ) -> impl Future<Output = Result<RunRecord>> + Send;

    /// Marks an ended run running again (it was redriven: the same execution continues from
    /// where it failed); clears its end, output and error. A running run is a `Conflict`.
    fn reopen_run(&self, org: &str, id: &str) -> impl Future<Output = Result<RunRecord>> + Send;

    /// Inserts or replaces (by node id and step) a node execution of a run — except that a
    /// `running` one does not replace a `succeeded` one (followers that see events late, twice
    /// or concurrently must not move a visit back; that is no error). A failed visit may run
    /// again: a redriven run retries its failed node.
    fn put_node_execution(
        &self,
        org: &str,
        run_id: &str,
        node: NodeExecution,
    ) -> impl Future<Output = Result<()>> + Send;

    /// A run's node executions in start order.
    fn list_node_executions(
        &self,
        org: &str,
        run_id: &str,
    ) -> impl Future<Output = Result<Vec<NodeExecution>>> + Send;
}

// ---------------------------------------------------------------- forms

/// One submission of a form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FormResponse {
    /// Response id.
    pub id: String,
    /// The workflow whose form it is.
    pub workflow_id: String,
    /// The client's idempotency key.
    pub client_key: Option<String>,
    /// The submitted fields.
    pub data: Value,
    /// Submitted (ms).
    pub submitted_at_ms: i64,
    /// The run it started.
    pub run_id: Option<String>,
}

/// Form responses.
pub trait FormStore: Send + Sync + 'static {
    /// Stores a response; a response with the same `client_key` for the same workflow returns
    /// the existing one instead.
    fn add_response(
        &self,
        org: &str,
        response: FormResponse,
    ) -> impl Future<Output = Result<Created<FormResponse>>> + Send;

    /// Records the run a response started.
    fn set_response_run(
        &self,
        org: &str,
        workflow_id: &str,
        response_id: &str,
        run_id: &str,
    ) -> impl Future<Output = Result<()>> + Send;

    /// A workflow's responses, newest first.
    fn list_responses(
        &self,
        org: &str,
        workflow_id: &str,
        cursor: Option<String>,
        limit: usize,
    ) -> impl Future<Output = Result<Page<FormResponse>>> + Send;
}

// ---------------------------------------------------------------- public routes

/// What a public route (a form page, a webhook URL) leads to, or where a published
/// trigger that fires without a request (a schedule, a queue) is found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Route {
    /// `form`, `hook`, `schedule` or `queue`.
    pub kind: String,
    /// The key: a form id, the SHA-256 of a hook's path token; `<org>/<workflow>` for
    /// `schedule` and `queue`.
    pub key: String,
    /// The organisation.
    pub org: String,
    /// The workflow.
    pub workflow_id: String,
}

/// Public routes: how an unauthenticated request finds its organisation and workflow.
pub trait RouteStore: Send + Sync + 'static {
    /// Inserts or replaces a route.
    fn put_route(&self, route: Route) -> impl Future<Output = Result<()>> + Send;
    /// The route of `kind`/`key`.
    fn get_route(&self, kind: &str, key: &str) -> impl Future<Output = Result<Route>> + Send;
    /// Removes a workflow's routes (when it is deleted).
    fn delete_routes(
        &self,
        org: &str,
        workflow_id: &str,
    ) -> impl Future<Output = Result<()>> + Send;
}

/// Routes listed by kind, across organisations: how the embedded scheduler and queue poller
/// find the published `trigger.schedule` and `trigger.queue` workflows (routes of kind
/// `schedule` and `queue`, keyed `<org>/<workflow>`).
///
/// Not part of [`Store`]: the memory and SQLite adapters implement it (one index range), but
/// the DynamoDB adapter keeps each route in a partition of its own, where listing a kind would
/// need a Scan. The cloud does not need it: EventBridge Scheduler and SQS event source mappings
/// fire those triggers there.
pub trait RouteIndex: RouteStore {
    /// Every route of `kind`, by key.
    fn list_routes(&self, kind: &str) -> impl Future<Output = Result<Vec<Route>>> + Send;
}

// ---------------------------------------------------------------- WebSocket connections

/// A live WebSocket connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Connection {
    /// Connection id.
    pub id: String,
    /// Its organisation.
    pub org: String,
    /// Who (token subject).
    pub subject: String,
    /// Connected (ms).
    pub connected_at_ms: i64,
}

/// WebSocket connections and their subscriptions (topics: `run:<id>`, `workflow:<id>`).
pub trait ConnectionStore: Send + Sync + 'static {
    /// Records a connection.
    fn put_connection(&self, connection: Connection) -> impl Future<Output = Result<()>> + Send;
    /// Forgets a connection and its subscriptions (no error if it is gone).
    fn delete_connection(&self, id: &str) -> impl Future<Output = Result<()>> + Send;
    /// The connection `id`, `None` if it is not recorded (a WebSocket message in the cloud
    /// carries only the connection id; its organisation is what every topic check needs).
    fn get_connection(&self, id: &str) -> impl Future<Output = Result<Option<Connection>>> + Send;
    /// Subscribes a connection to a topic of its organisation.
    fn subscribe(&self, id: &str, topic: &str) -> impl Future<Output = Result<()>> + Send;
    /// Unsubscribes.
    fn unsubscribe(&self, id: &str, topic: &str) -> impl Future<Output = Result<()>> + Send;
    /// The connections of `org` subscribed to `topic`.
    fn subscribers(
        &self,
        org: &str,
        topic: &str,
    ) -> impl Future<Output = Result<Vec<Connection>>> + Send;
}

// ---------------------------------------------------------------- audit

/// Who did what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    /// When (ms).
    pub at_ms: i64,
    /// Who (token subject).
    pub actor: String,
    /// What: `workflow.create`, `workflow.update`, `workflow.publish`, `workflow.delete`,
    /// `run.start`, `run.cancel`, `run.redrive`, `approval.decide`, ….
    pub action: String,
    /// What it was done to (`workflow:<id>`, `run:<id>`).
    pub target: String,
    /// Extra facts (version numbers, …).
    pub details: Value,
}

/// The audit log.
pub trait AuditStore: Send + Sync + 'static {
    /// Appends an event.
    fn append(&self, org: &str, event: AuditEvent) -> impl Future<Output = Result<()>> + Send;
    /// Events, newest first.
    fn list_audit(
        &self,
        org: &str,
        cursor: Option<String>,
        limit: usize,
    ) -> impl Future<Output = Result<Page<AuditEvent>>> + Send;
}

/// Every port: what the API needs.
pub trait Store:
    WorkflowStore + RunStore + FormStore + RouteStore + ConnectionStore + AuditStore
{
}

impl<T> Store for T where
    T: WorkflowStore + RunStore + FormStore + RouteStore + ConnectionStore + AuditStore
{
}

// ---------------------------------------------------------------- datasets

/// A record a store node (`action.store`) wrote into a dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DatasetRecord {
    /// The dataset's partition: `<org>#<name>` for workflows published through the API (the
    /// compiler's dataset namespace), the bare name for `concertmaster run`.
    pub dataset: String,
    /// The record's key (unique in its dataset; writing it again replaces the record).
    pub key: String,
    /// The record.
    pub data: Value,
    /// The run (execution ARN) that stored it.
    pub run_id: String,
    /// The node that stored it.
    pub node_id: String,
    /// When (RFC 3339, the state's entered time).
    pub stored_at: String,
}

/// Datasets: written by store nodes (the embedded engine through `cm-local`, Step Functions'
/// `dynamodb:putItem` into the datasets table in the cloud), read by the API.
pub trait DatasetStore: Send + Sync + 'static {
    /// Writes the record at `(dataset, key)`, replacing one there.
    fn put_record(&self, record: DatasetRecord) -> impl Future<Output = Result<()>> + Send;

    /// A dataset's records by key (byte order), after `cursor` ([`record_cursor`]), at most
    /// `limit` (1..=[`MAX_PAGE`]).
    fn list_records(
        &self,
        dataset: &str,
        cursor: Option<String>,
        limit: usize,
    ) -> impl Future<Output = Result<Page<DatasetRecord>>> + Send;
}
