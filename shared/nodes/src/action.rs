//! Action node types that run on the node-runner: `action.http` and `action.notify`.
//! (`action.store` and `action.queue` are direct service integrations.)

use crate::runner::NodeHandler;
use std::sync::Arc;

/// The action handlers by node type.
pub fn handlers() -> Vec<(&'static str, Arc<dyn NodeHandler>)> {
    vec![]
}
