//! Validation and compilation of ConcertMaster workflows into Amazon States Language.
//!
//! ```text
//! Workflow JSON ──parse──▶ Workflow ──validate──▶ findings
//!                                      └─compile──▶ ASL definition + state→node map
//! ```
//!
//! The compiled state machine runs unchanged on AWS Step Functions and on the embedded engine.
//! See ARCHITECTURE.md for the run document, the planning strategy for arbitrary DAGs and its
//! cost.

mod emit;
mod finding;
mod graph;
mod jsonata;
mod plan;
mod rules;
pub mod template;
mod validate;

pub use finding::{Finding, Severity};
pub use validate::{MAX_CONFIG_BYTES, MAX_EDGES, MAX_NODES, validate};

use cm_model::{ExecutionTypeSetting, Workflow};
use cm_registry::Registry;
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};

/// AWS's limit on a state machine definition, in bytes.
pub const MAX_DEFINITION_BYTES: usize = 1_048_576;
/// AWS's limit on events in one Standard execution's history.
pub const MAX_HISTORY_EVENTS: u64 = 25_000;
/// AWS's limit on an Express execution's duration, in seconds.
pub const EXPRESS_MAX_SECONDS: f64 = 300.0;
/// `FunctionName` prefix for plugins that only have an HTTP executor (the embedded engine
/// resolves it through the registry).
pub const PLUGIN_FUNCTION_PREFIX: &str = "concertmaster-plugin:";

/// Deployment-specific names the compiled ASL refers to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CompileOptions {
    /// `FunctionName` of the node-runner (a Lambda ARN or name in the cloud; the embedded
    /// engine resolves the default name in-process).
    pub node_runner_function: String,
    /// DynamoDB table that `action.store` writes to.
    pub datasets_table: String,
    /// Prefix of every dataset partition key (e.g. the organisation id).
    pub dataset_namespace: Option<String>,
    /// Queue URL prefix; `action.queue` appends the queue name.
    pub queue_url_prefix: String,
    /// State machine ARN prefix; `flow.subworkflow` appends the workflow id.
    pub state_machine_arn_prefix: String,
}

impl Default for CompileOptions {
    fn default() -> Self {
        CompileOptions {
            node_runner_function: "concertmaster-node-runner".into(),
            datasets_table: "concertmaster-datasets".into(),
            dataset_namespace: None,
            queue_url_prefix: "https://sqs.us-east-1.amazonaws.com/000000000000/".into(),
            state_machine_arn_prefix: "arn:aws:states:us-east-1:000000000000:stateMachine:".into(),
        }
    }
}

/// Step Functions workflow type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum ExecutionType {
    /// Long-running, exactly-once, full history (limit 25,000 events).
    Standard,
    /// Up to five minutes, at-least-once, no callbacks or `.sync` children.
    Express,
}

/// What a state of the compiled machine does for its node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum StateRole {
    /// The node's own work (task, pass, choice, wait, map, trigger).
    Node,
    /// Checks whether the node should run.
    Guard,
    /// Marks the node as skipped.
    Skip,
    /// Records the port a node took.
    Port,
    /// Records a handled error.
    Catch,
    /// Renders data the node's task needs.
    Prepare,
    /// Jumps to the branch of the port a node took.
    Dispatch,
    /// Runs independent groups of nodes concurrently.
    Parallel,
    /// Merges the outputs of a parallel group.
    Merge,
    /// Ends a branch.
    End,
}

/// Which node an ASL state belongs to (for live status overlays).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StateRef {
    /// The node, if the state belongs to one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_id: Option<String>,
    /// What the state does.
    pub role: StateRole,
}

/// Figures about a compiled machine.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CompileStats {
    /// Number of ASL states (all scopes).
    pub states: usize,
    /// Size of the definition as compact JSON (what AWS counts; limit 1,048,576).
    pub definition_bytes: usize,
    /// Projected history events of one run in the worst case (every node runs, loops iterate
    /// `settings.estimatedItemsPerLoop` times, no retries).
    pub projected_history_events: u64,
    /// Worst-case duration (timeouts and retries included), if bounded.
    pub worst_case_seconds: Option<f64>,
}

