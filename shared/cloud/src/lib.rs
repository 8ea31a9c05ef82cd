//! ConcertMaster's cloud workers: what turns AWS events into runs and run state, over the same
//! API state (`cm_api::AppState`) the api Lambda serves, on DynamoDB
//! (`cm_store_dynamodb::DynamoStore`) and Step Functions (`cm_runtime_sfn::SfnRuntime`).
//!
//! | module | function | event | does |
//! |---|---|---|---|
//! | [`sqs`] | `trigger-consumer` | SQS batch from the triggers queue | starts the runs of each message's queue triggers; failed messages are reported (`ReportBatchItemFailures`), redelivered, and moved to the dead-letter queue after the last receive |
//! | [`schedule`] | `scheduler` | EventBridge Scheduler target input | starts the run of a schedule tick |
//! | [`run_events`] | `run-events` | EventBridge "Step Functions Execution Status Change" | records a run's end and its node executions (from the execution history) |
//!
//! The handlers are generic over the store and runtime ports, so tests run them over the
//! in-memory store and the embedded engine; [`WorkerConfig`] and [`state`] build the real ones.

pub mod run_events;
pub mod schedule;
pub mod sqs;

use cm_api::auth::TokenKey;
use cm_api::runtime::Runtime;
use cm_api::{ApiConfig, AppState};
use cm_runtime_sfn::{SfnConfig, SfnRuntime};
use cm_store::Store;
use cm_store_dynamodb::DynamoStore;
use std::sync::Arc;

pub use cm_aws::init_tracing;

/// A Lambda error with a stable `errorType` (what alarms and log queries match).
fn diagnostic(error_type: &str, message: impl std::fmt::Display) -> lambda_runtime::Diagnostic {
    lambda_runtime::Diagnostic {
        error_type: error_type.to_owned(),
        error_message: message.to_string(),
    }
}

/// A worker's settings are missing or malformed (the message names the variable).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// The settings the workers share, from their environment.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// `CONCERTMASTER_TABLE`: the control plane's DynamoDB table (required).
    pub table: String,
    /// `CONCERTMASTER_STATE_MACHINE_ARN_PREFIX`:
    /// `arn:aws:states:<region>:<account>:stateMachine:` (required: runs start on
    /// `<prefix><org>.<workflow>`).
    pub state_machine_arn_prefix: String,
    /// `CONCERTMASTER_ENDPOINT_URL` (or `AWS_ENDPOINT_URL`): an emulator for every client.
    pub endpoint_url: Option<String>,
    /// `CONCERTMASTER_STATE_MACHINE_LOG_GROUP_ARN`: the log group state machines log their
    /// executions to (optional): run-events reads an Express execution's history there.
    pub log_group_arn: Option<String>,
}

