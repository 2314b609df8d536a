//! The AWS implementations of the ports, and the cold-start wiring that builds a [`Pipeline`] from
//! [`Config`]. Clients come from `aws-config`, so `AWS_ENDPOINT_URL` points them at a local emulator with
//! no code branch.

mod dynamodb;
mod sqs;
mod ssm;

use std::sync::Arc;

pub use dynamodb::{DynamoDbIdempotencyStore, PENDING_INDEX};
pub use sqs::SqsPublisher;
pub use ssm::SsmSecrets;

use std::time::Duration;

use crate::config::{Config, SweeperConfig};

/// How long init may spend loading secrets and opening connections before the first poll.
pub const WARM_UP_BUDGET: Duration = Duration::from_secs(2);
use crate::handler::DEFAULT_LEASE;
use crate::pipeline::Pipeline;
use crate::ports::EventPublisher;
use crate::ports::SecretLoader;
use crate::sweeper::Sweeper;

impl Pipeline {
    /// Build the clients once, wire them into a pipeline for `config.provider`, and warm it up (secrets loaded,
    /// connections open) within [`WARM_UP_BUDGET`].
    pub async fn from_config(config: Config) -> Self {
        let pipeline = Self::wire(config).await;
        pipeline.warm_up(WARM_UP_BUDGET).await;
        pipeline
    }

    async fn wire(config: Config) -> Self {
        let sdk = aws_config::load_from_env().await;
        let secrets: Arc<dyn SecretLoader> =
            Arc::new(SsmSecrets::new(aws_sdk_ssm::Client::new(&sdk), config.secrets, config.signing_keys));
        Pipeline::new(
            config.provider,
            config.verify,
            secrets,
            Arc::new(DynamoDbIdempotencyStore::new(aws_sdk_dynamodb::Client::new(&sdk), config.events_table)),
            Arc::new(SqsPublisher::new(aws_sdk_sqs::Client::new(&sdk), config.events_queue_url)),
            config.retention,
        )
    }
}

impl Sweeper {
    /// Build the clients once and wire the sweeper to the table and every provider's queue.
    pub async fn from_config(config: SweeperConfig) -> Self {
        let sdk = aws_config::load_from_env().await;
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let publishers = config
            .queue_urls
            .into_iter()
            .map(|(provider, url)| (provider, Arc::new(SqsPublisher::new(sqs.clone(), url)) as Arc<dyn EventPublisher>))
            .collect();
        let store = DynamoDbIdempotencyStore::new(aws_sdk_dynamodb::Client::new(&sdk), config.events_table);
        Sweeper::new(Arc::new(store), publishers, DEFAULT_LEASE)
    }
}
