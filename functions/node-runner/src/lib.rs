//! The node-runner Lambda: runs the node event of a compiled state machine's Task state
//! (`arn:aws:states:::lambda:invoke`, `Payload` = [`NodeEvent`]) with the `cm-nodes` handlers
//! and answers `{"output", "port"}`, or fails with the node error's name as the Lambda
//! `errorType` — what the state's Retry/Catch match.
//!
//! `main.rs` only wires this together: [`init_tracing`], [`Config::from_env`], [`runner`]
//! once per container, then [`handler`] per invocation.
//!
//! With `CONCERTMASTER_TABLE` set, circuit-breaker state and approvals live in the control
//! plane's DynamoDB table ([`DynamoStore`], shared by every container; `flow.approval` parks
//! the run until the API decides). Without it:
//! - circuit-breaker state is per container ([`ContainerBreakerStore`]), not shared;
//! - approvals cannot be recorded ([`NoApprovalStore`]): `flow.approval` fails with
//!   `ConcertMaster.Internal` instead of parking the run.
//!
//! Secrets come from environment variables `CONCERTMASTER_SECRET_<NAME>` only (no SSM
//! Parameter Store / Secrets Manager yet).

use cm_nodes::breaker::{BreakerState, BreakerStore};
use cm_nodes::http::{HttpClient, NetworkPolicy};
use cm_nodes::ports::{ApprovalRequest, Approvals, Secrets};
use cm_nodes::{BoxFuture, NodeError, NodeEvent, NodeRunner, Services};
use cm_store_dynamodb::DynamoStore;
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The prefix of environment variables holding secrets: `{{ secrets.API_TOKEN }}` reads
/// `CONCERTMASTER_SECRET_API_TOKEN` (`-`, `.` and `/` in a name become `_`).
pub const SECRET_ENV_PREFIX: &str = "CONCERTMASTER_SECRET_";

/// How long before the Lambda deadline a node still running is stopped, so that the
/// invocation ends with `ConcertMaster.Timeout` (catchable) rather than being killed.
pub const DEADLINE_MARGIN: Duration = Duration::from_millis(500);

/// The function's settings, from its environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    /// `CONCERTMASTER_APPROVAL_BASE_URL`: base of approval links (`<base>/approvals/<id>`), the
    /// control plane's public URL. Unset: approval links use the library default.
    pub approval_base_url: Option<String>,
    /// `CONCERTMASTER_ALLOW_NETWORKS`: comma-separated CIDRs that outbound requests may reach
    /// even though they are private/loopback/link-local (e.g. a VPC's `10.0.0.0/8`). Empty:
    /// public addresses only.
    pub allow_networks: Vec<String>,
    /// `CONCERTMASTER_SECRETS_PREFIX`: reserved for the SSM / Secrets Manager adapter (the
    /// parameter path prefix, e.g. `/concertmaster/prod/`). Ignored by this build, which
    /// reads secrets from `CONCERTMASTER_SECRET_<NAME>` variables; a warning is logged when
    /// it is set.
    pub secrets_prefix: Option<String>,
    /// `CONCERTMASTER_ENDPOINT_URL` (or `AWS_ENDPOINT_URL`): an emulator for the DynamoDB
    /// client (used with `table`; a warning is logged when it is set without).
    pub endpoint_url: Option<String>,
    /// `CONCERTMASTER_TABLE`: the control plane's DynamoDB table, holding circuit-breaker
    /// state and approvals. Unset: per-container breaker state and no approvals.
    pub table: Option<String>,
}

