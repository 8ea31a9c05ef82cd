//! The api Lambda: the `cm-api` router behind API Gateway (HTTP API, payload format 2.0) over
//! the DynamoDB store ([`DynamoStore`]) and Step Functions ([`SfnRuntime`]).
//!
//! `main.rs` only wires this together: [`init_tracing`], [`Config::from_env`], [`app`] once
//! per container (one AWS SDK configuration shared by the DynamoDB and Step Functions
//! clients), then `lambda_http::run`.
//!
//! # Who the caller is
//!
//! Behind an API Gateway **JWT authorizer** (e.g. Cognito), the request context carries the
//! verified token's claims (`requestContext.authorizer.jwt.claims`); [`router`] turns them
//! into the [`Caller`] request extension, which the API's extractor takes over any
//! `Authorization` header:
//!
//! | claim | meaning |
//! |---|---|
//! | `sub` | the subject (audit, approvers) — required |
//! | `custom:org`, else `org` | the organisation: 1–15 of `a-z`, `0-9`, `-` — required |
//! | `custom:role`, else `role` | `viewer`, `editor` or `admin`; absent: `viewer` |
//!
//! Claims that are present but do not make a caller (no `sub`, no or a bad organisation, an
//! unknown role) are a 401 naming what is wrong. A request without authorizer claims (routes
//! without the authorizer: forms, hooks, health, OpenAPI; or a deployment without one) is
//! left to the router: public routes answer, the others verify an HS256 bearer token with the
//! configured signing key as `concertmaster dev` does.
//!
//! Deploy the HTTP API on its `$default` stage (or set `AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH`):
//! with a named stage `lambda_http` prefixes paths with it and no route matches.
//!
//! # Approvals
//!
//! [`app`] gives the state an approval desk ([`approvals::DynamoApprovals`]): the approvals
//! the node-runner's `flow.approval` records in the table (when it has `CONCERTMASTER_TABLE`)
//! are listed, read and decided through `/v1/approvals…`, and a decision resumes the run with
//! Step Functions' `SendTaskSuccess`. [`state`] alone (tests over other stores) has none, and
//! those routes answer 404 "approvals are not available in this deployment".
//!
//! # Not in this deployment yet
//!
//! - Live status: `GET /ws` does not work through an HTTP API; the cloud's live status is the
//!   WebSocket API's functions. Without a follower of executions, a run's end is recorded when
//!   it is read (`GET /v1/runs/{id}` asks Step Functions), and node executions
//!   (`/v1/runs/{id}/nodes`) stay empty.
//! - Dead letters and local queues: none in the state, so `/v1/dead-letters…` and
//!   `/v1/queues/{queue}/messages` answer 404; a webhook call or form submission whose run
//!   cannot start is answered with the error but not kept.
//! - Webhook HMAC secrets come from `CONCERTMASTER_SECRET_<NAME>` variables, as in the
//!   node-runner (no Secrets Manager adapter yet).

use axum::Router;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use cm_api::approvals::ApprovalDesk;
use cm_api::auth::{Caller, Role, TokenKey};
use cm_api::error::ApiError;
use cm_api::runtime::Runtime;
use cm_api::{ApiConfig, AppState};
use cm_runtime_sfn::{SfnConfig, SfnRuntime};
use cm_store::Store;
use cm_store_dynamodb::DynamoStore;
use lambda_http::request::RequestContext;
use std::collections::HashMap;
use std::sync::Arc;

pub mod approvals;

/// The prefix of environment variables holding secrets (webhook HMAC keys):
/// `CONCERTMASTER_SECRET_<NAME>`.
pub const SECRET_ENV_PREFIX: &str = "CONCERTMASTER_SECRET_";

/// Claims naming the organisation, in order of preference.
pub const ORG_CLAIMS: [&str; 2] = ["custom:org", "org"];

/// Claims naming the role, in order of preference.
pub const ROLE_CLAIMS: [&str; 2] = ["custom:role", "role"];

/// This crate's errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting is missing or malformed (the message names the variable).
    #[error("{0}")]
    Config(String),
}

