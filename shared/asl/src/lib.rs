//! Amazon States Language evaluation for the embedded engine.
//!
//! This crate holds the pure parts of ASL semantics, shared by every way of running a state
//! machine: JSONPath selection ([`path`]), payload templates and the input/output pipeline
//! ([`payload`]), intrinsic functions ([`intrinsics`]), Choice rules ([`choice`]) and error
//! names ([`AslError`]). The embedded engine (`cm-engine`) drives them; it is measured
//! against the cases recorded on AWS (`tests/asl-conformance/`).

pub mod choice;
mod error;
pub mod intrinsics;
pub mod jsonata;
pub mod path;
pub mod payload;

pub use error::AslError;

use serde_json::{Map, Value};

/// What paths can refer to besides the state's data: the context object (`$$`) and the
/// variables in scope (`$name`).
#[derive(Debug, Clone, Copy)]
pub struct Env<'a> {
    /// The context object.
    pub context: &'a Value,
    /// Variables assigned so far in this scope.
    pub vars: &'a Map<String, Value>,
}