impl WorkerConfig {
    /// Reads the settings from the process environment.
    pub fn from_env() -> Result<WorkerConfig, ConfigError> {
        WorkerConfig::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads the settings through `get`; empty values count as unset.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<WorkerConfig, ConfigError> {
        let var = |k: &str| {
            get(k)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let table = var("CONCERTMASTER_TABLE").ok_or_else(|| {
            ConfigError("CONCERTMASTER_TABLE is not set: the control plane's DynamoDB table".into())
        })?;
        let prefix = var("CONCERTMASTER_STATE_MACHINE_ARN_PREFIX").ok_or_else(|| {
            ConfigError(
                "CONCERTMASTER_STATE_MACHINE_ARN_PREFIX is not set: arn:aws:states:<region>:<account>:stateMachine:".into(),
            )
        })?;
        if !(prefix.starts_with("arn:") && prefix.ends_with(":stateMachine:")) {
            return Err(ConfigError(format!(
                "CONCERTMASTER_STATE_MACHINE_ARN_PREFIX must look like arn:aws:states:<region>:<account>:stateMachine:, got `{prefix}`"
            )));
        }
        let log_group_arn = var("CONCERTMASTER_STATE_MACHINE_LOG_GROUP_ARN");
        if let Some(arn) = &log_group_arn
            && cm_runtime_sfn::logs::log_group_name(arn).is_none()
        {
            return Err(ConfigError(format!(
                "CONCERTMASTER_STATE_MACHINE_LOG_GROUP_ARN must look like arn:aws:logs:<region>:<account>:log-group:<name>[:*], got `{arn}`"
            )));
        }
        Ok(WorkerConfig {
            table,
            state_machine_arn_prefix: prefix,
            endpoint_url: var("CONCERTMASTER_ENDPOINT_URL").or_else(|| var("AWS_ENDPOINT_URL")),
            log_group_arn,
        })
    }
}

/// The API state over `store` and `runtime` for a worker: built-in node types (run-events
/// compiles versions to map states to nodes), no approvals, no secrets.
///
/// Workers verify no tokens and derive no form or hook ids (only `publish`, in the api
/// function, does), so the state's signing key is a random one of this container.
pub fn state_over<S: Store, R: Runtime>(
    config: &WorkerConfig,
    store: S,
    runtime: R,
) -> AppState<S, R> {
    // Without randomness a fixed key is no worse: nothing is signed or verified with it.
    let key = TokenKey::generate()
        .or_else(|_| TokenKey::new(vec![7; 32]))
        .unwrap_or_else(|_| unreachable!("32 bytes"));
    AppState::new(
        store,
        runtime,
        Arc::new(cm_registry::Registry::builtin()),
        key,
        None,
        cm_api::live::Hub::new(),
        Arc::new(cm_nodes::secrets::LocalSecrets::new()),
        ApiConfig {
            state_machine_arn_prefix: config.state_machine_arn_prefix.clone(),
            ..ApiConfig::default()
        },
    )
}

/// The state of one container: one AWS SDK configuration shared by the DynamoDB and Step
/// Functions clients. Workers register no state machines, so the runtime has no role.
pub async fn state(config: &WorkerConfig) -> AppState<DynamoStore, SfnRuntime> {
    let aws = cm_aws::sdk_config(config.endpoint_url.as_deref()).await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), &config.table);
    let runtime = SfnRuntime::new(
        aws_sdk_sfn::Client::new(&aws),
        SfnConfig {
            role_arn: String::new(),
            state_machine_arn_prefix: config.state_machine_arn_prefix.clone(),
            // Workers start runs on what the api function's publish recorded.
            start_on_alias: true,
            log_group_arn: config.log_group_arn.clone(),
        },
    )
    .with_logs(aws_sdk_cloudwatchlogs::Client::new(&aws));
    state_over(config, store, runtime)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn config_names_what_is_missing_or_malformed() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        let e = WorkerConfig::from_lookup(env(&[])).unwrap_err();
        assert!(e.0.contains("CONCERTMASTER_TABLE"), "{e}");
        let e = WorkerConfig::from_lookup(env(&[("CONCERTMASTER_TABLE", "t")])).unwrap_err();
        assert!(
            e.0.contains("CONCERTMASTER_STATE_MACHINE_ARN_PREFIX"),
            "{e}"
        );
        let e = WorkerConfig::from_lookup(env(&[
            ("CONCERTMASTER_TABLE", "t"),
            ("CONCERTMASTER_STATE_MACHINE_ARN_PREFIX", "nope"),
        ]))
        .unwrap_err();
        assert!(e.0.contains("got `nope`"), "{e}");
        let e = WorkerConfig::from_lookup(env(&[
            ("CONCERTMASTER_TABLE", "t"),
            (
                "CONCERTMASTER_STATE_MACHINE_ARN_PREFIX",
                "arn:aws:states:us-east-1:000000000000:stateMachine:",
            ),
            ("CONCERTMASTER_STATE_MACHINE_LOG_GROUP_ARN", "my-group"),
        ]))
        .unwrap_err();
        assert!(
            e.0.contains("CONCERTMASTER_STATE_MACHINE_LOG_GROUP_ARN") && e.0.contains("my-group"),
            "{e}"
        );
        let c = WorkerConfig::from_lookup(env(&[
            ("CONCERTMASTER_TABLE", "t"),
            (
                "CONCERTMASTER_STATE_MACHINE_ARN_PREFIX",
                "arn:aws:states:us-east-1:000000000000:stateMachine:",
            ),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:4566"),
        ]))
        .expect("config");
        assert_eq!(c.endpoint_url.as_deref(), Some("http://127.0.0.1:4566"));
    }
}
