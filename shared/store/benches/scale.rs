//! Scale bench of the SQLite store: fills one organisation with 10,000 workflows and 100,000
//! runs (plus a tenth of that in a second organisation), then reports p50/p99 latency of gets
//! and pages of 50, each beside a baseline `SELECT 1` through the same path (blocking pool,
//! lock, cached statement) measured in the same run.
//!
//! `cargo bench -p cm-store --bench scale` for the full sizes; under `cargo test --benches`
//! (no `--bench` argument) it runs small sizes as a smoke test.

#![allow(clippy::unwrap_used, missing_docs)]

use cm_store::sqlite::SqliteStore;
use cm_store::{
    Page, RunQuery, RunRecord, RunStatus, RunStore, WorkflowQuery, WorkflowStore, WorkflowWrite,
};
use serde_json::json;
use std::future::Future;
use std::time::{Duration, Instant};

const ORG: &str = "org-bench";
const NOISE_ORG: &str = "org-noise";
const PAGE: usize = 50;

struct Sizes {
    workflows: usize,
    runs: usize,
    iterations: usize,
}

fn workflow_id(i: usize) -> String {
    format!("wf-{i:05}")
}

fn run_id(i: usize) -> String {
    format!("run-{i:06}")
}

fn status_of(i: usize) -> RunStatus {
    match i % 10 {
        0 => RunStatus::Failed,
        1 => RunStatus::Running,
        _ => RunStatus::Succeeded,
    }
}

fn fill(store: &SqliteStore, org: &str, workflows: usize, runs: usize) {
    store
        .bulk_insert_workflows(
            org,
            (0..workflows).map(|i| {
                (
                    workflow_id(i),
                    WorkflowWrite {
                        name: format!("Workflow {i}"),
                        description: format!("Syncs batch {} of the nightly export", i % 97),
                        definition: json!({"nodes": [{"id": "n1", "type": "trigger.manual"}]}),
                        is_template: i % 20 == 0,
                        actor: "bench".into(),
                        at_ms: i as i64,
                    },
                )
            }),
        )
        .unwrap();
    store
        .bulk_insert_runs(
            org,
            (0..runs).map(|i| {
                let status = status_of(i);
                let started = 1_700_000_000_000 + (i as i64) * 1_000 - (i as i64 % 3);
                RunRecord {
                    id: run_id(i),
                    workflow_id: workflow_id((i * 7_919) % workflows),
                    workflow_version: 1,
                    execution_arn: format!("arn:aws:states:local:0:execution:wf:{}", run_id(i)),
                    status,
                    trigger: "trigger.manual".into(),
                    input: json!({"n": i, "source": "bench"}),
                    output: (status == RunStatus::Succeeded).then(|| json!({"ok": true})),
                    error: (status == RunStatus::Failed).then(|| "States.TaskFailed".into()),
                    cause: None,
                    idempotency_key: (i % 2 == 0).then(|| format!("key-{i}")),
                    started_by: "bench".into(),
                    started_at_ms: started,
                    ended_at_ms: (status != RunStatus::Running).then_some(started + 500),
                    retry_of: None,
                }
            }),
        )
        .unwrap();
}

/// A small deterministic generator (xorshift) for picking ids.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

struct Stats {
    p50: Duration,
    p99: Duration,
}

/// Times `iterations` calls of `op` (after a warm-up).
fn measure<F, Fut>(rt: &tokio::runtime::Runtime, iterations: usize, mut op: F) -> Stats
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = ()>,
{
    for i in 0..iterations.min(50) {
        rt.block_on(op(i));
    }
    let mut times: Vec<Duration> = (0..iterations)
        .map(|i| {
            let start = Instant::now();
            rt.block_on(op(i));
            start.elapsed()
        })
        .collect();
    times.sort();
    let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    Stats {
        p50: at(0.50),
        p99: at(0.99),
    }
}

