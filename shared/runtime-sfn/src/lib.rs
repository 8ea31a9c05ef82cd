//! ConcertMaster's workflow runtime in the cloud: [`SfnRuntime`] implements the API's
//! [`Runtime`] port over AWS Step Functions (`aws-sdk-sfn`).
//!
//! | port method | Step Functions |
//! |---|---|
//! | `register` | `DescribeStateMachine`, then `CreateStateMachine` (new) or `UpdateStateMachine` (exists), both publishing a version; `STANDARD`/`EXPRESS`, the configured role; then `UpdateStateMachineAlias` (or `CreateStateMachineAlias` the first time) points alias `live` at that version. Returns the alias ARN, which runs start on: a run keeps the version it started on whatever is published later |
//! | `start` | `StartExecution` (execution name = run id; Express too, asynchronously) |
//! | `stop` | `StopExecution` (`ConcertMaster.Cancelled`) |
//! | `describe` | `DescribeExecution` (output parsed as JSON) |
//! | `history` | `GetExecutionHistory`, every page ([`history`] converts the events) |
//! | `redrive` | `RedriveExecution` |
//! | `send_task_success` | `SendTaskSuccess` |
//!
//! Errors become API errors as [`error::api_error_kind`] says (`ExecutionDoesNotExist` → 404,
//! `ExecutionAlreadyExists` → 409, `InvalidDefinition` → 400, throttling and the rest → 500
//! naming the SDK error).
//!
//! Execution logs: with [`SfnConfig::log_group_arn`] set, every state machine is created and
//! updated with a logging configuration (level `ALL`, execution data included) to that
//! CloudWatch Logs log group. Its records are every history event of every execution
//! ([`logs`]); the run-events function follows them through a subscription filter, which is
//! how node statuses reach the store while a run is in flight.
//!
//! Express executions: Step Functions keeps neither their status nor their history
//! (`DescribeExecution`, `GetExecutionHistory` and `StopExecution` refuse them) and sends no
//! status-change events for them; their history is only in the log group. So `describe` and
//! `history` of an Express execution read the log group (`FilterLogEvents` on the execution's
//! ARN; [`Runtime::describe_run`] and [`Runtime::history_of_run`] bound the search to the five
//! minutes an Express execution can last) when the runtime has a CloudWatch Logs client
//! ([`SfnRuntime::with_logs`]) and a log group; without them, and always for `stop` (AWS cannot
//! stop an Express execution), they are [`SfnError::Express`] (409) without a call. A run's
//! Express execution is only searched for once it cannot be running any more (seven minutes
//! after its start: until then run-events records its end from the log subscription); one
//! whose end is not in the log group by then is reported failed with [`END_NOT_RECORDED`].
//! Each search is a `FilterLogEvents` scan of the group over that window (its quota is per
//! account and region: reading Express histories is not meant for polling).
//!
//! ```no_run
//! # async fn demo() {
//! use cm_runtime_sfn::{SfnConfig, SfnRuntime, sdk_config};
//! let aws = sdk_config(None).await; // share it with the other clients (DynamoDB, …)
//! let runtime = SfnRuntime::new(
//!     aws_sdk_sfn::Client::new(&aws),
//!     SfnConfig {
//!         role_arn: "arn:aws:iam::123456789012:role/concertmaster-states".into(),
//!         state_machine_arn_prefix: "arn:aws:states:eu-west-1:123456789012:stateMachine:".into(),
//!         start_on_alias: true,
//!         log_group_arn: None,
//!     },
//! );
//! # }
//! ```

pub mod error;
pub mod history;
pub mod logs;
pub mod schedules;

pub use error::SfnError;

use aws_sdk_sfn::Client;
use aws_sdk_sfn::types::{
    CloudWatchLogsLogGroup, ExecutionStatus, LogDestination, LogLevel, LoggingConfiguration,
    StateMachineType,
};
use cm_api::error::ApiResult;
use cm_api::runtime::{ExecutionView, Runtime, RuntimeEvent};
use cm_store::RunStatus;
use history::{RawEvent, Steps};
use serde_json::Value;

pub use cm_aws::sdk_config;

