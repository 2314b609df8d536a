//! The lipia callback Lambda: wiring only; the logic is in the shared `payhooks` crate.

use lambda_http::Error;
use payhooks::{handler, wiring, Config, Provider};

#[tokio::main]
async fn main() -> Result<(), Error> {
    payhooks::logging::init();
    let config = Config::from_env(Provider::Lipia)?;
    let pipeline = wiring::pipeline(config).await;
    handler::run(&pipeline).await
}
