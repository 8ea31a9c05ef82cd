//! Engine benchmarks: per-state overhead, durable throughput, and baselines measured in the
//! same run (the machine may be shared and noisy, so ratios travel better than raw figures).
//!
//! - **latency**: a 20-state Pass chain and 40-step Task chains (a local function through
//!   `arn:aws:states:::lambda:invoke`, and a resource registered with `Resources::resource`),
//!   each run start to finish (`start_execution` + `wait`), one at a time, in memory and on
//!   SQLite (temp dir, default durability). p50 / p90 per run and per state.
//! - **throughput**: three-step runs (3 Pass, 3 Task) started together (5,000 in flight by
//!   default) on a multi-thread runtime; completions per second.
//! - **baselines**: cloning + serialising the payload, a tokio spawn + oneshot round trip,
//!   a raw SQLite insert + commit (same pragmas as the store), the same through a writer
//!   thread with a oneshot reply (the floor of one durable transition), batched inserts.
//!
//! Run: `cargo bench -p cm-engine --bench engine` (filters: `-- latency`, `-- throughput`,
//! `-- baseline`; `-- --inflight 2000` changes the number of runs in flight).
//! Test mode (a few runs of everything, checks outcomes): `cargo test -p cm-engine --benches`
//! or `cargo bench -p cm-engine --bench engine -- --test`.
//! Comparison mode (`scripts/bench-engine`): `-- --compare DIR --runs N --out FILE` runs every
//! `DIR/*.json` (`{"definition": …, "input": …}`) N times in memory and on SQLite and writes
//! latency, executions/s and the output as JSON.

use cm_engine::store::sqlite::Durability;
use cm_engine::{
    Engine, EngineConfig, FnHandler, HistoryQuery, MachineType, Resources, Status, StoreConfig,
    TaskCall,
};
use serde_json::{Map, Value, json};
use std::error::Error;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

type Res<T> = Result<T, Box<dyn Error + Send + Sync>>;

/// A registered no-op resource (Task chain variant 2).
const NOOP_RESOURCE: &str = "arn:aws:states:::bench:noop";

/// What one run of the binary does.
struct Opts {
    /// Few iterations, outcomes checked (`cargo test --benches`).
    test: bool,
    /// Substring filters on section names (empty: all).
    filters: Vec<String>,
    /// Executions in flight in the throughput section.
    inflight: usize,
    /// Comparison mode: definitions folder, runs per definition, output file.
    compare: Option<(PathBuf, usize, Option<PathBuf>)>,
}

