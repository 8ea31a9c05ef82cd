//! The node-runner event (a Task's payload) and its answer.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What a node Task sends to the node-runner (or a plugin executor). The compiler builds it
/// in the Task's `Parameters`/`Arguments`; templates in `config` are already evaluated, only
/// `{{ secrets.NAME }}` references are left for the runner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeEvent {
    /// Which node.
    pub node: NodeRef,
    /// The node's config.
    #[serde(default)]
    pub config: Value,
    /// The output of the node's single upstream node, if it has one.
    #[serde(default)]
    pub input: Value,
    /// Where the node runs.
    #[serde(default)]
    pub context: EventContext,
}

/// A node's identity in an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeRef {
    /// The node id within its workflow.
    pub id: String,
    /// The node type (`action.http`).
    #[serde(rename = "type")]
    pub node_type: String,
    /// The node type version.
    #[serde(default = "one")]
    pub type_version: u32,
}

fn one() -> u32 {
    1
}

/// The execution a node runs in (from the ASL context object).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventContext {
    /// The execution ARN: the run id.
    #[serde(default)]
    pub execution_id: String,
    /// The execution name.
    #[serde(default)]
    pub execution_name: String,
    /// The workflow id.
    #[serde(default)]
    pub workflow_id: String,
    /// The workflow version that was compiled.
    #[serde(default)]
    pub workflow_version: Option<u64>,
    /// The Task state's name.
    #[serde(default)]
    pub state_name: String,
    /// 0 on the first attempt, then 1, 2, … as Retry re-runs the node.
    #[serde(default)]
    pub attempt: u32,
    /// The task token of a callback node (approval).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_token: Option<String>,
    /// The item index inside a for-each.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
}

/// A node's answer: its output and the output port the run continues on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeOutput {
    /// The node's output (`$.nodes.<id>.output`).
    pub output: Value,
    /// The output port taken.
    pub port: String,
}

impl NodeOutput {
    /// An output on the `out` port.
    pub fn out(output: Value) -> NodeOutput {
        NodeOutput {
            output,
            port: "out".into(),
        }
    }

    /// An output on a named port.
    pub fn on(port: &str, output: Value) -> NodeOutput {
        NodeOutput {
            output,
            port: port.into(),
        }
    }
}