/// What [`SfnRuntime`] needs besides the client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SfnConfig {
    /// The IAM role state machines run as (`roleArn` of `CreateStateMachine`, required by
    /// Step Functions): it must allow what compiled workflows call (the node-runner Lambda,
    /// DynamoDB, SQS, child executions).
    pub role_arn: String,
    /// `arn:aws:states:<region>:<account>:stateMachine:` — the ARN of state machine `name`
    /// is this followed by the name (the API's `ApiConfig::state_machine_arn_prefix`).
    pub state_machine_arn_prefix: String,
    /// Runs start on the machine's [`ALIAS`] (the version published last; a run keeps its
    /// version). `false`: on the unqualified machine (its latest revision, which is also the
    /// version published last, since only a publish changes it) — for emulators whose
    /// `StartExecution` takes no alias ARN (moto 5.2.5). Versions and the alias are
    /// published either way.
    pub start_on_alias: bool,
    /// The CloudWatch Logs log group (ARN ending in `:*`) state machines log their executions
    /// to: level `ALL` with execution data, so the log is every history event ([`logs`]).
    /// `None`: no logging configuration (Express executions then have no readable history).
    pub log_group_arn: Option<String>,
}

/// The [`Runtime`] port over AWS Step Functions. Cloning is cheap (the SDK client is
/// reference counted).
#[derive(Debug, Clone)]
pub struct SfnRuntime {
    client: Client,
    config: SfnConfig,
    logs: Option<aws_sdk_cloudwatchlogs::Client>,
}

/// How far before its start an Express execution's records are searched for (clock skew
/// between the API's start time and Step Functions'), and how long after (Express executions
/// last at most five minutes, plus CloudWatch Logs' ingestion).
const EXPRESS_WINDOW_BEFORE_MS: i64 = 60_000;

/// How long a search of the execution log group may take.
const EXPRESS_SEARCH_BUDGET: std::time::Duration = std::time::Duration::from_secs(10);

/// The error of an Express run whose end is not in the execution log group.
pub const END_NOT_RECORDED: &str = "ConcertMaster.EndNotRecorded";
const EXPRESS_WINDOW_AFTER_MS: i64 = 7 * 60_000;

/// The alias every published state machine has: it points at the version published last.
pub const ALIAS: &str = "live";

/// Largest page `GetExecutionHistory` returns.
const HISTORY_PAGE: i32 = 1000;

/// The error name a cancelled execution stops with (as the embedded runtime's).
pub const CANCELLED_ERROR: &str = "ConcertMaster.Cancelled";

fn is_express(execution_arn: &str) -> bool {
    execution_arn.split(':').nth(5) == Some("express")
}

fn ms(t: &aws_sdk_sfn::primitives::DateTime) -> Option<i64> {
    t.to_millis().ok()
}

fn run_status(s: &ExecutionStatus) -> Result<RunStatus, SfnError> {
    Ok(match s {
        ExecutionStatus::Running | ExecutionStatus::PendingRedrive => RunStatus::Running,
        ExecutionStatus::Succeeded => RunStatus::Succeeded,
        ExecutionStatus::Failed => RunStatus::Failed,
        ExecutionStatus::TimedOut => RunStatus::TimedOut,
        ExecutionStatus::Aborted => RunStatus::Aborted,
        other => {
            return Err(SfnError::Unexpected {
                op: "DescribeExecution",
                message: format!("unknown execution status `{}`", other.as_str()),
            });
        }
    })
}

impl SfnRuntime {
    /// A runtime over `client`.
    pub fn new(client: Client, config: SfnConfig) -> SfnRuntime {
        SfnRuntime {
            client,
            config,
            logs: None,
        }
    }

    /// Reads Express executions' status and history from the log group of
    /// [`SfnConfig::log_group_arn`] with `logs` (`FilterLogEvents`).
    pub fn with_logs(mut self, logs: aws_sdk_cloudwatchlogs::Client) -> SfnRuntime {
        self.logs = Some(logs);
        self
    }

