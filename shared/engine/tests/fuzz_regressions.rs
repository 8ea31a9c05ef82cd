//! Inputs the `engine_run` fuzz target once broke (`fuzz/regressions/engine-*.json`, case
//! documents `{"definition", "input", "type", "finding"}`), replayed through the same harness
//! the fuzz target runs (`fuzz/engine_case.rs`: in-memory engine, virtual clock, small
//! transition budget). Each must now be refused with a typed error or close with a
//! well-formed history, within a wall-clock bound.

#![allow(clippy::unwrap_used, missing_docs)]

#[path = "../../../fuzz/engine_case.rs"]
mod engine_case;

use engine_case::{Case, MAX_EVENTS, Outcome};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Generous: every regression runs in milliseconds once fixed.
const LIMIT: Duration = Duration::from_secs(30);

fn regressions() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("engine-") && n.ends_with(".json"))
        })
        .collect();
    files.sort();
    files
}

#[test]
fn engine_fuzz_regressions_stay_fixed() {
    let files = regressions();
    assert!(
        !files.is_empty(),
        "no fuzz/regressions/engine-*.json inputs"
    );
    let mut problems = Vec::new();
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let doc: Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
        let case = Case::from_document(&doc)
            .unwrap_or_else(|| panic!("{name} is not a case document (no definition)"));
        assert_eq!(
            Case::from_document(&case.to_document()).as_ref(),
            Some(&case)
        );
        // On its own thread, so that a hang fails the test instead of blocking it.
        let (tx, rx) = mpsc::channel();
        let started = Instant::now();
        std::thread::spawn(move || {
            let _ = tx.send(engine_case::run_blocking(&case));
        });
        match rx.recv_timeout(LIMIT) {
            Ok(Ok(Outcome::Refused(e))) => println!("{name}: refused ({e})"),
            Ok(Ok(Outcome::Closed(rec, events))) => {
                assert!(events <= MAX_EVENTS);
                println!(
                    "{name}: {} after {events} events in {:?} ({})",
                    rec.status.as_str(),
                    started.elapsed(),
                    rec.error.as_deref().unwrap_or("-")
                );
            }
            Ok(Err(broken)) => problems.push(format!("{name}: {broken}")),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                problems.push(format!("{name}: still running after {LIMIT:?}"));
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                problems.push(format!("{name}: the engine panicked"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
