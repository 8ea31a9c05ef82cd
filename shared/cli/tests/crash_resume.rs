//! Crash/restart reliability: executions journaled in SQLite survive `concertmaster asl resume`
//! being SIGKILLed at random moments, again and again, and still finish exactly once.
//!
//! 1. In-process: open an engine on a fresh database, register a parent machine (Task calls to
//!    the local node runner, a Map with `MaxConcurrency`, a Parallel, Wait states, a
//!    Choice-driven counter loop and a `states:startExecution.sync:2` child) and its child
//!    machine, start `EXECUTIONS` executions, and shut the engine down at once (they stay
//!    RUNNING in the database).
//! 2. Chaos: `ROUNDS` times, spawn `concertmaster asl resume --db DB`, let it run for a random
//!    50–500 ms and SIGKILL it. The RNG is seeded (printed; set `CRASH_SEED` to replay a run).
//! 3. Run `asl resume` to completion (fails past `FINAL_TIMEOUT`).
//! 4. In-process again: every execution (parents and children) SUCCEEDED with the output
//!    computed here from its input, and every history is well formed: one ExecutionStarted,
//!    one terminal event, no event recorded twice for the same step, ids dense from 1.

#![allow(clippy::unwrap_used, missing_docs)]

use cm_engine::{
    Engine, EngineConfig, FnHandler, HistoryQuery, MachineType, Resources, Status, StoreConfig,
    TaskCall,
};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const EXECUTIONS: u64 = 30;
const ROUNDS: usize = 10;
const FINAL_TIMEOUT: Duration = Duration::from_secs(120);
const NODE_RUNNER: &str = "concertmaster-node-runner";

/// splitmix64: a small seeded RNG (no dependency needed for chaos timings).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

/// What the CLI's node runner answers for the events below (a `transform.validate` with an
/// empty schema passes its data through): `{output: data, port: "out"}`. Used to verify in
/// process.
fn resources() -> Resources {
    Resources::new().function(
        NODE_RUNNER,
        FnHandler(|c: &TaskCall| {
            Ok(json!({
                "output": c.input.pointer("/config/data").cloned().unwrap_or(Value::Null),
                "port": "out",
            }))
        }),
    )
}

/// A node-runner invocation echoing a value: `transform.validate` of `data` against `{}`.
/// `payload` is `{"input.$": <path>}`: the value to echo.
fn invoke(payload: Value) -> Value {
    let path = payload.get("input.$").cloned().unwrap_or(Value::Null);
    json!({"FunctionName": NODE_RUNNER, "Payload": {
        "node": {"id": "echo", "type": "transform.validate", "typeVersion": 1},
        "config": {"data.$": path, "schema": {}}
    }})
}

fn child_definition() -> Value {
    json!({
        "StartAt": "ChildTask",
        "States": {
            "ChildTask": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": invoke(json!({"input.$": "$.x"})),
                "ResultSelector": {"v.$": "$.Payload.output"},
                "ResultPath": "$.t",
                "Next": "ChildWait"
            },
            "ChildWait": {"Type": "Wait", "Seconds": 1, "Next": "ChildPass"},
            "ChildPass": {
                "Type": "Pass",
                "Parameters": {"x.$": "$.x", "y.$": "States.MathAdd($.t.v, 7)"},
                "End": true
            }
        }
    })
}

