//! The node type descriptor format (also the format of plugin descriptor files).

use cm_model::RetryRule;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Everything the validator, compiler, builder and runtime need to know about a node type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeTypeDescriptor {
    /// Type id, e.g. `action.http`.
    #[serde(rename = "type")]
    pub type_id: String,
    /// Version of the type's contract (config schema + behaviour).
    pub version: u32,
    /// Palette group.
    pub category: Category,
    /// Short display name.
    pub title: String,
    /// One or two sentences for the palette and docs.
    pub description: String,
    /// Icon hint for the builder (an icon name, e.g. `globe`).
    #[serde(default)]
    pub icon: String,
    /// JSON Schema (draft 2020-12) of the node's `config`.
    pub config_schema: Value,
    /// Output ports when no [`PortRule`] applies. Defaults to a single `out` port.
    #[serde(default = "default_ports")]
    pub output_ports: Vec<PortSpec>,
    /// Config-dependent ports (e.g. one port per switch case).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub port_rules: Vec<PortRule>,
    /// How the node runs.
    pub execution: Execution,
    /// Retry rules used when the node sets none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub default_retry: Vec<RetryRule>,
    /// Timeout applied when the node sets none (seconds per attempt).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_timeout_seconds: Option<u32>,
}

/// Palette group of a node type.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    /// Starts a run (exactly one per workflow).
    Trigger,
    /// Reshapes data.
    Transform,
    /// Chooses an output port.
    Condition,
    /// Talks to the outside world.
    Action,
    /// Controls the flow: waits, approvals, loops, sub-workflows.
    Flow,
}

impl Category {
    /// Every category, in palette order.
    pub const ALL: [Category; 5] = [
        Category::Trigger,
        Category::Transform,
        Category::Condition,
        Category::Action,
        Category::Flow,
    ];

    /// The lowercase name used in JSON and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Trigger => "trigger",
            Category::Transform => "transform",
            Category::Condition => "condition",
            Category::Action => "action",
            Category::Flow => "flow",
        }
    }
}

impl std::str::FromStr for Category {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Category::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| format!("unknown category `{s}` (expected one of trigger, transform, condition, action, flow)"))
    }
}

/// An output port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PortSpec {
    /// Port name used in edges (`fromPort`).
    pub name: String,
    /// Display label.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub label: String,
    /// Whether validation requires an edge leaving this port.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub required: bool,
}

impl PortSpec {
    /// An optional port.
    pub fn new(name: &str, label: &str) -> Self {
        PortSpec {
            name: name.into(),
            label: label.into(),
            required: false,
        }
    }

    /// A port that must be connected.
    pub fn required(name: &str, label: &str) -> Self {
        PortSpec {
            required: true,
            ..PortSpec::new(name, label)
        }
    }
}

/// Ports that depend on the node's config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum PortRule {
    /// One port per element of the array at `pointer`, named by the element's `nameField`,
    /// followed by `append` (e.g. a switch's cases and its `default`).
    #[serde(rename_all = "camelCase")]
    FromConfigArray {
        /// JSON Pointer to an array in the config.
        pointer: String,
        /// Field of each element holding the port name.
        name_field: String,
        /// Whether the generated ports are required.
        #[serde(default)]
        required: bool,
        /// Ports after the generated ones.
        #[serde(default)]
        append: Vec<PortSpec>,
    },
    /// When the config value at `pointer` equals `equals`, the ports are `ports`.
    #[serde(rename_all = "camelCase")]
    WhenConfigEquals {
        /// JSON Pointer into the config.
        pointer: String,
        /// Value to compare with.
        equals: Value,
        /// Ports in that case.
        ports: Vec<PortSpec>,
    },
}

/// How a node of this type runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Execution {
    /// The workflow's entry point: becomes the initial state that seeds the run document.
    Trigger,
    /// Compiled to a native ASL state, no Lambda involved.
    Native {
        /// Which state type.
        state: NativeState,
    },
    /// An AWS service integration Task (the embedded engine maps it to a local equivalent).
    Service {
        /// Which integration.
        integration: ServiceIntegration,
    },
    /// A Task on the node-runner (a Lambda in the cloud, in-process locally).
    #[serde(rename_all = "camelCase")]
    NodeRunner {
        /// Whether the task parks on a task token (`.waitForTaskToken`).
        #[serde(default)]
        callback: bool,
    },
    /// A plugin: a Lambda in the cloud or an HTTP endpoint locally, called with the
    /// node-runner event shape.
    Plugin {
        /// Where the plugin runs.
        executor: PluginExecutor,
    },
}

/// Native ASL state used for a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum NativeState {
    /// `Pass` with Parameters (field mapping).
    Pass,
    /// `Choice` (conditions).
    Choice,
    /// `Wait`.
    Wait,
    /// `Map` (for-each).
    Map,
}

/// AWS service integrations the compiler emits directly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ServiceIntegration {
    /// `arn:aws:states:::dynamodb:putItem`.
    DynamodbPutItem,
    /// `arn:aws:states:::sqs:sendMessage`.
    SqsSendMessage,
    /// `arn:aws:states:::states:startExecution.sync:2` (or without `.sync` when not waiting).
    StartExecution,
}

/// Where a plugin runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PluginExecutor {
    /// Lambda function ARN or name invoked in the cloud.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lambda_arn: Option<String>,
    /// HTTP endpoint the embedded engine POSTs the event to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_url: Option<String>,
}

impl NodeTypeDescriptor {
    /// The output ports of a node of this type with the given config.
    pub fn output_ports(&self, config: &Value) -> Vec<PortSpec> {
        for rule in &self.port_rules {
            match rule {
                PortRule::FromConfigArray {
                    pointer,
                    name_field,
                    required,
                    append,
                } => {
                    let mut ports: Vec<PortSpec> = config
                        .pointer(pointer)
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(|item| item.get(name_field).and_then(Value::as_str))
                        .map(|name| PortSpec {
                            name: name.to_owned(),
                            label: name.to_owned(),
                            required: *required,
                        })
                        .collect();
                    ports.extend(append.iter().cloned());
                    return ports;
                }
                PortRule::WhenConfigEquals {
                    pointer,
                    equals,
                    ports,
                } => {
                    if config.pointer(pointer) == Some(equals) {
                        return ports.clone();
                    }
                }
            }
        }
        self.output_ports.clone()
    }

    /// Whether nodes of this type start runs.
    pub fn is_trigger(&self) -> bool {
        self.category == Category::Trigger
    }
}

fn default_ports() -> Vec<PortSpec> {
    vec![PortSpec::new(cm_model::DEFAULT_OUTPUT_PORT, "")]
}
