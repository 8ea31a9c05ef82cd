//! The status-pusher Lambda's entry point: settings, the store and the Management API client
//! once per container, then the Runtime API loop. Everything else is in the library.

use cm_live_cloud::{Config, SdkPoster, init_tracing, sdk_config};
use lambda_runtime::{Error, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    init_tracing();
    let config = Config::from_env()?;
    let aws = sdk_config(config.endpoint_url.as_deref()).await;
    let poster = SdkPoster::new(&aws, Some(&config.require_ws_endpoint()?));
    let store = config.store(&aws);
    lambda_runtime::run(service_fn(|event| {
        status_pusher::handler(&store, &poster, event)
    }))
    .await
}
