//! The chaos proxy (`payhooks-chaos`) between the real SDK clients and moto: the faults the soak injects
//! reach the SDK as a real outage would.

use std::net::SocketAddr;

use payhooks::aws::DynamoDbStore;
use payhooks::ports::{EventStore, Insert};
use payhooks_chaos::proxy::{Call, Fault, FaultPlan, Proxy};

use crate::support::{marker, unique, Stack};

/// The moto server a service's calls go to, from the endpoint variables `scripts/with-moto.sh` sets.
fn moto(service: &str) -> SocketAddr {
    let url = std::env::var(format!("AWS_ENDPOINT_URL_{service}"))
        .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
        .expect("run with `make test`, which starts moto_server");
    url.trim_start_matches("http://").trim_end_matches('/').parse().expect("a loopback address")
}

async fn store_through(stack: &Stack, proxy: &Proxy) -> DynamoDbStore {
    let sdk = crate::support::sdk().await;
    let config = aws_sdk_dynamodb::config::Builder::from(&sdk).endpoint_url(proxy.url()).build();
    DynamoDbStore::new(aws_sdk_dynamodb::Client::from_conf(config), stack.table.clone())
}

/// A stack, and a store whose every `operation` call gets `fault` on its way to moto.
async fn faulted(fault: Fault, operation: &str) -> (Stack, Proxy, DynamoDbStore) {
    let stack = Stack::new(true).await;
    let proxy = Proxy::start(moto("DYNAMODB"), FaultPlan::always(fault, operation)).await.unwrap();
    let store = store_through(&stack, &proxy).await;
    (stack, proxy, store)
}

#[tokio::test]
#[ignore = "needs moto_server: run with `make test`"]
async fn a_write_applied_with_its_answer_lost_is_a_failure_to_the_caller_and_a_fact_in_the_table() {
    let (stack, proxy, store) = faulted(Fault::AppliedButLost, "PutItem").await;
    let id = unique("lost");

    let written = store.insert(&marker(&id, 0)).await;
    assert!(written.is_err(), "every answer was lost: {written:?}");
    // The SDK tried again; every attempt was applied or refused by its condition, and the first one wrote.
    let calls = proxy.history();
    assert!(calls.len() >= 2, "the SDK retries a lost answer: {calls:?}");
    assert!(calls.iter().all(|c| *c == Call { operation: "PutItem".into(), fault: Fault::AppliedButLost }));
    assert_eq!(
        stack.store().insert(&marker(&id, 0)).await.unwrap(),
        Insert::Exists(stack.store().get(&id).await.unwrap().unwrap())
    );
}

#[tokio::test]
#[ignore = "needs moto_server: run with `make test`"]
async fn a_throttle_is_retried_by_the_sdk_and_reaches_the_caller_as_an_error() {
    let (stack, proxy, store) = faulted(Fault::Throttle, "GetItem").await;
    let err = store.get("nothing").await.unwrap_err();
    let chain = payhooks::error::chain(&err);
    assert!(chain.contains("ThrottlingException"), "{chain}");
    assert!(proxy.history().len() >= 2, "throttling is retried: {:?}", proxy.history());
    assert!(store_through(&stack, &Proxy::start(moto("DYNAMODB"), FaultPlan::none()).await.unwrap())
        .await
        .get("nothing")
        .await
        .unwrap()
        .is_none());
}

/// Found by `make chaos`: a new marker's put applied with its answer lost. The SDK's retry was refused by
/// the condition, the store answered `Exists`, and the delivery waited 2 s on its own record, answered 503
/// `in_progress`, and its event waited for the sweeper. The retry now knows the record by the delivery's
/// token (`leased_by`).
#[tokio::test]
#[ignore = "needs moto_server: run with `make test`"]
async fn a_put_whose_answer_was_lost_is_still_the_deliverys_own() {
    let stack = Stack::new(true).await;
    let proxy = Proxy::start(moto("DYNAMODB"), FaultPlan::once(Fault::AppliedButLost, "PutItem")).await.unwrap();
    let store = store_through(&stack, &proxy).await;
    let id = unique("lost-put");
    let record = marker(&id, 1_000);

    assert_eq!(store.insert(&record).await.unwrap(), Insert::Created);
    let calls = proxy.history();
    assert_eq!((calls.len(), &calls[0].fault), (2, &Fault::AppliedButLost), "applied, lost, retried: {calls:?}");
    // Another delivery of the same event, in the same millisecond (the same lease), finds the record.
    let another = marker(&id, 1_000);
    assert!(matches!(stack.store().insert(&another).await.unwrap(), Insert::Exists(_)));
}

/// The same for a takeover: its update applied with the answer lost, the SDK's retry refused (the lease is
/// no longer the expired one). It is this delivery's takeover; another's, even with the same lease, is not.
#[tokio::test]
#[ignore = "needs moto_server: run with `make test`"]
async fn a_takeover_whose_answer_was_lost_is_still_the_deliverys_own() {
    let stack = Stack::new(true).await;
    let id = unique("lost-takeover");
    stack.store().insert(&marker(&id, 100)).await.unwrap();
    let proxy = Proxy::start(moto("DYNAMODB"), FaultPlan::once(Fault::AppliedButLost, "UpdateItem")).await.unwrap();
    let store = store_through(&stack, &proxy).await;

    assert!(store.take_over(&id, 100, 5_000, "this delivery").await.unwrap());
    let calls = proxy.history();
    assert_eq!((calls.len(), &calls[0].fault), (2, &Fault::AppliedButLost), "applied, lost, retried: {calls:?}");
    assert!(!stack.store().take_over(&id, 100, 5_000, "another delivery").await.unwrap());
    assert_eq!(stack.store().get(&id).await.unwrap().unwrap().lease_until_ms, 5_000);
}
