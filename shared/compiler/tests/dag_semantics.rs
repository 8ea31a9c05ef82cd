//! The compiled state machine runs exactly the nodes the workflow semantics say, each after
//! every predecessor that runs — on random DAGs (including non-series-parallel ones) with
//! conditions, routed errors and ports, and on hand-picked adversarial shapes.

#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use cm_compiler::{CompileOptions, Compiled, compile};
use cm_model::{Edge, ErrorAction, ErrorHandling, Node, Workflow};
use cm_registry::Registry;
use proptest::prelude::*;
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap};
use support::{Interp, Oracle, reference};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    /// action.http
    Plain,
    /// condition.if on a trigger input flag (native Choice)
    If,
    /// transform.validate with onInvalid=route (ports valid/invalid from the task)
    Validate,
    /// action.http with onError=route (ports out/error)
    Routed,
}

fn ports(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Plain => &["out"],
        Kind::If => &["true", "false"],
        Kind::Validate => &["valid", "invalid"],
        Kind::Routed => &["out", "error"],
    }
}

fn required(kind: Kind) -> Option<&'static str> {
    match kind {
        Kind::Plain => None,
        Kind::If => Some("true"),
        Kind::Validate => Some("valid"),
        Kind::Routed => Some("error"),
    }
}

fn id(i: usize) -> String {
    if i == 0 {
        "start".into()
    } else {
        format!("n{i}")
    }
}

fn node(i: usize, kind: Kind) -> Node {
    let base = match kind {
        Kind::Plain | Kind::Routed => Node::new(id(i), "action.http").with_config(json!({"url": "https://example.com"})),
        Kind::If => Node::new(id(i), "condition.if")
            .with_config(json!({"rules": [{"field": format!("$.nodes.start.output.{}", id(i)), "op": "equals", "value": true}]})),
        Kind::Validate => Node::new(id(i), "transform.validate")
            .with_config(json!({"data": {}, "schema": {}, "onInvalid": "route"})),
    };
    if kind == Kind::Routed {
        Node {
            on_error: Some(ErrorHandling {
                action: ErrorAction::Route,
                errors: vec![],
            }),
            ..base
        }
    } else {
        base
    }
}

/// Builds a workflow from kinds and predecessor choices, fixing required ports.
fn build(kinds: &[Kind], preds: &[Vec<(usize, usize)>], fixups: &[usize]) -> Workflow {
    let mut kinds = kinds.to_vec();
    kinds[0] = Kind::Plain;
    let n = kinds.len();
    let mut edges: Vec<Edge> = Vec::new();
    for (i, choices) in preds.iter().enumerate().take(n).skip(1) {
        let mut seen = BTreeSet::new();
        for &(p, port_pick) in choices {
            let p = p % i;
            let ps = ports(kinds[p]);
            let port = ps[port_pick % ps.len()];
            if seen.insert((p, port)) {
                edges.push(Edge::from_port(id(p), port, id(i)));
            }
        }
    }
    for j in 1..n {
        if let Some(req) = required(kinds[j])
            && !edges.iter().any(|e| e.from == id(j) && e.from_port == req)
        {
            if j + 1 < n {
                let k = j + 1 + fixups[j] % (n - j - 1);
                edges.push(Edge::from_port(id(j), req, id(k)));
            } else {
                kinds[j] = Kind::Plain;
            }
        }
    }
    // The last node may have been turned plain; its outgoing edges do not exist.
    let nodes = std::iter::once(Node::new("start", "trigger.manual"))
        .chain((1..n).map(|i| node(i, kinds[i])))
        .collect();
    Workflow {
        id: "dag".into(),
        name: "random dag".into(),
        description: String::new(),
        version: 1,
        nodes,
        edges,
        settings: Default::default(),
        metadata: Default::default(),
    }
}

fn kind_of(wf: &Workflow, id: &str) -> Kind {
    let n = wf.node(id).unwrap();
    match (n.node_type.as_str(), n.on_error.is_some()) {
        ("condition.if", _) => Kind::If,
        ("transform.validate", _) => Kind::Validate,
        ("action.http", true) => Kind::Routed,
        _ => Kind::Plain,
    }
}

