//! Node errors and their stable names.

use serde_json::{Value, json};

/// Why a node failed. [`NodeError::name`] is the error name ASL `Retry`/`Catch` match (the
/// Lambda `errorType` in the cloud); the names are a public contract and never change.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NodeError {
    /// `ConcertMaster.InvalidConfig`: the node's config (after templates were evaluated) is not
    /// what the node type accepts, e.g. a template produced a string where a number belongs.
    #[error("{0}")]
    InvalidConfig(String),
    /// `ConcertMaster.InvalidInput`: the data the node was given cannot be processed (e.g. a
    /// filter's `items` is not an array).
    #[error("{0}")]
    InvalidInput(String),
    /// `ConcertMaster.Retryable`: a transient failure (connection refused, reset, DNS
    /// failure); retried by the default policies.
    #[error("{0}")]
    Retryable(String),
    /// `ConcertMaster.Timeout`: the node's own time limit (e.g. an HTTP request's
    /// `timeoutSeconds`) passed.
    #[error("{0}")]
    Timeout(String),
    /// `ConcertMaster.Http.4xx`: the server answered 4xx (other than 429).
    #[error("HTTP {status}: {message}")]
    Http4xx {
        /// The status code.
        status: u16,
        /// Summary including the start of the response body.
        message: String,
    },
    /// `ConcertMaster.Http.429`: the server asked to slow down (after any in-node waits for
    /// `Retry-After` were used up).
    #[error("HTTP 429: {message}")]
    Http429 {
        /// Summary including the start of the response body.
        message: String,
        /// The server's `Retry-After`, in seconds, if it sent one.
        retry_after: Option<u64>,
    },
    /// `ConcertMaster.Http.5xx`: the server failed (5xx).
    #[error("HTTP {status}: {message}")]
    Http5xx {
        /// The status code.
        status: u16,
        /// Summary including the start of the response body.
        message: String,
    },
    /// `ConcertMaster.Http.ResponseTooLarge`: the response body exceeds `maxResponseBytes`.
    #[error("{0}")]
    ResponseTooLarge(String),
    /// `ConcertMaster.Http.BlockedAddress`: the target resolves to an address the network
    /// policy refuses (loopback, private, link-local, …), directly or through a redirect.
    #[error("{0}")]
    BlockedAddress(String),
    /// `ConcertMaster.CircuitOpen`: the target failed repeatedly and its circuit breaker is
    /// open; the call was not attempted.
    #[error("{0}")]
    CircuitOpen(String),
    /// `ConcertMaster.ValidationFailed`: data does not satisfy a JSON Schema
    /// (`transform.validate` with `onInvalid: fail`, a trigger's input schema).
    #[error("{message}")]
    ValidationFailed {
        /// Summary.
        message: String,
        /// Each violation: `{"path": "/email", "message": "..."}`.
        errors: Vec<Value>,
    },
    /// `ConcertMaster.ExpressionFailed`: an item expression does not parse, fails, or exceeds
    /// the evaluation bounds.
    #[error("{0}")]
    Expression(String),
    /// `ConcertMaster.SecretNotFound`: a `{{ secrets.NAME }}` reference names no secret.
    #[error("{0}")]
    SecretNotFound(String),
    /// `ConcertMaster.UnknownNodeType`: no handler for the event's node type (or version).
    #[error("{0}")]
    UnknownNodeType(String),
    /// An error a plugin executor raised, under the plugin's own name.
    #[error("{message}")]
    Plugin {
        /// The plugin's error name (what Retry/Catch match).
        name: String,
        /// The plugin's cause.
        message: String,
    },
    /// `ConcertMaster.Internal`: a bug or a broken dependency (a port failed).
    #[error("{0}")]
    Internal(String),
}

