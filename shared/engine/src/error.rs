//! Engine API errors, named like Step Functions' API errors so that the HTTP layer can map
//! them one-to-one.

use crate::store::StoreError;

/// An engine API call failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EngineError {
    /// The definition is not valid ASL; `path` is a JSON Pointer into it.
    #[error("invalid state machine definition at {path}: {message}")]
    InvalidDefinition {
        /// Where (`/States/Charge/Next`).
        path: String,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// A state machine or execution name breaks the naming rules.
    #[error("invalid name '{name}': {reason}")]
    InvalidName {
        /// The name given.
        name: String,
        /// Which rule it breaks.
        reason: String,
    },
    /// An ARN is malformed.
    #[error("invalid ARN '{0}'")]
    InvalidArn(String),
    /// Execution input or task output is not acceptable (too large, not JSON).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// No state machine with that ARN.
    #[error("state machine does not exist: {0}")]
    StateMachineDoesNotExist(String),
    /// No execution with that ARN.
    #[error("execution does not exist: {0}")]
    ExecutionDoesNotExist(String),
    /// StartExecution with a name already used by a closed execution, or with different
    /// input than the running one (Step Functions' idempotency rule).
    #[error("execution already exists: {arn} ({reason})")]
    ExecutionAlreadyExists {
        /// The existing execution.
        arn: String,
        /// Why it cannot be reused.
        reason: String,
    },
    /// The execution cannot be redriven (still running, succeeded, or Express).
    #[error("execution {arn} cannot be redriven: {reason}")]
    ExecutionNotRedrivable {
        /// The execution.
        arn: String,
        /// Why.
        reason: String,
    },
    /// No task is waiting on that token (never issued, already answered, or timed out).
    #[error("task token does not exist or is no longer waiting: {0}")]
    TaskDoesNotExist(String),
    /// A paging token was not one this engine issued.
    #[error("invalid paging token '{0}'")]
    InvalidToken(String),
    /// The store failed; nothing was changed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl EngineError {
    /// The Step Functions API error name (`ExecutionDoesNotExist`, `InvalidDefinition`, …).
    pub fn code(&self) -> &'static str {
        match self {
            EngineError::InvalidDefinition { .. } => "InvalidDefinition",
            EngineError::InvalidName { .. } => "InvalidName",
            EngineError::InvalidArn(_) => "InvalidArn",
            EngineError::InvalidInput(_) => "InvalidExecutionInput",
            EngineError::StateMachineDoesNotExist(_) => "StateMachineDoesNotExist",
            EngineError::ExecutionDoesNotExist(_) => "ExecutionDoesNotExist",
            EngineError::ExecutionAlreadyExists { .. } => "ExecutionAlreadyExists",
            EngineError::ExecutionNotRedrivable { .. } => "ExecutionNotRedrivable",
            EngineError::TaskDoesNotExist(_) => "TaskDoesNotExist",
            EngineError::InvalidToken(_) => "InvalidToken",
            EngineError::Store(_) => "InternalError",
        }
    }
}
