//! The m2money callback Lambda: wiring only; the logic is in the shared `payhooks` crate.

use lambda_http::{service_fn, Error};
use payhooks::{handler, Config, Pipeline, Provider};

#[tokio::main]
async fn main() -> Result<(), Error> {
    payhooks::logging::init();
    let config = Config::from_env(Provider::M2Money)?;
    let pipeline = Pipeline::from_config(config).await;
    lambda_http::run(service_fn(|req| handler::handle(&pipeline, req))).await
}
