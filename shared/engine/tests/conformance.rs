//! The engine against the cases recorded on AWS (`tests/asl-conformance/`), each run as a real
//! execution of an in-memory engine on virtual time.
//! Reports pass/total per feature and fails if a feature drops below `floor.json`.
//! Comparison follows the corpus's runner: numbers by value, `ignore_paths` removed,
//! `match_patterns` / `cause_pattern` as anchored regexes, `cause_json` parsed.

#![allow(clippy::unwrap_used, missing_docs)]

use cm_engine::{ExecutionRecord, MachineType, RunOnce, Status, run_once};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/asl-conformance")
}

fn unescape(t: &str) -> String {
    t.replace("~1", "/").replace("~0", "~")
}

/// Removes the value at a JSON Pointer (array elements become a placeholder so that later
/// indices stay put). Returns false when the pointer is the root.
fn remove(doc: &mut Value, pointer: &str) -> bool {
    if pointer.is_empty() {
        return false;
    }
    let parts: Vec<String> = pointer.split('/').skip(1).map(unescape).collect();
    let mut cur = doc;
    for p in &parts[..parts.len() - 1] {
        let next = match cur {
            Value::Object(m) => m.get_mut(p),
            Value::Array(a) => p.parse::<usize>().ok().and_then(move |i| a.get_mut(i)),
            _ => None,
        };
        match next {
            Some(n) => cur = n,
            None => return true,
        }
    }
    let last = &parts[parts.len() - 1];
    match cur {
        Value::Object(m) => {
            m.shift_remove(last);
        }
        Value::Array(a) => {
            if let Some(slot) = last.parse::<usize>().ok().and_then(|i| a.get_mut(i)) {
                *slot = Value::String("<ignored>".into());
            }
        }
        _ => {}
    }
    true
}

fn strip(v: &Value, pointers: &[String]) -> Option<Value> {
    let mut v = v.clone();
    let mut sorted: Vec<&String> = pointers.iter().collect();
    sorted.sort_by_key(|p| (std::cmp::Reverse(p.matches('/').count()), (*p).clone()));
    for p in sorted {
        if !remove(&mut v, p) {
            return None;
        }
    }
    Some(v)
}

fn diff(a: &Value, b: &Value, path: &str, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            if x.as_f64() != y.as_f64() {
                out.push(format!("{path}: expected {a}, got {b}"));
            }
        }
        (Value::Object(x), Value::Object(y)) => {
            for (k, v) in x {
                match y.get(k) {
                    Some(w) => diff(v, w, &format!("{path}/{k}"), out),
                    None => out.push(format!("{path}/{k}: missing")),
                }
            }
            for k in y.keys().filter(|k| !x.contains_key(*k)) {
                out.push(format!("{path}/{k}: unexpected"));
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (v, w)) in x.iter().zip(y).enumerate() {
                diff(v, w, &format!("{path}/{i}"), out);
            }
        }
        _ => {
            if a != b {
                let shown = |v: &Value| v.to_string().chars().take(300).collect::<String>();
                out.push(format!(
                    "{}: expected {}, got {}",
                    if path.is_empty() { "/" } else { path },
                    shown(a),
                    shown(b)
                ));
            }
        }
    }
}

fn full_match(pattern: &str, text: &str) -> bool {
    regex::Regex::new(&format!("(?s)^(?:{pattern})$")).is_ok_and(|r| r.is_match(text))
}

fn pointer<'a>(doc: &'a Value, pointer: &str) -> Option<&'a Value> {
    if pointer.is_empty() {
        return Some(doc);
    }
    doc.pointer(pointer)
}

