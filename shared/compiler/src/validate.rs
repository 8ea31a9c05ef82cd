//! Validation: every problem at once, each located.

use crate::finding::Finding;
use crate::graph::Graph;
use crate::template;
use cm_model::{QueryLanguage, RetryRule, Workflow};
use cm_registry::{Category, Execution, NativeState, Registry, RegistryError};
use serde_json::Value;
use std::collections::{HashMap, HashSet};

/// Most nodes a workflow may have.
pub const MAX_NODES: usize = 2_000;
/// Most edges a workflow may have.
pub const MAX_EDGES: usize = 10_000;
/// Largest serialized config of one node, in bytes (configs are inlined into the ASL, whose
/// definition AWS caps at 1 MB).
pub const MAX_CONFIG_BYTES: usize = 64 * 1024;
/// Largest value ASL accepts for MaxAttempts / IntervalSeconds / MaxDelaySeconds.
const ASL_MAX_RETRY_NUMBER: u32 = 99_999_999;

/// Validates a workflow against a registry, returning every finding (errors first, then
/// warnings, each group in document order).
pub fn validate(wf: &Workflow, registry: &Registry) -> Vec<Finding> {
    validate_graph(&Graph::new(wf, registry), registry)
}

/// [`validate`] over an already indexed graph (the compiler reuses its graph).
pub(crate) fn validate_graph(g: &Graph<'_>, registry: &Registry) -> Vec<Finding> {
    let wf = g.wf;
    let mut out = Vec::new();
    workflow_level(wf, &mut out);
    nodes(g, registry, &mut out);
    edges(g, &mut out);
    let structure_ok = graph_structure(g, &mut out);
    if structure_ok {
        foreach_bodies(g, &mut out);
        references(g, &mut out);
    }
    out.sort_by_key(|f| f.severity);
    out
}

fn node_path(i: usize) -> String {
    format!("/nodes/{i}")
}

fn workflow_level(wf: &Workflow, out: &mut Vec<Finding>) {
    if !cm_model::is_valid_workflow_id(&wf.id) {
        out.push(Finding::error(
            "workflow.invalid_id",
            "/id",
            format!(
                "workflow id `{}` must be 1-64 letters, digits, `-` or `_`",
                wf.id
            ),
        ));
    }
    if wf.name.trim().is_empty() {
        out.push(Finding::error(
            "workflow.missing_name",
            "/name",
            "the workflow needs a name",
        ));
    }
    if wf.nodes.len() > MAX_NODES {
        out.push(Finding::error(
            "workflow.too_many_nodes",
            "/nodes",
            format!(
                "{} nodes; the limit is {MAX_NODES}: split the workflow with sub-workflow nodes",
                wf.nodes.len()
            ),
        ));
    }
    if wf.edges.len() > MAX_EDGES {
        out.push(Finding::error(
            "workflow.too_many_edges",
            "/edges",
            format!("{} edges; the limit is {MAX_EDGES}", wf.edges.len()),
        ));
    }
    if wf.settings.timeout_seconds == Some(0) {
        out.push(Finding::error(
            "settings.invalid_timeout",
            "/settings/timeoutSeconds",
            "timeoutSeconds must be at least 1",
        ));
    }
}

