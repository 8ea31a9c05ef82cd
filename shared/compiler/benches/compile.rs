//! Parse / validate / compile benchmarks on generated workflows of 10, 100 and 1,000 nodes.
//!
//! The generator builds valid workflows of mixed shapes: sequences, fan-out/fan-in diamonds
//! (some with a transitive "skip" edge), non-series-parallel "N" regions (a→c, a→d, b→d),
//! `condition.if` nodes whose `true`/`false` branches re-join, and `flow.foreach` loops with
//! small bodies (which may nest diamonds or conditions). Shapes nest inside diamond branches,
//! condition branches and loop bodies. Generation is deterministic (fixed seed per size).
//!
//! Every generated workflow is checked once (no validation errors, compiles) before measuring.
//!
//! Run: `cargo bench -p cm-compiler --bench compile -- --warm-up-time 1 --measurement-time 3`.
//! Test mode (each benchmark once): `cargo test -p cm-compiler --benches`.
//! `CM_BENCH_DUMP=<dir>` writes the generated workflows as `<dir>/generated-<n>.json`.
//! `CM_BENCH_EXTRA=1` adds `compile_staircase/{100,1000}`, a pathological non-series-parallel
//! ladder that exercises the planner's worst case.

use cm_compiler::{CompileOptions, compile, validate};
use cm_model::{Edge, Node, Position, Settings, Workflow};
use cm_registry::Registry;
use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use serde_json::{Value, json};
use std::hint::black_box;

const SIZES: [usize; 3] = [10, 100, 1_000];