/// The cursor after `depth` items of a list, reached by paging with the largest pages.
fn cursor_at<T, F, Fut>(rt: &tokio::runtime::Runtime, depth: usize, mut next: F) -> Option<String>
where
    F: FnMut(Option<String>, usize) -> Fut,
    Fut: Future<Output = cm_store::Result<Page<T>>>,
{
    let mut cursor = None;
    let mut seen = 0;
    while seen < depth {
        let limit = (depth - seen).min(cm_store::MAX_PAGE);
        let page = rt.block_on(next(cursor.take(), limit)).unwrap();
        seen += page.items.len();
        cursor = Some(page.next_cursor?);
    }
    cursor
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let sizes = if full {
        Sizes {
            workflows: 10_000,
            runs: 100_000,
            iterations: 2_000,
        }
    } else {
        Sizes {
            workflows: 200,
            runs: 2_000,
            iterations: 30,
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("scale.db")).unwrap();

    let started = Instant::now();
    fill(&store, ORG, sizes.workflows, sizes.runs);
    fill(&store, NOISE_ORG, sizes.workflows / 10, sizes.runs / 10);
    let fill_time = started.elapsed();
    println!(
        "filled {} workflows + {} runs in {ORG} (and a tenth of that in {NOISE_ORG}) in {:.1} s",
        sizes.workflows,
        sizes.runs,
        fill_time.as_secs_f64()
    );

    let s = &store;
    let n = sizes.iterations;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let wf_ids: Vec<String> = (0..n)
        .map(|_| workflow_id(rng.below(sizes.workflows)))
        .collect();
    let run_ids: Vec<String> = (0..n).map(|_| run_id(rng.below(sizes.runs))).collect();
    let wf_query =
        |cursor: Option<String>, search: Option<&str>, templates: Option<bool>| WorkflowQuery {
            search: search.map(Into::into),
            templates,
            cursor,
            limit: PAGE,
        };
    let run_query =
        |workflow: Option<&str>, status: Option<RunStatus>, cursor: Option<String>| RunQuery {
            workflow_id: workflow.map(Into::into),
            status,
            cursor,
            limit: PAGE,
        };
    let deep_wf = cursor_at(&rt, sizes.workflows / 2, |cursor, limit| {
        s.list_workflows(
            ORG,
            WorkflowQuery {
                limit,
                ..wf_query(cursor, None, None)
            },
        )
    });
    let deep_run = cursor_at(&rt, sizes.runs / 2, |cursor, limit| {
        s.list_runs(
            ORG,
            RunQuery {
                limit,
                ..run_query(None, None, cursor)
            },
        )
    });
    // One match, the last workflow by id: the worst case for a scan in id order.
    let rare = workflow_id(sizes.workflows - 1);

    let (wf_ids, run_ids, wf_query, run_query) = (&wf_ids, &run_ids, &wf_query, &run_query);
    let (deep_wf, deep_run, rare) = (&deep_wf, &deep_run, rare.as_str());

    // (name, stats, items on the last page: a check that the call did its work)
    let mut rows: Vec<(String, Stats, usize)> = Vec::new();
    let items = std::cell::Cell::new(0);
    let items = &items;
    let baseline = measure(&rt, n, |_| async {
        s.ping().await.unwrap();
    });
    rows.push(("SELECT 1 (baseline)".into(), baseline, 1));

    macro_rules! bench {
        ($name:expr, |$i:ident| $call:expr) => {{
            let stats = measure(&rt, n, |$i| {
                let fut = $call;
                async move {
                    items.set(fut.await.unwrap());
                }
            });
            rows.push(($name.to_string(), stats, items.get()));
        }};
    }

    bench!("get_workflow", |i| async move {
        s.get_workflow(ORG, &wf_ids[i]).await.map(|_| 1)
    });
    bench!("list_workflows first page", |_i| async move {
        s.list_workflows(ORG, wf_query(None, None, None))
            .await
            .map(|p| p.items.len())
    });
    bench!("list_workflows deep page (cursor)", |_i| {
        let c = deep_wf.clone();
        async move {
            s.list_workflows(ORG, wf_query(c, None, None))
                .await
                .map(|p| p.items.len())
        }
    });
    bench!("list_workflows templates", |_i| async move {
        s.list_workflows(ORG, wf_query(None, None, Some(true)))
            .await
            .map(|p| p.items.len())
    });
    bench!(
        "list_workflows search common (\"nightly\")",
        |_i| async move {
            s.list_workflows(ORG, wf_query(None, Some("nightly"), None))
                .await
                .map(|p| p.items.len())
        }
    );
    bench!(
        format!("list_workflows search rare ({rare:?})"),
        |_i| async move {
            s.list_workflows(ORG, wf_query(None, Some(rare), None))
                .await
                .map(|p| p.items.len())
        }
    );
    bench!(
        "list_workflows search medium (\"batch 42 \")",
        |_i| async move {
            s.list_workflows(ORG, wf_query(None, Some("batch 42 "), None))
                .await
                .map(|p| p.items.len())
        }
    );
    bench!("list_workflows search none (\"zzz\")", |_i| async move {
        s.list_workflows(ORG, wf_query(None, Some("zzz"), None))
            .await
            .map(|p| p.items.len())
    });
    bench!("list_workflows search short (\"zz\")", |_i| async move {
        s.list_workflows(ORG, wf_query(None, Some("zz"), None))
            .await
            .map(|p| p.items.len())
    });
    bench!("get_run", |i| async move {
        s.get_run(ORG, &run_ids[i]).await.map(|_| 1)
    });
    bench!("list_runs by org first page", |_i| async move {
        s.list_runs(ORG, run_query(None, None, None))
            .await
            .map(|p| p.items.len())
    });
    bench!("list_runs by org deep page (cursor)", |_i| {
        let c = deep_run.clone();
        async move {
            s.list_runs(ORG, run_query(None, None, c))
                .await
                .map(|p| p.items.len())
        }
    });
    bench!("list_runs by workflow", |i| async move {
        s.list_runs(ORG, run_query(Some(&wf_ids[i]), None, None))
            .await
            .map(|p| p.items.len())
    });
    bench!("list_runs by status (FAILED)", |_i| async move {
        s.list_runs(ORG, run_query(None, Some(RunStatus::Failed), None))
            .await
            .map(|p| p.items.len())
    });
    bench!("list_runs by workflow + status", |i| async move {
        s.list_runs(
            ORG,
            run_query(Some(&wf_ids[i]), Some(RunStatus::Succeeded), None),
        )
        .await
        .map(|p| p.items.len())
    });

    let base = rows[0].1.p50.as_secs_f64();
    println!(
        "\n{:<44} {:>9} {:>9} {:>8} {:>6}",
        "operation", "p50 µs", "p99 µs", "p50/base", "items"
    );
    for (name, stats, items) in &rows {
        println!(
            "{:<44} {:>9.1} {:>9.1} {:>8.1} {:>6}",
            name,
            stats.p50.as_secs_f64() * 1e6,
            stats.p99.as_secs_f64() * 1e6,
            stats.p50.as_secs_f64() / base,
            items
        );
    }
    // The smoke test's checks: every list found something where it should.
    let find = |name: &str| rows.iter().find(|r| r.0.starts_with(name)).map(|r| r.2);
    assert_eq!(find("list_workflows first page"), Some(PAGE));
    assert_eq!(find("list_workflows deep page"), Some(PAGE));
    assert_eq!(find("list_runs by org deep page"), Some(PAGE));
    assert_eq!(find("list_workflows search none"), Some(0));
}
