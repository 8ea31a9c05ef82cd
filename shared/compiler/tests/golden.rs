//! Every example validates cleanly and compiles to its committed golden ASL, byte for byte.
//! Regenerate after an intended change with `UPDATE_GOLDEN=1 cargo test -p cm-compiler --test golden`.

#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use cm_compiler::{CompileOptions, compile, validate};
use cm_registry::Registry;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn examples() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

#[test]
fn there_are_at_least_five_examples() {
    assert!(examples().len() >= 5, "{:?}", examples());
}

#[test]
fn examples_validate_without_findings() {
    let registry = Registry::builtin();
    for file in examples() {
        let wf = cm_model::from_json_slice(&std::fs::read(&file).unwrap()).unwrap();
        let findings = validate(&wf, &registry);
        assert!(findings.is_empty(), "{}: {findings:#?}", file.display());
    }
}

#[test]
fn examples_match_their_golden_asl() {
    let registry = Registry::builtin();
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let golden_dir = repo().join("tests/golden");
    let mut mismatched = Vec::new();
    for file in examples() {
        let wf = cm_model::from_json_slice(&std::fs::read(&file).unwrap()).unwrap();
        let compiled = compile(&wf, &registry, &CompileOptions::default()).unwrap();
        let problems = support::lint(&compiled.definition);
        assert!(problems.is_empty(), "{}: {problems:#?}", file.display());
        let summary = serde_json::json!({
            "executionType": compiled.execution_type,
            "executionTypeReason": compiled.execution_type_reason,
            "stats": compiled.stats,
            "stateMap": compiled.state_map,
        });
        let stem = file.file_stem().unwrap().to_string_lossy().into_owned();
        for (name, text) in [
            (
                format!("{stem}.asl.json"),
                compiled.definition_json() + "\n",
            ),
            (
                format!("{stem}.compile.json"),
                serde_json::to_string_pretty(&summary).unwrap() + "\n",
            ),
        ] {
            let path = golden_dir.join(&name);
            if update {
                std::fs::create_dir_all(&golden_dir).unwrap();
                std::fs::write(&path, &text).unwrap();
            } else if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
                mismatched.push(name);
            }
        }
    }
    assert!(
        mismatched.is_empty(),
        "compiled output differs from tests/golden for {mismatched:?}; if the change is intended, run UPDATE_GOLDEN=1 cargo test -p cm-compiler --test golden and review the diff"
    );
}

#[test]
fn shipped_workflow_schema_is_current_and_accepts_the_examples() {
    let schema = cm_model::workflow_json_schema();
    let text = serde_json::to_string_pretty(&schema).unwrap() + "\n";
    let path = repo().join("schemas/workflow.schema.json");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &text).unwrap();
    }
    assert!(
        std::fs::read_to_string(&path).ok().as_deref() == Some(text.as_str()),
        "schemas/workflow.schema.json is stale; run UPDATE_GOLDEN=1 cargo test -p cm-compiler --test golden"
    );
    let validator = jsonschema::draft202012::new(&schema).unwrap();
    for file in examples() {
        let doc: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&doc)
            .map(|e| format!("{}: {e}", e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{}: {errors:?}", file.display());
    }
    // And rejects what the parser rejects.
    let bad = serde_json::json!({"id": "x", "name": "n", "nodes": [{"id": "a", "type": "t", "bogus": 1}]});
    assert!(!validator.is_valid(&bad));
}

#[test]
fn shipped_node_type_schema_is_current() {
    let schema =
        serde_json::to_value(schemars::schema_for!(cm_registry::NodeTypeDescriptor)).unwrap();
    let text = serde_json::to_string_pretty(&schema).unwrap() + "\n";
    let path = repo().join("schemas/node-type.schema.json");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &text).unwrap();
    }
    assert!(
        std::fs::read_to_string(&path).ok().as_deref() == Some(text.as_str()),
        "schemas/node-type.schema.json is stale; run UPDATE_GOLDEN=1 cargo test -p cm-compiler --test golden"
    );
}

#[test]
fn every_finding_code_is_documented() {
    let doc = std::fs::read_to_string(repo().join("docs/validation.md")).unwrap();
    let mut codes = Vec::new();
    for dir in ["shared/compiler/src", "shared/model/src"] {
        for entry in std::fs::read_dir(repo().join(dir)).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            for piece in text.split('"').skip(1).step_by(2) {
                let prefix = piece.split('.').next().unwrap_or_default();
                let known = [
                    "workflow", "node", "edge", "graph", "port", "template", "foreach", "settings",
                    "asl", "parse",
                ];
                let shaped = piece.split('.').count() == 2
                    && piece
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c == '_' || c == '.');
                if known.contains(&prefix) && shaped {
                    codes.push(piece.to_owned());
                }
            }
        }
    }
    codes.sort();
    codes.dedup();
    assert!(codes.len() > 30, "{codes:?}");
    let missing: Vec<&String> = codes
        .iter()
        .filter(|c| !doc.contains(&format!("`{c}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/validation.md does not list {missing:?}"
    );
}

/// Inputs the fuzzer once broke: each must now give Ok or findings, never a panic.
#[test]
fn fuzz_regressions_stay_fixed() {
    let registry = Registry::builtin();
    let dir = repo().join("fuzz/regressions");
    let entries: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert!(
        !entries.is_empty(),
        "no regression inputs in {}",
        dir.display()
    );
    for entry in entries {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        if let Ok(wf) = cm_model::from_json_slice(&bytes) {
            let _ = validate(&wf, &registry);
            let _ = compile(&wf, &registry, &CompileOptions::default());
        }
    }
}

#[test]
fn node_type_reference_is_current() {
    let text = cm_registry::docs::markdown(&Registry::builtin())
        .trim_end()
        .to_owned()
        + "\n";
    let path = repo().join("docs/node-types.md");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &text).unwrap();
    }
    assert!(
        std::fs::read_to_string(&path).ok().as_deref() == Some(text.as_str()),
        "docs/node-types.md is stale; run UPDATE_GOLDEN=1 cargo test -p cm-compiler --test golden"
    );
}