/// The compiler's output.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Compiled {
    /// The ASL definition.
    pub definition: Value,
    /// State name → node.
    pub state_map: BTreeMap<String, StateRef>,
    /// Standard or Express.
    pub execution_type: ExecutionType,
    /// Why that type.
    pub execution_type_reason: String,
    /// Size and cost figures.
    pub stats: CompileStats,
    /// Warnings from validation.
    pub warnings: Vec<Finding>,
}

impl Compiled {
    /// The definition as pretty JSON: the canonical, deterministic form.
    pub fn definition_json(&self) -> String {
        serde_json::to_string_pretty(&self.definition).unwrap_or_default()
    }
}

/// Why a workflow did not compile.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    /// Validation found errors (warnings included in the list).
    #[error("the workflow has {} error(s); first: {}", .0.iter().filter(|f| f.is_error()).count(), .0.iter().find(|f| f.is_error()).map(ToString::to_string).unwrap_or_default())]
    Invalid(Vec<Finding>),
}

impl CompileError {
    /// The findings.
    pub fn findings(&self) -> &[Finding] {
        match self {
            CompileError::Invalid(f) => f,
        }
    }
}

/// Validates and compiles a workflow.
pub fn compile(
    wf: &Workflow,
    registry: &Registry,
    opts: &CompileOptions,
) -> Result<Compiled, CompileError> {
    let g = graph::Graph::new(wf, registry);
    let mut findings = validate::validate_graph(&g, registry);
    if findings.iter().any(Finding::is_error) {
        return Err(CompileError::Invalid(findings));
    }

    let mut planner = plan::Planner::new(&g);
    let (scope_of, members) = plan::scopes(&g);
    let mut body_plans = HashMap::new();
    let mut top = plan::Block::Seq(vec![]);
    for (key, nodes) in &members {
        let in_scope: Vec<bool> = (0..g.len()).map(|i| scope_of[i] == *key).collect();
        planner.analyse(nodes, &in_scope);
        let block = planner.decompose(nodes);
        match key {
            None => top = block,
            Some(f) => {
                // Validation guarantees exactly one.
                let sink = plan::scope_sinks(&g, &scope_of, *f)
                    .first()
                    .copied()
                    .unwrap_or(nodes[nodes.len() - 1]);
                body_plans.insert(*f, (block, sink));
            }
        }
    }
    let scopes = emit::Scopes {
        top,
        bodies: body_plans,
        scope_of,
    };
    let mut emitter = emit::Emitter::new(&g, &planner, &scopes, opts);
    let (start, states, cost) = emitter.emit_top();

    let (execution_type, reason) = choose_type(wf, &g, &emitter.features, cost.seconds);
    let mut definition = Map::new();
    let title = if wf.description.is_empty() {
        format!("ConcertMaster workflow {} v{}", wf.id, wf.version)
    } else {
        format!(
            "ConcertMaster workflow {} v{}: {}",
            wf.id, wf.version, wf.description
        )
    };
    definition.insert("Comment".into(), json!(title));
    if wf.settings.query_language == cm_model::QueryLanguage::JSONata {
        definition.insert("QueryLanguage".into(), json!("JSONata"));
    }
    definition.insert("StartAt".into(), json!(start));
    definition.insert("States".into(), Value::Object(states));
    if let Some(t) = wf.settings.timeout_seconds {
        definition.insert("TimeoutSeconds".into(), json!(t));
    }
    let definition = Value::Object(definition);
    let definition_bytes = compact_size(&definition);
    let state_count = emitter.state_map.len();

    if definition_bytes > MAX_DEFINITION_BYTES {
        findings.push(Finding::error(
            "asl.definition_too_large",
            "",
            format!("the compiled definition is {definition_bytes} bytes (compact JSON); Step Functions accepts at most {MAX_DEFINITION_BYTES}: move parts into sub-workflows or shrink node configs"),
        ));
    }
    if execution_type == ExecutionType::Standard {
        if cost.events > MAX_HISTORY_EVENTS {
            findings.push(Finding::error(
                "asl.history_too_long",
                "",
                format!("a run is projected to write {} history events; Standard executions stop at {MAX_HISTORY_EVENTS}: move loop bodies into sub-workflows or lower settings.estimatedItemsPerLoop if loops are smaller", cost.events),
            ));
        } else if cost.events > MAX_HISTORY_EVENTS * 4 / 5 {
            findings.push(Finding::warning(
                "asl.history_near_limit",
                "",
                format!("a run is projected to write {} history events, close to the {MAX_HISTORY_EVENTS} limit of Standard executions", cost.events),
            ));
        }
    }
    if wf.settings.execution_type == ExecutionTypeSetting::Express {
        let mut why = Vec::new();
        for n in &emitter.features.callbacks {
            why.push(format!("`{n}` waits for a callback"));
        }
        for n in &emitter.features.sync_children {
            why.push(format!("`{n}` waits for a child execution (.sync)"));
        }
        if !why.is_empty() {
            findings.push(Finding::error(
                "settings.express_incompatible",
                "/settings/executionType",
                format!(
                    "Express workflows cannot do this: {}; use \"standard\" or \"auto\"",
                    why.join(", ")
                ),
            ));
        } else if cost.seconds.is_none_or(|s| s > EXPRESS_MAX_SECONDS) {
            findings.push(Finding::warning(
                "settings.express_may_time_out",
                "/settings/executionType",
                format!(
                    "worst-case duration is {}; Express executions stop after {EXPRESS_MAX_SECONDS} s",
                    cost.seconds.map_or("unbounded".to_owned(), |s| format!("{s:.0} s"))
                ),
            ));
        }
    }
    if findings.iter().any(Finding::is_error) {
        return Err(CompileError::Invalid(findings));
    }
    Ok(Compiled {
        definition,
        state_map: emitter.state_map,
        execution_type,
        execution_type_reason: reason,
        stats: CompileStats {
            states: state_count,
            definition_bytes,
            projected_history_events: cost.events,
            worst_case_seconds: cost.seconds,
        },
        warnings: findings,
    })
}