impl Config {
    /// Reads the settings from the process environment.
    pub fn from_env() -> Result<Config, String> {
        Config::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads the settings through `get` (a variable's value, `None` when unset); empty values
    /// count as unset.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, String> {
        let var = |k: &str| {
            get(k)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let approval_base_url = var("CONCERTMASTER_APPROVAL_BASE_URL");
        if let Some(u) = &approval_base_url
            && !(u.starts_with("https://") || u.starts_with("http://"))
        {
            return Err(format!(
                "CONCERTMASTER_APPROVAL_BASE_URL must be an http(s) URL, got `{u}`"
            ));
        }
        let allow_networks = var("CONCERTMASTER_ALLOW_NETWORKS")
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        Ok(Config {
            approval_base_url,
            allow_networks,
            secrets_prefix: var("CONCERTMASTER_SECRETS_PREFIX"),
            endpoint_url: var("CONCERTMASTER_ENDPOINT_URL").or_else(|| var("AWS_ENDPOINT_URL")),
            table: var("CONCERTMASTER_TABLE"),
        })
    }
}

/// The services of one container without a table: `secrets`, the outbound client with the
/// configured network policy (a bad CIDR is `ConcertMaster.InvalidConfig` naming it),
/// per-container breaker state and no approval store.
pub fn services(config: &Config, secrets: Arc<dyn Secrets>) -> Result<Services, NodeError> {
    services_with(
        config,
        secrets,
        Arc::new(NoApprovalStore),
        Arc::new(ContainerBreakerStore::default()),
    )
}

/// [`services`] over the given approval and breaker stores (with a table: the
/// [`DynamoStore`] for both).
pub fn services_with(
    config: &Config,
    secrets: Arc<dyn Secrets>,
    approvals: Arc<dyn Approvals>,
    breakers: Arc<dyn BreakerStore>,
) -> Result<Services, NodeError> {
    let mut services = Services::new(secrets, approvals, breakers)?;
    services.http = HttpClient::new(NetworkPolicy {
        allow: config.allow_networks.clone(),
    })?;
    if let Some(base) = &config.approval_base_url {
        services.approval_base_url = base.clone();
    }
    Ok(services)
}

/// The runner of one container: every built-in handler with secrets from
/// `CONCERTMASTER_SECRET_<NAME>` variables, over the [`DynamoStore`] of `CONCERTMASTER_TABLE`
/// for breaker state and approvals ([`services_with`]; the SDK client is configured from the
/// environment, without a request) or, without a table, [`services`]. Logs a warning for each
/// setting that is set but not used.
pub async fn runner(config: &Config) -> Result<NodeRunner, NodeError> {
    if let Some(p) = &config.secrets_prefix {
        tracing::warn!(
            secrets_prefix = %p,
            "CONCERTMASTER_SECRETS_PREFIX is set but this build reads secrets from {SECRET_ENV_PREFIX}<NAME> variables only"
        );
    }
    let secrets = Arc::new(cm_nodes::secrets::LocalSecrets::new().with_env(SECRET_ENV_PREFIX));
    let services = match &config.table {
        Some(table) => {
            let client = cm_store_dynamodb::client_from_env(config.endpoint_url.as_deref()).await;
            let store = Arc::new(DynamoStore::new(client, table));
            services_with(config, secrets, store.clone(), store)?
        }
        None => {
            if let Some(u) = &config.endpoint_url {
                tracing::warn!(endpoint_url = %u, "an AWS endpoint URL is set but CONCERTMASTER_TABLE is not: no AWS service is used");
            }
            tracing::warn!(
                "CONCERTMASTER_TABLE is not set: circuit-breaker state is per container and flow.approval cannot record approvals"
            );
            services(config, secrets)?
        }
    };
    Ok(NodeRunner::builtin(services))
}

pub use cm_aws::{init_tracing, log_filter};

/// The Lambda error of a node error: `errorType` is the stable name
/// (`ConcertMaster.Http.5xx`, a plugin's own name, …), `errorMessage` the cause.
pub fn diagnostic(e: &NodeError) -> Diagnostic {
    Diagnostic {
        error_type: e.name().to_owned(),
        error_message: e.cause(),
    }
}

/// Parses a Lambda payload as a node event; a malformed one is `ConcertMaster.InvalidInput`
/// naming the JSON path (`node.type: missing field …`).
pub fn parse_event(payload: Value) -> Result<NodeEvent, NodeError> {
    if !payload.is_object() {
        let got = match payload {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
            Value::Array(_) => "an array",
            Value::Object(_) => "an object",
        };
        return Err(NodeError::InvalidInput(format!(
            "malformed node event: expected an object {{\"node\", \"config\", \"input\", \"context\"}}, got {got}"
        )));
    }
    serde_path_to_error::deserialize(payload).map_err(|e| {
        let path = e.path().to_string();
        let at = if path == "." {
            String::new()
        } else {
            format!(" at `{path}`")
        };
        NodeError::InvalidInput(format!("malformed node event{at}: {}", e.inner()))
    })
}

/// Runs one invocation: parses the payload as a [`NodeEvent`], runs it (stopping it
/// [`DEADLINE_MARGIN`] before the invocation's deadline, as `ConcertMaster.Timeout`; not
/// starting it when less than that is left) and
/// answers `{"output", "port"}`; a failure is the [`diagnostic`] of the node error.
pub async fn handler(runner: &NodeRunner, event: LambdaEvent<Value>) -> Result<Value, Diagnostic> {
    let (payload, context) = event.into_parts();
    let event = parse_event(payload).map_err(|e| {
        tracing::warn!(request_id = %context.request_id, error = e.name(), cause = %e.cause(), "rejected event");
        diagnostic(&e)
    })?;
    let (node_id, node_type, attempt) = (
        event.node.id.clone(),
        event.node.node_type.clone(),
        event.context.attempt,
    );
    let started = std::time::Instant::now();
    let late = || {
        NodeError::Timeout(format!(
            "node `{node_id}` was still running {} ms before the Lambda deadline",
            DEADLINE_MARGIN.as_millis()
        ))
    };
    let result = match time_left(context.deadline) {
        Some(left) if left.is_zero() => Err(late()),
        Some(left) => tokio::time::timeout(left, runner.run(event))
            .await
            .unwrap_or_else(|_| Err(late())),
        None => runner.run(event).await,
    };
    let ms = started.elapsed().as_millis() as u64;
    match result {
        Ok(out) => {
            tracing::info!(request_id = %context.request_id, node = %node_id, node_type = %node_type, attempt, ms, port = %out.port, "node ran");
            serde_json::to_value(out).map_err(|e| {
                diagnostic(&NodeError::Internal(format!(
                    "serialising the answer of node `{node_id}`: {e}"
                )))
            })
        }
        Err(e) => {
            tracing::warn!(request_id = %context.request_id, node = %node_id, node_type = %node_type, attempt, ms, error = e.name(), cause = %e.cause(), "node failed");
            Err(diagnostic(&e))
        }
    }
}

/// Time left before the deadline (ms since the epoch) less the margin; `None` without a
/// deadline (0). A deadline already within the margin leaves no time.
fn time_left(deadline_ms: u64) -> Option<Duration> {
    if deadline_ms == 0 {
        return None;
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let left = Duration::from_millis(deadline_ms.saturating_sub(now));
    Some(left.saturating_sub(DEADLINE_MARGIN))
}

/// Circuit-breaker state in this container's memory. Each warm container counts the
/// failures it sees on its own (a breaker opens once one container saw the threshold), and
/// a cold start forgets. The fallback without `CONCERTMASTER_TABLE` (with it, the state is
/// shared in the table).
#[derive(Debug, Default)]
pub struct ContainerBreakerStore {
    states: Mutex<HashMap<String, BreakerState>>,
}

impl BreakerStore for ContainerBreakerStore {
    fn load<'a>(
        &'a self,
        target: &'a str,
    ) -> BoxFuture<'a, Result<Option<BreakerState>, NodeError>> {
        let r = self
            .states
            .lock()
            .map(|m| m.get(target).cloned())
            .map_err(|_| NodeError::Internal("breaker state lock poisoned".into()));
        Box::pin(async move { r })
    }

    fn save<'a>(
        &'a self,
        target: &'a str,
        state: BreakerState,
    ) -> BoxFuture<'a, Result<(), NodeError>> {
        let r = self
            .states
            .lock()
            .map(|mut m| {
                m.insert(target.to_owned(), state);
            })
            .map_err(|_| NodeError::Internal("breaker state lock poisoned".into()));
        Box::pin(async move { r })
    }
}

