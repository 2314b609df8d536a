//! The SSM answer holds a secret: with every trace event on, none shows it. Its own test binary, one test:
//! a thread's subscriber and tracing's per-callsite cache do not mix with tests running beside it.

use std::io::Write;
use std::sync::{Arc, Mutex};

use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use aws_types::region::Region;
use aws_types::SdkConfig;
use payhooks::aws::{https_client, SsmClient, SsmSecrets};
use payhooks::config::{SecretSource, TlsRoots};
use payhooks::ports::SecretLoader;
use payhooks::testing::serve_once_each;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn the_secret_is_in_no_trace_event() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber =
        tracing_subscriber::fmt().with_max_level(tracing::Level::TRACE).with_writer(move || writer.clone()).finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let answer = r#"{"Parameter":{"Value":"hunter2-current,hunter2-previous"}}"#;
    let (url, server) = serve_once_each(vec![(200, answer)], "WithDecryption").await;
    let sdk = SdkConfig::builder()
        .region(Region::new("eu-west-1"))
        .endpoint_url(url)
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "AKID",
            "s",
            Some("session-token-9f2".into()),
            None,
            "t",
        )))
        .http_client(https_client(TlsRoots::Amazon))
        .build();
    let loader = SsmSecrets::new(SsmClient::new(&sdk), SecretSource::SsmParameter("/payhooks/muda".into()), None);
    let secrets = loader.load().await.unwrap();
    assert_eq!(secrets.webhook.current().expose(), "hunter2-current");
    server.await.unwrap();

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("read HTTP response body"), "the runtime traced the answer: {logs:.3000}");
    assert!(!logs.contains("hunter2"), "{logs}");
    assert!(!logs.contains("session-token-9f2"), "{logs}");
}