    /// The logging configuration state machines get (none without a log group).
    fn logging(&self) -> Result<Option<LoggingConfiguration>, SfnError> {
        let Some(arn) = &self.config.log_group_arn else {
            return Ok(None);
        };
        // Step Functions wants the ARN of the log group's streams.
        let arn = if arn.ends_with(":*") {
            arn.clone()
        } else {
            format!("{arn}:*")
        };
        Ok(Some(
            LoggingConfiguration::builder()
                .level(LogLevel::All)
                .include_execution_data(true)
                .destinations(
                    LogDestination::builder()
                        .cloud_watch_logs_log_group(
                            CloudWatchLogsLogGroup::builder().log_group_arn(arn).build(),
                        )
                        .build(),
                )
                .build(),
        ))
    }

    /// The log records of Express execution `execution`, in id order (`op` names the port
    /// operation in errors). Without a log group or client: [`SfnError::Express`].
    async fn express_events(
        &self,
        op: &'static str,
        execution: &str,
        started_ms: Option<i64>,
    ) -> Result<Vec<RawEvent>, SfnError> {
        let group = self
            .config
            .log_group_arn
            .as_deref()
            .and_then(logs::log_group_name);
        let (Some(client), Some(group)) = (&self.logs, group) else {
            return Err(SfnError::Express {
                op,
                execution: execution.to_owned(),
                reason: error::NO_LOG_GROUP,
            });
        };
        let mut records = Vec::new();
        let mut token: Option<String> = None;
        // Pages of a busy group can be many (and empty, with a next token): the callers
        // (a request, a Lambda invocation) have seconds, not minutes.
        let began = std::time::Instant::now();
        let mut pages = 0;
        loop {
            if began.elapsed() > EXPRESS_SEARCH_BUDGET {
                return Err(SfnError::Logs {
                    op: "FilterLogEvents",
                    detail: format!(
                        "the search for `{execution}` did not finish within {} s ({pages} pages)",
                        EXPRESS_SEARCH_BUDGET.as_secs()
                    ),
                });
            }
            pages += 1;
            let page = client
                .filter_log_events()
                .log_group_name(group)
                .filter_pattern(format!("{{ $.execution_arn = \"{execution}\" }}"))
                .set_start_time(started_ms.map(|t| t - EXPRESS_WINDOW_BEFORE_MS))
                .set_end_time(started_ms.map(|t| t + EXPRESS_WINDOW_AFTER_MS))
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| SfnError::from_logs_sdk("FilterLogEvents", e))?;
            for e in page.events() {
                // Other records (other executions where the filter is not applied, e.g. by an
                // emulator) are skipped; so are malformed ones.
                if let Some(m) = e.message()
                    && let Ok(r) = logs::parse_record(m, e.timestamp().unwrap_or_default())
                {
                    records.push(r);
                }
            }
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                _ => break,
            }
        }
        Ok(logs::execution_events(records, execution))
    }

    /// An Express execution's status from its log records: its end, else running.
    ///
    /// For a run (its start known), the records are only searched once the execution cannot
    /// be running any more (its five minutes and the logs' delivery are over): until then
    /// run-events records the end from the log subscription, and a search on every read of
    /// the run would be a `FilterLogEvents` scan each. An execution with no end in its
    /// records by then lost it (it ran before logging was configured, or the record was not
    /// delivered): it is reported failed, `ConcertMaster.EndNotRecorded`, so that its run
    /// does not stay running for good.
    async fn express_view(
        &self,
        execution: &str,
        started_ms: Option<i64>,
    ) -> Result<ExecutionView, SfnError> {
        let running = ExecutionView {
            status: RunStatus::Running,
            output: None,
            error: None,
            cause: None,
            stop_ms: None,
        };
        let now = cm_api::routes::now_ms();
        if started_ms.is_some_and(|t| now < t + EXPRESS_WINDOW_AFTER_MS) {
            return Ok(running);
        }
        let events = self
            .express_events("DescribeExecution", execution, started_ms)
            .await?;
        let Some(end) = events.iter().find(|e| logs::is_terminal(&e.kind)) else {
            return Ok(match started_ms {
                Some(t) => ExecutionView {
                    status: RunStatus::Failed,
                    output: None,
                    error: Some(END_NOT_RECORDED.into()),
                    cause: Some(
                        "no end of this Express execution is in the execution log group, and Express executions last at most five minutes: it ran before logging was configured, or its end record was not delivered".into(),
                    ),
                    stop_ms: Some(t + EXPRESS_WINDOW_AFTER_MS),
                },
                None => running,
            });
        };
        Ok(logs::execution_end(end))
    }

    /// An Express execution's history from its log records.
    async fn express_history(
        &self,
        execution: &str,
        started_ms: Option<i64>,
        after: u64,
        limit: usize,
    ) -> Result<Vec<RuntimeEvent>, SfnError> {
        let events = self
            .express_events("GetExecutionHistory", execution, started_ms)
            .await?;
        let mut steps = Steps::new();
        Ok(events
            .into_iter()
            .map(|e| steps.event(e))
            .filter(|e| e.id > after)
            .take(limit)
            .collect())
    }

    /// The SDK client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The settings.
    pub fn config(&self) -> &SfnConfig {
        &self.config
    }

    /// The ARN of state machine `name`.
    pub fn state_machine_arn(&self, name: &str) -> String {
        format!("{}{name}", self.config.state_machine_arn_prefix)
    }

    async fn register_inner(
        &self,
        name: &str,
        definition: &Value,
        express: bool,
    ) -> Result<String, SfnError> {
        let wanted = if express {
            StateMachineType::Express
        } else {
            StateMachineType::Standard
        };
        let arn = self.state_machine_arn(name);
        let text = definition.to_string();
        // Describe first: `CreateStateMachine` of an existing name answers
        // `StateMachineAlreadyExists` on AWS (unless nothing changed) but silently keeps the
        // old definition on some emulators, and neither says whether the type differs.
        let existing = match self
            .client
            .describe_state_machine()
            .state_machine_arn(&arn)
            .send()
            .await
        {
            Ok(d) => Some(d.r#type().clone()),
            Err(e) => {
                let e = SfnError::from_sdk("DescribeStateMachine", e);
                if e.code() != Some("StateMachineDoesNotExist") {
                    return Err(e);
                }
                None
            }
        };
        if existing.is_none() {
            let created = self
                .client
                .create_state_machine()
                .name(name)
                .definition(&text)
                .role_arn(&self.config.role_arn)
                .r#type(wanted.clone())
                .set_logging_configuration(self.logging()?)
                .publish(true)
                .send()
                .await;
            match created {
                Ok(c) => {
                    let version =
                        c.state_machine_version_arn()
                            .ok_or_else(|| SfnError::Unexpected {
                                op: "CreateStateMachine",
                                message: "published no version".into(),
                            })?;
                    return self.point_alias(&arn, version).await;
                }
                // Created meanwhile by a concurrent publish: update it below.
                Err(e) => {
                    let e = SfnError::from_sdk("CreateStateMachine", e);
                    if e.code() != Some("StateMachineAlreadyExists") {
                        return Err(e);
                    }
                }
            }
        }
        if let Some(t) = existing
            && t != wanted
        {
            return Err(SfnError::TypeChange {
                name: name.to_owned(),
                existing: t.as_str().to_owned(),
                wanted: wanted.as_str().to_owned(),
            });
        }
        let updated = self
            .client
            .update_state_machine()
            .state_machine_arn(&arn)
            .definition(&text)
            .role_arn(&self.config.role_arn)
            .set_logging_configuration(self.logging()?)
            .publish(true)
            .send()
            .await
            .map_err(|e| SfnError::from_sdk("UpdateStateMachine", e))?;
        let version = updated
            .state_machine_version_arn()
            .ok_or_else(|| SfnError::Unexpected {
                op: "UpdateStateMachine",
                message: "published no version".into(),
            })?;
        self.point_alias(&arn, version).await
    }

    /// Points the machine's [`ALIAS`] at `version` (creating the alias the first time) and
    /// returns what runs start on — the alias ARN unless [`SfnConfig::start_on_alias`] is off:
    /// runs start on the alias, so each runs the version published
    /// when it started, and a new publish never changes a run in flight.
    async fn point_alias(&self, machine_arn: &str, version: &str) -> Result<String, SfnError> {
        let alias_arn = self.point_alias_inner(machine_arn, version).await?;
        Ok(if self.config.start_on_alias {
            alias_arn
        } else {
            machine_arn.to_owned()
        })
    }

    async fn point_alias_inner(
        &self,
        machine_arn: &str,
        version: &str,
    ) -> Result<String, SfnError> {
        let alias_arn = format!("{machine_arn}:{ALIAS}");
        let route = aws_sdk_sfn::types::RoutingConfigurationListItem::builder()
            .state_machine_version_arn(version)
            .weight(100)
            .build()
            .map_err(|e| SfnError::Unexpected {
                op: "UpdateStateMachineAlias",
                message: e.to_string(),
            })?;
        let updated = self
            .client
            .update_state_machine_alias()
            .state_machine_alias_arn(&alias_arn)
            .routing_configuration(route.clone())
            .send()
            .await;
        match updated {
            Ok(_) => Ok(alias_arn),
            Err(e) => {
                let e = SfnError::from_sdk("UpdateStateMachineAlias", e);
                if e.code() != Some("ResourceNotFound") {
                    return Err(e);
                }
                let created = self
                    .client
                    .create_state_machine_alias()
                    .name(ALIAS)
                    .routing_configuration(route)
                    .send()
                    .await
                    .map_err(|e| SfnError::from_sdk("CreateStateMachineAlias", e))?;
                Ok(created.state_machine_alias_arn().to_owned())
            }
        }
    }

    async fn describe_inner(
        &self,
        execution: &str,
        started_ms: Option<i64>,
    ) -> Result<ExecutionView, SfnError> {
        if is_express(execution) {
            return self.express_view(execution, started_ms).await;
        }
        let d = self
            .client
            .describe_execution()
            .execution_arn(execution)
            .send()
            .await
            .map_err(|e| SfnError::from_sdk("DescribeExecution", e))?;
        let output = d
            .output()
            .map(|t| serde_json::from_str(t).unwrap_or_else(|_| Value::String(t.to_owned())));
        Ok(ExecutionView {
            status: run_status(d.status())?,
            output,
            error: d.error().map(str::to_owned),
            cause: d.cause().map(str::to_owned),
            stop_ms: d.stop_date().and_then(ms),
        })
    }

    async fn history_inner(
        &self,
        execution: &str,
        started_ms: Option<i64>,
        after: u64,
        limit: usize,
    ) -> Result<Vec<RuntimeEvent>, SfnError> {
        if is_express(execution) {
            return self
                .express_history(execution, started_ms, after, limit)
                .await;
        }
        // Steps are derived from the events before `after` too, so every page from the
        // first is read (until `limit` events after `after` are in).
        let mut steps = Steps::new();
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .get_execution_history()
                .execution_arn(execution)
                .max_results(HISTORY_PAGE)
                .include_execution_data(true)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| SfnError::from_sdk("GetExecutionHistory", e))?;
            for e in page.events() {
                let ev = steps.event(RawEvent::from_sdk(e));
                if ev.id > after {
                    out.push(ev);
                    if out.len() >= limit {
                        return Ok(out);
                    }
                }
            }
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                _ => return Ok(out),
            }
        }
    }
}

