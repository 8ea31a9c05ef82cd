//! The workflow runtime port: what the API asks of the engine that runs compiled state
//! machines — the embedded engine locally ([`LocalRuntime`]), Step Functions in the cloud.

use crate::error::{ApiError, ApiResult};
use cm_engine::{Engine, HistoryQuery, MachineType};
use serde_json::Value;
use std::future::Future;

/// An execution as the API shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionView {
    /// `RUNNING`, `SUCCEEDED`, `FAILED`, `TIMED_OUT`, `ABORTED`.
    pub status: cm_store::RunStatus,
    /// Output once succeeded.
    pub output: Option<Value>,
    /// Error name.
    pub error: Option<String>,
    /// Cause.
    pub cause: Option<String>,
    /// Stop time (ms).
    pub stop_ms: Option<i64>,
}

/// One history event: engine id (dense from 1), time, Step Functions event type, details.
#[derive(Debug, Clone, PartialEq)]
pub struct RuntimeEvent {
    /// Event id (1, 2, …).
    pub id: u64,
    /// Time (ms).
    pub timestamp_ms: i64,
    /// Step Functions event type (`TaskStateEntered`, …).
    pub kind: String,
    /// The engine's step key.
    pub step: String,
    /// Details (state `name`, `input`/`output`, `error`, `cause`, …).
    pub details: Value,
    /// The AWS-shaped JSON of the event (what the history endpoint returns).
    pub aws: Value,
}

/// The runtime the API drives.
pub trait Runtime: Send + Sync + 'static {
    /// Creates or updates state machine `name` with `definition`; returns its ARN.
    fn register(
        &self,
        name: &str,
        definition: &Value,
        express: bool,
    ) -> impl Future<Output = ApiResult<String>> + Send;

    /// Starts execution `name` of a state machine; returns the execution ARN.
    fn start(
        &self,
        state_machine: &str,
        name: &str,
        input: Value,
    ) -> impl Future<Output = ApiResult<String>> + Send;

    /// Stops an execution (ABORTED).
    fn stop(&self, execution: &str, cause: &str) -> impl Future<Output = ApiResult<()>> + Send;

    /// The execution's status and result.
    fn describe(&self, execution: &str) -> impl Future<Output = ApiResult<ExecutionView>> + Send;

    /// History events with id > `after`, oldest first, at most `limit`.
    fn history(
        &self,
        execution: &str,
        after: u64,
        limit: usize,
    ) -> impl Future<Output = ApiResult<Vec<RuntimeEvent>>> + Send;

    /// [`describe`](Runtime::describe) of a run's execution that started at `started_ms`: a
    /// runtime that has to search for an execution's events (Step Functions' Express
    /// executions, in CloudWatch Logs) bounds the search with it.
    fn describe_run(
        &self,
        execution: &str,
        started_ms: i64,
    ) -> impl Future<Output = ApiResult<ExecutionView>> + Send {
        let _ = started_ms;
        self.describe(execution)
    }

    /// [`history`](Runtime::history) of a run's execution that started at `started_ms` (see
    /// [`describe_run`](Runtime::describe_run)).
    fn history_of_run(
        &self,
        execution: &str,
        started_ms: i64,
        after: u64,
        limit: usize,
    ) -> impl Future<Output = ApiResult<Vec<RuntimeEvent>>> + Send {
        let _ = started_ms;
        self.history(execution, after, limit)
    }

    /// Redrives a failed execution from where it failed.
    fn redrive(&self, execution: &str) -> impl Future<Output = ApiResult<()>> + Send;

    /// Answers a callback task.
    fn send_task_success(
        &self,
        token: &str,
        output: Value,
    ) -> impl Future<Output = ApiResult<()>> + Send;
}

/// The embedded engine as the runtime.
#[derive(Clone)]
pub struct LocalRuntime {
    engine: Engine,
}

impl LocalRuntime {
    /// Over an open engine.
    pub fn new(engine: Engine) -> LocalRuntime {
        LocalRuntime { engine }
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }
}

fn status(s: cm_engine::Status) -> cm_store::RunStatus {
    use cm_store::RunStatus as R;
    match s {
        cm_engine::Status::Running => R::Running,
        cm_engine::Status::Succeeded => R::Succeeded,
        cm_engine::Status::Failed => R::Failed,
        cm_engine::Status::TimedOut => R::TimedOut,
        cm_engine::Status::Aborted => R::Aborted,
    }
}

/// An engine history event as a [`RuntimeEvent`].
pub fn runtime_event(e: &cm_engine::history::HistoryEvent) -> RuntimeEvent {
    RuntimeEvent {
        id: e.id,
        timestamp_ms: e.timestamp_ms,
        kind: e.kind.clone(),
        step: e.step.clone(),
        details: e.details.clone(),
        aws: e.to_aws_json(),
    }
}

impl Runtime for LocalRuntime {
    async fn register(&self, name: &str, definition: &Value, express: bool) -> ApiResult<String> {
        let t = if express {
            MachineType::Express
        } else {
            MachineType::Standard
        };
        Ok(self
            .engine
            .create_state_machine(name, definition, t)
            .await?
            .arn)
    }

    async fn start(&self, state_machine: &str, name: &str, input: Value) -> ApiResult<String> {
        Ok(self
            .engine
            .start_execution(state_machine, Some(name.to_owned()), input)
            .await?
            .execution_arn)
    }

    async fn stop(&self, execution: &str, cause: &str) -> ApiResult<()> {
        self.engine
            .stop_execution(
                execution,
                Some("ConcertMaster.Cancelled".into()),
                Some(cause.to_owned()),
            )
            .await?;
        Ok(())
    }

    async fn describe(&self, execution: &str) -> ApiResult<ExecutionView> {
        let r = self.engine.describe_execution(execution)?;
        Ok(ExecutionView {
            status: status(r.status),
            output: r.output,
            error: r.error,
            cause: r.cause,
            stop_ms: r.stop_ms,
        })
    }

    async fn history(
        &self,
        execution: &str,
        after: u64,
        limit: usize,
    ) -> ApiResult<Vec<RuntimeEvent>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self.engine.get_execution_history(
                execution,
                HistoryQuery {
                    max_results: 1000,
                    next_token: token.as_deref(),
                    reverse: false,
                },
            )?;
            for e in page.events.iter().filter(|e| e.id > after) {
                out.push(runtime_event(e));
                if out.len() >= limit {
                    return Ok(out);
                }
            }
            match page.next_token {
                Some(t) => token = Some(t),
                None => return Ok(out),
            }
        }
    }

    async fn redrive(&self, execution: &str) -> ApiResult<()> {
        self.engine.redrive_execution(execution).await?;
        Ok(())
    }

    async fn send_task_success(&self, token: &str, output: Value) -> ApiResult<()> {
        self.engine
            .send_task_success(token, output)
            .await
            .map_err(ApiError::from)
    }
}