fn parent_definition(child_arn: &str) -> Value {
    json!({
        "Comment": "crash/resume reliability",
        "StartAt": "Warmup",
        "States": {
            // So that the first kills land while executions loop and start their children.
            "Warmup": {"Type": "Wait", "Seconds": 1, "Next": "First"},
            "First": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": invoke(json!({"input.$": "$.n"})),
                "ResultSelector": {"v.$": "$.Payload.output", "port.$": "$.Payload.port"},
                "ResultPath": "$.first",
                "Next": "LoopInit"
            },
            "Fan": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "MaxConcurrency": 2,
                "ItemProcessor": {
                    "StartAt": "ItemTask",
                    "States": {
                        "ItemTask": {
                            "Type": "Task",
                            "Resource": "arn:aws:states:::lambda:invoke",
                            "Parameters": invoke(json!({"input.$": "$"})),
                            "OutputPath": "$.Payload.output",
                            "Next": "ItemWait"
                        },
                        "ItemWait": {"Type": "Wait", "Seconds": 1, "Next": "ItemDouble"},
                        "ItemDouble": {
                            "Type": "Pass",
                            "Parameters": {"d.$": "States.MathAdd($, $)"},
                            "OutputPath": "$.d",
                            "End": true
                        }
                    }
                },
                "ResultPath": "$.doubled",
                "Next": "Pause"
            },
            "Both": {
                "Type": "Parallel",
                "Branches": [
                    {
                        "StartAt": "BranchWait",
                        "States": {
                            "BranchWait": {"Type": "Wait", "Seconds": 1, "Next": "BranchPass"},
                            "BranchPass": {
                                "Type": "Pass",
                                "Parameters": {"w.$": "States.MathAdd($.n, 1000)"},
                                "End": true
                            }
                        }
                    },
                    {
                        "StartAt": "BranchTask",
                        "States": {
                            "BranchTask": {
                                "Type": "Task",
                                "Resource": "arn:aws:states:::lambda:invoke",
                                "Parameters": invoke(json!({"input.$": "States.Format('b-{}', $.n)"})),
                                "OutputPath": "$.Payload.output",
                                "End": true
                            }
                        }
                    }
                ],
                "ResultPath": "$.both",
                "Next": "Fan"
            },
            "Pause": {"Type": "Wait", "Seconds": 1, "Next": "Done"},
            "LoopInit": {
                "Type": "Pass",
                "Result": {"i": 0, "acc": 0},
                "ResultPath": "$.loop",
                "Next": "LoopCheck"
            },
            "LoopCheck": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.loop.i", "NumericLessThan": 15, "Next": "LoopStep"}],
                "Default": "Child"
            },
            "LoopStep": {
                "Type": "Pass",
                "Parameters": {
                    "i.$": "States.MathAdd($.loop.i, 1)",
                    "acc.$": "States.MathAdd($.loop.acc, $.n)"
                },
                "ResultPath": "$.loop",
                "Next": "LoopCheck"
            },
            "Child": {
                "Type": "Task",
                "Resource": "arn:aws:states:::states:startExecution.sync:2",
                "Parameters": {"StateMachineArn": child_arn, "Input": {"x.$": "$.n"}},
                "ResultSelector": {"out.$": "$.Output", "status.$": "$.Status"},
                "ResultPath": "$.child",
                "Next": "Both"
            },
            "Done": {
                "Type": "Pass",
                "Parameters": {
                    "n.$": "$.n",
                    "first.$": "$.first",
                    "doubled.$": "$.doubled",
                    "both.$": "$.both",
                    "loop.$": "$.loop",
                    "child.$": "$.child"
                },
                "End": true
            }
        }
    })
}

fn parent_input(k: u64) -> Value {
    let n = 10 * k + 1;
    json!({"n": n, "items": (n..n + 5).collect::<Vec<_>>()})
}

