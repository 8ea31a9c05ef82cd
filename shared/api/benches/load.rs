//! Load on loopback: the API with the durable stores (SQLite for workflows/runs and for the
//! engine's journal) and the real node handlers, driven open-loop at a fixed rate.
//!
//! Phases (each at `RATE` requests/s for `SECONDS`, latency measured from each request's
//! scheduled send time, so a stall counts against every request it delays):
//! 1. `GET /healthz` — the baseline: HTTP + routing, no storage;
//! 2. `POST /v1/workflows/load/runs` — start-run; the workflow waits 1 s, so about `RATE` runs
//!    are in flight at once; afterwards every run must have SUCCEEDED (none lost);
//! 3. `GET /v1/runs/{id}` — get-run over the runs just started;
//! 4. WebSocket: a client subscribed to the workflow receives every run's events; latency =
//!    receive time − the event's engine timestamp (ms resolution).
//!
//! `cargo bench -p cm-api --bench load` (RATE=1000 SECONDS=3 by default); under
//! `cargo test --benches` it runs a few requests per phase to prove it works.
#![allow(clippy::unwrap_used, missing_docs)]

use cm_api::auth::{Claims, Role, TokenKey};
use cm_api::runtime::LocalRuntime;
use cm_api::{ApiConfig, AppState};
use cm_engine::{Engine, EngineConfig, StoreConfig};
use cm_local::LocalStore;
use cm_nodes::secrets::LocalSecrets;
use cm_nodes::{NodeRunner, Services};
use cm_store::sqlite::SqliteStore;
use futures_util::StreamExt;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    if v.is_empty() {
        return f64::NAN;
    }
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

struct Phase {
    name: &'static str,
    ms: Vec<f64>,
    errors: usize,
}

impl Phase {
    fn report(mut self, baseline: Option<(f64, f64)>) -> (f64, f64) {
        let n = self.ms.len();
        let (p50, p99) = (pct(&mut self.ms, 0.5), pct(&mut self.ms, 0.99));
        let ratio = baseline
            .map(|(b50, b99)| format!("  ({:.1}× / {:.1}× the baseline)", p50 / b50, p99 / b99))
            .unwrap_or_default();
        println!(
            "{:<28} n={n:<6} errors={:<3} p50={p50:.2} ms  p99={p99:.2} ms{ratio}",
            self.name, self.errors
        );
        (p50, p99)
    }
}

/// Sends `count` requests at `rate`/s; `make(i)` builds request i.
async fn open_loop(
    name: &'static str,
    rate: u64,
    count: u64,
    make: impl Fn(u64) -> reqwest::RequestBuilder,
    keep: Option<Arc<Mutex<Vec<String>>>>,
) -> Phase {
    let start = Instant::now();
    let period = Duration::from_nanos(1_000_000_000 / rate.max(1));
    let mut tasks = Vec::with_capacity(count as usize);
    for i in 0..count {
        let at = start + period * i as u32;
        tokio::time::sleep_until(at.into()).await;
        let req = make(i);
        let keep = keep.clone();
        tasks.push(tokio::spawn(async move {
            let res = req.send().await;
            let ms = at.elapsed().as_secs_f64() * 1000.0;
            match res {
                Ok(r) if r.status().is_success() => {
                    if let Some(k) = keep {
                        let v: Value = r.json().await.unwrap_or_default();
                        if let Some(id) = v["id"].as_str() {
                            k.lock().unwrap().push(id.to_owned());
                        }
                    }
                    (ms, true)
                }
                _ => (ms, false),
            }
        }));
    }
    let mut phase = Phase {
        name,
        ms: Vec::new(),
        errors: 0,
    };
    for t in tasks {
        let (ms, ok) = t.await.unwrap();
        phase.ms.push(ms);
        if !ok {
            phase.errors += 1;
        }
    }
    phase
}

