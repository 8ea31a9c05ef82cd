//! Every validation rule: the finding's code, severity and location.

#![allow(clippy::unwrap_used, missing_docs)]

use cm_compiler::{Finding, Severity, validate};
use cm_registry::Registry;
use serde_json::{Value, json};

fn check(doc: Value) -> Vec<Finding> {
    let wf = cm_model::from_json_value(doc).expect("well-formed workflow");
    validate(&wf, &Registry::builtin())
}

fn base() -> Value {
    json!({
        "id": "wf",
        "name": "Test",
        "nodes": [
            {"id": "start", "type": "trigger.manual"},
            {"id": "call", "type": "action.http", "config": {"url": "https://example.com"}}
        ],
        "edges": [{"from": "start", "to": "call"}]
    })
}

fn with(mut doc: Value, f: impl FnOnce(&mut Value)) -> Value {
    f(&mut doc);
    doc
}

fn find<'a>(findings: &'a [Finding], code: &str) -> &'a Finding {
    findings
        .iter()
        .find(|f| f.code == code)
        .unwrap_or_else(|| panic!("no {code} in {findings:#?}"))
}

#[test]
fn a_good_workflow_has_no_findings() {
    assert!(check(base()).is_empty(), "{:#?}", check(base()));
}

#[test]
fn all_problems_are_reported_at_once() {
    let doc = with(base(), |d| {
        d["id"] = json!("bad id!");
        d["nodes"][1]["config"] = json!({"url": 5});
        d["edges"]
            .as_array_mut()
            .unwrap()
            .push(json!({"from": "ghost", "to": "call"}));
        d["nodes"]
            .as_array_mut()
            .unwrap()
            .push(json!({"id": "lonely", "type": "transform.set", "config": {"fields": {}}}));
    });
    let f = check(doc);
    let codes: Vec<&str> = f.iter().map(|f| f.code).collect();
    for code in [
        "workflow.invalid_id",
        "node.invalid_config",
        "edge.unknown_source",
        "node.unreachable",
    ] {
        assert!(codes.contains(&code), "{code} missing from {codes:?}");
    }
}

#[test]
fn duplicate_and_invalid_node_ids() {
    let f = check(with(base(), |d| {
        d["nodes"]
            .as_array_mut()
            .unwrap()
            .push(json!({"id": "call", "type": "action.http", "config": {"url": "x"}}));
        d["nodes"]
            .as_array_mut()
            .unwrap()
            .push(json!({"id": "has-dash", "type": "action.http", "config": {"url": "x"}}));
    }));
    let dup = find(&f, "node.duplicate_id");
    assert_eq!(dup.path, "/nodes/2/id");
    assert!(dup.message.contains("/nodes/1"), "{}", dup.message);
    assert_eq!(
        find(&f, "node.invalid_id").node_id.as_deref(),
        Some("has-dash")
    );
}

#[test]
fn unknown_type_and_version() {
    let f = check(with(base(), |d| {
        d["nodes"][1]["type"] = json!("action.teleport");
    }));
    assert_eq!(find(&f, "node.unknown_type").path, "/nodes/1/type");
    let f = check(with(base(), |d| {
        d["nodes"][1]["typeVersion"] = json!(9);
    }));
    let v = find(&f, "node.unknown_type_version");
    assert_eq!(v.path, "/nodes/1/typeVersion");
    assert!(v.message.contains("available: 1"), "{}", v.message);
}

#[test]
fn config_errors_carry_json_pointers() {
    let f = check(with(base(), |d| {
        d["nodes"][1]["config"] =
            json!({"url": "https://x", "method": "FETCH", "headers": {"X-A": 1}});
    }));
    let paths: Vec<&str> = f
        .iter()
        .filter(|f| f.code == "node.invalid_config")
        .map(|f| f.path.as_str())
        .collect();
    assert!(paths.contains(&"/nodes/1/config/method"), "{paths:?}");
    assert!(paths.contains(&"/nodes/1/config/headers/X-A"), "{paths:?}");
    let missing = check(with(base(), |d| {
        d["nodes"][1]["config"] = json!({});
    }));
    assert!(
        find(&missing, "node.invalid_config")
            .message
            .contains("url")
    );
}