/// The function's settings, from its environment.
#[derive(Debug, Clone)]
pub struct Config {
    /// `CONCERTMASTER_TABLE`: the DynamoDB table of the control plane (required).
    pub table: String,
    /// `CONCERTMASTER_STATE_MACHINE_ROLE_ARN`: the IAM role state machines run as (required:
    /// Step Functions needs one to create a state machine).
    pub state_machine_role_arn: String,
    /// `CONCERTMASTER_STATE_MACHINE_ARN_PREFIX`:
    /// `arn:aws:states:<region>:<account>:stateMachine:` (required).
    pub state_machine_arn_prefix: String,
    /// `CONCERTMASTER_PUBLIC_URL`: the URL clients reach the API at (form and hook URLs;
    /// required, http(s)).
    pub public_url: String,
    /// `CONCERTMASTER_SIGNING_KEY`: base64 of at least 32 bytes, or
    /// `CONCERTMASTER_SIGNING_KEY_SECRET_ARN`: the Secrets Manager secret holding that text,
    /// read once at cold start by [`Config::load`] (one of them is required; the stack uses
    /// the secret). It signs live tickets, verifies HS256 bearer tokens where no authorizer is
    /// in front, and keys hook tokens and form ids, so every container must have the same one.
    pub signing_key: TokenKey,
    /// `CONCERTMASTER_START_ON_ALIAS`: `false` starts runs on the unqualified state machine
    /// instead of its `live` alias (for emulators without aliases in `StartExecution`, such
    /// as moto); default `true`.
    pub start_on_alias: bool,
    /// EventBridge Scheduler for schedule triggers: `CONCERTMASTER_SCHEDULER_TARGET_ARN` (the
    /// scheduler function), `CONCERTMASTER_SCHEDULER_ROLE_ARN` (the role Scheduler invokes it
    /// as), `CONCERTMASTER_SCHEDULE_GROUP` (default `concertmaster`) and optionally
    /// `CONCERTMASTER_SCHEDULER_DLQ_ARN`. Unset: publishing a schedule trigger makes no
    /// schedule (logged), so such workflows only run when started by hand.
    pub schedules: Option<cm_runtime_sfn::schedules::SchedulesConfig>,
    /// `CONCERTMASTER_BUILDER_URL`: where the builder is hosted (CloudFront); publishing a
    /// form workflow then returns its page `<url>/forms/<id>`. Optional.
    pub builder_url: Option<String>,
    /// `CONCERTMASTER_ENDPOINT_URL` (or `AWS_ENDPOINT_URL`): an emulator for every AWS client.
    pub endpoint_url: Option<String>,
    /// `CONCERTMASTER_STATE_MACHINE_LOG_GROUP_ARN`: the CloudWatch Logs log group state
    /// machines log every execution event to (optional). Set, publishing configures logging,
    /// and an Express run's status and history are read from it; unset, Express runs stay
    /// `RUNNING` and have no history in the API.
    pub state_machine_log_group_arn: Option<String>,
    /// Compile options: `CONCERTMASTER_NODE_RUNNER_FUNCTION`, `CONCERTMASTER_DATASETS_TABLE`,
    /// `CONCERTMASTER_QUEUE_URL_PREFIX` (each optional, the compiler's defaults otherwise).
    pub compile: cm_compiler::CompileOptions,
}

