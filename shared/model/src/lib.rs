//! The ConcertMaster workflow model.
//!
//! A [`Workflow`] is what a user draws in the builder or writes as JSON: a directed acyclic graph
//! of [`Node`]s joined by [`Edge`]s. This crate owns the wire format (serde, camelCase JSON), the
//! parser with precise error locations, and the JSON Schema of the format itself. It knows nothing
//! about node types, validation rules or ASL: those live in `cm-registry` and `cm-compiler`.
//!
//! # Data model for expressions
//! While a workflow runs, the compiled state machine carries one JSON document, the *run
//! document*:
//!
//! ```json
//! { "run":   { "executionId": "...", "startedAt": "...", "workflowId": "...", "workflowVersion": 3 },
//!   "nodes": { "<nodeId>": { "output": <any>, "port": "out" } } }
//! ```
//!
//! Every node that ran has an entry under `nodes`; templates in node configs address it as
//! `{{ $.nodes.<nodeId>.output }}`. Inside a for-each body `$.item` and `$.index` hold the current
//! element. See `docs/data-model.md` for the full description.

mod locate;
mod parse;

pub use locate::locate;
pub use parse::{MAX_WORKFLOW_BYTES, ParseError, from_json_slice, from_json_str, from_json_value};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The default output port of a node that has only one.
pub const DEFAULT_OUTPUT_PORT: &str = "out";
/// The only input port nodes have today.
pub const DEFAULT_INPUT_PORT: &str = "in";
/// The port a node with `onError.action = "route"` takes when it fails.
pub const ERROR_PORT: &str = "error";
/// Longest node id accepted (node ids become ASL state names, which AWS caps at 80 characters).
pub const MAX_NODE_ID_LEN: usize = 64;

/// A workflow definition: the unit users save, version, publish and run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(title = "ConcertMaster workflow")]
pub struct Workflow {
    /// Stable identifier of the workflow (letters, digits, `-`, `_`; at most 64 characters).
    #[schemars(pattern(r"^[A-Za-z0-9_-]{1,64}$"))]
    pub id: String,
    /// Human-readable name shown in the builder.
    pub name: String,
    /// Free text describing what the workflow does.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Version number of this definition; the control plane bumps it on every saved change.
    #[serde(default = "one")]
    #[schemars(range(min = 1))]
    pub version: u32,
    /// The nodes of the graph. Exactly one of them must be a trigger.
    pub nodes: Vec<Node>,
    /// Directed connections from an output port of one node to the input of another.
    #[serde(default)]
    pub edges: Vec<Edge>,
    /// Workflow-wide settings (expression language, execution type, time limits).
    #[serde(default, skip_serializing_if = "Settings::is_default")]
    pub settings: Settings,
    /// Free-form data kept verbatim for tools (e.g. the builder's viewport).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub metadata: Map<String, Value>,
}

/// One step of a workflow: a trigger, transform, condition, action or flow-control node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Node {
    /// Identifier unique within the workflow: `[A-Za-z_][A-Za-z0-9_]*`, at most 64 characters,
    /// so that it can be used in expressions as `$.nodes.<id>.output`.
    #[schemars(pattern(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"))]
    pub id: String,
    /// Node type id from the registry, e.g. `action.http` or `condition.if`.
    #[serde(rename = "type")]
    #[schemars(pattern(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$"))]
    pub node_type: String,
    /// Version of the node type's contract this node was configured against.
    #[serde(default = "one")]
    #[schemars(range(min = 1))]
    pub type_version: u32,
    /// Display name; defaults to the type's title in the builder.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Type-specific configuration, validated against the type's JSON Schema. String values of
    /// the form `{{ expression }}` are templates evaluated against the run document.
    #[serde(default = "empty_object")]
    #[schemars(schema_with = "any_object_schema")]
    pub config: Value,
    /// Where the builder draws the node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<Position>,
    /// Retry rules replacing the node type's default policy; `[]` disables retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<Vec<RetryRule>>,
    /// Maximum seconds one attempt of the node may take (ASL `TimeoutSeconds`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u32>,
    /// What happens when the node fails after its retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_error: Option<ErrorHandling>,
    /// Free-form data kept verbatim for tools.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub metadata: Map<String, Value>,
}

/// A connection: when `from` finishes and takes `fromPort`, `to` may run.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Edge {
    /// Source node id.
    pub from: String,
    /// Output port of the source node (`out` unless the node has named ports).
    #[serde(default = "default_out", skip_serializing_if = "is_default_out")]
    pub from_port: String,
    /// Target node id.
    pub to: String,
    /// Input port of the target node (always `in` today).
    #[serde(default = "default_in", skip_serializing_if = "is_default_in")]
    pub to_port: String,
}

/// Canvas coordinates of a node in the builder.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Position {
    /// Horizontal coordinate.
    pub x: f64,
    /// Vertical coordinate.
    pub y: f64,
}

