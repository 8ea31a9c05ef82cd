//! The node-runner Lambda's entry point: settings and services once per container, then the
//! Runtime API loop. Everything else is in the library.

use lambda_runtime::{Error, service_fn};
use node_runner::{Config, handler, init_tracing, runner};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    init_tracing();
    let config = Config::from_env()?;
    let runner = runner(&config)
        .await
        .map_err(|e| format!("{}: {}", e.name(), e.cause()))?;
    lambda_runtime::run(service_fn(|event| handler(&runner, event))).await
}