#[test]
fn oversize_config() {
    let f = check(with(base(), |d| {
        d["nodes"][1]["config"]["headers"] = json!({"X-Big": "x".repeat(70_000)});
    }));
    assert_eq!(find(&f, "node.config_too_large").severity, Severity::Error);
}

#[test]
fn too_many_nodes() {
    let mut doc = base();
    let nodes = doc["nodes"].as_array_mut().unwrap();
    for i in 0..cm_compiler::MAX_NODES {
        nodes.push(
            json!({"id": format!("n{i}"), "type": "transform.set", "config": {"fields": {}}}),
        );
    }
    let f = check(doc);
    assert_eq!(find(&f, "workflow.too_many_nodes").path, "/nodes");
}

#[test]
fn edges_to_unknown_nodes_and_ports() {
    let f = check(with(base(), |d| {
        let edges = d["edges"].as_array_mut().unwrap();
        edges.push(json!({"from": "start", "to": "nowhere"}));
        edges.push(json!({"from": "call", "fromPort": "sideways", "to": "call2"}));
        edges.push(json!({"from": "start", "to": "call", "toPort": "aux"}));
        d["nodes"]
            .as_array_mut()
            .unwrap()
            .push(json!({"id": "call2", "type": "action.http", "config": {"url": "x"}}));
    }));
    let target = find(&f, "edge.unknown_target");
    assert_eq!(
        (target.path.as_str(), target.edge),
        ("/edges/1/to", Some(1))
    );
    let ports: Vec<&str> = f
        .iter()
        .filter(|f| f.code == "edge.unknown_port")
        .map(|f| f.path.as_str())
        .collect();
    assert_eq!(ports, ["/edges/2/fromPort", "/edges/3/toPort"]);
    assert!(
        f.iter()
            .any(|f| f.code == "edge.unknown_port" && f.message.contains("ports: out"))
    );
}

#[test]
fn duplicate_edges_warn() {
    let f = check(with(base(), |d| {
        d["edges"]
            .as_array_mut()
            .unwrap()
            .push(json!({"from": "start", "to": "call"}));
    }));
    assert_eq!(find(&f, "edge.duplicate").severity, Severity::Warning);
}

#[test]
fn cycles_are_reported_as_node_lists() {
    let f = check(with(base(), |d| {
        let nodes = d["nodes"].as_array_mut().unwrap();
        nodes.push(json!({"id": "b", "type": "action.http", "config": {"url": "x"}}));
        nodes.push(json!({"id": "c", "type": "action.http", "config": {"url": "x"}}));
        let edges = d["edges"].as_array_mut().unwrap();
        edges.push(json!({"from": "call", "to": "b"}));
        edges.push(json!({"from": "b", "to": "c"}));
        edges.push(json!({"from": "c", "to": "call"}));
        edges.push(json!({"from": "c", "to": "c"}));
    }));
    let cycles: Vec<&Finding> = f.iter().filter(|f| f.code == "graph.cycle").collect();
    assert_eq!(
        cycles.len(),
        1,
        "one strongly connected component: {cycles:#?}"
    );
    assert_eq!(cycles[0].nodes, ["call", "b", "c", "call"]);
    assert!(cycles[0].message.contains("call -> b -> c -> call"));
    let self_loop = check(with(base(), |d| {
        d["edges"]
            .as_array_mut()
            .unwrap()
            .push(json!({"from": "call", "to": "call"}));
    }));
    assert_eq!(find(&self_loop, "graph.cycle").nodes, ["call", "call"]);
}

#[test]
fn trigger_count() {
    let none = check(with(base(), |d| {
        d["nodes"][0] = json!({"id": "start", "type": "transform.set", "config": {"fields": {}}});
    }));
    find(&none, "graph.no_trigger");
    let two = check(with(base(), |d| {
        d["nodes"]
            .as_array_mut()
            .unwrap()
            .push(json!({"id": "hook", "type": "trigger.webhook"}));
    }));
    assert_eq!(
        find(&two, "graph.multiple_triggers").node_id.as_deref(),
        Some("hook")
    );
    let into = check(with(base(), |d| {
        d["edges"]
            .as_array_mut()
            .unwrap()
            .push(json!({"from": "call", "to": "start"}));
    }));
    find(&into, "edge.into_trigger");
}