/// The approval store of this build: none. Recording a request fails with
/// `ConcertMaster.Internal`, so a `flow.approval` Task fails at once (and its Catch, if any,
/// runs) instead of parking the run on a token that no approval page knows about.
///
/// Returning the request in the Lambda's answer would not help: Step Functions discards the
/// result of a `.waitForTaskToken` invocation. The fallback without `CONCERTMASTER_TABLE`
/// (with it, approvals are recorded in the table).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoApprovalStore;

impl Approvals for NoApprovalStore {
    fn create<'a>(&'a self, request: ApprovalRequest) -> BoxFuture<'a, Result<(), NodeError>> {
        let message = format!(
            "node `{}`: approvals cannot be recorded by this node-runner (CONCERTMASTER_TABLE is not set); approval {} of run {} was not created",
            request.node_id, request.id, request.execution_id
        );
        Box::pin(async move { Err(NodeError::Internal(message)) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_reads_and_checks_the_environment() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        assert_eq!(Config::from_lookup(env(&[])), Ok(Config::default()));
        let c = Config::from_lookup(env(&[
            ("CONCERTMASTER_APPROVAL_BASE_URL", "https://cm.example.com"),
            (
                "CONCERTMASTER_ALLOW_NETWORKS",
                " 10.0.0.0/8, ,127.0.0.1/32 ",
            ),
            ("CONCERTMASTER_SECRETS_PREFIX", "/cm/prod/"),
            ("AWS_ENDPOINT_URL", "http://localhost:4566"),
            ("CONCERTMASTER_TABLE", " concertmaster "),
        ]));
        assert_eq!(
            c,
            Ok(Config {
                approval_base_url: Some("https://cm.example.com".into()),
                allow_networks: vec!["10.0.0.0/8".into(), "127.0.0.1/32".into()],
                secrets_prefix: Some("/cm/prod/".into()),
                endpoint_url: Some("http://localhost:4566".into()),
                table: Some("concertmaster".into()),
            })
        );
        assert!(
            Config::from_lookup(env(&[("CONCERTMASTER_APPROVAL_BASE_URL", "cm.example")])).is_err()
        );
    }

    #[test]
    fn a_bad_network_is_refused_when_building_services() {
        let config = Config {
            allow_networks: vec!["10.0.0.0/33".into()],
            ..Config::default()
        };
        let e = services(&config, Arc::new(cm_nodes::secrets::LocalSecrets::new())).err();
        assert_eq!(
            e.as_ref().map(NodeError::name),
            Some("ConcertMaster.InvalidConfig")
        );
    }

    #[test]
    fn the_deadline_leaves_the_margin() {
        assert_eq!(time_left(0), None);
        assert_eq!(time_left(1), Some(Duration::ZERO));
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let left = time_left(now + 10_000).unwrap_or_default();
        assert!(left > Duration::from_millis(9_000) && left <= Duration::from_millis(9_500));
    }
}
