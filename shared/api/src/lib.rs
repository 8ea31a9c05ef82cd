//! The ConcertMaster HTTP API: one axum [`Router`](axum::Router) over the storage ports
//! ([`cm_store::Store`]) and the workflow runtime ([`runtime::Runtime`]), served by
//! `concertmaster dev` locally and by the api Lambda in the cloud.
//!
//! - `/v1/workflows…` create, read, list, update (new version), delete, versions, validate,
//!   compile, publish, templates; `/v1/node-types`; `/v1/runs…` start, get, list, cancel,
//!   redrive/retry, history, node executions; `/v1/approvals…`; `/v1/dead-letters…` (trigger
//!   events whose run could not start: list, re-drive, delete; [`dead_letters`]);
//!   `/v1/queues/{queue}/messages` (feed a local queue); `/v1/audit`;
//! - public: `GET /v1/forms/{formId}`, `POST /v1/forms/{formId}/responses`,
//!   `POST /hooks/{token}`, `/healthz`, `/openapi.json`;
//! - `GET /ws`: live run status (see [`live`]);
//! - in the embedded deployment, the [`triggers::Scheduler`] and [`triggers::QueuePoller`] start
//!   the runs of published schedule and queue triggers.
//!
//! Every error is an [`ApiError`](error::ApiError) rendered as `{code, message, details}`.
//! Every authenticated call is scoped to the token's organisation: another organisation's
//! items are 404s.

pub mod approvals;
pub mod auth;
pub mod builder;
pub mod datasets;
pub mod dead_letters;
pub mod error;
pub mod live;
pub mod openapi;
pub mod routes;
pub mod runtime;
pub mod schedules;
pub mod state;
pub mod triggers;
pub mod ws;

pub use state::{ApiConfig, AppState};

/// Builds the router.
pub fn router<S: cm_store::Store, R: runtime::Runtime>(state: AppState<S, R>) -> axum::Router {
    routes::router(state)
}
