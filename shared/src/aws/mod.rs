//! The AWS implementations of the ports (DynamoDB, SQS, SSM) and the SDK configuration they share. The
//! clients' configuration is read from the environment Lambda sets ([`sdk_config`]), so
//! `AWS_ENDPOINT_URL` (or one service's `AWS_ENDPOINT_URL_<SERVICE>`) points them at a local emulator with no
//! code branch.

mod dynamodb;
mod sqs;
mod ssm;

use std::collections::HashMap;

pub use dynamodb::{attribute, pending_shards, DynamoDbStore, PENDING_INDEX};
pub use sqs::{sqs_id, SqsPublisher, MAX_MESSAGE_BYTES};
pub use ssm::{SsmClient, SsmSecrets};

use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use aws_sdk_dynamodb::config::{BehaviorVersion, Region, SharedHttpClient};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode, TlsContext, TrustStore};
use aws_types::service_config::{LoadServiceConfig, ServiceConfigKey};
use aws_types::SdkConfig;

use crate::config::TlsRoots;

/// The roots of Amazon Trust Services, which certifies every AWS endpoint the functions call (the file says
/// where they come from and their fingerprints).
pub const AMAZON_TRUST_SERVICES_ROOTS: &[u8] = include_bytes!("amazon-trust-services.pem");

/// The one HTTPS client of every SDK client: hyper with rustls and ring (the SDK's default brings aws-lc-rs,
/// a second crypto library and megabytes of binary), trusting `roots`. With [`TlsRoots::Amazon`] no
/// certificate store is read from disk: parsing the platform's (about 150 certificates) held the first
/// connection back by 2-4 ms of every cold start (docs/performance.md).
pub fn https_client(roots: TlsRoots) -> SharedHttpClient {
    let trust = match roots {
        TlsRoots::Amazon => TrustStore::empty().with_pem_certificate(AMAZON_TRUST_SERVICES_ROOTS),
        TlsRoots::System => TrustStore::default(),
    };
    let context = TlsContext::builder().with_trust_store(trust).build().expect("a trust store always builds");
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .tls_context(context)
        .build_https()
}

/// The SDK configuration of a function, from the environment Lambda gives it: `AWS_REGION`, the execution
/// role's `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`, and `AWS_ENDPOINT_URL` or a
/// service's own `AWS_ENDPOINT_URL_DYNAMODB`, `_SQS`, `_SSM` (a local emulator). No credential chain is
/// linked (`aws-config` and its STS client): a Lambda needs none. TLS trusts `roots` (`TLS_ROOTS`).
pub fn sdk_config(roots: TlsRoots) -> SdkConfig {
    sdk_config_from(roots, |name| std::env::var(name).ok())
}

fn sdk_config_from(roots: TlsRoots, env: impl Fn(&str) -> Option<String>) -> SdkConfig {
    let env = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    let endpoints = SERVICES.iter().filter_map(|service| {
        let name = format!("AWS_ENDPOINT_URL_{service}");
        env(&name).map(|url| (name, url))
    });
    let mut sdk = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(https_client(roots))
        .service_config(ServiceEndpoints(endpoints.collect()))
        .region(env("AWS_REGION").or_else(|| env("AWS_DEFAULT_REGION")).map(Region::new));
    if let (Some(id), Some(secret)) = (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
        let credentials = Credentials::new(id, secret, env("AWS_SESSION_TOKEN"), None, "environment");
        sdk = sdk.credentials_provider(SharedCredentialsProvider::new(credentials));
    }
    if let Some(url) = env("AWS_ENDPOINT_URL") {
        sdk = sdk.endpoint_url(url);
    }
    sdk.build()
}

/// The services the functions call, as their `AWS_ENDPOINT_URL_<SERVICE>` variables name them.
const SERVICES: [&str; 3] = ["DYNAMODB", "SQS", "SSM"];