impl Config {
    /// Reads the settings from the process environment.
    pub fn from_env() -> Result<Config, Error> {
        Config::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads the settings through `get` (a variable's value, `None` when unset); empty values
    /// count as unset.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, Error> {
        let var = |k: &str| {
            get(k)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let required = |k: &str, what: &str| {
            var(k).ok_or_else(|| Error::Config(format!("{k} is not set: {what}")))
        };
        let table = required("CONCERTMASTER_TABLE", "the control plane's DynamoDB table")?;
        let state_machine_role_arn = required(
            "CONCERTMASTER_STATE_MACHINE_ROLE_ARN",
            "the IAM role ARN state machines run as",
        )?;
        if !state_machine_role_arn.starts_with("arn:") {
            return Err(Error::Config(format!(
                "CONCERTMASTER_STATE_MACHINE_ROLE_ARN must be an IAM role ARN, got `{state_machine_role_arn}`"
            )));
        }
        let state_machine_arn_prefix = required(
            "CONCERTMASTER_STATE_MACHINE_ARN_PREFIX",
            "arn:aws:states:<region>:<account>:stateMachine:",
        )?;
        if !(state_machine_arn_prefix.starts_with("arn:")
            && state_machine_arn_prefix.ends_with(":stateMachine:"))
        {
            return Err(Error::Config(format!(
                "CONCERTMASTER_STATE_MACHINE_ARN_PREFIX must look like arn:aws:states:<region>:<account>:stateMachine:, got `{state_machine_arn_prefix}`"
            )));
        }
        let public_url = required("CONCERTMASTER_PUBLIC_URL", "the API's public URL")?;
        if !(public_url.starts_with("https://") || public_url.starts_with("http://")) {
            return Err(Error::Config(format!(
                "CONCERTMASTER_PUBLIC_URL must be an http(s) URL, got `{public_url}`"
            )));
        }
        let key = required(
            "CONCERTMASTER_SIGNING_KEY",
            "base64 of at least 32 random bytes (e.g. `openssl rand -base64 32`), or CONCERTMASTER_SIGNING_KEY_SECRET_ARN naming a Secrets Manager secret that holds it",
        )?;
        let signing_key = TokenKey::from_base64(&key)
            .map_err(|e| Error::Config(format!("CONCERTMASTER_SIGNING_KEY: {e}")))?;
        let state_machine_log_group_arn = var("CONCERTMASTER_STATE_MACHINE_LOG_GROUP_ARN");
        if let Some(arn) = &state_machine_log_group_arn
            && cm_runtime_sfn::logs::log_group_name(arn).is_none()
        {
            return Err(Error::Config(format!(
                "CONCERTMASTER_STATE_MACHINE_LOG_GROUP_ARN must look like arn:aws:logs:<region>:<account>:log-group:<name>[:*], got `{arn}`"
            )));
        }
        let defaults = cm_compiler::CompileOptions::default();
        let compile = cm_compiler::CompileOptions {
            node_runner_function: var("CONCERTMASTER_NODE_RUNNER_FUNCTION")
                .unwrap_or(defaults.node_runner_function),
            datasets_table: var("CONCERTMASTER_DATASETS_TABLE").unwrap_or(defaults.datasets_table),
            dataset_namespace: None,
            queue_url_prefix: var("CONCERTMASTER_QUEUE_URL_PREFIX")
                .unwrap_or(defaults.queue_url_prefix),
            state_machine_arn_prefix: state_machine_arn_prefix.clone(),
        };
        Ok(Config {
            table,
            state_machine_role_arn,
            state_machine_arn_prefix,
            public_url,
            signing_key,
            start_on_alias: match var("CONCERTMASTER_START_ON_ALIAS").as_deref() {
                None | Some("true") => true,
                Some("false") => false,
                Some(other) => {
                    return Err(Error::Config(format!(
                        "CONCERTMASTER_START_ON_ALIAS must be true or false, got `{other}`"
                    )));
                }
            },
            schedules: match (
                var("CONCERTMASTER_SCHEDULER_TARGET_ARN"),
                var("CONCERTMASTER_SCHEDULER_ROLE_ARN"),
            ) {
                (Some(target_arn), Some(role_arn)) => {
                    Some(cm_runtime_sfn::schedules::SchedulesConfig {
                        group: var("CONCERTMASTER_SCHEDULE_GROUP")
                            .unwrap_or_else(|| "concertmaster".into()),
                        target_arn,
                        role_arn,
                        dead_letter_arn: var("CONCERTMASTER_SCHEDULER_DLQ_ARN"),
                    })
                }
                (None, None) => None,
                (t, _) => {
                    return Err(Error::Config(format!(
                        "set both CONCERTMASTER_SCHEDULER_TARGET_ARN and CONCERTMASTER_SCHEDULER_ROLE_ARN, or neither ({} is missing)",
                        if t.is_none() {
                            "CONCERTMASTER_SCHEDULER_TARGET_ARN"
                        } else {
                            "CONCERTMASTER_SCHEDULER_ROLE_ARN"
                        }
                    )));
                }
            },
            builder_url: var("CONCERTMASTER_BUILDER_URL"),
            endpoint_url: var("CONCERTMASTER_ENDPOINT_URL").or_else(|| var("AWS_ENDPOINT_URL")),
            state_machine_log_group_arn,
            compile,
        })
    }
}

impl Config {
    /// The settings of this process's environment with the AWS SDK configuration they imply
    /// (one load, to share between every client): [`Config::from_env`], except that the
    /// signing key may come from Secrets Manager (`CONCERTMASTER_SIGNING_KEY_SECRET_ARN`, read
    /// here, once) when `CONCERTMASTER_SIGNING_KEY` is not set.
    pub async fn load() -> Result<(Config, aws_config::SdkConfig), Error> {
        Config::load_from(|k| std::env::var(k).ok()).await
    }

    /// [`Config::load`] with the variables read through `get`.
    pub async fn load_from(
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<(Config, aws_config::SdkConfig), Error> {
        let get = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        let endpoint = get("CONCERTMASTER_ENDPOINT_URL").or_else(|| get("AWS_ENDPOINT_URL"));
        let aws = cm_runtime_sfn::sdk_config(endpoint.as_deref()).await;
        let key = match (
            get("CONCERTMASTER_SIGNING_KEY"),
            get("CONCERTMASTER_SIGNING_KEY_SECRET_ARN"),
        ) {
            (None, Some(arn)) => {
                let text = cm_aws::secrets::secret_string(&aws, arn.trim())
                    .await
                    .map_err(|e| {
                        Error::Config(format!("CONCERTMASTER_SIGNING_KEY_SECRET_ARN: {e}"))
                    })?;
                TokenKey::from_base64(&text).map_err(|e| {
                    Error::Config(format!(
                        "CONCERTMASTER_SIGNING_KEY_SECRET_ARN: the secret `{arn}` is not a signing key: {e}"
                    ))
                })?;
                Some(text)
            }
            _ => None,
        };
        let config = Config::from_lookup(|k| match (k, &key) {
            ("CONCERTMASTER_SIGNING_KEY", Some(text)) => Some(text.clone()),
            _ => get(k),
        })?;
        Ok((config, aws))
    }
}

/// The store and runtime of one container: one AWS SDK configuration
/// ([`cm_runtime_sfn::sdk_config`], with the endpoint URL for emulators) shared by the
/// DynamoDB and Step Functions clients.
pub async fn services(config: &Config) -> (DynamoStore, SfnRuntime) {
    let aws = cm_runtime_sfn::sdk_config(config.endpoint_url.as_deref()).await;
    services_with(config, &aws)
}

/// [`services`] over an SDK configuration already loaded.
pub fn services_with(config: &Config, aws: &aws_config::SdkConfig) -> (DynamoStore, SfnRuntime) {
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(aws), &config.table);
    let runtime = SfnRuntime::new(
        aws_sdk_sfn::Client::new(aws),
        SfnConfig {
            role_arn: config.state_machine_role_arn.clone(),
            state_machine_arn_prefix: config.state_machine_arn_prefix.clone(),
            start_on_alias: config.start_on_alias,
            log_group_arn: config.state_machine_log_group_arn.clone(),
        },
    )
    .with_logs(aws_sdk_cloudwatchlogs::Client::new(aws));
    (store, runtime)
}

/// The API's state over `store` and `runtime` with this deployment's settings: the built-in
/// node types, the signing key, no approval desk, secrets from `CONCERTMASTER_SECRET_<NAME>`.
pub fn state<S: Store, R: Runtime>(config: &Config, store: S, runtime: R) -> AppState<S, R> {
    state_with_approvals(config, store, runtime, None)
}

/// [`state`] with an approval desk (production: [`approvals::DynamoApprovals`]).
pub fn state_with_approvals<S: Store, R: Runtime>(
    config: &Config,
    store: S,
    runtime: R,
    approvals: Option<Arc<dyn ApprovalDesk>>,
) -> AppState<S, R> {
    AppState::new(
        store,
        runtime,
        Arc::new(cm_registry::Registry::builtin()),
        config.signing_key.clone(),
        approvals,
        cm_api::live::Hub::new(),
        Arc::new(cm_nodes::secrets::LocalSecrets::new().with_env(SECRET_ENV_PREFIX)),
        ApiConfig {
            public_url: config.public_url.clone(),
            state_machine_arn_prefix: config.state_machine_arn_prefix.clone(),
            compile: config.compile.clone(),
            builder_url: config.builder_url.clone(),
            ..ApiConfig::default()
        },
    )
}

/// The API router with the authorizer claims layer (see the crate docs).
pub fn router<S: Store, R: Runtime>(state: AppState<S, R>) -> Router {
    cm_api::router(state).layer(axum::middleware::from_fn(authorizer_caller))
}

/// The production app: [`services`], [`state_with_approvals`] with the approvals of the same
/// table and runtime ([`approvals::DynamoApprovals`]), [`router`].
pub async fn app(config: &Config) -> Router {
    let aws = cm_runtime_sfn::sdk_config(config.endpoint_url.as_deref()).await;
    app_with(config, &aws)
}

/// [`app`] over an SDK configuration already loaded ([`Config::load`]'s).
pub fn app_with(config: &Config, aws: &aws_config::SdkConfig) -> Router {
    let aws = aws.clone();
    let (store, runtime) = services_with(config, &aws);
    let desk = approvals::DynamoApprovals::new(store.clone(), runtime.clone());
    let mut state = state_with_approvals(config, store, runtime, Some(Arc::new(desk)))
        .with_datasets(Arc::new(cm_store_dynamodb::DatasetsTable::new(
            aws_sdk_dynamodb::Client::new(&aws),
            &config.compile.datasets_table,
        )));
    match &config.schedules {
        Some(c) => {
            state = state.with_schedules(Arc::new(
                cm_runtime_sfn::schedules::EventBridgeSchedules::new(
                    aws_sdk_scheduler::Client::new(&aws),
                    c.clone(),
                ),
            ));
        }
        None => tracing::warn!(
            "no CONCERTMASTER_SCHEDULER_TARGET_ARN: publishing a schedule trigger makes no schedule"
        ),
    }
    router(state)
}

fn claim<'a>(claims: &'a HashMap<String, String>, names: &[&str]) -> Option<&'a str> {
    names
        .iter()
        .find_map(|n| claims.get(*n))
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
}

