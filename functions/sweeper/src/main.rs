//! The sweeper Lambda (EventBridge schedule): wiring only; the logic is in the shared `payhooks` crate.

use lambda_http::lambda_runtime::{self, service_fn, LambdaEvent};
use lambda_http::Error;
use payhooks::config::SweeperConfig;
use payhooks::wiring;

#[tokio::main]
async fn main() -> Result<(), Error> {
    payhooks::logging::init();
    let config = SweeperConfig::from_env()?;
    let sweeper = wiring::sweeper(config);
    lambda_runtime::run(service_fn(|_: LambdaEvent<serde_json::Value>| payhooks::sweeper::handle(&sweeper))).await
}
