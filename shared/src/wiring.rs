//! The composition root: the one place that builds the AWS clients and wires them into a [`Pipeline`] or a
//! [`Sweeper`], once per cold start. The functions' `main`s call it and nothing else does.

use std::sync::Arc;
use std::time::Duration;

use crate::aws::{sdk_config, DynamoDbStore, SqsPublisher, SsmClient, SsmSecrets};
use crate::config::{Config, SweeperConfig};
use crate::handler::DEFAULT_LEASE;
use crate::pipeline::Pipeline;
use crate::ports::{EventPublisher, SecretLoader};
use crate::sweeper::Sweeper;

/// How long init may spend loading secrets and opening connections before the first poll.
pub const WARM_UP_BUDGET: Duration = Duration::from_secs(2);

/// Build the clients once, wire them into a pipeline for `config.provider`, and warm it up (secrets loaded,
/// connections open) within [`WARM_UP_BUDGET`].
pub async fn pipeline(config: Config) -> Pipeline {
    let pipeline = wire(config);
    // A part not ready is logged with why; the first callback then does it.
    let _ = pipeline.warm_up(WARM_UP_BUDGET).await;
    pipeline
}

fn wire(config: Config) -> Pipeline {
    let sdk = sdk_config(config.tls_roots);
    let secrets: Arc<dyn SecretLoader> =
        Arc::new(SsmSecrets::new(SsmClient::new(&sdk), config.secrets, config.signing_keys));
    Pipeline::new(
        config.provider,
        config.verify,
        secrets,
        Arc::new(DynamoDbStore::new(aws_sdk_dynamodb::Client::new(&sdk), config.events_table)),
        Arc::new(SqsPublisher::new(aws_sdk_sqs::Client::new(&sdk), config.events_queue_url)),
        config.retention,
    )
    .with_secrets_refresh(config.secrets_refresh)
}

/// Build the clients once and wire the sweeper to the table and every provider's queue.
pub fn sweeper(config: SweeperConfig) -> Sweeper {
    let sdk = sdk_config(config.tls_roots);
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let publishers = config
        .queue_urls
        .into_iter()
        .map(|(provider, url)| (provider, Arc::new(SqsPublisher::new(sqs.clone(), url)) as Arc<dyn EventPublisher>))
        .collect();
    let store = DynamoDbStore::new(aws_sdk_dynamodb::Client::new(&sdk), config.events_table);
    Sweeper::new(Arc::new(store), publishers, DEFAULT_LEASE)
}
