//! Any bytes → parse → (if a workflow) validate + compile against the built-in registry.
//!
//! Must never panic or hang. Besides "no panic", it checks a few cheap invariants:
//! - `compile` succeeds only when `validate` reports no error;
//! - a compiled definition is structurally sound ASL: every `StartAt`, `Next`, `Default`,
//!   `Choices[].Next` and `Catch[].Next` names a state of the same scope, every non-terminal
//!   state goes somewhere, and nested scopes (Parallel branches, Map processors) obey the same;
//! - state names are unique in the whole machine and `state_map` lists exactly those.

#![no_main]

use cm_compiler::{CompileOptions, compile, validate};
use cm_registry::Registry;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};
use std::sync::LazyLock;

static REGISTRY: LazyLock<Registry> = LazyLock::new(Registry::builtin);
static OPTIONS: LazyLock<CompileOptions> = LazyLock::new(CompileOptions::default);

fuzz_target!(|data: &[u8]| {
    let Ok(wf) = cm_model::from_json_slice(data) else {
        return;
    };
    let findings = validate(&wf, &REGISTRY);
    let valid = !findings.iter().any(|f| f.is_error());
    match compile(&wf, &REGISTRY, &OPTIONS) {
        Ok(compiled) => {
            assert!(
                valid,
                "compile succeeded although validate reported errors: {findings:#?}"
            );
            let mut names = std::collections::HashSet::new();
            check_scope(&compiled.definition, "$", &mut names);
            assert_eq!(
                names.len(),
                compiled.state_map.len(),
                "state_map does not list every state"
            );
            assert!(!compiled.definition_json().is_empty());
        }
        Err(e) => {
            assert!(
                e.findings().iter().any(|f| f.is_error()),
                "compile failed without an error finding"
            );
        }
    }
});

/// Checks one ASL scope (`{"StartAt": ..., "States": {...}}`) and the scopes nested in it.
/// `names` collects every state name: ASL wants them unique in the whole machine.
fn check_scope(scope: &Value, at: &str, names: &mut std::collections::HashSet<String>) {
    let states: &Map<String, Value> = scope
        .get("States")
        .and_then(Value::as_object)
        .unwrap_or_else(|| panic!("{at}: scope without States"));
    assert!(!states.is_empty(), "{at}: empty States");
    let start = scope
        .get("StartAt")
        .and_then(Value::as_str)
        .unwrap_or_default();
    assert!(
        states.contains_key(start),
        "{at}: StartAt `{start}` is not a state"
    );
    let target = |name: &str, field: &str, v: Option<&Value>| {
        if let Some(v) = v {
            let t = v
                .as_str()
                .unwrap_or_else(|| panic!("{at}.{name}.{field}: not a string"));
            assert!(
                states.contains_key(t),
                "{at}.{name}.{field}: `{t}` is not a state of this scope"
            );
        }
    };
    for (name, state) in states {
        assert!(
            names.insert(name.clone()),
            "{at}.{name}: state name used twice in the machine"
        );
        let ty = state
            .get("Type")
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("{at}.{name}: no Type"));
        target(name, "Next", state.get("Next"));
        target(name, "Default", state.get("Default"));
        for (k, c) in state
            .get("Choices")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            target(name, &format!("Choices[{k}].Next"), c.get("Next"));
            assert!(c.get("Next").is_some(), "{at}.{name}.Choices[{k}]: no Next");
        }
        for (k, c) in state
            .get("Catch")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            target(name, &format!("Catch[{k}].Next"), c.get("Next"));
        }
        match ty {
            "Choice" => {
                assert!(
                    state.get("Next").is_none() && state.get("End").is_none(),
                    "{at}.{name}: Choice with Next/End"
                );
                let n = state
                    .get("Choices")
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len);
                assert!(n > 0, "{at}.{name}: Choice without Choices");
            }
            "Succeed" | "Fail" => {}
            _ => {
                let ends = state.get("End").and_then(Value::as_bool) == Some(true);
                assert!(
                    ends != state.get("Next").is_some(),
                    "{at}.{name}: needs exactly one of Next / End:true"
                );
            }
        }
        for (k, b) in state
            .get("Branches")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            check_scope(b, &format!("{at}.{name}.Branches[{k}]"), names);
        }
        if let Some(p) = state.get("ItemProcessor") {
            check_scope(p, &format!("{at}.{name}.ItemProcessor"), names);
        }
    }
}