/// Small deterministic PRNG (xorshift64*), so the bench needs no extra dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        debug_assert!(lo <= hi);
        lo + (self.next() % (hi - lo + 1) as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// Where a new piece attaches: a node and the output port to leave it by.
#[derive(Clone)]
struct Attach {
    from: String,
    port: Option<&'static str>,
    /// Template expression the first node of the piece should read (the loop item at the
    /// start of a for-each body, otherwise the `from` node's output).
    input: String,
}

impl Attach {
    fn after(id: &str) -> Self {
        Attach {
            from: id.to_owned(),
            port: None,
            input: format!("$.nodes.{id}.output"),
        }
    }
}

#[derive(Clone, Copy)]
enum Shape {
    Seq,
    Diamond,
    N,
    If,
    ForEach,
}

impl Shape {
    /// Fewest nodes the shape needs.
    fn min_size(self) -> usize {
        match self {
            Shape::Seq => 1,
            Shape::Diamond => 3, // 2 branches + join
            Shape::N => 5,       // a, b, c, d, join
            Shape::If => 3,      // condition + true branch + join
            Shape::ForEach => 3, // for-each + body + after
        }
    }
}

struct Gen {
    rng: Rng,
    nodes: Vec<Node>,
    edges: Vec<Edge>,
    /// Whether we are generating a for-each body. Loops do not nest: validation counts the
    /// sink of an inner body as a sink of the outer body too (`foreach.ambiguous_result`),
    /// so an inner loop could only be the very last piece of the outer body.
    in_loop: bool,
    /// Upper bound of a piece's size (small workflows get small pieces).
    max_piece: usize,
    /// Top-level pieces emitted so far (top-level shapes go round-robin for variety).
    top_pieces: usize,
    /// How many pieces of each shape were generated (indexed by `Shape as usize`).
    counts: [usize; 5],
}

impl Gen {
    fn add(&mut self, kind: &str, node_type: &str, config: Value) -> String {
        let k = self.nodes.len();
        let id = format!("{kind}_{k}");
        let mut node = Node::new(id.clone(), node_type).with_config(config);
        node.position = Some(Position {
            x: (k % 40) as f64 * 250.0,
            y: (k / 40) as f64 * 150.0,
        });
        self.nodes.push(node);
        id
    }

    fn connect(&mut self, at: &Attach, to: &str) {
        self.edges.push(match at.port {
            Some(p) => Edge::from_port(at.from.clone(), p, to),
            None => Edge::new(at.from.clone(), to),
        });
    }

    /// One action/transform node reading `at.input`, connected from `at`.
    fn simple(&mut self, at: &Attach) -> String {
        let input = at.input.clone();
        let id = match self.rng.range(0, 9) {
            // ~30 % HTTP tasks (node-runner Lambda invokes, the heaviest states; more would push
            // 1,000 nodes past the 1 MB definition limit).
            0..=2 => {
                let config = if self.rng.chance(50) {
                    json!({"url": format!("https://api.example.com/items/{{{{ {input}.id }}}}")})
                } else {
                    json!({
                        "method": "POST",
                        "url": "https://api.example.com/events",
                        "headers": {"X-Source": "bench"},
                        "body": {"payload": format!("{{{{ {input} }}}}"), "kind": "bench"},
                        "timeoutSeconds": 20
                    })
                };
                self.add("http", "action.http", config)
            }
            // ~70 % native Pass states.
            _ => self.add(
                "set",
                "transform.set",
                json!({"fields": {
                    "value": format!("{{{{ {input} }}}}"),
                    "label": format!("got {{{{ {input}.name }}}} at {{{{ $.run.startedAt }}}}"),
                    "constant": 42
                }}),
            ),
        };
        self.connect(at, &id);
        id
    }

    /// A join node reading upstream values (JSONPaths), connected from each of `preds`.
    fn join(&mut self, preds: &[Attach], read: &[String]) -> String {
        let mut fields = serde_json::Map::new();
        for (k, r) in read.iter().take(4).enumerate() {
            fields.insert(format!("in{k}"), json!(format!("{{{{ {r} }}}}")));
        }
        let id = self.add("join", "transform.set", json!({ "fields": fields }));
        for p in preds {
            self.connect(p, &id);
        }
        id
    }

    /// Appends exactly `budget` (>= 1) nodes after `at`, as a chain of random shapes; returns
    /// the single exit node.
    fn chain(&mut self, at: Attach, mut budget: usize, depth: usize) -> String {
        assert!(budget >= 1);
        let mut at = at;
        loop {
            let exit = self.shape(at, budget, depth);
            budget -= exit.1;
            if budget == 0 {
                return exit.0;
            }
            at = Attach::after(&exit.0);
        }
    }

    /// One shape using at most `budget` nodes; returns (exit node, nodes used).
    fn shape(&mut self, at: Attach, budget: usize, depth: usize) -> (String, usize) {
        const ORDER: [Shape; 5] = [
            Shape::If,
            Shape::ForEach,
            Shape::N,
            Shape::Diamond,
            Shape::Seq,
        ];
        let shape = if depth == 0 {
            // Round-robin at the top level, so that even small workflows mix shapes.
            let k = self.top_pieces;
            self.top_pieces += 1;
            (0..ORDER.len())
                .map(|i| ORDER[(k + i) % ORDER.len()])
                .find(|s| s.min_size() <= budget)
                .unwrap_or(Shape::Seq)
        } else {
            loop {
                let s = match self.rng.range(0, 99) {
                    0..=29 => Shape::Seq,
                    30..=49 => Shape::Diamond,
                    50..=62 => Shape::N,
                    63..=84 => Shape::If,
                    // Loops cost history events per item: keep them a minority.
                    _ if !self.in_loop => Shape::ForEach,
                    _ => Shape::Seq,
                };
                // Deeply nested pieces stay small.
                let s = if depth >= 3 { Shape::Seq } else { s };
                if s.min_size() <= budget {
                    break s;
                }
            }
        };
        let cap = |s: Shape| budget.min(self.max_piece.max(s.min_size()));
        self.counts[shape as usize] += 1;
        match shape {
            Shape::Seq => {
                let len = self.rng.range(1, cap(Shape::Seq).min(4));
                let mut at = at;
                let mut last = String::new();
                for _ in 0..len {
                    last = self.simple(&at);
                    at = Attach::after(&last);
                }
                (last, len)
            }
            Shape::Diamond => {
                // Fan-out into 2..=4 branches (each a sub-chain), fan-in into a join.
                let size = self.rng.range(3, cap(Shape::Diamond));
                let inner = size - 1;
                let width = self.rng.range(2, inner.min(4));
                let mut shares = vec![1; width];
                for _ in width..inner {
                    let k = self.rng.range(0, width - 1);
                    shares[k] += 1;
                }
                let mut exits = Vec::new();
                for share in shares {
                    exits.push(self.chain(at.clone(), share, depth + 1));
                }
                let mut preds: Vec<Attach> = exits.iter().map(|e| Attach::after(e)).collect();
                if at.port.is_none() && self.rng.chance(25) {
                    // A transitive edge entry → join next to the branches.
                    preds.push(at.clone());
                }
                let read: Vec<String> = preds.iter().map(|p| p.input.clone()).collect();
                (self.join(&preds, &read), size)
            }
            Shape::N => {
                // entry → a, entry → b; a → c, a → d, b → d; c, d → join.
                let a = self.simple(&at);
                let b = self.simple(&at);
                let c = self.simple(&Attach::after(&a));
                let d = self.simple(&Attach::after(&a));
                self.edges.push(Edge::new(b.clone(), d.clone()));
                let j = self.join(
                    &[Attach::after(&c), Attach::after(&d)],
                    &[&c, &d, &b].map(|x| Attach::after(x).input),
                );
                (j, 5)
            }
            Shape::If => {
                // condition → true branch, false branch (or straight to the join) → join.
                let size = self.rng.range(3, cap(Shape::If));
                let field = format!("{}.x", at.input);
                let config = if self.rng.chance(50) {
                    json!({"rules": [{"field": field, "op": "gt", "value": 1}]})
                } else {
                    json!({"match": "any", "rules": [
                        {"field": field, "op": "gt", "value": 1},
                        {"field": format!("{}.name", at.input), "op": "startsWith", "value": "vip"}
                    ]})
                };
                let cond = self.add("if", "condition.if", config);
                self.connect(&at, &cond);
                let inner = size - 2;
                let (t_size, f_size) = if inner >= 2 && self.rng.chance(80) {
                    let t = self.rng.range(1, inner - 1);
                    (t, inner - t)
                } else {
                    (inner, 0)
                };
                // Conditions have no output: nodes behind one read what the condition read.
                let read = at.input.clone();
                let t = self.chain(
                    Attach {
                        from: cond.clone(),
                        port: Some("true"),
                        input: read.clone(),
                    },
                    t_size,
                    depth + 1,
                );
                let mut preds = vec![Attach::after(&t)];
                let false_at = Attach {
                    from: cond.clone(),
                    port: Some("false"),
                    input: read,
                };
                if f_size > 0 {
                    let f = self.chain(false_at, f_size, depth + 1);
                    preds.push(Attach::after(&f));
                } else {
                    preds.push(false_at);
                }
                let j = self.join(&preds, std::slice::from_ref(&at.input));
                (j, size)
            }
            Shape::ForEach => {
                // for-each (items from the entry) —each→ small body (one sink) ; —done→ after.
                let size = self.rng.range(3, cap(Shape::ForEach).min(8));
                let fe = self.add(
                    "each",
                    "flow.foreach",
                    json!({"items": format!("{{{{ {}.items }}}}", at.input), "maxConcurrency": 5}),
                );
                self.connect(&at, &fe);
                self.in_loop = true;
                self.chain(
                    Attach {
                        from: fe.clone(),
                        port: Some("each"),
                        input: "$.item".to_owned(),
                    },
                    size - 2,
                    depth + 1,
                );
                self.in_loop = false;
                let after = self.simple(&Attach {
                    from: fe.clone(),
                    port: Some("done"),
                    input: format!("$.nodes.{fe}.output"),
                });
                (after, size)
            }
        }
    }
}

/// A valid workflow of exactly `n` nodes (n >= 2): one `trigger.manual` and `n - 1` others.
fn generate(n: usize, seed: u64) -> Workflow {
    assert!(n >= 2);
    let mut g = Gen {
        rng: Rng(seed | 1),
        nodes: Vec::new(),
        edges: Vec::new(),
        in_loop: false,
        max_piece: (n / 3).clamp(3, 14),
        top_pieces: 0,
        counts: [0; 5],
    };
    let start = g.add("start", "trigger.manual", json!({}));
    g.chain(Attach::after(&start), n - 1, 0);
    assert_eq!(g.nodes.len(), n);
    let [seq, diamond, nshape, iff, foreach] = g.counts;
    eprintln!(
        "generated n={n}: shapes: {seq} sequences, {diamond} diamonds, {nshape} N, {iff} if, \
         {foreach} for-each"
    );
    Workflow {
        id: format!("bench-{n}"),
        name: format!("Generated benchmark workflow ({n} nodes)"),
        description: String::new(),
        version: 1,
        nodes: g.nodes,
        edges: g.edges,
        settings: Settings {
            // Loops are small here; the default projection (100 items) would exceed the
            // Standard history limit at 1,000 nodes.
            estimated_items_per_loop: Some(5),
            ..Settings::default()
        },
        metadata: serde_json::Map::new(),
    }
}

/// A pathological non-series-parallel "staircase" of `n` nodes: a ladder of chained "N"s
/// (x[i-1] → x[i], x[i-1] → y[i], y[i-1] → y[i]). No node is comparable with every other, so
/// the planner peels two sources per recursion level. Only benchmarked with `CM_BENCH_EXTRA=1`.
fn staircase(n: usize) -> Workflow {
    let rungs = (n - 2) / 2;
    let mut nodes = vec![Node::new("t", "trigger.manual")];
    let mut edges = Vec::new();
    let set = |id: String| {
        Node::new(id, "transform.set")
            .with_config(json!({"fields": {"v": "{{ $.nodes.t.output }}"}}))
    };
    for i in 0..rungs {
        nodes.push(set(format!("x{i}")));
        nodes.push(set(format!("y{i}")));
        if i == 0 {
            edges.push(Edge::new("t", "x0"));
            edges.push(Edge::new("t", "y0"));
        } else {
            edges.push(Edge::new(format!("x{}", i - 1), format!("x{i}")));
            edges.push(Edge::new(format!("x{}", i - 1), format!("y{i}")));
            edges.push(Edge::new(format!("y{}", i - 1), format!("y{i}")));
        }
    }
    nodes.push(set("end".into()));
    edges.push(Edge::new(format!("x{}", rungs - 1), "end"));
    edges.push(Edge::new(format!("y{}", rungs - 1), "end"));
    Workflow {
        id: format!("staircase-{n}"),
        name: "Staircase".into(),
        description: String::new(),
        version: 1,
        nodes,
        edges,
        settings: Settings::default(),
        metadata: serde_json::Map::new(),
    }
}

struct Case {
    n: usize,
    wf: Workflow,
    json: String,
}

fn cases(registry: &Registry) -> Vec<Case> {
    SIZES
        .iter()
        .map(|&n| {
            let wf = generate(n, 0x00C0_FFEE ^ n as u64);
            let errors: Vec<String> = validate(&wf, registry)
                .iter()
                .filter(|f| f.is_error())
                .map(ToString::to_string)
                .collect();
            assert!(
                errors.is_empty(),
                "generated workflow of {n} nodes is invalid: {errors:#?}"
            );
            let compiled = match compile(&wf, registry, &CompileOptions::default()) {
                Ok(c) => c,
                Err(e) => panic!("generated workflow of {n} nodes does not compile: {e}"),
            };
            let json = wf.to_json_pretty();
            let reparsed = cm_model::from_json_str(&json).expect("generated JSON parses");
            assert_eq!(reparsed, wf, "JSON round trip");
            if let Some(dir) = std::env::var_os("CM_BENCH_DUMP") {
                let path = std::path::Path::new(&dir).join(format!("generated-{n}.json"));
                std::fs::write(&path, &json).expect("write dump");
            }
            let count = |t: &str| wf.nodes.iter().filter(|x| x.node_type == t).count();
            eprintln!(
                "generated n={n}: {} edges, {} if, {} foreach, {} http, {} set; json {} B; \
                 compiled: {} states, {} B definition, {} projected events, {} warnings",
                wf.edges.len(),
                count("condition.if"),
                count("flow.foreach"),
                count("action.http"),
                count("transform.set"),
                json.len(),
                compiled.stats.states,
                compiled.stats.definition_bytes,
                compiled.stats.projected_history_events,
                compiled.warnings.len(),
            );
            Case { n, wf, json }
        })
        .collect()
}

fn benches(c: &mut Criterion) {
    let registry = Registry::builtin();
    let cases = cases(&registry);
    let opts = CompileOptions::default();

    let mut group = c.benchmark_group("parse");
    for case in &cases {
        group.throughput(Throughput::Bytes(case.json.len() as u64));
        group.bench_with_input(
            BenchmarkId::from_parameter(case.n),
            &case.json,
            |b, json| {
                b.iter(|| cm_model::from_json_str(black_box(json)).expect("parses"));
            },
        );
    }
    group.finish();

    let mut group = c.benchmark_group("validate");
    for case in &cases {
        group.throughput(Throughput::Elements(case.n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(case.n), &case.wf, |b, wf| {
            b.iter(|| validate(black_box(wf), &registry));
        });
    }
    group.finish();

    let mut group = c.benchmark_group("compile");
    for case in &cases {
        group.throughput(Throughput::Elements(case.n as u64));
        if case.n >= 1_000 {
            // ~15 ms per iteration: flat sampling fits 20 samples into a short measurement.
            group.sample_size(20).sampling_mode(SamplingMode::Flat);
        }
        group.bench_with_input(BenchmarkId::from_parameter(case.n), &case.wf, |b, wf| {
            b.iter(|| compile(black_box(wf), &registry, &opts).expect("compiles"));
        });
    }
    group.finish();

    // The same workflows in JSONata mode (templates rewritten to `$nodes` / `$item`).
    let mut group = c.benchmark_group("compile_jsonata");
    for case in &cases {
        let text = case
            .json
            .replace("{{ $.nodes.", "{{ $nodes.")
            .replace("{{ $.item", "{{ $item");
        let mut wf = cm_model::from_json_str(&text).expect("parses");
        wf.settings.query_language = cm_model::QueryLanguage::JSONata;
        let errors: Vec<_> = validate(&wf, &registry)
            .into_iter()
            .filter(|f| f.is_error())
            .collect();
        assert!(errors.is_empty(), "{errors:?}");
        group.throughput(Throughput::Elements(case.n as u64));
        if case.n >= 1_000 {
            group.sample_size(20).sampling_mode(SamplingMode::Flat);
        }
        group.bench_with_input(BenchmarkId::from_parameter(case.n), &wf, |b, wf| {
            b.iter(|| compile(black_box(wf), &registry, &opts).expect("compiles"));
        });
    }
    group.finish();

    if std::env::var_os("CM_BENCH_EXTRA").is_some() {
        let mut group = c.benchmark_group("compile_staircase");
        group.sample_size(10).sampling_mode(SamplingMode::Flat);
        for n in [100, 1_000] {
            let wf = staircase(n);
            assert!(validate(&wf, &registry).iter().all(|f| !f.is_error()));
            group.bench_with_input(BenchmarkId::from_parameter(n), &wf, |b, wf| {
                b.iter(|| compile(black_box(wf), &registry, &opts).expect("compiles"));
            });
        }
        group.finish();
    }
}

criterion_group!(compile_benches, benches);
criterion_main!(compile_benches);
