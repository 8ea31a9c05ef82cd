//! The API's errors: one enum, one mapping to status + `{code, message, details}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

/// Every error the API answers with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400 `bad_request`: the request is malformed (JSON syntax, a bad query parameter).
    #[error("{0}")]
    BadRequest(String),
    /// 422 `invalid_workflow`: the workflow does not validate; `details.findings` lists each
    /// finding (code, node, JSON path, message).
    #[error("{message}")]
    InvalidWorkflow {
        /// Summary.
        message: String,
        /// The findings.
        findings: Value,
    },
    /// 422 `invalid_input`: a run input, form submission or webhook body was refused;
    /// `details` says where.
    #[error("{message}")]
    InvalidInput {
        /// What is wrong.
        message: String,
        /// Violations (`[{path, message}]`) or other facts.
        details: Value,
    },
    /// 401 `unauthorized`: no bearer token, or it is invalid or expired.
    #[error("{0}")]
    Unauthorized(String),
    /// 403 `forbidden`: the caller's role does not allow this.
    #[error("{0}")]
    Forbidden(String),
    /// 404 `not_found`: no such item in the caller's organisation.
    #[error("{0}")]
    NotFound(String),
    /// 409 `conflict`: the item exists, changed meanwhile, or is in the wrong state.
    #[error("{0}")]
    Conflict(String),
    /// 413 `payload_too_large`: the body exceeds the limit.
    #[error("{0}")]
    TooLarge(String),
    /// 415 `unsupported_media_type`: a body type the endpoint does not take.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 500 `internal`: a bug or a failed dependency (storage, engine). The message is generic;
    /// details are logged.
    #[error("{0}")]
    Internal(String),
}

/// The JSON body of every error.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable code: `bad_request`, `invalid_workflow`, `invalid_input`, `unauthorized`,
    /// `forbidden`, `not_found`, `conflict`, `payload_too_large`, `unsupported_media_type`,
    /// `internal`.
    pub code: String,
    /// What went wrong and, for 4xx, what to fix.
    pub message: String,
    /// Structured facts (findings, violations), when there are any.
    #[schema(value_type = Object)]
    pub details: Value,
}

impl ApiError {
    /// The HTTP status and stable code.
    pub fn status_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::InvalidWorkflow { .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, "invalid_workflow")
            }
            ApiError::InvalidInput { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_input"),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }

    /// The body.
    pub fn body(&self) -> ErrorBody {
        let (_, code) = self.status_code();
        let details = match self {
            ApiError::InvalidWorkflow { findings, .. } => json!({"findings": findings}),
            ApiError::InvalidInput { details, .. } => details.clone(),
            _ => json!({}),
        };
        let message = match self {
            ApiError::Internal(_) => "internal error; the server log has the details".to_owned(),
            other => other.to_string(),
        };
        ErrorBody {
            code: code.to_owned(),
            message,
            details,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, _) = self.status_code();
        if let ApiError::Internal(m) = &self {
            eprintln!("internal error: {m}");
        }
        (status, axum::Json(self.body())).into_response()
    }
}

impl From<cm_store::StoreError> for ApiError {
    fn from(e: cm_store::StoreError) -> ApiError {
        match e {
            cm_store::StoreError::NotFound { .. } => ApiError::NotFound(e.to_string()),
            cm_store::StoreError::Conflict(m) => ApiError::Conflict(m),
            cm_store::StoreError::Invalid(m) => ApiError::BadRequest(m),
            cm_store::StoreError::Backend(m) => ApiError::Internal(m),
        }
    }
}

impl From<cm_engine::EngineError> for ApiError {
    fn from(e: cm_engine::EngineError) -> ApiError {
        use cm_engine::EngineError as E;
        let text = format!("{}: {e}", e.code());
        // Exhaustive: a new engine error must be mapped here.
        match e {
            E::ExecutionDoesNotExist(_)
            | E::StateMachineDoesNotExist(_)
            | E::TaskDoesNotExist(_) => ApiError::NotFound(text),
            E::ExecutionAlreadyExists { .. } | E::ExecutionNotRedrivable { .. } => {
                ApiError::Conflict(text)
            }
            E::InvalidDefinition { .. }
            | E::InvalidName { .. }
            | E::InvalidArn(_)
            | E::InvalidInput(_)
            | E::InvalidToken(_) => ApiError::BadRequest(text),
            E::Store(_) => ApiError::Internal(text),
        }
    }
}

/// An `ApiError` result.
pub type ApiResult<T> = Result<T, ApiError>;
