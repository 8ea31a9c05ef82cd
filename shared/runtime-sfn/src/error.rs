//! This crate's errors and how they become API errors.

use aws_sdk_sfn::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use cm_api::error::ApiError;

/// What can go wrong driving Step Functions.
#[derive(Debug, thiserror::Error)]
pub enum SfnError {
    /// Step Functions answered with an error (`code` is its name: `ExecutionDoesNotExist`,
    /// `InvalidDefinition`, `ThrottlingException`, …); [`api_error_kind`] says which API error
    /// it becomes.
    #[error("Step Functions {op} failed: {code}: {message}")]
    Service {
        /// The operation (`StartExecution`, …).
        op: &'static str,
        /// The error's name.
        code: String,
        /// Step Functions' message.
        message: String,
    },
    /// The request did not get an answer (connection, timeout, credentials, a response that
    /// does not parse); the SDK's error with its sources.
    #[error("Step Functions {op} failed: {detail}")]
    Transport {
        /// The operation.
        op: &'static str,
        /// The SDK error with its chain of causes.
        detail: String,
    },
    /// A state machine exists with the other type; Step Functions cannot change a state
    /// machine's type.
    #[error(
        "state machine `{name}` is {existing}; the workflow now compiles to {wanted}, and Step Functions cannot change a state machine's type (delete the state machine, then publish again)"
    )]
    TypeChange {
        /// The state machine's name.
        name: String,
        /// Its type now.
        existing: String,
        /// The type the workflow compiles to.
        wanted: String,
    },
    /// The operation is not available for an Express execution (`reason` says why: Step
    /// Functions cannot stop one; it keeps neither its status nor its history, which are read
    /// from the state machines' log group — not configured here).
    #[error("{op} is not available for Express execution `{execution}`: {reason}")]
    Express {
        /// The operation.
        op: &'static str,
        /// The execution ARN.
        execution: String,
        /// Why.
        reason: &'static str,
    },
    /// Reading an Express execution's records from CloudWatch Logs failed (the SDK's error,
    /// with its name when the service answered).
    #[error("CloudWatch Logs {op} failed: {detail}")]
    Logs {
        /// The operation (`FilterLogEvents`).
        op: &'static str,
        /// The error.
        detail: String,
    },
    /// Step Functions answered something this crate does not understand (a status it does not
    /// know, a request that does not build).
    #[error("Step Functions {op}: {message}")]
    Unexpected {
        /// The operation.
        op: &'static str,
        /// What was unexpected.
        message: String,
    },
}

/// Why an Express execution's status or history cannot be read without a log group.
pub const NO_LOG_GROUP: &str = "Step Functions keeps no status or history of Express executions; they are read from the state machines' execution log group (CONCERTMASTER_STATE_MACHINE_LOG_GROUP_ARN), which is not configured";

/// Why an Express execution cannot be stopped.
pub const NO_EXPRESS_STOP: &str =
    "Step Functions cannot stop Express executions (they end within five minutes)";

/// The [`ApiError`] variant (as a constructor) a Step Functions error name maps to:
///
/// | error | API error |
/// |---|---|
/// | `ExecutionDoesNotExist`, `StateMachineDoesNotExist`, `TaskDoesNotExist` | `NotFound` (404) |
/// | `ExecutionAlreadyExists`, `ExecutionNotRedrivable`, `StateMachineAlreadyExists`, `StateMachineDeleting`, `TaskTimedOut` | `Conflict` (409) |
/// | `InvalidDefinition`, `InvalidArn`, `InvalidName`, `InvalidExecutionInput`, `InvalidToken`, `InvalidOutput`, `StateMachineTypeNotSupported`, `ValidationException` | `BadRequest` (400) |
/// | throttling, limits, access, anything else | `Internal` (500, the error named in the log) |
pub fn api_error_kind(code: &str) -> fn(String) -> ApiError {
    match code {
        "ExecutionDoesNotExist" | "StateMachineDoesNotExist" | "TaskDoesNotExist" => {
            ApiError::NotFound
        }
        "ExecutionAlreadyExists"
        | "ExecutionNotRedrivable"
        | "StateMachineAlreadyExists"
        | "StateMachineDeleting"
        | "TaskTimedOut" => ApiError::Conflict,
        "InvalidDefinition"
        | "InvalidArn"
        | "InvalidName"
        | "InvalidExecutionInput"
        | "InvalidToken"
        | "InvalidOutput"
        | "StateMachineTypeNotSupported"
        | "ValidationException" => ApiError::BadRequest,
        _ => ApiError::Internal,
    }
}

