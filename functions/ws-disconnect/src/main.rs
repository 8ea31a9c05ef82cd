//! The ws-disconnect Lambda's entry point: settings and the store once per container, then
//! the Runtime API loop. Everything else is in the library.

use cm_live_cloud::{Config, init_tracing, sdk_config};
use lambda_runtime::{Error, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    init_tracing();
    let config = Config::from_env()?;
    let store = config.store(&sdk_config(config.endpoint_url.as_deref()).await);
    lambda_runtime::run(service_fn(|event| ws_disconnect::handler(&store, event))).await
}
