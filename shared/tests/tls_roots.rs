//! TLS to AWS trusts exactly the roots `TLS_ROOTS` names. A local HTTPS endpoint whose certificate comes from a
//! test CA stands in for SSM: with `system`, and the test CA as the platform's store (`SSL_CERT_FILE`), the
//! secrets load through it; with `amazon`, the same endpoint is refused, and the error says why. Its own test
//! binary: the platform's store is read once per process, from the environment this test sets.
//!
//! `tls/` holds the test CA's certificate and a leaf certificate and key for 127.0.0.1, valid 2000-2125 so that
//! no clock makes them expire or not yet valid (the CA's key was thrown away): test material, never trusted
//! anywhere else.

use std::sync::Arc;

use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use aws_types::region::Region;
use aws_types::SdkConfig;
use payhooks::aws::{https_client, SsmClient, SsmSecrets};
use payhooks::config::{SecretSource, TlsRoots};
use payhooks::ports::SecretLoader;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{crypto::ring, ServerConfig};

const ANSWER: &str = r#"{"Parameter":{"Value":"tls-current"}}"#;

/// An HTTPS endpoint on 127.0.0.1 with the test leaf certificate, answering every request it can read with
/// `ANSWER`; connections whose handshake fails are dropped. Returns its URL.
async fn https_endpoint() -> String {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tls");
    let chain = CertificateDer::pem_file_iter(format!("{dir}/leaf.pem")).unwrap().collect::<Result<Vec<_>, _>>();
    let key = PrivateKeyDer::from_pem_file(format!("{dir}/leaf.key")).unwrap();
    let config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain.unwrap(), key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let (socket, _) = listener.accept().await.unwrap();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(socket).await else { return };
                let mut request = Vec::new();
                let mut chunk = [0u8; 4096];
                while !String::from_utf8_lossy(&request).contains("WithDecryption") {
                    match tls.read(&mut chunk).await {
                        Ok(n) if n > 0 => request.extend_from_slice(&chunk[..n]),
                        _ => return,
                    }
                }
                let _ = tls.write_all(payhooks::testing::amz_json_answer(200, ANSWER).as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    url
}

/// Load the secrets from `url` through the functions' HTTPS client trusting `roots`.
async fn load_through(url: &str, roots: TlsRoots) -> Result<String, String> {
    let sdk = SdkConfig::builder()
        .region(Region::new("eu-west-1"))
        .endpoint_url(url)
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new("AKID", "s", None, None, "t")))
        .http_client(https_client(roots))
        .build();
    let loader = SsmSecrets::new(SsmClient::new(&sdk), SecretSource::SsmParameter("/payhooks/lipia".into()), None);
    match loader.load().await {
        Ok(secrets) => Ok(secrets.webhook.current().expose().to_owned()),
        // The whole chain: the certificate's fault is a few causes down.
        Err(err) => Err(payhooks::error::chain(&err)),
    }
}

#[tokio::test]
async fn amazon_roots_refuse_an_endpoint_the_system_store_trusts() {
    std::env::set_var("SSL_CERT_FILE", concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tls/test-ca.pem"));
    std::env::remove_var("SSL_CERT_DIR");
    let url = https_endpoint().await;

    assert_eq!(load_through(&url, TlsRoots::System).await.as_deref(), Ok("tls-current"));

    let refused = load_through(&url, TlsRoots::Amazon).await.unwrap_err();
    assert!(refused.contains("invalid peer certificate: UnknownIssuer"), "{refused}");
}