/// Runs the compiled machine with branching choices `pick` and checks it against the semantics.
fn check_run(
    wf: &Workflow,
    compiled: &Compiled,
    pick: &HashMap<String, usize>,
) -> Result<(), String> {
    let port_of = |node: &str| -> String {
        let ps = ports(kind_of(wf, node));
        ps[pick.get(node).copied().unwrap_or(0) % ps.len()].to_owned()
    };
    let branching = |node: &str| kind_of(wf, node) != Kind::Plain;
    let mut oracle = Oracle::default();
    let mut input = serde_json::Map::new();
    for n in &wf.nodes {
        match kind_of(wf, &n.id) {
            Kind::If => {
                input.insert(n.id.clone(), json!(port_of(&n.id) == "true"));
            }
            Kind::Validate => {
                oracle.ports.insert(n.id.clone(), port_of(&n.id));
            }
            Kind::Routed if port_of(&n.id) == "error" => {
                oracle
                    .failures
                    .insert(n.id.clone(), "ConcertMaster.Http.4xx".into());
            }
            _ => {}
        }
    }
    let expected = reference(wf, &port_of, &branching);
    // The embedded engine must take the same nodes.
    let (outcome, trace) =
        support::engine_run(&compiled.definition, Value::Object(input.clone()), &oracle);
    if outcome.status != cm_engine::Status::Succeeded {
        return Err(format!("engine run failed: {outcome:?}"));
    }
    let engine_ran: BTreeSet<String> = trace
        .iter()
        .filter_map(|s| compiled.state_map.get(s))
        .filter(|r| r.role == cm_compiler::StateRole::Node)
        .filter_map(|r| r.node_id.clone())
        .collect();
    if engine_ran != expected {
        return Err(format!(
            "the engine ran {engine_ran:?}, semantics say {expected:?}"
        ));
    }
    let run = Interp::run(compiled, &oracle, Value::Object(input))
        .map_err(|f| format!("execution failed: {} {}", f.error, f.cause))?;
    let mut seen = BTreeSet::new();
    for s in &run.started {
        if !seen.insert(s.node.clone()) {
            return Err(format!("node {} ran twice", s.node));
        }
    }
    if seen != expected {
        return Err(format!("ran {seen:?}, semantics say {expected:?}"));
    }
    for s in &run.started {
        for e in wf.edges.iter().filter(|e| e.to == s.node) {
            if expected.contains(&e.from) && !s.after.contains(&e.from) {
                return Err(format!(
                    "{} started before its predecessor {} finished",
                    s.node, e.from
                ));
            }
        }
    }
    // Every node that ran has its result in the output document; skipped ones are marked or absent.
    for n in &expected {
        let entry = &run.output["nodes"][n];
        if entry.get("port").is_none() && n != "start" && kind_of(wf, n) != Kind::If {
            return Err(format!(
                "output document lacks the result of {n}: {}",
                run.output
            ));
        }
    }
    Ok(())
}

fn compile_ok(wf: &Workflow) -> Compiled {
    let c = match compile(wf, &Registry::builtin(), &CompileOptions::default()) {
        Ok(c) => c,
        Err(e) => panic!("{e}\n{}", wf.to_json_pretty()),
    };
    let problems = support::lint(&c.definition);
    assert!(
        problems.is_empty(),
        "{problems:#?}\n{}",
        c.definition_json()
    );
    c
}

fn all_picks(wf: &Workflow) -> Vec<HashMap<String, usize>> {
    let branching: Vec<String> = wf
        .nodes
        .iter()
        .filter(|n| kind_of(wf, &n.id) != Kind::Plain)
        .map(|n| n.id.clone())
        .collect();
    let combos = 1usize << branching.len().min(8);
    (0..combos)
        .map(|mask| {
            branching
                .iter()
                .enumerate()
                .map(|(k, id)| (id.clone(), (mask >> (k % 8)) & 1))
                .collect()
        })
        .collect()
}

fn arb_kind() -> impl Strategy<Value = Kind> {
    prop_oneof![4 => Just(Kind::Plain), 2 => Just(Kind::If), 1 => Just(Kind::Validate), 1 => Just(Kind::Routed)]
}

/// The same workflow in JSONata mode.
fn jsonata(wf: &Workflow) -> Workflow {
    let mut w = wf.clone();
    w.settings.query_language = cm_model::QueryLanguage::JSONata;
    w
}

