//! Transform node types that run on the node-runner.

use crate::runner::NodeHandler;
use std::sync::Arc;

/// The transform handlers by node type.
pub fn handlers() -> Vec<(&'static str, Arc<dyn NodeHandler>)> {
    vec![]
}
