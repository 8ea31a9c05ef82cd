//! The api Lambda's entry point: settings and clients once per container, then the Runtime
//! API loop serving the router. Everything else is in the library.

use lambda_http::Error;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    api::init_tracing();
    let (config, aws) = api::Config::load().await?;
    let app = api::app_with(&config, &aws);
    lambda_http::run(app).await
}
