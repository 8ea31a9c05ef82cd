//! The ws-message Lambda's entry point: settings, the store and the Management API client once
//! per container, then the Runtime API loop. Everything else is in the library.

use cm_live_cloud::{Config, SdkPoster, init_tracing, sdk_config};
use lambda_runtime::{Error, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    init_tracing();
    let config = Config::from_env()?;
    let aws = sdk_config(config.endpoint_url.as_deref()).await;
    let (store, poster) = (
        config.store(&aws),
        SdkPoster::new(&aws, config.ws_endpoint.as_deref()),
    );
    lambda_runtime::run(service_fn(|event| {
        ws_message::handler(&store, &poster, event)
    }))
    .await
}