impl Runtime for SfnRuntime {
    async fn register(&self, name: &str, definition: &Value, express: bool) -> ApiResult<String> {
        Ok(self.register_inner(name, definition, express).await?)
    }

    async fn start(&self, state_machine: &str, name: &str, input: Value) -> ApiResult<String> {
        let started = self
            .client
            .start_execution()
            .state_machine_arn(state_machine)
            .name(name)
            .input(input.to_string())
            .send()
            .await
            .map_err(|e| SfnError::from_sdk("StartExecution", e))?;
        Ok(started.execution_arn().to_owned())
    }

    async fn stop(&self, execution: &str, cause: &str) -> ApiResult<()> {
        if is_express(execution) {
            return Err(SfnError::Express {
                op: "StopExecution",
                execution: execution.to_owned(),
                reason: error::NO_EXPRESS_STOP,
            }
            .into());
        }
        self.client
            .stop_execution()
            .execution_arn(execution)
            .error(CANCELLED_ERROR)
            .cause(cause)
            .send()
            .await
            .map_err(|e| SfnError::from_sdk("StopExecution", e))?;
        Ok(())
    }

    async fn describe(&self, execution: &str) -> ApiResult<ExecutionView> {
        Ok(self.describe_inner(execution, None).await?)
    }

    async fn describe_run(&self, execution: &str, started_ms: i64) -> ApiResult<ExecutionView> {
        Ok(self.describe_inner(execution, Some(started_ms)).await?)
    }