#[test]
fn unreachable_nodes() {
    let f = check(with(base(), |d| {
        d["nodes"]
            .as_array_mut()
            .unwrap()
            .push(json!({"id": "orphan", "type": "action.http", "config": {"url": "x"}}));
    }));
    let u = find(&f, "node.unreachable");
    assert_eq!(
        (u.node_id.as_deref(), u.path.as_str()),
        (Some("orphan"), "/nodes/2")
    );
}

#[test]
fn required_condition_ports() {
    let f = check(with(base(), |d| {
        d["nodes"].as_array_mut().unwrap().push(json!({"id": "check", "type": "condition.if", "config": {"rules": [{"field": "$.x", "op": "exists"}]}}));
        d["edges"]
            .as_array_mut()
            .unwrap()
            .push(json!({"from": "call", "to": "check"}));
    }));
    let p = find(&f, "port.unconnected");
    assert!(p.message.contains("`true`"), "{}", p.message);
    let switch = check(with(base(), |d| {
        d["nodes"].as_array_mut().unwrap().push(json!({"id": "route", "type": "condition.switch", "config": {"cases": [
            {"port": "gold", "rules": [{"field": "$.tier", "op": "equals", "value": "gold"}]},
            {"port": "silver", "rules": [{"field": "$.tier", "op": "equals", "value": "silver"}]}
        ]}}));
        let e = d["edges"].as_array_mut().unwrap();
        e.push(json!({"from": "call", "to": "route"}));
        e.push(json!({"from": "route", "fromPort": "gold", "to": "x"}));
        d["nodes"]
            .as_array_mut()
            .unwrap()
            .push(json!({"id": "x", "type": "action.http", "config": {"url": "x"}}));
    }));
    let unconnected: Vec<&str> = switch
        .iter()
        .filter(|f| f.code == "port.unconnected")
        .map(|f| f.message.as_str())
        .collect();
    assert_eq!(unconnected.len(), 1, "{unconnected:?}");
    assert!(unconnected[0].contains("silver"));
}

#[test]
fn routed_errors_need_an_error_edge() {
    let f = check(with(base(), |d| {
        d["nodes"][1]["onError"] = json!({"action": "route"});
    }));
    assert!(find(&f, "port.unconnected").message.contains("`error`"));
}

#[test]
fn retry_rules_follow_asl() {
    let f = check(with(base(), |d| {
        d["nodes"][1]["retry"] = json!([
            {"errors": ["States.ALL"], "maxAttempts": 2},
            {"errors": [], "backoffRate": 0.5, "intervalSeconds": 0}
        ]);
        d["nodes"][1]["timeoutSeconds"] = json!(0);
    }));
    let paths: Vec<&str> = f
        .iter()
        .filter(|f| f.code == "node.invalid_retry")
        .map(|f| f.path.as_str())
        .collect();
    assert_eq!(
        paths,
        [
            "/nodes/1/retry/0/errors",
            "/nodes/1/retry/1/errors",
            "/nodes/1/retry/1/backoffRate",
            "/nodes/1/retry/1/intervalSeconds"
        ]
    );
    find(&f, "node.invalid_timeout");
}

#[test]
fn settings_on_native_nodes_are_ignored_with_a_warning() {
    let f = check(with(base(), |d| {
        d["nodes"].as_array_mut().unwrap().push(
            json!({"id": "shape", "type": "transform.set", "config": {"fields": {}}, "retry": []}),
        );
        d["edges"]
            .as_array_mut()
            .unwrap()
            .push(json!({"from": "call", "to": "shape"}));
    }));
    assert_eq!(find(&f, "node.setting_ignored").severity, Severity::Warning);
}