impl NodeError {
    /// The stable error name.
    pub fn name(&self) -> &str {
        match self {
            NodeError::InvalidConfig(_) => "ConcertMaster.InvalidConfig",
            NodeError::InvalidInput(_) => "ConcertMaster.InvalidInput",
            NodeError::Retryable(_) => "ConcertMaster.Retryable",
            NodeError::Timeout(_) => "ConcertMaster.Timeout",
            NodeError::Http4xx { .. } => "ConcertMaster.Http.4xx",
            NodeError::Http429 { .. } => "ConcertMaster.Http.429",
            NodeError::Http5xx { .. } => "ConcertMaster.Http.5xx",
            NodeError::ResponseTooLarge(_) => "ConcertMaster.Http.ResponseTooLarge",
            NodeError::BlockedAddress(_) => "ConcertMaster.Http.BlockedAddress",
            NodeError::CircuitOpen(_) => "ConcertMaster.CircuitOpen",
            NodeError::ValidationFailed { .. } => "ConcertMaster.ValidationFailed",
            NodeError::Expression(_) => "ConcertMaster.ExpressionFailed",
            NodeError::SecretNotFound(_) => "ConcertMaster.SecretNotFound",
            NodeError::UnknownNodeType(_) => "ConcertMaster.UnknownNodeType",
            NodeError::Plugin { name, .. } => name,
            NodeError::Internal(_) => "ConcertMaster.Internal",
        }
    }

    /// The cause text (what Step Functions records as the error's `Cause`). Validation
    /// failures append their violations as JSON so a Catch handler can read them.
    pub fn cause(&self) -> String {
        match self {
            NodeError::ValidationFailed { message, errors } => {
                json!({"message": message, "errors": errors}).to_string()
            }
            other => other.to_string(),
        }
    }

    /// Every stable built-in name, for docs and tests.
    pub const NAMES: [&'static str; 15] = [
        "ConcertMaster.InvalidConfig",
        "ConcertMaster.InvalidInput",
        "ConcertMaster.Retryable",
        "ConcertMaster.Timeout",
        "ConcertMaster.Http.4xx",
        "ConcertMaster.Http.429",
        "ConcertMaster.Http.5xx",
        "ConcertMaster.Http.ResponseTooLarge",
        "ConcertMaster.Http.BlockedAddress",
        "ConcertMaster.CircuitOpen",
        "ConcertMaster.ValidationFailed",
        "ConcertMaster.ExpressionFailed",
        "ConcertMaster.SecretNotFound",
        "ConcertMaster.UnknownNodeType",
        "ConcertMaster.Internal",
    ];

    /// Whether the default retry policies retry this error.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            NodeError::Retryable(_)
                | NodeError::Timeout(_)
                | NodeError::Http429 { .. }
                | NodeError::Http5xx { .. }
        )
    }

    /// Replaces every occurrence of the given secret values in the message (so a secret that
    /// reached a URL or a server's echo never reaches logs or run history).
    pub fn redact(self, secrets: &crate::secrets::Redactor) -> NodeError {
        let r = |s: String| secrets.redact(&s);
        match self {
            NodeError::InvalidConfig(m) => NodeError::InvalidConfig(r(m)),
            NodeError::InvalidInput(m) => NodeError::InvalidInput(r(m)),
            NodeError::Retryable(m) => NodeError::Retryable(r(m)),
            NodeError::Timeout(m) => NodeError::Timeout(r(m)),
            NodeError::Http4xx { status, message } => NodeError::Http4xx {
                status,
                message: r(message),
            },
            NodeError::Http429 {
                message,
                retry_after,
            } => NodeError::Http429 {
                message: r(message),
                retry_after,
            },
            NodeError::Http5xx { status, message } => NodeError::Http5xx {
                status,
                message: r(message),
            },
            NodeError::ResponseTooLarge(m) => NodeError::ResponseTooLarge(r(m)),
            NodeError::BlockedAddress(m) => NodeError::BlockedAddress(r(m)),
            NodeError::CircuitOpen(m) => NodeError::CircuitOpen(r(m)),
            NodeError::ValidationFailed { message, errors } => NodeError::ValidationFailed {
                message: r(message),
                errors: errors
                    .into_iter()
                    .map(|e| secrets.redact_value(e))
                    .collect(),
            },
            NodeError::Expression(m) => NodeError::Expression(r(m)),
            NodeError::SecretNotFound(m) => NodeError::SecretNotFound(r(m)),
            NodeError::UnknownNodeType(m) => NodeError::UnknownNodeType(r(m)),
            NodeError::Plugin { name, message } => NodeError::Plugin {
                name,
                message: r(message),
            },
            NodeError::Internal(m) => NodeError::Internal(r(m)),
        }
    }
}