/// One retry rule, compiled to an ASL `Retry` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetryRule {
    /// Error names this rule applies to (e.g. `ConcertMaster.Http.5xx`, `States.ALL`).
    pub errors: Vec<String>,
    /// Seconds before the first retry (ASL `IntervalSeconds`, 1..=99999999).
    #[serde(default = "one")]
    pub interval_seconds: u32,
    /// Retries after the first attempt (ASL `MaxAttempts`, 0..=99999999).
    #[serde(default = "three")]
    pub max_attempts: u32,
    /// Multiplier applied to the interval after each retry (ASL `BackoffRate`, >= 1.0).
    #[serde(default = "two")]
    pub backoff_rate: f64,
    /// Upper bound of the interval (ASL `MaxDelaySeconds`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_delay_seconds: Option<u32>,
    /// Randomisation of the interval (ASL `JitterStrategy`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter: Option<Jitter>,
}

/// ASL `JitterStrategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Jitter {
    /// `FULL`: wait a random time between 0 and the computed interval.
    Full,
    /// `NONE`: wait exactly the computed interval.
    None,
}

/// Error handling of a node once its retries are exhausted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ErrorHandling {
    /// What to do with a failure.
    pub action: ErrorAction,
    /// Error names handled; defaults to every error (`States.ALL`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

/// What a node does with a failure it handles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ErrorAction {
    /// Fail the run (the default).
    Fail,
    /// Record the error under `$.nodes.<id>.error`, set the output to `null` and go on.
    Continue,
    /// Take the node's `error` output port instead of `out`.
    Route,
}

/// Workflow-wide settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Settings {
    /// Expression language of templates and of the compiled state machine.
    #[serde(default, skip_serializing_if = "is_default")]
    pub query_language: QueryLanguage,
    /// Step Functions workflow type; `auto` lets the compiler choose and explain why.
    #[serde(default, skip_serializing_if = "is_default")]
    pub execution_type: ExecutionTypeSetting,
    /// Maximum seconds a whole run may take (ASL top-level `TimeoutSeconds`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u32>,
    /// Items a for-each is assumed to iterate over when projecting history size (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_items_per_loop: Option<u32>,
}

impl Settings {
    fn is_default(&self) -> bool {
        self == &Settings::default()
    }
}

/// Expression language (ASL `QueryLanguage`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum QueryLanguage {
    /// JSONPath with intrinsic functions (the ASL default).
    #[default]
    JSONPath,
    /// JSONata expressions.
    JSONata,
}

/// Requested Step Functions workflow type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExecutionTypeSetting {
    /// Let the compiler pick Standard or Express.
    #[default]
    Auto,
    /// Long-running, exactly-once, with full execution history.
    Standard,
    /// At most five minutes, no callbacks, high throughput.
    Express,
}

impl Workflow {
    /// Serialises the workflow as pretty JSON (the canonical on-disk form).
    pub fn to_json_pretty(&self) -> String {
        // Serialising plain data to a String cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Finds a node by id.
    pub fn node(&self, id: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.id == id)
    }
}

impl Edge {
    /// An edge between default ports.
    pub fn new(from: impl Into<String>, to: impl Into<String>) -> Self {
        Edge {
            from: from.into(),
            from_port: DEFAULT_OUTPUT_PORT.to_owned(),
            to: to.into(),
            to_port: DEFAULT_INPUT_PORT.to_owned(),
        }
    }

    /// An edge leaving a named output port.
    pub fn from_port(
        from: impl Into<String>,
        port: impl Into<String>,
        to: impl Into<String>,
    ) -> Self {
        Edge {
            from_port: port.into(),
            ..Edge::new(from, to)
        }
    }
}

impl Node {
    /// A node with default type version and an empty config.
    pub fn new(id: impl Into<String>, node_type: impl Into<String>) -> Self {
        Node {
            id: id.into(),
            node_type: node_type.into(),
            type_version: 1,
            name: String::new(),
            config: empty_object(),
            position: None,
            retry: None,
            timeout_seconds: None,
            on_error: None,
            metadata: Map::new(),
        }
    }

    /// Sets the config (builder style).
    pub fn with_config(mut self, config: Value) -> Self {
        self.config = config;
        self
    }
}

/// Whether `id` is a valid node id (see [`Node::id`]).
pub fn is_valid_node_id(id: &str) -> bool {
    let mut chars = id.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && id.len() <= MAX_NODE_ID_LEN
}

/// Whether `id` is a valid workflow id (see [`Workflow::id`]).
pub fn is_valid_workflow_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// The JSON Schema (draft 2020-12) of the workflow format, as shipped in
/// `schemas/workflow.schema.json`.
pub fn workflow_json_schema() -> Value {
    let schema = schemars::schema_for!(Workflow);
    serde_json::to_value(schema).unwrap_or(Value::Null)
}

fn one() -> u32 {
    1
}
fn two() -> f64 {
    2.0
}
fn three() -> u32 {
    3
}
fn empty_object() -> Value {
    Value::Object(Map::new())
}
fn default_out() -> String {
    DEFAULT_OUTPUT_PORT.to_owned()
}
fn default_in() -> String {
    DEFAULT_INPUT_PORT.to_owned()
}
fn is_default_out(s: &str) -> bool {
    s == DEFAULT_OUTPUT_PORT
}
fn is_default_in(s: &str) -> bool {
    s == DEFAULT_INPUT_PORT
}
fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    v == &T::default()
}
fn any_object_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "description": "Type-specific configuration; see the node type's config schema."
    })
}

#[cfg(test)]
mod tests;
