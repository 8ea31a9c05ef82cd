//! The ws-connect Lambda's entry point: settings and the store once per container, then the
//! Runtime API loop. Everything else is in the library.

use cm_live_cloud::{Config, init_tracing};
use lambda_runtime::{Error, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    init_tracing();
    let (config, aws) = Config::load().await?;
    let key = config.require_signing_key()?;
    let store = config.store(&aws);
    lambda_runtime::run(service_fn(|event| ws_connect::handler(&store, &key, event))).await
}
