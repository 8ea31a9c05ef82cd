//! Plugin node types run by an HTTP executor (the embedded engine; in the cloud the compiler
//! invokes the plugin's Lambda directly).

use crate::NodeError;
use crate::event::{NodeOutput, NodeRef};
use crate::runner::NodeContext;
use serde_json::Value;
use std::collections::HashMap;

/// One plugin type's executor.
#[derive(Debug, Clone)]
pub struct PluginExecutor {
    /// Where events are POSTed.
    pub url: String,
}

/// Plugin executors by node type.
#[derive(Debug, Clone, Default)]
pub struct PluginExecutors {
    by_type: HashMap<String, PluginExecutor>,
}

impl PluginExecutors {
    /// Registers the executor of `node_type`.
    pub fn insert(&mut self, node_type: &str, executor: PluginExecutor) {
        self.by_type.insert(node_type.to_owned(), executor);
    }

    /// The executor of `node_type`.
    pub fn get(&self, node_type: &str) -> Option<&PluginExecutor> {
        self.by_type.get(node_type)
    }
}

impl PluginExecutor {
    /// POSTs the event to the executor.
    pub async fn invoke(
        &self,
        node: &NodeRef,
        _config: Value,
        _input: Value,
        _ctx: &NodeContext,
    ) -> Result<NodeOutput, NodeError> {
        Err(NodeError::Internal(format!(
            "node `{}`: plugin executor {} not implemented",
            node.id, self.url
        )))
    }
}
