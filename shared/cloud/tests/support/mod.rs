//! What the workers' tests share: the API state over the in-memory store and a runtime built
//! on the embedded engine with the real node handlers.
#![allow(clippy::unwrap_used)]

use cm_api::AppState;
use cm_api::runtime::{LocalRuntime, Runtime};
use cm_cloud::{WorkerConfig, state_over};
use cm_engine::{Engine, EngineConfig};
use cm_local::LocalStore;
use cm_nodes::secrets::LocalSecrets;
use cm_nodes::{NodeRunner, Services};
use cm_store::memory::MemoryStore;
use std::sync::Arc;

/// The embedded engine (in memory) with the built-in node handlers, as a runtime.
pub async fn engine_runtime() -> LocalRuntime {
    let local = Arc::new(LocalStore::in_memory().unwrap());
    let services =
        Services::new(Arc::new(LocalSecrets::new()), local.clone(), local.clone()).unwrap();
    let resources = cm_local::resources(
        local,
        NodeRunner::builtin(services),
        &cm_local::ResourceOptions::default(),
    );
    let engine = Engine::open(EngineConfig {
        resources,
        ..EngineConfig::default()
    })
    .await
    .unwrap();
    LocalRuntime::new(engine)
}

/// A worker's state over the in-memory store and `runtime`.
pub fn worker_state<R: Runtime>(runtime: R) -> AppState<MemoryStore, R> {
    let config = WorkerConfig {
        table: "unused".into(),
        state_machine_arn_prefix: "arn:aws:states:us-east-1:000000000000:stateMachine:".into(),
        endpoint_url: None,
        log_group_arn: None,
    };
    state_over(&config, MemoryStore::new(), runtime)
}