fn parse_args() -> Res<Opts> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo bench` passes `--bench`; `cargo test --benches` passes neither flag.
    let test = args.iter().any(|a| a == "--test") || !args.iter().any(|a| a == "--bench");
    let mut opts = Opts {
        test,
        filters: Vec::new(),
        inflight: 5_000,
        compare: None,
    };
    let mut compare_dir = None;
    let mut runs = 200;
    let mut out = None;
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match a.as_str() {
            "--test" | "--bench" | "--nocapture" | "--quiet" | "-q" => {}
            "--inflight" => opts.inflight = value("--inflight")?.parse()?,
            "--compare" => compare_dir = Some(PathBuf::from(value("--compare")?)),
            "--runs" => runs = value("--runs")?.parse()?,
            "--out" => out = Some(PathBuf::from(value("--out")?)),
            f if f.starts_with('-') => {} // other harness flags (e.g. --color) are ignored
            f => opts.filters.push(f.to_owned()),
        }
    }
    if let Some(dir) = compare_dir {
        opts.compare = Some((dir, runs, out));
    }
    Ok(opts)
}

impl Opts {
    /// Whether a section runs: some filter names it, or names no section (then it filters
    /// cases of every section).
    fn wants(&self, section: &str) -> bool {
        const SECTIONS: [&str; 2] = ["latency", "throughput"];
        self.filters.is_empty()
            || self
                .filters
                .iter()
                .any(|f| f.starts_with(section) || !SECTIONS.iter().any(|s| f.starts_with(s)))
    }

    /// Whether a case runs: a filter is a substring of `section/label/store`
    /// (e.g. `latency`, `memory`, `throughput/Pass`).
    fn wants_case(&self, section: &str, label: &str, store: &str) -> bool {
        let id = format!("{section}/{label}/{store}");
        self.filters.is_empty() || self.filters.iter().any(|f| id.contains(f.as_str()))
    }
}

fn main() -> Res<()> {
    let opts = parse_args()?;
    if let Some((dir, runs, out)) = &opts.compare {
        let runs = if opts.test { 3 } else { *runs };
        return compare(dir, runs, out.as_deref());
    }
    if opts.test {
        println!("cm-engine bench in test mode: a few iterations of each, outcomes checked");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    // Always measured: the ratios need them.
    let baselines = rt.block_on(measure_baselines(opts.test))?;
    baselines.print();
    let mut cases = 0;
    if opts.wants("latency") {
        cases += latency(&opts, &baselines)?;
    }
    if opts.wants("throughput") {
        cases += rt.block_on(throughput(&opts, &baselines))?;
    }
    if opts.test {
        // Shaped like libtest's closing line, which scripts/test and CI count.
        println!(
            "\ntest result: ok. {cases} passed; 0 failed; 0 ignored; 0 measured; 0 filtered out"
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Definitions

fn pass_chain(n: usize) -> Value {
    let mut states = Map::new();
    for i in 1..=n {
        let mut s = json!({"Type": "Pass"});
        if i < n {
            s["Next"] = json!(format!("S{}", i + 1));
        } else {
            s["End"] = json!(true);
        }
        states.insert(format!("S{i}"), s);
    }
    json!({"StartAt": "S1", "States": states})
}

/// `n` Task states; `lambda` → `lambda:invoke` of the local function `noop` (payload = the
/// state input), else the registered [`NOOP_RESOURCE`]. Both handlers return `null` and
/// `ResultPath: null` drops the result, so each state hands its input on unchanged.
fn task_chain(n: usize, lambda: bool) -> Value {
    let mut states = Map::new();
    for i in 1..=n {
        let mut s = if lambda {
            json!({
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": "noop", "Payload.$": "$"},
                "ResultPath": null,
            })
        } else {
            json!({"Type": "Task", "Resource": NOOP_RESOURCE, "ResultPath": null})
        };
        if i < n {
            s["Next"] = json!(format!("T{}", i + 1));
        } else {
            s["End"] = json!(true);
        }
        states.insert(format!("T{i}"), s);
    }
    json!({"StartAt": "T1", "States": states})
}

fn sample_input() -> Value {
    json!({
        "order": {"id": "o-1042", "items": [{"sku": "A-1", "qty": 2}, {"sku": "B-7", "qty": 1}], "total": 42.5},
        "customer": {"id": "c-7", "tier": "gold"},
    })
}

fn resources() -> Resources {
    Resources::new()
        .function("noop", FnHandler(|_: &TaskCall| Ok(Value::Null)))
        .resource(NOOP_RESOURCE, FnHandler(|_: &TaskCall| Ok(Value::Null)))
}

// ---------------------------------------------------------------------------------------------
// Engines

/// An engine with its temp dir (kept alive as long as the engine).
struct Bench {
    engine: Engine,
    _dir: Option<tempfile::TempDir>,
}

impl Bench {
    async fn open(durable: bool) -> Res<Bench> {
        let (store, dir) = if durable {
            let dir = tempfile::tempdir()?;
            let store = StoreConfig::Sqlite {
                path: dir.path().join("engine.db"),
                durability: Durability::default(),
            };
            (store, Some(dir))
        } else {
            (StoreConfig::Memory, None)
        };
        let engine = Engine::open(EngineConfig {
            store,
            resources: resources(),
            ..EngineConfig::default()
        })
        .await?;
        Ok(Bench { engine, _dir: dir })
    }

    async fn close(self) {
        self.engine.shutdown().await;
        // The last execution's task can hold the engine a moment after `wait` returned: let it
        // go, so that the store is dropped here and not on a worker during the next measurement.
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Runs one execution start to finish; returns its output, failing unless it SUCCEEDED.
async fn run(engine: &Engine, arn: &str, input: Value) -> Res<Value> {
    let started = engine.start_execution(arn, None, input).await?;
    let rec = engine.wait(&started.execution_arn).await?;
    if rec.status != Status::Succeeded {
        return Err(format!(
            "{} ended {}: {:?} {:?}",
            rec.arn,
            rec.status.as_str(),
            rec.error,
            rec.cause
        )
        .into());
    }
    Ok(rec.output.unwrap_or(Value::Null))
}

fn store_name(durable: bool) -> &'static str {
    if durable { "sqlite" } else { "memory" }
}

// ---------------------------------------------------------------------------------------------
// Statistics

/// Sorted samples.
struct Samples(Vec<Duration>);

impl Samples {
    fn new(mut v: Vec<Duration>) -> Samples {
        v.sort_unstable();
        Samples(v)
    }
    /// Nearest-rank percentile.
    fn pct(&self, p: usize) -> Duration {
        if self.0.is_empty() {
            return Duration::ZERO;
        }
        let rank = (p * self.0.len()).div_ceil(100).max(1);
        self.0[rank.min(self.0.len()) - 1]
    }
    fn mean(&self) -> Duration {
        if self.0.is_empty() {
            return Duration::ZERO;
        }
        self.0.iter().sum::<Duration>() / self.0.len() as u32
    }
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Runs `f` until `n` samples or `budget` elapsed (at least `min` samples); one sample each.
async fn sample<F, Fut>(n: usize, min: usize, budget: Duration, mut f: F) -> Res<Samples>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Res<()>>,
{
    let began = Instant::now();
    let mut v = Vec::with_capacity(n);
    while v.len() < n && (v.len() < min || began.elapsed() < budget) {
        let t = Instant::now();
        f().await?;
        v.push(t.elapsed());
    }
    Ok(Samples::new(v))
}

// ---------------------------------------------------------------------------------------------
// Baselines

#[derive(Default)]
struct Baselines {
    /// Clone + compact-serialise the sample payload (what a transition does at least once).
    clone_ns: f64,
    /// `tokio::spawn` of a task that answers on a oneshot, awaited.
    spawn_us: f64,
    /// One row inserted and committed, WAL, synchronous=NORMAL, on the calling thread.
    sqlite_commit_us: f64,
    /// The same through a writer thread (std mpsc in, tokio oneshot out): the floor of one
    /// durable transition in the engine's design.
    sqlite_roundtrip_us: f64,
    /// Rows per second inserting 1,000 rows per transaction.
    sqlite_rows_per_s: f64,
}

impl Baselines {
    fn print(&self) {
        println!("\n== baselines (same run, same machine)");
        println!(
            "  clone + serialise payload ({} B)        {:>9.0} ns",
            cm_asl::payload::compact(&sample_input()).len(),
            self.clone_ns
        );
        println!(
            "  tokio spawn + oneshot round trip          {:>9.2} µs",
            self.spawn_us
        );
        println!(
            "  SQLite insert + commit (WAL, NORMAL)      {:>9.2} µs",
            self.sqlite_commit_us
        );
        println!(
            "  … via writer thread + oneshot reply       {:>9.2} µs",
            self.sqlite_roundtrip_us
        );
        println!(
            "  SQLite batched inserts (1,000 rows/txn)   {:>9.0} rows/s",
            self.sqlite_rows_per_s
        );
    }
}

const EVENTS_TABLE: &str = "CREATE TABLE events (
  execution INTEGER NOT NULL, id INTEGER NOT NULL, previous INTEGER NOT NULL,
  ts INTEGER NOT NULL, type TEXT NOT NULL, step TEXT NOT NULL, details TEXT NOT NULL,
  PRIMARY KEY (execution, id)) WITHOUT ROWID";

const INSERT_EVENT: &str = "INSERT INTO events (execution, id, previous, ts, type, step, details) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

fn open_sqlite(path: &Path) -> Res<rusqlite::Connection> {
    let conn = rusqlite::Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.execute_batch(EVENTS_TABLE)?;
    Ok(conn)
}

fn insert_event(conn: &rusqlite::Connection, id: i64, details: &str) -> Res<()> {
    conn.prepare_cached(INSERT_EVENT)?
        .execute(rusqlite::params![
            1i64,
            id,
            id - 1,
            1_767_225_600_000i64,
            "PassStateEntered",
            "3",
            details
        ])?;
    Ok(())
}

async fn measure_baselines(test: bool) -> Res<Baselines> {
    let scale = |n: usize| if test { (n / 100).max(3) } else { n };
    let payload = sample_input();
    let details = cm_asl::payload::compact(&json!({"name": "S1", "input": payload}));

    let n = scale(200_000);
    let t = Instant::now();
    for _ in 0..n {
        let v = black_box(&payload).clone();
        black_box(cm_asl::payload::compact(&v));
    }
    let clone_ns = t.elapsed().as_secs_f64() * 1e9 / n as f64;

    let n = scale(100_000);
    let t = Instant::now();
    for _ in 0..n {
        let (tx, rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let _ = tx.send(1u32);
        });
        black_box(rx.await?);
    }
    let spawn_us = us(t.elapsed()) / n as f64;

    let dir = tempfile::tempdir()?;
    let conn = open_sqlite(&dir.path().join("raw.db"))?;
    let n = scale(20_000);
    let t = Instant::now();
    for i in 0..n as i64 {
        let tx = conn.unchecked_transaction()?;
        insert_event(&tx, i + 1, &details)?;
        tx.commit()?;
    }
    let sqlite_commit_us = us(t.elapsed()) / n as f64;

    let n = scale(100_000);
    let t = Instant::now();
    let per_txn = 1_000;
    let mut id = 1_000_000i64;
    for _ in 0..n.div_ceil(per_txn) {
        let tx = conn.unchecked_transaction()?;
        for _ in 0..per_txn {
            id += 1;
            insert_event(&tx, id, &details)?;
        }
        tx.commit()?;
    }
    let sqlite_rows_per_s = n.div_ceil(per_txn) as f64 * per_txn as f64 / t.elapsed().as_secs_f64();
    drop(conn);

    // Writer thread: the engine's shape (one commit per request here: requests come one at a
    // time, so there is nothing to group).
    type Request = (i64, tokio::sync::oneshot::Sender<Result<(), String>>);
    let conn = open_sqlite(&dir.path().join("writer.db"))?;
    let (tx, rx) = std::sync::mpsc::channel::<Request>();
    let details2 = details.clone();
    let writer = std::thread::spawn(move || {
        while let Ok((id, reply)) = rx.recv() {
            let r = (|| -> Res<()> {
                let t = conn.unchecked_transaction()?;
                insert_event(&t, id, &details2)?;
                t.commit()?;
                Ok(())
            })();
            let _ = reply.send(r.map_err(|e| e.to_string()));
        }
    });
    let n = scale(20_000);
    let t = Instant::now();
    for i in 0..n as i64 {
        let (reply, done) = tokio::sync::oneshot::channel();
        tx.send((i + 1, reply))?;
        done.await??;
    }
    let sqlite_roundtrip_us = us(t.elapsed()) / n as f64;
    drop(tx);
    let _ = writer.join();

    Ok(Baselines {
        clone_ns,
        spawn_us,
        sqlite_commit_us,
        sqlite_roundtrip_us,
        sqlite_rows_per_s,
    })
}

// ---------------------------------------------------------------------------------------------
// a. Per-state overhead

/// Runs in memory are measured on a fresh engine every this many runs: the memory store keeps
/// every execution and its history and never evicts, so one engine for thousands of 200-event
/// runs measures the allocator growing the heap (page faults) more than the engine.
const MEMORY_RUNS_PER_ENGINE: usize = 250;

/// [`sequential`] as a task on the runtime, i.e. on a worker thread as a request handler
/// would run, not on the thread that blocks on the runtime.
fn measure(
    rt: &tokio::runtime::Runtime,
    definition: &Value,
    durable: bool,
    n: usize,
    budget: Duration,
    test: bool,
) -> Res<(Samples, usize)> {
    rt.block_on(rt.spawn(sequential(definition.clone(), durable, n, budget, test)))?
}

/// Measures one case, one execution at a time: `n` runs or `budget` (at least 30 runs).
/// Returns the samples and the number of history events of one run.
async fn sequential(
    definition: Value,
    durable: bool,
    n: usize,
    budget: Duration,
    test: bool,
) -> Res<(Samples, usize)> {
    let input = sample_input();
    let min = n.min(30);
    let began = Instant::now();
    let mut all = Vec::with_capacity(n);
    let mut events = 0;
    while all.len() < n && (all.len() < min || began.elapsed() < budget) {
        let bench = Bench::open(durable).await?;
        let sm = bench
            .engine
            .create_state_machine("latency", &definition, MachineType::Standard)
            .await?;
        // Warm-up and outcome check: the chains return their input.
        let started = bench
            .engine
            .start_execution(&sm.arn, None, input.clone())
            .await?;
        let rec = bench.engine.wait(&started.execution_arn).await?;
        if rec.status != Status::Succeeded || rec.output.as_ref() != Some(&input) {
            return Err(format!("unexpected outcome {rec:?}").into());
        }
        let query = HistoryQuery {
            max_results: 1000,
            ..HistoryQuery::default()
        };
        events = bench
            .engine
            .get_execution_history(&started.execution_arn, query)?
            .events
            .len();
        for _ in 0..if test { 1 } else { 20 } {
            run(&bench.engine, &sm.arn, input.clone()).await?;
        }
        let batch = if durable {
            n - all.len()
        } else {
            (n - all.len()).min(MEMORY_RUNS_PER_ENGINE)
        };
        let engine = &bench.engine;
        let arn = sm.arn.as_str();
        let left = budget.saturating_sub(began.elapsed());
        let s = sample(
            batch,
            batch.min(min.saturating_sub(all.len())),
            left,
            || {
                let input = input.clone();
                async move { run(engine, arn, input).await.map(drop) }
            },
        )
        .await?;
        all.extend(s.0);
        bench.close().await;
    }
    Ok((Samples::new(all), events))
}

struct Case {
    label: &'static str,
    definition: Value,
    /// The same kind of state, once: its run time is the fixed cost of an execution.
    single: Value,
    states: usize,
}

/// A store and a tokio runtime to measure on.
#[derive(Clone, Copy)]
struct Setup {
    durable: bool,
    /// Current-thread runtime (else multi-thread, 2 workers).
    current_thread: bool,
}

impl Setup {
    fn runtime(self) -> Res<tokio::runtime::Runtime> {
        let mut b = if self.current_thread {
            tokio::runtime::Builder::new_current_thread()
        } else {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(2);
            b
        };
        Ok(b.enable_all().build()?)
    }

    fn rt(self) -> &'static str {
        if self.current_thread { "ct" } else { "mt" }
    }
}

/// Returns the number of cases measured.
fn latency(opts: &Opts, base: &Baselines) -> Res<usize> {
    let cases = [
        Case {
            label: "Pass x20",
            definition: pass_chain(20),
            single: pass_chain(1),
            states: 20,
        },
        Case {
            label: "Task x40 (lambda:invoke)",
            definition: task_chain(40, true),
            single: task_chain(1, true),
            states: 40,
        },
        Case {
            label: "Task x40 (.resource)",
            definition: task_chain(40, false),
            single: task_chain(1, false),
            states: 40,
        },
    ];
    let setups = [
        Setup {
            durable: false,
            current_thread: false,
        },
        Setup {
            durable: false,
            current_thread: true,
        },
        Setup {
            durable: true,
            current_thread: false,
        },
    ];
    println!("\n== a. per-state overhead: one execution at a time, start_execution + wait");
    println!(
        "   rt: tokio runtime, mt = multi-thread (2 workers), ct = current-thread; the loop runs"
    );
    println!("   as a task on the runtime (as a request handler would)");
    println!("   sqlite: temp dir, WAL, synchronous=NORMAL (the default durability)");
    println!(
        "   memory: a fresh engine every {MEMORY_RUNS_PER_ENGINE} runs (its store never evicts)"
    );
    println!(
        "  {:<24} {:<6} {:<2} {:>5} {:>6} {:>11} {:>11} {:>10} {:>10} {:>10} {:>10} {:>15}",
        "definition",
        "store",
        "rt",
        "runs",
        "events",
        "p50/run",
        "p90/run",
        "p50/state",
        "p90/state",
        "1-state",
        "marginal",
        "p50/state ratio"
    );
    let mut checks = Vec::new();
    for setup in setups {
        let store = store_name(setup.durable);
        let rt = setup.runtime()?;
        for case in &cases {
            if !opts.wants_case("latency", case.label, store) {
                continue;
            }
            let (n, budget, n1, budget1) = match (opts.test, setup.durable) {
                (true, _) => (3, Duration::ZERO, 3, Duration::ZERO),
                (false, false) => (5_000, Duration::from_secs(4), 5_000, Duration::from_secs(1)),
                (false, true) => (1_000, Duration::from_secs(6), 500, Duration::from_secs(2)),
            };
            let (s, events) = measure(&rt, &case.definition, setup.durable, n, budget, opts.test)?;
            let (one, _) = measure(&rt, &case.single, setup.durable, n1, budget1, opts.test)?;
            let per = |d: Duration| us(d) / case.states as f64;
            // Per-state cost without the execution's fixed cost (start, first/last commit, wait).
            let marginal = (us(s.pct(50)) - us(one.pct(50))).max(0.0) / (case.states - 1) as f64;
            // Ratio: per-state p50 against the baseline that bounds it from below.
            let (ratio, unit) = if setup.durable {
                (per(s.pct(50)) / base.sqlite_roundtrip_us, "× commit")
            } else {
                (per(s.pct(50)) * 1e3 / base.clone_ns, "× clone")
            };
            println!(
                "  {:<24} {:<6} {:<2} {:>5} {:>6} {:>8.1} µs {:>8.1} µs {:>7.2} µs {:>7.2} µs {:>7.1} µs {:>7.2} µs {:>6.1} {}",
                case.label,
                store,
                setup.rt(),
                s.0.len(),
                events,
                us(s.pct(50)),
                us(s.pct(90)),
                per(s.pct(50)),
                per(s.pct(90)),
                us(one.pct(50)),
                marginal,
                ratio,
                unit
            );
            checks.push((case.label, setup, case.states, s));
        }
    }
    println!("  1-state: p50 of a run of one state of that kind (the fixed cost of an execution);");
    println!("  marginal: (p50/run − 1-state) ÷ (states − 1), the cost of one more state");
    println!("  ratio: memory p50/state ÷ (clone + serialise the payload); sqlite p50/state ÷");
    println!("         (insert + commit through a writer thread: the floor of one durable step)");
    if opts.test {
        println!("  (test mode: unoptimised build and 3 runs; figures are not meaningful)");
        return Ok(checks.len());
    }
    println!(
        "  targets: memory p50 ≤ 5 µs/state; durable ≤ 1 ms/state; 40-step durable run ≤ 40 ms"
    );
    for (label, setup, states, s) in &checks {
        let per = us(s.pct(50)) / *states as f64;
        let (ok, target) = if setup.durable {
            let run_ok = *states != 40 || us(s.pct(50)) <= 40_000.0;
            (
                per <= 1_000.0 && run_ok,
                "≤ 1 ms/state, 40-step run ≤ 40 ms",
            )
        } else {
            (per <= 5.0, "≤ 5 µs/state")
        };
        println!(
            "  {} {:<24} {:<6} {:<2} {:>8.2} µs/state  (target {target})",
            if ok { "MET   " } else { "MISSED" },
            label,
            store_name(setup.durable),
            setup.rt(),
            per
        );
    }
    Ok(checks.len())
}

// ---------------------------------------------------------------------------------------------
// b. Throughput

/// Starts `inflight` executions at once and waits for all: (completions/s, latencies).
async fn round(engine: Engine, arn: String, inflight: usize) -> Res<(f64, Vec<Duration>)> {
    let began = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..inflight {
        let engine = engine.clone();
        let arn = arn.clone();
        tasks.spawn(async move {
            let t = Instant::now();
            run(&engine, &arn, sample_input())
                .await
                .map(|_| t.elapsed())
        });
    }
    let mut latencies = Vec::with_capacity(inflight);
    while let Some(r) = tasks.join_next().await {
        latencies.push(r??);
    }
    Ok((inflight as f64 / began.elapsed().as_secs_f64(), latencies))
}

/// Returns the number of cases measured.
async fn throughput(opts: &Opts, base: &Baselines) -> Res<usize> {
    let inflight = if opts.test { 50 } else { opts.inflight };
    let rounds = if opts.test { 1 } else { 3 };
    println!("\n== b. throughput: {inflight} three-step executions started at once, completions/s");
    println!("   (multi-thread tokio runtime, 2 workers; best and median of {rounds} rounds)");
    println!(
        "  {:<22} {:<7} {:>12} {:>12} {:>10} {:>11} {:>14}",
        "definition", "store", "best/s", "median/s", "events/run", "p50 latency", "rows/s ceiling"
    );
    let cases = [
        ("Pass x3", pass_chain(3)),
        ("Task x3 (.resource)", task_chain(3, false)),
        ("Task x3 (lambda:invoke)", task_chain(3, true)),
    ];
    let mut figures = Vec::new();
    for durable in [true, false] {
        for (label, definition) in &cases {
            if !opts.wants_case("throughput", label, store_name(durable)) {
                continue;
            }
            let bench = Bench::open(durable).await?;
            let sm = bench
                .engine
                .create_state_machine("three", definition, MachineType::Standard)
                .await?;
            run(&bench.engine, &sm.arn, sample_input()).await?;
            let mut rates = Vec::new();
            let mut latencies = Vec::new();
            for _ in 0..rounds {
                // The round runs as a task on the runtime, so that completions are joined on
                // the workers and do not each wake the thread blocked on the runtime.
                let round = tokio::spawn(round(bench.engine.clone(), sm.arn.clone(), inflight));
                let (rate, mut l) = round.await??;
                rates.push(rate);
                latencies.append(&mut l);
            }
            rates.sort_by(f64::total_cmp);
            let best = rates[rates.len() - 1];
            let median = rates[rates.len() / 2];
            let last = bench.engine.list_executions(None, None, 1, None)?;
            let events = match last.executions.first() {
                Some(e) => bench
                    .engine
                    .get_execution_history(&e.arn, HistoryQuery::default())?
                    .events
                    .len(),
                None => 0,
            };
            let lat = Samples::new(latencies);
            // Share of SQLite's raw batched insert rate that the journal rows take.
            let ceiling = if durable {
                format!(
                    "{:>5.1}%",
                    100.0 * median * events as f64 / base.sqlite_rows_per_s
                )
            } else {
                "-".to_owned()
            };
            println!(
                "  {:<22} {:<7} {:>12.0} {:>12.0} {:>10} {:>8.1} ms {:>14}",
                label,
                store_name(durable),
                best,
                median,
                events,
                us(lat.pct(50)) / 1e3,
                ceiling
            );
            figures.push((*label, durable, median));
            bench.close().await;
        }
    }
    println!(
        "  rows/s ceiling: median runs/s × events/run as a share of raw batched SQLite inserts"
    );
    if opts.test {
        println!("  (test mode: unoptimised build, {inflight} runs; figures are not meaningful)");
        return Ok(figures.len());
    }
    for (label, durable, median) in figures.iter().filter(|f| f.1) {
        let ok = *median >= 5_000.0;
        println!(
            "  {} {:<22} {:<7} {:>8.0} runs/s  (target ≥ 5,000/s)",
            if ok { "MET   " } else { "MISSED" },
            label,
            store_name(*durable),
            median
        );
    }
    Ok(figures.len())
}

// ---------------------------------------------------------------------------------------------
// Comparison mode (scripts/bench-engine)

async fn compare_one(
    definition: Value,
    input: Value,
    durable: bool,
    runs: usize,
) -> Res<(Value, Value)> {
    let (definition, input) = (&definition, &input);
    let bench = Bench::open(durable).await?;
    let sm = bench
        .engine
        .create_state_machine("compare", definition, MachineType::Standard)
        .await?;
    let engine = &bench.engine;
    let arn = sm.arn.as_str();
    // The outcome as DescribeExecution reports it.
    let started = engine.start_execution(arn, None, input.clone()).await?;
    let rec = engine.wait(&started.execution_arn).await?;
    let outcome = json!({
        "status": rec.status.as_str(),
        "output": rec.output,
        "error": rec.error,
        "cause": rec.cause,
    });
    for _ in 0..runs.min(20) {
        let started = engine.start_execution(arn, None, input.clone()).await?;
        engine.wait(&started.execution_arn).await?;
    }
    let began = Instant::now();
    let s = sample(runs, runs, Duration::ZERO, || async {
        let started = engine.start_execution(arn, None, input.clone()).await?;
        engine.wait(&started.execution_arn).await?;
        Ok(())
    })
    .await?;
    let total = began.elapsed().as_secs_f64();
    bench.close().await;
    let figures = json!({
        "runs": s.0.len(),
        "p50_us": us(s.pct(50)),
        "p90_us": us(s.pct(90)),
        "mean_us": us(s.mean()),
        "per_s": s.0.len() as f64 / total,
    });
    Ok((figures, outcome))
}

fn compare(dir: &Path, runs: usize, out: Option<&Path>) -> Res<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let mut report = Map::new();
    for file in files {
        let name = file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(&file)?)?;
        let definition = doc.get("definition").ok_or("no \"definition\"")?;
        let input = doc.get("input").cloned().unwrap_or_else(|| json!({}));
        // As tasks on the runtime (on a worker, as a request handler would run).
        let (memory, outcome) =
            rt.block_on(rt.spawn(compare_one(definition.clone(), input.clone(), false, runs)))??;
        let (sqlite, durable_outcome) =
            rt.block_on(rt.spawn(compare_one(definition.clone(), input.clone(), true, runs)))??;
        if outcome != durable_outcome {
            return Err(format!("{name}: memory and sqlite outcomes differ").into());
        }
        eprintln!(
            "engine {name}: memory p50 {:.1} µs, sqlite p50 {:.1} µs",
            memory["p50_us"].as_f64().unwrap_or_default(),
            sqlite["p50_us"].as_f64().unwrap_or_default()
        );
        report.insert(
            name,
            json!({"memory": memory, "sqlite": sqlite, "outcome": outcome}),
        );
    }
    let text = serde_json::to_string_pretty(&Value::Object(report))?;
    match out {
        Some(p) => std::fs::write(p, text)?,
        None => println!("{text}"),
    }
    Ok(())
}