/// Bytes of the compact JSON encoding (what Step Functions counts against its 1 MB limit),
/// measured without building the string.
fn compact_size(v: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing a Value into a counter cannot fail.
    let _ = serde_json::to_writer(&mut count, v);
    count.0
}

/// Standard unless the workflow is event-driven, short and free of callbacks.
fn choose_type(
    wf: &Workflow,
    g: &graph::Graph<'_>,
    features: &emit::Features,
    seconds: Option<f64>,
) -> (ExecutionType, String) {
    match wf.settings.execution_type {
        ExecutionTypeSetting::Standard => {
            return (
                ExecutionType::Standard,
                "set in settings.executionType".into(),
            );
        }
        ExecutionTypeSetting::Express => {
            return (
                ExecutionType::Express,
                "set in settings.executionType".into(),
            );
        }
        ExecutionTypeSetting::Auto => {}
    }
    if let Some(n) = features.callbacks.first() {
        return (
            ExecutionType::Standard,
            format!("node `{n}` waits for a callback, which Express does not support"),
        );
    }
    if let Some(n) = features.sync_children.first() {
        return (
            ExecutionType::Standard,
            format!(
                "node `{n}` waits for a child execution (.sync), which Express does not support"
            ),
        );
    }
    let trigger = (0..g.len())
        .find(|&i| g.category(i) == Some(cm_registry::Category::Trigger))
        .map(|i| g.type_id(i))
        .unwrap_or_default();
    if !matches!(trigger, "trigger.webhook" | "trigger.queue") {
        return (
            ExecutionType::Standard,
            format!(
                "`{trigger}` runs are infrequent and benefit from full execution history and redrive"
            ),
        );
    }
    match seconds {
        Some(s) if s <= EXPRESS_MAX_SECONDS => (
            ExecutionType::Express,
            format!("event-driven (`{trigger}`), no callbacks, worst case {s:.0} s <= {EXPRESS_MAX_SECONDS} s"),
        ),
        Some(s) => (
            ExecutionType::Standard,
            format!("worst-case duration {s:.0} s (timeouts x retries) exceeds Express's {EXPRESS_MAX_SECONDS} s"),
        ),
        None => (
            ExecutionType::Standard,
            "duration is only known at run time (waits or tasks without timeouts), so Express's 5-minute limit cannot be guaranteed".into(),
        ),
    }
}
