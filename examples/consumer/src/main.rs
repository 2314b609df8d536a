//! The reference consumer as a Lambda function behind an SQS event source mapping (`template.yaml` here):
//! `LEDGER_TABLE` (its own DynamoDB table) and `HUMANS_QUEUE_URL` (a FIFO queue a person reads).

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use payhooks_consumer_example::{Consumer, DynamoDbLedger, SqsHumans};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let table = std::env::var("LEDGER_TABLE").map_err(|_| "set LEDGER_TABLE")?;
    let humans = std::env::var("HUMANS_QUEUE_URL").map_err(|_| "set HUMANS_QUEUE_URL")?;
    let https = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(https).load().await;
    let consumer = Consumer {
        ledger: DynamoDbLedger { client: aws_sdk_dynamodb::Client::new(&sdk), table },
        humans: SqsHumans { client: aws_sdk_sqs::Client::new(&sdk), queue_url: humans },
    };
    let consumer = &consumer;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<SqsBatchResponse, Error>(consumer.handle(event.payload).await)
    }))
    .await
}