#[test]
fn template_problems() {
    let f = check(with(base(), |d| {
        d["nodes"][1]["config"]["url"] = json!("https://x/{{ $.nodes.start.output.id ");
    }));
    assert_eq!(find(&f, "template.invalid").path, "/nodes/1/config/url");
    let f = check(with(base(), |d| {
        d["nodes"][1]["config"]["body"] =
            json!({"items": [{"id": "{{ $.nodes.start.output.id }}"}]});
    }));
    assert_eq!(
        find(&f, "template.invalid").path,
        "/nodes/1/config/body/items/0"
    );
    let f = check(with(base(), |d| {
        d["nodes"][1]["config"]["url"] = json!("{{ $.nodes.ghost.output }}");
        d["nodes"][1]["config"]["body"] = json!("{{ $.nodes.call.output }}");
    }));
    assert_eq!(find(&f, "template.unknown_node").severity, Severity::Error);
    assert_eq!(
        find(&f, "template.not_upstream").path,
        "/nodes/1/config/body"
    );
    let f = check(with(base(), |d| {
        d["nodes"][1]["config"]["url"] = json!("{{ $.item.url }}");
    }));
    find(&f, "template.item_outside_loop");
}

fn loop_doc() -> Value {
    json!({
        "id": "loop", "name": "Loop",
        "nodes": [
            {"id": "start", "type": "trigger.manual"},
            {"id": "each", "type": "flow.foreach", "config": {"items": "{{ $.nodes.start.output.rows }}"}},
            {"id": "a", "type": "action.http", "config": {"url": "{{ $.item.url }}"}},
            {"id": "b", "type": "action.http", "config": {"url": "x"}},
            {"id": "after", "type": "action.http", "config": {"url": "x"}}
        ],
        "edges": [
            {"from": "start", "to": "each"},
            {"from": "each", "fromPort": "each", "to": "a"},
            {"from": "a", "to": "b"},
            {"from": "each", "fromPort": "done", "to": "after"}
        ]
    })
}

#[test]
fn foreach_bodies() {
    assert!(check(loop_doc()).is_empty(), "{:#?}", check(loop_doc()));
    let entered = check(with(loop_doc(), |d| {
        d["edges"]
            .as_array_mut()
            .unwrap()
            .push(json!({"from": "b", "to": "after"}));
    }));
    let e = find(&entered, "foreach.body_entered");
    assert_eq!(e.node_id.as_deref(), Some("after"));
    assert!(e.message.contains("`done` port"), "{}", e.message);
    let two_ends = check(with(loop_doc(), |d| {
        d["nodes"]
            .as_array_mut()
            .unwrap()
            .push(json!({"id": "c", "type": "action.http", "config": {"url": "x"}}));
        d["edges"]
            .as_array_mut()
            .unwrap()
            .push(json!({"from": "a", "to": "c"}));
    }));
    assert_eq!(
        find(&two_ends, "foreach.ambiguous_result").nodes,
        ["b", "c"]
    );
    let not_a_path = check(with(loop_doc(), |d| {
        d["nodes"][1]["config"]["items"] = json!("{{ States.Array(1, 2) }}");
    }));
    assert_eq!(
        find(&not_a_path, "template.path_required").path,
        "/nodes/1/config/items"
    );
}

#[test]
fn jsonata_mode_templates() {
    let jsonata = |d: &mut Value| d["settings"] = json!({"queryLanguage": "JSONata"});
    // Arrays of objects with templates are fine in JSONata mode (not in JSONPath mode).
    let ok = check(with(base(), |d| {
        jsonata(d);
        d["nodes"][1]["config"]["body"] =
            json!({"items": [{"id": "{{ $nodes.start.output.id }}"}]});
    }));
    assert!(ok.is_empty(), "{ok:#?}");
    let raw = check(with(base(), |d| {
        jsonata(d);
        d["nodes"][1]["config"]["url"] = json!("{% $states.input %}");
    }));
    assert_eq!(find(&raw, "template.invalid").path, "/nodes/1/config/url");
    let unbalanced = check(with(base(), |d| {
        jsonata(d);
        d["nodes"][1]["config"]["url"] = json!("{{ $nodes.start.output[0 }}");
    }));
    find(&unbalanced, "template.invalid");
    let bad_syntax = check(with(base(), |d| {
        jsonata(d);
        d["nodes"][1]["config"]["url"] = json!("x{{ $nodes.start.output.id +* 2 }}");
    }));
    let f = find(&bad_syntax, "template.invalid");
    assert!(f.message.contains("not valid JSONata"), "{}", f.message);
    let unknown = check(with(base(), |d| {
        jsonata(d);
        d["nodes"][1]["config"]["url"] = json!("{{ $nodes.ghost.output }}");
    }));
    find(&unknown, "template.unknown_node");
}

