//! Every example runs its scenarios (tests/data/runs/<example>.json) in the reference
//! interpreter: templates resolve, conditions route, and exactly the expected nodes run.
//! Task results come from the scenario, as the node-runner would return them.

#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use cm_compiler::{CompileOptions, StateRole, compile};
use cm_registry::Registry;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use support::{Interp, Oracle, engine_run};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn strings(v: &Value) -> std::collections::HashMap<String, String> {
    v.as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect()
}

#[test]
fn every_example_runs_its_scenarios() {
    let registry = Registry::builtin();
    let mut examples: Vec<PathBuf> = std::fs::read_dir(repo().join("examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    examples.sort();
    for file in examples {
        let stem = file.file_stem().unwrap().to_string_lossy().into_owned();
        let scenarios_file = repo().join(format!("tests/data/runs/{stem}.json"));
        let scenarios: Value = serde_json::from_slice(
            &std::fs::read(&scenarios_file)
                .unwrap_or_else(|_| panic!("{} has no scenarios file", file.display())),
        )
        .unwrap();
        let wf = cm_model::from_json_slice(&std::fs::read(&file).unwrap()).unwrap();
        let compiled = compile(&wf, &registry, &CompileOptions::default()).unwrap();
        for sc in scenarios["scenarios"].as_array().unwrap() {
            let name = sc["name"].as_str().unwrap();
            let oracle = Oracle {
                ports: strings(&sc["ports"]),
                failures: strings(&sc["failures"]),
                outputs: sc["outputs"]
                    .as_object()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .collect(),
            };
            let run = Interp::run(&compiled, &oracle, sc["input"].clone())
                .unwrap_or_else(|f| panic!("{stem} / {name}: run failed: {} {}", f.error, f.cause));
            let ran: BTreeSet<&str> = run.started.iter().map(|s| s.node.as_str()).collect();
            let expected: BTreeSet<&str> = sc["ran"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect();
            assert_eq!(ran, expected, "{stem} / {name}");
            // The same run on the embedded engine takes the same nodes.
            let (outcome, trace) = engine_run(&compiled.definition, sc["input"].clone(), &oracle);
            assert!(
                outcome.status == cm_engine::Status::Succeeded,
                "{stem} / {name}: engine run: {outcome:?}"
            );
            let engine_ran: BTreeSet<&str> = trace
                .iter()
                .filter_map(|state| compiled.state_map.get(state))
                .filter(|r| r.role == StateRole::Node)
                .filter_map(|r| r.node_id.as_deref())
                .collect();
            assert_eq!(
                engine_ran, expected,
                "{stem} / {name}: the engine ran other nodes"
            );
            // Every node that ran outside a loop body has its entry in the final document.
            let in_loops = loop_body_nodes(&compiled.definition);
            for node in expected.iter().filter(|n| !in_loops.contains(**n)) {
                assert!(
                    run.output["nodes"][node].is_object(),
                    "{stem} / {name}: no entry for {node}"
                );
            }
        }
    }
}

/// Names of states inside Map item processors (their results stay in the iterations).
fn loop_body_nodes(v: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    fn walk(v: &Value, inside: bool, out: &mut BTreeSet<String>) {
        if let Some(states) = v.get("States").and_then(Value::as_object) {
            for (name, s) in states {
                if inside {
                    out.insert(name.clone());
                }
                for b in s
                    .get("Branches")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    walk(b, inside, out);
                }
                if let Some(p) = s.get("ItemProcessor") {
                    walk(p, true, out);
                }
            }
        }
    }
    walk(v, false, &mut out);
    out
}