    async fn history(
        &self,
        execution: &str,
        after: u64,
        limit: usize,
    ) -> ApiResult<Vec<RuntimeEvent>> {
        Ok(self.history_inner(execution, None, after, limit).await?)
    }

    async fn history_of_run(
        &self,
        execution: &str,
        started_ms: i64,
        after: u64,
        limit: usize,
    ) -> ApiResult<Vec<RuntimeEvent>> {
        Ok(self
            .history_inner(execution, Some(started_ms), after, limit)
            .await?)
    }

    async fn redrive(&self, execution: &str) -> ApiResult<()> {
        self.client
            .redrive_execution()
            .execution_arn(execution)
            .send()
            .await
            .map_err(|e| SfnError::from_sdk("RedriveExecution", e))?;
        Ok(())
    }

    async fn send_task_success(&self, token: &str, output: Value) -> ApiResult<()> {
        self.client
            .send_task_success()
            .task_token(token)
            .output(output.to_string())
            .send()
            .await
            .map_err(|e| SfnError::from_sdk("SendTaskSuccess", e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn statuses_map_to_run_statuses() {
        assert_eq!(
            run_status(&ExecutionStatus::Running).unwrap(),
            RunStatus::Running
        );
        assert_eq!(
            run_status(&ExecutionStatus::PendingRedrive).unwrap(),
            RunStatus::Running
        );
        assert_eq!(
            run_status(&ExecutionStatus::Succeeded).unwrap(),
            RunStatus::Succeeded
        );
        assert_eq!(
            run_status(&ExecutionStatus::Failed).unwrap(),
            RunStatus::Failed
        );
        assert_eq!(
            run_status(&ExecutionStatus::TimedOut).unwrap(),
            RunStatus::TimedOut
        );
        assert_eq!(
            run_status(&ExecutionStatus::Aborted).unwrap(),
            RunStatus::Aborted
        );
        assert!(run_status(&ExecutionStatus::from("NEW_STATUS")).is_err());
    }

    #[test]
    fn express_arns_are_recognised() {
        assert!(is_express(
            "arn:aws:states:us-east-1:123456789012:express:acme.wf:run-1:5f1c"
        ));
        assert!(!is_express(
            "arn:aws:states:us-east-1:123456789012:execution:acme.wf:run-1"
        ));
    }

    /// Express executions are refused before any request (the client points nowhere).
    #[tokio::test]
    async fn express_executions_have_no_status_or_history_here() {
        let aws = sdk_config(Some("http://127.0.0.1:9")).await;
        let rt = SfnRuntime::new(
            Client::new(&aws),
            SfnConfig {
                role_arn: "arn:aws:iam::123456789012:role/r".into(),
                state_machine_arn_prefix: "arn:aws:states:us-east-1:123456789012:stateMachine:"
                    .into(),
                start_on_alias: true,
                log_group_arn: None,
            },
        );
        let arn = "arn:aws:states:us-east-1:123456789012:express:acme.wf:run-1:5f1c";
        for e in [
            rt.describe(arn).await.unwrap_err(),
            rt.history(arn, 0, 10).await.unwrap_err(),
            rt.stop(arn, "c").await.unwrap_err(),
        ] {
            assert!(
                matches!(&e, cm_api::error::ApiError::Conflict(m) if m.contains("Express")),
                "{e:?}"
            );
        }
        assert_eq!(
            rt.state_machine_arn("acme.wf"),
            "arn:aws:states:us-east-1:123456789012:stateMachine:acme.wf"
        );
    }
}
