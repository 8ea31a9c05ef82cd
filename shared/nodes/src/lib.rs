//! ConcertMaster node handlers.
//!
//! Every node type that does work at run time (rather than compiling to a native ASL state)
//! implements [`NodeHandler`]. The same handlers run in-process in the embedded engine and
//! inside the `node-runner` Lambda: both hand a [`NodeEvent`] (the Task's payload) to a
//! [`NodeRunner`], which resolves `{{ secrets.NAME }}` references, dispatches on the node type
//! and returns a [`NodeOutput`] (`{output, port}`) or a [`NodeError`] whose
//! [`name`](NodeError::name) (`ConcertMaster.Http.5xx`, …) is what ASL Retry/Catch match.
//!
//! The crate is a domain crate: no AWS SDK. What differs between the embedded and cloud
//! deployments sits behind narrow ports in [`ports`] (secrets, circuit-breaker state,
//! approvals), with in-memory fakes in `test_util` (feature `test-util`).
//!
//! Triggers do not run as Tasks; [`trigger`] holds what turns an incoming request (webhook,
//! form, schedule tick, queue message) into a run's input.

pub mod action;
pub mod approval;
pub mod breaker;
pub mod error;
pub mod event;
pub mod http;
pub mod plugin;
pub mod ports;
pub mod runner;
pub mod secrets;
pub mod transform;
pub mod trigger;

#[cfg(any(test, feature = "test-util"))]
pub mod test_util;

pub use error::NodeError;
pub use event::{EventContext, NodeEvent, NodeOutput, NodeRef};
pub use runner::{NodeContext, NodeHandler, NodeRunner, Services};

use std::future::Future;
use std::pin::Pin;

/// A boxed, sendable future (what handlers and ports return).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