/// `AWS_ENDPOINT_URL_<SERVICE>` as the SDK documents it: one service's endpoint, before `AWS_ENDPOINT_URL`.
#[derive(Debug)]
struct ServiceEndpoints(HashMap<String, String>);

impl LoadServiceConfig for ServiceEndpoints {
    fn load_config(&self, key: ServiceConfigKey<'_>) -> Option<String> {
        let service = key.service_id().to_ascii_uppercase().replace(' ', "_");
        self.0.get(&format!("{}_{service}", key.env())).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_roots_are_the_five_of_amazon_trust_services() {
        use base64::Engine as _;
        use sha2::Digest as _;
        let text = std::str::from_utf8(AMAZON_TRUST_SERVICES_ROOTS).unwrap();
        let fingerprints: Vec<String> = text
            .split("-----BEGIN CERTIFICATE-----")
            .skip(1)
            .map(|block| {
                let body: String =
                    block.split("-----END CERTIFICATE-----").next().unwrap().split_whitespace().collect();
                let der = base64::engine::general_purpose::STANDARD.decode(body).unwrap();
                hex::encode_upper(sha2::Sha256::digest(&der))
            })
            .collect();
        // As published at https://www.amazontrust.com/repository/ (Amazon Root CA 1-4, Starfield Services G2).
        assert_eq!(
            fingerprints,
            [
                "8ECDE6884F3D87B1125BA31AC3FCB13D7016DE7F57CC904FE1CB97C6AE98196E",
                "1BA5B2AA8C65401A82960118F80BEC4F62304D83CEC4713A19C39C011EA46DB4",
                "18CE6CFE7BF14E60B2E347B8DFE868CB31D02EBB3ADA271569F50343B46DB3A4",
                "E35D28419ED02025CFA69038CD623962458DA5C695FBDEA3C22B0BFB25897092",
                "568D6905A2C88708A4B3025190EDCFEDB1974A606A13C6E5290FCB2AE63EDAB5",
            ]
        );
    }

    #[test]
    fn the_environment_makes_the_configuration() {
        let vars = [
            ("AWS_REGION", "eu-west-1"),
            ("AWS_ACCESS_KEY_ID", "AKID"),
            ("AWS_SECRET_ACCESS_KEY", "s"),
            ("AWS_SESSION_TOKEN", "t"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
        ];
        let sdk = sdk_config_from(TlsRoots::Amazon, |name| {
            vars.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned())
        });
        assert_eq!(sdk.region().map(|r| r.as_ref()), Some("eu-west-1"));
        assert_eq!(sdk.endpoint_url(), Some("http://127.0.0.1:5000"));
        assert!(sdk.credentials_provider().is_some() && sdk.http_client().is_some());
        let endpoint_of = |sdk: &SdkConfig, service: &str| {
            let key = ServiceConfigKey::builder().service_id(service).env("AWS_ENDPOINT_URL").profile("endpoint_url");
            sdk.service_config().and_then(|c| c.load_config(key.build().unwrap()))
        };
        assert_eq!(endpoint_of(&sdk, "DynamoDB"), None, "AWS_ENDPOINT_URL serves every service");
        let split =
            [("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:5001"), ("AWS_ENDPOINT_URL_SQS", "http://127.0.0.1:5002")];
        let split = sdk_config_from(TlsRoots::Amazon, |name| {
            split.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned())
        });
        assert_eq!(endpoint_of(&split, "DynamoDB").as_deref(), Some("http://127.0.0.1:5001"));
        assert_eq!(endpoint_of(&split, "SQS").as_deref(), Some("http://127.0.0.1:5002"));
        assert_eq!(endpoint_of(&split, "SSM"), None);
        let bare =
            sdk_config_from(TlsRoots::Amazon, |name| (name == "AWS_DEFAULT_REGION").then(|| "us-east-1".to_owned()));
        assert_eq!(bare.region().map(|r| r.as_ref()), Some("us-east-1"));
        assert!(bare.credentials_provider().is_none() && bare.endpoint_url().is_none());
    }
}