fn compare(case: &Value, rec: &ExecutionRecord) -> Vec<String> {
    let exp = &case["expected"];
    let mut problems = Vec::new();
    match (exp["status"].as_str(), rec.status) {
        (Some("SUCCEEDED"), Status::Succeeded) => {
            let output = rec.output.as_ref().unwrap_or(&Value::Null);
            if let Some(expected) = exp.get("output") {
                let ignore: Vec<String> = case
                    .get("ignore_paths")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|p| p.as_str().map(str::to_owned))
                    .collect();
                if let (Some(e), Some(a)) = (strip(expected, &ignore), strip(output, &ignore)) {
                    diff(&e, &a, "", &mut problems);
                }
                for (p, pattern) in case
                    .get("match_patterns")
                    .and_then(Value::as_object)
                    .into_iter()
                    .flatten()
                {
                    let got = pointer(output, p).and_then(Value::as_str);
                    if !got.is_some_and(|g| full_match(pattern.as_str().unwrap_or_default(), g)) {
                        problems.push(format!("output{p}: {got:?} does not match {pattern}"));
                    }
                }
            }
        }
        (Some("FAILED"), Status::Failed) => {
            let (error, cause) = (&rec.error, &rec.cause);
            for (field, got) in [("error", error), ("cause", cause)] {
                if let Some(want) = exp.get(field) {
                    let want = want.as_str().map(str::to_owned);
                    if want != *got {
                        problems.push(format!("{field}: expected {want:?}, got {got:?}"));
                    }
                }
            }
            if let Some(pattern) = exp.get("cause_pattern").and_then(Value::as_str)
                && !cause.as_deref().is_some_and(|c| full_match(pattern, c))
            {
                problems.push(format!("cause: {cause:?} does not match {pattern}"));
            }
            if let Some(want) = exp.get("cause_json") {
                match cause
                    .as_deref()
                    .and_then(|c| serde_json::from_str::<Value>(c).ok())
                {
                    Some(got) => diff(want, &got, "cause", &mut problems),
                    None => problems.push(format!("cause: expected JSON {want}, got {cause:?}")),
                }
            }
        }
        (want, got) => problems.push(format!(
            "status: expected {want:?}, got {got:?} ({:?} {:?} {:?})",
            rec.output, rec.error, rec.cause
        )),
    }
    problems
}

#[tokio::test]
async fn conformance_with_aws_recordings() {
    let filter = std::env::var("CONFORMANCE_FILTER").unwrap_or_default();
    let verbose = std::env::var_os("CONFORMANCE_VERBOSE").is_some();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir().join("cases"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().contains(&filter))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no cases found");
    let mut tally: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for file in &files {
        let case: Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
        let feature = case["feature"].as_str().unwrap_or("other").to_owned();
        let opts = RunOnce {
            machine_type: if case["source"]["state_machine_type"] == "EXPRESS" {
                MachineType::Express
            } else {
                MachineType::Standard
            },
            name: Some("execution".into()),
            virtual_time: true,
            ..RunOnce::default()
        };
        let definition = case["definition"].clone();
        let input = case["input"].clone();
        let problems = match run_once(&definition, input, opts).await {
            Ok(rec) => compare(&case, &rec),
            Err(e) => vec![format!("the engine refused the case: {e}")],
        };
        let entry = tally.entry(feature).or_default();
        entry.1 += 1;
        if problems.is_empty() {
            entry.0 += 1;
        } else if verbose {
            println!(
                "FAIL {}\n  {}",
                file.file_name().unwrap().to_string_lossy(),
                problems.join("\n  ")
            );
        }
    }
    let floor: BTreeMap<String, usize> =
        serde_json::from_slice(&std::fs::read(dir().join("floor.json")).unwrap()).unwrap();
    let (mut passed, mut total) = (0, 0);
    let mut below = Vec::new();
    let mut above = Vec::new();
    for (feature, (p, t)) in &tally {
        println!("{feature:<16} {p:>3}/{t}");
        passed += p;
        total += t;
        let min = floor.get(feature).copied().unwrap_or(0);
        if *p < min && filter.is_empty() {
            below.push(format!("{feature}: {p} < floor {min}"));
        } else if *p > min {
            above.push(format!("{feature}: {p}"));
        }
    }
    println!("conformance: {passed}/{total} cases pass");
    if !above.is_empty() && filter.is_empty() {
        println!(
            "above the floor (raise tests/asl-conformance/floor.json): {}",
            above.join(", ")
        );
    }
    assert!(
        below.is_empty(),
        "conformance dropped below the floor: {below:?}"
    );
}
