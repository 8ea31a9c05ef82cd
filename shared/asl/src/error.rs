//! ASL errors: a name that Retry/Catch match (`States.Runtime`, `States.TaskFailed`, …) and a
//! cause text, as Step Functions reports them.

/// An error raised while a state machine runs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error}: {cause}")]
pub struct AslError {
    /// Error name, e.g. `States.Runtime`.
    pub error: String,
    /// Human-readable cause (AWS's wording where the conformance cases record it).
    pub cause: String,
}

impl AslError {
    /// An error with any name.
    pub fn new(error: impl Into<String>, cause: impl Into<String>) -> Self {
        AslError {
            error: error.into(),
            cause: cause.into(),
        }
    }

    /// `States.Runtime`: the definition cannot be applied to the data (missing path, wrong type).
    pub fn runtime(cause: impl Into<String>) -> Self {
        AslError::new("States.Runtime", cause)
    }

    /// `States.IntrinsicFailure`: an intrinsic function failed.
    pub fn intrinsic(cause: impl Into<String>) -> Self {
        AslError::new("States.IntrinsicFailure", cause)
    }
}