fn nodes(g: &Graph<'_>, registry: &Registry, out: &mut Vec<Finding>) {
    let mut first_seen: HashMap<&str, usize> = HashMap::new();
    for (i, node) in g.wf.nodes.iter().enumerate() {
        let path = node_path(i);
        if !cm_model::is_valid_node_id(&node.id) {
            out.push(
                Finding::error(
                    "node.invalid_id",
                    format!("{path}/id"),
                    format!(
                        "node id `{}` must start with a letter or `_`, contain only letters, digits and `_`, and be at most {} characters (it is used in expressions as $.nodes.<id>)",
                        node.id,
                        cm_model::MAX_NODE_ID_LEN
                    ),
                )
                .node(&node.id),
            );
        }
        if let Some(&first) = first_seen.get(node.id.as_str()) {
            out.push(
                Finding::error(
                    "node.duplicate_id",
                    format!("{path}/id"),
                    format!("node id `{}` is already used by /nodes/{first}", node.id),
                )
                .node(&node.id),
            );
        } else {
            first_seen.insert(&node.id, i);
        }
        let registered = match registry.get(&node.node_type, node.type_version) {
            Ok(t) => t,
            Err(RegistryError::UnknownVersion { available, .. }) => {
                out.push(
                    Finding::error(
                        "node.unknown_type_version",
                        format!("{path}/typeVersion"),
                        format!(
                            "node type `{}` has no version {} (available: {})",
                            node.node_type,
                            node.type_version,
                            available
                                .iter()
                                .map(u32::to_string)
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    )
                    .node(&node.id),
                );
                continue;
            }
            Err(_) => {
                out.push(
                    Finding::error(
                        "node.unknown_type",
                        format!("{path}/type"),
                        format!("unknown node type `{}`; `concertmaster node-types` lists the known ones", node.node_type),
                    )
                    .node(&node.id),
                );
                continue;
            }
        };
        let config_bytes = serde_json::to_string(&node.config)
            .map(|s| s.len())
            .unwrap_or(0);
        if config_bytes > MAX_CONFIG_BYTES {
            out.push(
                Finding::error(
                    "node.config_too_large",
                    format!("{path}/config"),
                    format!("config is {config_bytes} bytes; the limit is {MAX_CONFIG_BYTES}: keep large data in a dataset or fetch it at run time"),
                )
                .node(&node.id),
            );
        }
        for v in registered.validate_config(&node.config) {
            out.push(
                Finding::error(
                    "node.invalid_config",
                    format!("{path}/config{}", v.pointer),
                    format!(
                        "config{}: {}",
                        if v.pointer.is_empty() { "" } else { &v.pointer },
                        v.message
                    ),
                )
                .node(&node.id),
            );
        }
        let d = registered.descriptor();
        let native = matches!(
            d.execution,
            Execution::Trigger
                | Execution::Native {
                    state: NativeState::Pass | NativeState::Choice | NativeState::Wait
                }
        );
        if native
            && (node.retry.is_some() || node.timeout_seconds.is_some() || node.on_error.is_some())
        {
            out.push(
                Finding::warning(
                    "node.setting_ignored",
                    path.clone(),
                    format!("`{}` runs as a native state that cannot fail on its own; retry, timeoutSeconds and onError are ignored", d.type_id),
                )
                .node(&node.id),
            );
        }
        if node.timeout_seconds == Some(0) {
            out.push(
                Finding::error(
                    "node.invalid_timeout",
                    format!("{path}/timeoutSeconds"),
                    "timeoutSeconds must be at least 1",
                )
                .node(&node.id),
            );
        }
        if let Some(rules) = &node.retry {
            retry_rules(rules, &format!("{path}/retry"), &node.id, out);
        }
        if let Some(on_error) = &node.on_error {
            error_names(
                &on_error.errors,
                &format!("{path}/onError/errors"),
                &node.id,
                "node.invalid_on_error",
                out,
            );
        }
        templates(g, i, d.type_id.as_str(), &path, out);
    }
}

fn retry_rules(rules: &[RetryRule], path: &str, id: &str, out: &mut Vec<Finding>) {
    for (k, r) in rules.iter().enumerate() {
        let p = format!("{path}/{k}");
        let mut bad = |field: &str, msg: String| {
            out.push(Finding::error("node.invalid_retry", format!("{p}/{field}"), msg).node(id));
        };
        if r.errors.is_empty() {
            bad(
                "errors",
                "list at least one error name (e.g. \"States.ALL\")".into(),
            );
        }
        if !(r.backoff_rate.is_finite() && r.backoff_rate >= 1.0) {
            bad(
                "backoffRate",
                format!("backoffRate {} must be a number >= 1.0", r.backoff_rate),
            );
        }
        if r.interval_seconds == 0 || r.interval_seconds > ASL_MAX_RETRY_NUMBER {
            bad(
                "intervalSeconds",
                format!("intervalSeconds must be between 1 and {ASL_MAX_RETRY_NUMBER}"),
            );
        }
        if r.max_attempts > ASL_MAX_RETRY_NUMBER {
            bad(
                "maxAttempts",
                format!("maxAttempts must be at most {ASL_MAX_RETRY_NUMBER}"),
            );
        }
        if let Some(d) = r.max_delay_seconds
            && (d == 0 || d > 31_622_400)
        {
            bad(
                "maxDelaySeconds",
                "maxDelaySeconds must be between 1 and 31622400".into(),
            );
        }
        if r.errors.iter().any(|e| e == "States.ALL")
            && (r.errors.len() > 1 || k + 1 != rules.len())
        {
            bad(
                "errors",
                "\"States.ALL\" must appear alone, in the last retry rule".into(),
            );
        }
    }
}

fn error_names(names: &[String], path: &str, id: &str, code: &'static str, out: &mut Vec<Finding>) {
    if names.iter().any(|e| e == "States.ALL") && names.len() > 1 {
        out.push(Finding::error(code, path, "\"States.ALL\" must appear alone").node(id));
    }
    if names.iter().any(String::is_empty) {
        out.push(Finding::error(code, path, "error names cannot be empty").node(id));
    }
}

/// Template syntax and what JSONPath mode can express.
fn templates(g: &Graph<'_>, i: usize, type_id: &str, path: &str, out: &mut Vec<Finding>) {
    let node = &g.wf.nodes[i];
    let config_path = format!("{path}/config");
    if let Some(pointer) = template::find_secret(&node.config)
        && !matches!(
            g.execution(i),
            Some(Execution::NodeRunner { .. } | Execution::Plugin { .. })
        )
    {
        out.push(
            Finding::error(
                "template.secret_not_allowed",
                format!("{config_path}{pointer}"),
                format!("`{type_id}` cannot use {{{{ secrets.NAME }}}}: secrets are resolved by the node-runner just before a node runs, and this node type runs as a native state or service integration (put the value in an action.http / action.notify node, or a plugin)"),
            )
            .node(&node.id),
        );
    }
    if g.wf.settings.query_language == QueryLanguage::JSONata {
        // JSONata can express any value anywhere: only syntax is checked here.
        if let Err((pointer, message)) = crate::jsonata::check_value(&node.config) {
            out.push(
                Finding::error(
                    "template.invalid",
                    format!("{config_path}{pointer}"),
                    message,
                )
                .node(&node.id),
            );
        }
        return;
    }
    if let Err(e) = template::check_value(&node.config) {
        out.push(
            Finding::error(
                "template.invalid",
                format!("{config_path}{}", e.pointer),
                e.message,
            )
            .node(&node.id),
        );
        return;
    }
    // Fields that must be plain references because ASL takes them as `*Path` fields.
    let path_fields: &[&str] = match type_id {
        "flow.foreach" => &["items"],
        "flow.wait" => &["seconds", "until"],
        _ => &[],
    };
    for field in path_fields {
        if let Some(Value::String(s)) = node.config.get(*field)
            && template::has_template(s)
            && template::pure_path(s).is_none()
        {
            out.push(
                Finding::error(
                    "template.path_required",
                    format!("{config_path}/{field}"),
                    format!("`{field}` must be a single reference like \"{{{{ $.nodes.fetch.output.items }}}}\" (it becomes an ASL *Path field)"),
                )
                .node(&node.id),
            );
        }
    }
}

fn edges(g: &Graph<'_>, out: &mut Vec<Finding>) {
    let mut seen: HashSet<(&str, &str, &str)> = HashSet::new();
    for (k, e) in g.wf.edges.iter().enumerate() {
        let path = format!("/edges/{k}");
        let from = g.index.get(e.from.as_str()).copied();
        let to = g.index.get(e.to.as_str()).copied();
        if from.is_none() {
            out.push(
                Finding::error(
                    "edge.unknown_source",
                    format!("{path}/from"),
                    format!("edge starts at unknown node `{}`", e.from),
                )
                .edge(k),
            );
        }
        if to.is_none() {
            out.push(
                Finding::error(
                    "edge.unknown_target",
                    format!("{path}/to"),
                    format!("edge ends at unknown node `{}`", e.to),
                )
                .edge(k),
            );
        }
        if let Some(f) = from
            && g.types[f].is_some()
            && !g.ports[f].iter().any(|p| p.name == e.from_port)
        {
            let names: Vec<&str> = g.ports[f].iter().map(|p| p.name.as_str()).collect();
            out.push(
                Finding::error(
                    "edge.unknown_port",
                    format!("{path}/fromPort"),
                    format!(
                        "node `{}` has no output port `{}` (ports: {})",
                        e.from,
                        e.from_port,
                        names.join(", ")
                    ),
                )
                .edge(k)
                .node(&e.from),
            );
        }
        if e.to_port != cm_model::DEFAULT_INPUT_PORT {
            out.push(
                Finding::error(
                    "edge.unknown_port",
                    format!("{path}/toPort"),
                    format!(
                        "node `{}` has no input port `{}` (nodes have one input port, `in`)",
                        e.to, e.to_port
                    ),
                )
                .edge(k)
                .node(&e.to),
            );
        }
        if let Some(t) = to
            && g.category(t) == Some(Category::Trigger)
        {
            out.push(
                Finding::error(
                    "edge.into_trigger",
                    format!("{path}/to"),
                    format!("trigger `{}` cannot have incoming edges", e.to),
                )
                .edge(k)
                .node(&e.to),
            );
        }
        if !seen.insert((&e.from, &e.from_port, &e.to)) {
            out.push(
                Finding::warning(
                    "edge.duplicate",
                    path,
                    format!("duplicate edge {}:{} -> {}", e.from, e.from_port, e.to),
                )
                .edge(k),
            );
        }
    }
    // Required ports.
    for i in 0..g.len() {
        for port in &g.ports[i] {
            if port.required && !g.out[i].iter().any(|&e| g.edges[e].port == port.name) {
                out.push(
                    Finding::error(
                        "port.unconnected",
                        node_path(i),
                        format!(
                            "output port `{}` of `{}` must be connected",
                            port.name,
                            g.id(i)
                        ),
                    )
                    .node(g.id(i)),
                );
            }
        }
    }
}

/// Triggers, cycles, reachability. Returns whether the graph is a DAG with one trigger that
/// reaches every node (what later checks and the compiler need).
fn graph_structure(g: &Graph<'_>, out: &mut Vec<Finding>) -> bool {
    let triggers: Vec<usize> = (0..g.len())
        .filter(|&i| g.category(i) == Some(Category::Trigger))
        .collect();
    let mut ok = true;
    match triggers.as_slice() {
        [] => {
            out.push(Finding::error(
                "graph.no_trigger",
                "/nodes",
                "the workflow needs exactly one trigger node (e.g. trigger.manual)",
            ));
            ok = false;
        }
        [_] => {}
        [first, rest @ ..] => {
            for &t in rest {
                out.push(
                    Finding::error(
                        "graph.multiple_triggers",
                        node_path(t),
                        format!(
                            "only one trigger is allowed; `{}` is already the trigger",
                            g.id(*first)
                        ),
                    )
                    .node(g.id(t)),
                );
            }
            ok = false;
        }
    }
    let cycles = g.cycles();
    for cycle in &cycles {
        let ids: Vec<String> = cycle.iter().map(|&i| g.id(i).to_owned()).collect();
        out.push(
            Finding::error(
                "graph.cycle",
                node_path(cycle[0]),
                format!(
                    "cycle: {}; workflows must be acyclic (use flow.foreach to repeat work)",
                    ids.join(" -> ")
                ),
            )
            .node(g.id(cycle[0]))
            .involving(ids),
        );
    }
    ok &= cycles.is_empty();
    if let [t] = triggers.as_slice() {
        let reach = g.reachable_from(*t);
        for (i, reached) in reach.iter().enumerate() {
            // A duplicate id is reported as such; edges name its first occurrence.
            let duplicate = g.index.get(g.id(i)) != Some(&i);
            if !reached && !duplicate && g.category(i) != Some(Category::Trigger) {
                out.push(
                    Finding::error(
                        "node.unreachable",
                        node_path(i),
                        format!("node `{}` cannot be reached from trigger `{}`; connect it or delete it", g.id(i), g.id(*t)),
                    )
                    .node(g.id(i)),
                );
                ok = false;
            }
        }
    }
    // Duplicate ids make the graph ambiguous.
    ok && g.index.len() == g.len() && g.types.iter().all(Option::is_some)
}

fn foreach_bodies(g: &Graph<'_>, out: &mut Vec<Finding>) {
    let mut entered = false;
    for (f, body) in g.foreach_bodies() {
        let fid = g.id(f);
        for (k, e) in g.edges.iter().enumerate() {
            if body[e.to] && !body[e.from] && !(e.from == f && e.port == "each") {
                entered = true;
                out.push(
                    Finding::error(
                        "foreach.body_entered",
                        format!("/edges/{}", g.edge_origin[k]),
                        format!(
                            "node `{}` is inside the body of for-each `{fid}` (reachable from its `each` port) but is also connected from `{}`, outside the body; connect nodes that should run after the loop to `{fid}`'s `done` port",
                            g.id(e.to),
                            g.id(e.from)
                        ),
                    )
                    .edge(g.edge_origin[k])
                    .node(g.id(e.to)),
                );
            }
        }
    }
    if entered {
        // Bodies overlap: scopes are not well defined, and the errors above say why.
        return;
    }
    let (scope_of, _) = crate::plan::scopes(g);
    for f in (0..g.len()).filter(|&f| g.is_foreach(f)) {
        let sinks: Vec<String> = crate::plan::scope_sinks(g, &scope_of, f)
            .into_iter()
            .map(|i| g.id(i).to_owned())
            .collect();
        if sinks.len() > 1 {
            let fid = g.id(f);
            out.push(
                Finding::error(
                    "foreach.ambiguous_result",
                    node_path(f),
                    format!(
                        "the body of for-each `{fid}` ends in several nodes ({}); the loop's result is the output of its last node, so join them into one (e.g. transform.merge)",
                        sinks.join(", ")
                    ),
                )
                .node(fid)
                .involving(sinks),
            );
        }
    }
}

/// `$.nodes.<id>` references in templates: the node must exist, run before, have an output, and
/// have run on every path that reaches the referencing node.
fn references(g: &Graph<'_>, out: &mut Vec<Finding>) {
    let topo = g.topo_order();
    let anc = g.ancestors(&topo);
    let (planner, scope_of) = crate::plan::analysed(g);
    for (i, node) in g.wf.nodes.iter().enumerate() {
        let mut exprs = Vec::new();
        template::expressions(&node.config, "", &mut exprs);
        for (ptr, expr) in exprs {
            let path = format!("{}/config{}", node_path(i), ptr);
            for id in template::referenced_nodes(&expr) {
                let Some(&j) = g.index.get(id.as_str()) else {
                    out.push(
                        Finding::error(
                            "template.unknown_node",
                            path.clone(),
                            format!("`{expr}` refers to node `{id}`, which does not exist"),
                        )
                        .node(&node.id),
                    );
                    continue;
                };
                // Compare in j's scope: a node inside a loop body stands for its for-each.
                let mut user = i;
                while scope_of[user] != scope_of[j] {
                    match scope_of[user] {
                        Some(f) => user = f,
                        None => break,
                    }
                }
                if !anc[i].contains(j) || user == j {
                    out.push(
                        Finding::warning(
                            "template.not_upstream",
                            path.clone(),
                            format!("`{expr}` refers to node `{id}`, which does not run before `{}`; its output will be missing", node.id),
                        )
                        .node(&node.id),
                    );
                    continue;
                }
                let no_output = matches!(
                    g.execution(j),
                    Some(Execution::Native {
                        state: NativeState::Choice | NativeState::Wait
                    })
                );
                if no_output
                    && (expr.contains(&format!("$.nodes.{id}.output"))
                        || expr.contains(&format!("$nodes.{id}.output")))
                {
                    out.push(
                        Finding::warning(
                            "template.no_output",
                            path.clone(),
                            format!(
                                "`{expr}`: `{id}` ({}) has no output, only `$.nodes.{id}.port`",
                                g.type_id(j)
                            ),
                        )
                        .node(&node.id),
                    );
                } else if scope_of[user] == scope_of[j]
                    && planner.always_before(j, user) == Some(false)
                {
                    out.push(
                        Finding::warning(
                            "template.may_be_missing",
                            path.clone(),
                            format!(
                                "`{expr}` refers to node `{id}`, which does not run on every path that reaches `{}` (it sits behind a condition or error port); when it is skipped the run fails with States.Runtime",
                                node.id
                            ),
                        )
                        .node(&node.id),
                    );
                }
            }
            let loop_var = ["$.item", "$.index", "$item", "$index"]
                .iter()
                .any(|v| expr.contains(v));
            if loop_var && scope_of[i].is_none() {
                out.push(
                    Finding::warning(
                        "template.item_outside_loop",
                        path.clone(),
                        format!(
                            "`{expr}` uses the loop item, but `{}` is not inside a for-each body",
                            node.id
                        ),
                    )
                    .node(&node.id),
                );
            }
        }
    }
}