fn expected_parent_output(input: &Value) -> Value {
    let n = input["n"].as_u64().unwrap();
    let doubled: Vec<u64> = input["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| 2 * v.as_u64().unwrap())
        .collect();
    json!({
        "n": n,
        "first": {"v": n, "port": "out"},
        "doubled": doubled,
        "both": [{"w": n + 1000}, format!("b-{n}")],
        "loop": {"i": 15, "acc": 15 * n},
        "child": {"out": expected_child_output(&json!({"x": n})), "status": "SUCCEEDED"}
    })
}

fn expected_child_output(input: &Value) -> Value {
    let x = input["x"].as_u64().unwrap();
    json!({"x": x, "y": x + 7})
}

async fn open(db: &Path) -> Engine {
    Engine::open(EngineConfig {
        store: StoreConfig::Sqlite {
            path: db.to_owned(),
            durability: Default::default(),
        },
        resources: resources(),
        ..EngineConfig::default()
    })
    .await
    .unwrap()
}

fn resume(db: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_concertmaster"));
    c.args(["asl", "resume", "--db"]).arg(db);
    c
}

/// How far the executions got, read straight from the database (diagnostics only).
fn progress(db: &Path) -> String {
    let read = || -> rusqlite::Result<(i64, i64, i64)> {
        let conn =
            rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        conn.query_row(
            "SELECT (SELECT COUNT(*) FROM events), \
                    (SELECT COUNT(*) FROM executions WHERE status = 'RUNNING'), \
                    (SELECT COUNT(*) FROM executions)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
    };
    match read() {
        Ok((events, running, total)) => {
            format!("{events} events, {running} of {total} executions running")
        }
        Err(e) => format!("unreadable ({e})"),
    }
}

/// Checks one history; returns a description of what is wrong, if anything.
fn check_history(arn: &str, events: &[cm_engine::history::HistoryEvent]) -> Vec<String> {
    let mut problems = Vec::new();
    for (i, e) in events.iter().enumerate() {
        let want = i as u64 + 1;
        if e.id != want || e.previous_event_id != want - 1 {
            problems.push(format!(
                "{arn}: event #{i} has id {} (previous {}), expected {want}",
                e.id, e.previous_event_id
            ));
            break;
        }
    }
    let started = events
        .iter()
        .filter(|e| e.kind == "ExecutionStarted")
        .count();
    let terminal: Vec<&str> = events
        .iter()
        .filter(|e| cm_engine::history::is_terminal(&e.kind))
        .map(|e| e.kind.as_str())
        .collect();
    if started != 1 || events.first().map(|e| e.kind.as_str()) != Some("ExecutionStarted") {
        problems.push(format!(
            "{arn}: {started} ExecutionStarted event(s), first is {:?}",
            events.first().map(|e| &e.kind)
        ));
    }
    if terminal != ["ExecutionSucceeded"]
        || events.last().map(|e| e.kind.as_str()) != Some("ExecutionSucceeded")
    {
        problems.push(format!("{arn}: terminal events {terminal:?}"));
    }
    // Every (step, event type) pair happens once: a state visit enters and exits once, a task
    // attempt is scheduled and succeeds once, whatever the number of restarts.
    let mut seen: HashSet<(&str, &str)> = HashSet::new();
    for e in events {
        if !seen.insert((e.step.as_str(), e.kind.as_str())) {
            problems.push(format!(
                "{arn}: event {} {} recorded twice for step {:?}",
                e.id, e.kind, e.step
            ));
        }
    }
    problems
}

#[test]
fn executions_survive_repeated_sigkill_of_asl_resume() {
    let started_at = Instant::now();
    let seed = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    println!("crash_resume: seed {seed} (CRASH_SEED={seed} replays these timings)");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("engine.db");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    // 1. Start the executions in-process, then stop this engine at once.
    let mut inputs: HashMap<String, Value> = HashMap::new();
    let child_machine = rt.block_on(async {
        let engine = open(&db).await;
        let child = engine
            .create_state_machine("crash-child", &child_definition(), MachineType::Standard)
            .await
            .unwrap();
        let parent = engine
            .create_state_machine(
                "crash-parent",
                &parent_definition(&child.arn),
                MachineType::Standard,
            )
            .await
            .unwrap();
        for k in 0..EXECUTIONS {
            let input = parent_input(k);
            let s = engine
                .start_execution(&parent.arn, Some(format!("exec-{k:02}")), input.clone())
                .await
                .unwrap();
            assert!(!s.existing);
            inputs.insert(s.execution_arn, input);
        }
        engine.shutdown().await;
        child.arn
    });

    // 2. Chaos: kill `asl resume` at random moments.
    for round in 0..ROUNDS {
        // A pause with no process first: Wait deadlines pass meanwhile, so the next process
        // has a burst of work at once (and the kill lands in it more often).
        let gap = rng.range(0, 400);
        std::thread::sleep(Duration::from_millis(gap));
        let ms = rng.range(50, 500);
        let mut child = resume(&db)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(ms));
        let finished = child.try_wait().unwrap();
        // On Unix, kill() is SIGKILL: no destructor, no flush, no orderly shutdown.
        let _ = child.kill();
        let status = child.wait().unwrap();
        println!(
            "round {round}: {gap} ms pause, then killed after {ms} ms{}; journal: {}",
            if finished.is_some() {
                format!(" (it had already exited: {status})")
            } else {
                String::new()
            },
            progress(&db)
        );
    }

    // 3. Finish everything.
    let mut last = resume(&db)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + FINAL_TIMEOUT;
    loop {
        if last.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = last.kill();
            let out = last.wait_with_output().unwrap();
            panic!(
                "asl resume did not finish within {FINAL_TIMEOUT:?}; stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = last.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "asl resume failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in stdout.lines() {
        let doc: Value = serde_json::from_str(line).unwrap();
        assert_eq!(doc["status"], "SUCCEEDED", "{line}");
    }
    println!(
        "final resume finished {} execution(s)",
        stdout.lines().count()
    );

    // 4. Verify in-process.
    rt.block_on(async {
        let engine = open(&db).await;
        assert_eq!(engine.running_count(), 0, "executions still running");
        let mut all = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = engine
                .list_executions(None, None, 1000, token.as_deref())
                .unwrap();
            all.extend(page.executions);
            match page.next_token {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        let parents: Vec<_> = all.iter().filter(|e| e.parent.is_none()).collect();
        let children: Vec<_> = all.iter().filter(|e| e.parent.is_some()).collect();
        assert_eq!(parents.len() as u64, EXECUTIONS, "parent executions lost");
        assert_eq!(
            children.len() as u64,
            EXECUTIONS,
            "one child per parent expected"
        );
        let mut problems = Vec::new();
        let mut parents_of_children = HashSet::new();
        for rec in &all {
            if rec.status != Status::Succeeded {
                problems.push(format!(
                    "{}: {} {:?} {:?}",
                    rec.arn,
                    rec.status.as_str(),
                    rec.error,
                    rec.cause
                ));
                continue;
            }
            let expected = match &rec.parent {
                None => {
                    assert_eq!(inputs.get(&rec.arn), Some(&rec.input), "{}", rec.arn);
                    expected_parent_output(&rec.input)
                }
                Some(p) => {
                    assert!(inputs.contains_key(p), "{} has unknown parent {p}", rec.arn);
                    assert_eq!(rec.state_machine_arn, child_machine);
                    parents_of_children.insert(p.clone());
                    expected_child_output(&rec.input)
                }
            };
            if rec.output.as_ref() != Some(&expected) {
                problems.push(format!(
                    "{}: output {:?}, expected {expected}",
                    rec.arn, rec.output
                ));
            }
            let mut events = Vec::new();
            let mut token: Option<String> = None;
            loop {
                let page = engine
                    .get_execution_history(
                        &rec.arn,
                        HistoryQuery {
                            max_results: 1000,
                            next_token: token.as_deref(),
                            reverse: false,
                        },
                    )
                    .unwrap();
                events.extend(page.events);
                match page.next_token {
                    Some(t) => token = Some(t),
                    None => break,
                }
            }
            problems.extend(check_history(&rec.arn, &events));
        }
        assert_eq!(
            parents_of_children.len() as u64,
            EXECUTIONS,
            "a parent started more than one child"
        );
        engine.shutdown().await;
        assert!(
            problems.is_empty(),
            "seed {seed}: {} problem(s):\n{}",
            problems.len(),
            problems.join("\n")
        );
    });
    println!(
        "crash_resume: {ROUNDS} kill rounds, {} executions verified in {:?}",
        2 * EXECUTIONS,
        started_at.elapsed()
    );
}
