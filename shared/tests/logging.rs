//! What the handler logs: one line per callback, never a secret, a URL token or a signature.
//! Kept in its own test binary because it installs the global log subscriber.

use payhooks::testing;

use chrono::Utc;
use payhooks::testing::{TestPipeline, TestRequest};
use payhooks::Provider::*;

/// Collects everything the handler logs, for the duration of one test.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn one_log_line_per_callback_without_secrets_tokens_or_signatures() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt().with_writer(move || writer.clone()).with_ansi(false).finish();
    // Global, and alone in this test binary: tracing caches per-callsite interest, so a thread-local subscriber
    // can miss events that other tests' threads hit first with no subscriber.
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let now = Utc::now();
    let choice = TestRequest::signed_fixture(Choice, "0002_transaction", now);
    let signature = serde_json::from_str::<serde_json::Value>(&choice.body_text()).unwrap()["signature"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut forged = choice.clone();
    forged.body = forged.body_text().replace("1500.00", "1.00").into_bytes();
    let lipia = TestRequest::signed_fixture(Lipia, "stk_success", now);
    let mut wrong_token = lipia.clone();
    wrong_token.path = "/webhooks/lipia/guessed-token".into();

    TestPipeline::new(Choice).call(&choice, false).await;
    TestPipeline::new(Choice).call(&forged, false).await;
    TestPipeline::new(Lipia).call(&lipia, false).await;
    TestPipeline::new(Lipia).call(&wrong_token, false).await;

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = logs.lines().filter(|l| l.contains("callback")).collect();
    assert_eq!(lines.len(), 4, "{logs}");
    assert!(
        lines[0].contains("outcome=\"accepted\"")
            && lines[0].contains("choice:0002:")
            && lines[0].contains("secret_index=0")
    );
    assert!(lines[1].contains("rejected:invalid_signature"));
    assert!(lines[3].contains("rejected:invalid_token"));
    for secret in [testing::SECRET, testing::OLD_SECRET, signature.as_str(), "guessed-token"] {
        assert!(!logs.contains(secret), "logs contain {secret}: {logs}");
    }
}