fn main() {
    // reqwest is built without a default TLS provider in this workspace.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let bench = std::env::args().any(|a| a == "--bench");
    let rate = env("RATE", 1000);
    let seconds = env("SECONDS", 3);
    let count = if bench { rate * seconds } else { 20 };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let dir = tempfile::tempdir().unwrap();
        let local = Arc::new(LocalStore::open(&dir.path().join("local.db")).unwrap());
        let secrets = Arc::new(LocalSecrets::new());
        let services = Services::new(secrets.clone(), local.clone(), local.clone()).unwrap();
        let resources = cm_local::resources(
            local.clone(),
            NodeRunner::builtin(services),
            &cm_local::ResourceOptions::default(),
        );
        let engine = Engine::open(EngineConfig {
            store: StoreConfig::Sqlite {
                path: dir.path().join("engine.db"),
                durability: Default::default(),
            },
            resources,
            ..EngineConfig::default()
        })
        .await
        .unwrap();
        let key = TokenKey::generate().unwrap();
        let state = AppState::new(
            SqliteStore::open(&dir.path().join("control.db")).unwrap(),
            LocalRuntime::new(engine.clone()),
            Arc::new(cm_registry::Registry::builtin()),
            key.clone(),
            None,
            cm_api::live::Hub::new(),
            secrets,
            ApiConfig::default(),
        );
        tokio::spawn(cm_api::live::follow_engine(engine.clone(), state.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = cm_api::router(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let base = format!("http://{addr}");
        let token = key.mint(&Claims {
            sub: "bench".into(),
            org: "bench".into(),
            role: Role::Admin,
            exp: cm_api::auth::now_s() + 3600,
            iat: 0,
            nbf: None,
        });
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .build()
            .unwrap();
        let auth = format!("Bearer {token}");
        let wf = json!({"id": "load", "name": "Load", "nodes": [
            {"id": "start", "type": "trigger.manual"},
            {"id": "nap", "type": "flow.wait", "config": {"seconds": 1}},
            {"id": "done", "type": "transform.set", "config": {"fields": {"n": "{{ $.nodes.start.output.n }}"}}}],
            "edges": [{"from": "start", "to": "nap"}, {"from": "nap", "to": "done"}]});
        let r = http
            .post(format!("{base}/v1/workflows"))
            .header("authorization", &auth)
            .json(&json!({"definition": wf}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
        let r = http
            .post(format!("{base}/v1/workflows/load/publish"))
            .header("authorization", &auth)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());

        // WebSocket listener: receive time − event time, per event.
        let ws_ms: Arc<Mutex<Vec<f64>>> = Arc::default();
        let finished = Arc::new(std::sync::atomic::AtomicU64::new(0));
        {
            let (mut ws, _) = tokio_tungstenite::connect_async(format!(
                "ws://{addr}/ws?token={token}"
            ))
            .await
            .unwrap();
            use futures_util::SinkExt;
            ws.send(tokio_tungstenite::tungstenite::Message::Text(
                json!({"action": "subscribe", "topic": "workflow:load"}).to_string().into(),
            ))
            .await
            .unwrap();
            let ws_ms = ws_ms.clone();
            let finished = finished.clone();
            tokio::spawn(async move {
                while let Some(Ok(m)) = ws.next().await {
                    if let tokio_tungstenite::tungstenite::Message::Text(t) = m {
                        let v: Value = serde_json::from_str(&t).unwrap_or_default();
                        if let Some(at) = v["atMs"].as_i64() {
                            let now = cm_api::routes::now_ms();
                            ws_ms.lock().unwrap().push((now - at) as f64);
                        }
                        if v["type"] == "run.finished" {
                            finished.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                }
            });
        }

        println!("load on loopback: {rate} requests/s, {count} per phase (durable SQLite stores, 2 workers)");
        let health = open_loop(
            "GET /healthz (baseline)",
            rate,
            count,
            |_| http.get(format!("{base}/healthz")),
            None,
        )
        .await
        .report(None);
        let ids: Arc<Mutex<Vec<String>>> = Arc::default();
        open_loop(
            "POST …/runs (start-run)",
            rate,
            count,
            |i| {
                http.post(format!("{base}/v1/workflows/load/runs"))
                    .header("authorization", &auth)
                    .json(&json!({"input": {"n": i}}))
            },
            Some(ids.clone()),
        )
        .await
        .report(Some(health));
        let started: Vec<String> = ids.lock().unwrap().clone();
        let peak = engine.running_count();
        open_loop(
            "GET /v1/runs/{id} (get-run)",
            rate,
            count,
            |i| {
                http.get(format!("{base}/v1/runs/{}", started[i as usize % started.len().max(1)]))
                    .header("authorization", &auth)
            },
            None,
        )
        .await
        .report(Some(health));
        // Every run must end: none lost.
        let deadline = Instant::now() + Duration::from_secs(60);
        while finished.load(std::sync::atomic::Ordering::Relaxed) < started.len() as u64
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut succeeded = 0;
        for id in &started {
            let v: Value = http
                .get(format!("{base}/v1/runs/{id}"))
                .header("authorization", &auth)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if v["status"] == "SUCCEEDED" {
                succeeded += 1;
            }
        }
        println!(
            "runs: {} started, {succeeded} succeeded, {} lost; {peak} in flight when the get-run phase began",
            started.len(),
            started.len() - succeeded
        );
        let mut ws = ws_ms.lock().unwrap().clone();
        println!(
            "WebSocket event latency (transition → client, ms resolution): n={} p50={:.0} ms p99={:.0} ms",
            ws.len(),
            pct(&mut ws, 0.5),
            pct(&mut ws, 0.99)
        );
        assert_eq!(succeeded, started.len(), "runs were lost");
        engine.shutdown().await;
    });
}