impl SfnError {
    /// The error of a failed SDK call of operation `op`.
    pub fn from_sdk<E, R>(op: &'static str, err: SdkError<E, R>) -> SfnError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug,
    {
        match err.code() {
            Some(code) => SfnError::Service {
                op,
                code: code.to_owned(),
                message: err.message().unwrap_or_default().to_owned(),
            },
            None => SfnError::Transport {
                op,
                detail: DisplayErrorContext(&err).to_string(),
            },
        }
    }

    /// The error of a failed CloudWatch Logs call of operation `op`.
    pub fn from_logs_sdk<E, R>(op: &'static str, err: SdkError<E, R>) -> SfnError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug,
    {
        let detail = match err.code() {
            Some(code) => format!("{code}: {}", err.message().unwrap_or_default()),
            None => DisplayErrorContext(&err).to_string(),
        };
        SfnError::Logs { op, detail }
    }

    /// The Step Functions error name, for [`SfnError::Service`].
    pub fn code(&self) -> Option<&str> {
        match self {
            SfnError::Service { code, .. } => Some(code),
            _ => None,
        }
    }
}

impl From<SfnError> for ApiError {
    fn from(e: SfnError) -> ApiError {
        let text = e.to_string();
        match &e {
            SfnError::Service { code, .. } => api_error_kind(code)(text),
            SfnError::TypeChange { .. } | SfnError::Express { .. } => ApiError::Conflict(text),
            SfnError::Transport { .. } | SfnError::Logs { .. } | SfnError::Unexpected { .. } => {
                ApiError::Internal(text)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(code: &str) -> ApiError {
        SfnError::Service {
            op: "StartExecution",
            code: code.into(),
            message: "m".into(),
        }
        .into()
    }

    #[test]
    fn service_errors_map_to_api_errors() {
        assert!(matches!(
            service("ExecutionDoesNotExist"),
            ApiError::NotFound(_)
        ));
        assert!(matches!(
            service("StateMachineDoesNotExist"),
            ApiError::NotFound(_)
        ));
        assert!(matches!(
            service("ExecutionAlreadyExists"),
            ApiError::Conflict(_)
        ));
        assert!(matches!(
            service("ExecutionNotRedrivable"),
            ApiError::Conflict(_)
        ));
        assert!(matches!(
            service("InvalidDefinition"),
            ApiError::BadRequest(_)
        ));
        assert!(matches!(service("InvalidToken"), ApiError::BadRequest(_)));
        match service("ThrottlingException") {
            ApiError::Internal(m) => {
                assert!(
                    m.contains("ThrottlingException") && m.contains("StartExecution"),
                    "{m}"
                )
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            service("AccessDeniedException"),
            ApiError::Internal(_)
        ));
    }

    #[test]
    fn own_errors_map_to_api_errors() {
        let e: ApiError = SfnError::TypeChange {
            name: "acme.wf".into(),
            existing: "STANDARD".into(),
            wanted: "EXPRESS".into(),
        }
        .into();
        assert!(matches!(e, ApiError::Conflict(m) if m.contains("cannot change")));
        let e: ApiError = SfnError::Express {
            op: "GetExecutionHistory",
            execution: "arn".into(),
            reason: NO_LOG_GROUP,
        }
        .into();
        assert!(matches!(e, ApiError::Conflict(_)));
        let e: ApiError = SfnError::Transport {
            op: "DescribeExecution",
            detail: "dispatch failure".into(),
        }
        .into();
        assert!(matches!(e, ApiError::Internal(_)));
    }
}
