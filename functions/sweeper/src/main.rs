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
    // Each run ends before its invocation's deadline.
    let sweep = |event: LambdaEvent<serde_json::Value>| {
        payhooks::sweeper::handle(&sweeper, Some(event.context.deadline as i64))
    };
    lambda_runtime::run(service_fn(sweep)).await
}