#[test]
fn findings_serialise_with_stable_fields() {
    let f = check(with(base(), |d| {
        d["edges"][0]["to"] = json!("ghost");
    }));
    let v = serde_json::to_value(find(&f, "edge.unknown_target")).unwrap();
    assert_eq!(v["code"], "edge.unknown_target");
    assert_eq!(v["severity"], "error");
    assert_eq!(v["path"], "/edges/0/to");
    assert_eq!(v["edge"], 0);
    assert!(v["message"].as_str().unwrap().contains("ghost"));
}

#[test]
fn references_to_outputs_that_may_be_missing() {
    let doc = json!({
        "id": "wf", "name": "T",
        "nodes": [
            {"id": "start", "type": "trigger.manual"},
            {"id": "small", "type": "condition.if", "config": {"rules": [{"field": "$.nodes.start.output.amount", "op": "lt", "value": 100}]}},
            {"id": "auto", "type": "transform.set", "config": {"fields": {"ok": true}}},
            {"id": "ask", "type": "action.http", "config": {"url": "x"}},
            {"id": "record", "type": "action.http", "config": {"url": "x", "body": {
                "auto": "{{ $.nodes.auto.output.ok }}",
                "start": "{{ $.nodes.start.output }}",
                "cond": "{{ $.nodes.small.output }}",
                "port": "{{ $.nodes.small.port }}"
            }}}
        ],
        "edges": [
            {"from": "start", "to": "small"},
            {"from": "small", "fromPort": "true", "to": "auto"},
            {"from": "small", "fromPort": "false", "to": "ask"},
            {"from": "auto", "to": "record"},
            {"from": "ask", "to": "record"}
        ]
    });
    let f = check(doc);
    let codes: Vec<(&str, &str)> = f.iter().map(|f| (f.code, f.path.as_str())).collect();
    assert_eq!(
        codes,
        [
            ("template.may_be_missing", "/nodes/4/config/body/auto"),
            ("template.no_output", "/nodes/4/config/body/cond"),
        ]
    );
}

#[test]
fn loop_bodies_cannot_read_their_own_loop_output() {
    let f = check(with(loop_doc(), |d| {
        d["nodes"][3]["config"]["url"] = json!("{{ $.nodes.each.output }}");
        d["nodes"][4]["config"]["url"] = json!("{{ $.nodes.b.output }}");
    }));
    let paths: Vec<&str> = f
        .iter()
        .filter(|f| f.code == "template.not_upstream")
        .map(|f| f.path.as_str())
        .collect();
    assert_eq!(paths, ["/nodes/3/config/url", "/nodes/4/config/url"]);
}

#[test]
fn workflow_level_rules() {
    let f = check(with(base(), |d| {
        d["name"] = json!("  ");
        d["settings"] = json!({"timeoutSeconds": 0});
        d["nodes"][1]["onError"] = json!({"action": "continue", "errors": ["States.ALL", "X"]});
    }));
    assert_eq!(find(&f, "workflow.missing_name").path, "/name");
    assert_eq!(
        find(&f, "settings.invalid_timeout").path,
        "/settings/timeoutSeconds"
    );
    assert_eq!(
        find(&f, "node.invalid_on_error").path,
        "/nodes/1/onError/errors"
    );
    let mut doc = base();
    let edges = doc["edges"].as_array_mut().unwrap();
    for _ in 0..cm_compiler::MAX_EDGES {
        edges.push(json!({"from": "start", "to": "call"}));
    }
    assert_eq!(find(&check(doc), "workflow.too_many_edges").path, "/edges");
}
