//! The scheduler Lambda's entry point: settings and clients once per container, then the
//! Runtime API loop over `cm_cloud::schedule` (schedule ticks).

use lambda_runtime::{Error, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    cm_cloud::init_tracing();
    let config = cm_cloud::WorkerConfig::from_env()?;
    let state = cm_cloud::state(&config).await;
    lambda_runtime::run(service_fn(|event| {
        cm_cloud::schedule::lambda_handler(&state, event)
    }))
    .await
}