/// The caller of verified JWT claims (see the crate docs for the claim names).
pub fn caller_from_claims(claims: &HashMap<String, String>) -> Result<Caller, ApiError> {
    let bad = |why: String| ApiError::Unauthorized(format!("the authorizer's claims {why}"));
    let subject = claim(claims, &["sub"]).ok_or_else(|| bad("have no `sub`".into()))?;
    let org = claim(claims, &ORG_CLAIMS)
        .ok_or_else(|| bad("name no organisation (claim `custom:org` or `org`)".into()))?;
    if !cm_api::routes::valid_org(org) {
        return Err(bad(format!(
            "name organisation `{org}`, which is not a valid organisation id (lowercase letters, digits, -; at most 15)"
        )));
    }
    let role = match claim(claims, &ROLE_CLAIMS) {
        None => Role::Viewer,
        Some(r) => Role::parse(r).ok_or_else(|| {
            bad(format!(
                "give role `{r}`; it must be viewer, editor or admin"
            ))
        })?,
    };
    Ok(Caller {
        subject: subject.to_owned(),
        org: org.to_owned(),
        role,
    })
}

/// The JWT authorizer's claims of a request, when API Gateway passed any.
pub fn authorizer_claims<B>(req: &axum::http::Request<B>) -> Option<&HashMap<String, String>> {
    req.extensions()
        .get::<RequestContext>()?
        .authorizer()?
        .jwt
        .as_ref()
        .map(|j| &j.claims)
        .filter(|c| !c.is_empty())
}