/// Compiles in both query languages and checks every branch outcome.
fn check_all(wf: &Workflow) {
    for w in [wf.clone(), jsonata(wf)] {
        let c = compile_ok(&w);
        for pick in all_picks(&w) {
            if let Err(msg) = check_run(&w, &c, &pick) {
                panic!(
                    "{msg}\npick {pick:?}\nworkflow {}\nasl {}",
                    w.to_json_pretty(),
                    c.definition_json()
                );
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn random_dags_run_as_the_semantics_say_in_jsonata_mode(
        kinds in prop::collection::vec(arb_kind(), 2..11),
        preds in prop::collection::vec(prop::collection::vec((0usize..100, 0usize..4), 1..4), 11),
        fixups in prop::collection::vec(0usize..100, 11),
    ) {
        let wf = jsonata(&build(&kinds, &preds, &fixups));
        let compiled = compile_ok(&wf);
        for pick in all_picks(&wf) {
            if let Err(msg) = check_run(&wf, &compiled, &pick) {
                panic!("{msg}\npick {pick:?}\nworkflow {}\nasl {}", wf.to_json_pretty(), compiled.definition_json());
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn random_dags_run_as_the_semantics_say(
        kinds in prop::collection::vec(arb_kind(), 2..13),
        preds in prop::collection::vec(prop::collection::vec((0usize..100, 0usize..4), 1..4), 13),
        fixups in prop::collection::vec(0usize..100, 13),
    ) {
        let wf = build(&kinds, &preds, &fixups);
        let compiled = compile_ok(&wf);
        for pick in all_picks(&wf) {
            if let Err(msg) = check_run(&wf, &compiled, &pick) {
                panic!("{msg}\npick {pick:?}\nworkflow {}\nasl {}", wf.to_json_pretty(), compiled.definition_json());
            }
        }
    }
}

fn wf_from(nodes: &[(&str, Kind)], edges: &[(&str, &str, &str)]) -> Workflow {
    let mut w = build(&[Kind::Plain], &[vec![]], &[0]);
    w.nodes = nodes
        .iter()
        .map(|(name, kind)| {
            let mut n = node(1, *kind);
            n.id = (*name).into();
            if *name == "start" {
                n = Node::new("start", "trigger.manual");
            }
            if *kind == Kind::If {
                n.config = json!({"rules": [{"field": format!("$.nodes.start.output.{name}"), "op": "equals", "value": true}]});
            }
            n
        })
        .collect();
    w.edges = edges
        .iter()
        .map(|(a, p, b)| Edge::from_port(*a, *p, *b))
        .collect();
    w
}

fn states_of(c: &Compiled) -> Vec<String> {
    fn collect(m: &Value, out: &mut Vec<String>) {
        for (name, s) in m["States"].as_object().unwrap() {
            out.push(format!("{name}:{}", s["Type"].as_str().unwrap()));
            for b in s
                .get("Branches")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                collect(b, out);
            }
            if let Some(p) = s.get("ItemProcessor") {
                collect(p, out);
            }
        }
    }
    let mut out = Vec::new();
    collect(&c.definition, &mut out);
    out
}

#[test]
fn n_shape_keeps_every_edge() {
    // a→c, a→d, b→d: not series-parallel.
    use Kind::Plain as P;
    let wf = wf_from(
        &[
            ("start", P),
            ("a", P),
            ("b", P),
            ("c", P),
            ("d", P),
            ("join", P),
        ],
        &[
            ("start", "out", "a"),
            ("start", "out", "b"),
            ("a", "out", "c"),
            ("a", "out", "d"),
            ("b", "out", "d"),
            ("c", "out", "join"),
            ("d", "out", "join"),
        ],
    );
    check_all(&wf);
    let c = compile_ok(&wf);
    // Two parallel stages, no guards (nothing is conditional).
    let states = states_of(&c);
    assert_eq!(
        states.iter().filter(|s| s.ends_with(":Parallel")).count(),
        2,
        "{states:?}"
    );
    assert!(!states.iter().any(|s| s.contains(".guard")), "{states:?}");
}

#[test]
fn if_else_rejoin_uses_a_jump_and_no_guard_on_the_join() {
    use Kind::{If, Plain as P};
    let wf = wf_from(
        &[("start", P), ("c", If), ("yes", P), ("no", P), ("join", P)],
        &[
            ("start", "out", "c"),
            ("c", "true", "yes"),
            ("c", "false", "no"),
            ("yes", "out", "join"),
            ("no", "out", "join"),
        ],
    );
    check_all(&wf);
    let c = compile_ok(&wf);
    let states = states_of(&c);
    assert!(
        !states
            .iter()
            .any(|s| s.contains(":Parallel") || s.contains(".guard")),
        "{states:?}"
    );
    assert_eq!(c.definition["States"]["c.true"]["Next"], "yes");
    assert_eq!(c.definition["States"]["c.false"]["Next"], "no");
}

#[test]
fn join_across_condition_and_parallel_branch_waits_for_both() {
    // c.true→x→j, and an independent slow branch s→j: j must wait for s and (x if it ran).
    use Kind::{If, Plain as P};
    let wf = wf_from(
        &[("start", P), ("c", If), ("s", P), ("x", P), ("j", P)],
        &[
            ("start", "out", "c"),
            ("start", "out", "s"),
            ("c", "true", "x"),
            ("x", "out", "j"),
            ("s", "out", "j"),
        ],
    );
    check_all(&wf);
}

#[test]
fn routed_errors_take_the_error_port() {
    use Kind::{Plain as P, Routed};
    let wf = wf_from(
        &[("start", P), ("call", Routed), ("ok", P), ("alert", P)],
        &[
            ("start", "out", "call"),
            ("call", "out", "ok"),
            ("call", "error", "alert"),
        ],
    );
    check_all(&wf);
}

#[test]
fn deep_chain_and_wide_fanout_compile() {
    let n = 400;
    let kinds = vec![Kind::Plain; n];
    let chain: Vec<Vec<(usize, usize)>> = (0..n).map(|i| vec![(i.saturating_sub(1), 0)]).collect();
    let wf = build(&kinds, &chain, &vec![0; n]);
    check_all(&wf);
    let fan: Vec<Vec<(usize, usize)>> = (0..n).map(|_| vec![(0, 0)]).collect();
    let wf = build(&kinds, &fan, &vec![0; n]);
    check_all(&wf);
}