/// Middleware: authorizer claims → [`Caller`] extension (or a 401 when they make none).
async fn authorizer_caller(mut req: Request, next: Next) -> Response {
    let caller = authorizer_claims(&req).map(caller_from_claims);
    match caller {
        Some(Ok(c)) => {
            req.extensions_mut().insert(c);
        }
        Some(Err(e)) => return e.into_response(),
        None => {}
    }
    next.run(req).await
}

pub use cm_aws::init_tracing;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="; // bytes 0..32

    const GOOD: &[(&str, &str)] = &[
        ("CONCERTMASTER_TABLE", "cm"),
        (
            "CONCERTMASTER_STATE_MACHINE_ROLE_ARN",
            "arn:aws:iam::123456789012:role/states",
        ),
        (
            "CONCERTMASTER_STATE_MACHINE_ARN_PREFIX",
            "arn:aws:states:eu-west-1:123456789012:stateMachine:",
        ),
        ("CONCERTMASTER_PUBLIC_URL", "https://api.example.com"),
        ("CONCERTMASTER_SIGNING_KEY", KEY),
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
        ("CONCERTMASTER_NODE_RUNNER_FUNCTION", "cm-node-runner"),
    ];

    #[test]
    fn config_reads_and_checks_the_environment() {
        let c = Config::from_lookup(env(GOOD)).unwrap();
        assert_eq!(c.table, "cm");
        assert_eq!(
            c.state_machine_arn_prefix,
            "arn:aws:states:eu-west-1:123456789012:stateMachine:"
        );
        assert_eq!(c.signing_key.bytes(), (0u8..32).collect::<Vec<_>>());
        assert_eq!(c.endpoint_url.as_deref(), Some("http://127.0.0.1:5000"));
        assert_eq!(c.compile.node_runner_function, "cm-node-runner");
        assert_eq!(
            c.compile.datasets_table,
            cm_compiler::CompileOptions::default().datasets_table
        );
        assert!(!format!("{c:?}").contains(KEY));
        assert!(
            c.start_on_alias,
            "runs start on the `live` alias by default"
        );
        assert_eq!(c.builder_url, None);
        assert_eq!(c.schedules, None, "no scheduler settings: no schedules");

        let without = |k: &str| {
            let k = k.to_owned();
            move |n: &str| (n != k).then(|| env(GOOD)(n)).flatten()
        };
        for k in [
            "CONCERTMASTER_TABLE",
            "CONCERTMASTER_STATE_MACHINE_ROLE_ARN",
            "CONCERTMASTER_STATE_MACHINE_ARN_PREFIX",
            "CONCERTMASTER_PUBLIC_URL",
            "CONCERTMASTER_SIGNING_KEY",
        ] {
            let e = Config::from_lookup(without(k)).unwrap_err().to_string();
            assert!(e.contains(k), "{e}");
        }
        let with = |k: &'static str, v: &'static str| {
            move |n: &str| {
                if n == k {
                    Some(v.to_owned())
                } else {
                    env(GOOD)(n)
                }
            }
        };
        for (k, v) in [
            ("CONCERTMASTER_SIGNING_KEY", "c2hvcnQ="),
            ("CONCERTMASTER_SIGNING_KEY", "not base64!"),
            ("CONCERTMASTER_STATE_MACHINE_ARN_PREFIX", "arn:aws:states:x"),
            ("CONCERTMASTER_PUBLIC_URL", "api.example.com"),
            ("CONCERTMASTER_STATE_MACHINE_ROLE_ARN", "states"),
            ("CONCERTMASTER_START_ON_ALIAS", "yes"),
            (
                "CONCERTMASTER_SCHEDULER_TARGET_ARN",
                "arn:aws:lambda:eu-west-1:123456789012:function:cm-scheduler",
            ),
        ] {
            let e = Config::from_lookup(with(k, v)).unwrap_err().to_string();
            assert!(e.contains(k), "{e}");
        }
    }

    fn claims(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn claims_make_callers() {
        let c = caller_from_claims(&claims(&[
            ("sub", "ada"),
            ("custom:org", "acme"),
            ("org", "ignored"),
            ("custom:role", "admin"),
        ]))
        .unwrap();
        assert_eq!(
            c,
            Caller {
                subject: "ada".into(),
                org: "acme".into(),
                role: Role::Admin
            }
        );
        let c = caller_from_claims(&claims(&[("sub", "bo"), ("org", "globex")])).unwrap();
        assert_eq!((c.org.as_str(), c.role), ("globex", Role::Viewer));
        for (bad, says) in [
            (vec![("org", "acme")], "sub"),
            (vec![("sub", "a")], "organisation"),
            (vec![("sub", "a"), ("org", "Acme Inc")], "not a valid"),
            (
                vec![("sub", "a"), ("org", "acme"), ("role", "root")],
                "root",
            ),
        ] {
            match caller_from_claims(&claims(&bad)) {
                Err(ApiError::Unauthorized(m)) => assert!(m.contains(says), "{m}"),
                other => panic!("{other:?}"),
            }
        }
    }
}
