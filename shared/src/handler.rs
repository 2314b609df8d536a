//! The Lambda side: an API Gateway (HTTP API, payload v2) request in, the provider's answer out.
//! Every error is mapped to its HTTP status here and nowhere else.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use chrono::Utc;
use lambda_http::http::{header::CONTENT_TYPE, StatusCode};
use lambda_http::request::RequestContext;
use lambda_http::{Body, IntoResponse, Request, RequestExt, Response};

use crate::error::IngestError;
use crate::metrics::{self, CallbackMetrics};
use crate::pipeline::{Pipeline, Processed};
use crate::providers::{Ack, Incoming};

/// The lease when the request carries no Lambda deadline (local runs): the template's function timeout.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(10);

/// An answer as [`handle`] built it, handed to `lambda_http` unchanged.
///
/// `lambda_http`'s own `IntoResponse` for `Response<B>` decodes a text body again by the charset its
/// content type names, through `encoding_rs` and every encoding's tables (150 KB of each binary). Every
/// answer here is UTF-8 text already, so nothing is decoded and none of that is linked.
#[derive(Debug)]
pub struct Answer(pub Response<Body>);

impl IntoResponse for Answer {
    fn into_response(self) -> Pin<Box<dyn Future<Output = Response<Body>> + Send>> {
        Box::pin(std::future::ready(self.0))
    }
}

/// Serve the provider's callbacks on the Lambda Runtime API until the runtime stops.
pub async fn run(pipeline: &Pipeline) -> Result<(), lambda_http::Error> {
    lambda_http::run(lambda_http::service_fn(|req| async { handle(pipeline, req).await.map(Answer) })).await
}

/// Handle one request. Never fails: every outcome is an HTTP answer (transient faults are 503).
pub async fn handle(pipeline: &Pipeline, req: Request) -> Result<Response<Body>, std::convert::Infallible> {
    let started = Instant::now();
    let received = Utc::now();
    let source_ip = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.http.source_ip.clone(),
        _ => None,
    };
    let lease = req
        .lambda_context_ref()
        .map(|ctx| ctx.deadline as i64 - received.timestamp_millis())
        .filter(|ms| *ms > 0)
        .map(|ms| Duration::from_millis(ms as u64))
        .unwrap_or(DEFAULT_LEASE);
    let path = match req.raw_http_path() {
        "" => req.uri().path().to_owned(),
        raw => raw.to_owned(),
    };
    let body: &[u8] = req.body().as_ref();
    let incoming =
        Incoming { method: req.method(), path: &path, headers: req.headers(), body, source_ip: source_ip.as_deref() };

    let (result, recorded) = metrics::recording(pipeline.process(&incoming, received, lease)).await;
    let duration_ms = started.elapsed().as_millis() as u64;
    let provider = pipeline.provider.name();
    let mut measured = CallbackMetrics { recorded, ..CallbackMetrics::default() };
    let response = match result {
        Ok(Processed { outcome, ack, event_ids, quarantined_ids, verified, counts, sent_at_ms }) => {
            tracing::info!(
                provider,
                outcome = outcome.as_str(),
                ?event_ids,
                ?quarantined_ids,
                secret_index = verified.secret_index,
                scheme = verified.scheme.as_str(),
                dialect = verified.dialect.map(|d| d.as_str()),
                duration_ms,
                "callback"
            );
            measured.accepted = counts.accepted;
            measured.duplicate = counts.duplicate;
            measured.conflict = counts.conflict;
            measured.quarantined = counts.quarantined;
            measured.secret_index = Some(verified.secret_index);
            measured.dialect = verified.dialect;
            measured.clock_skew_ms = sent_at_ms.map(|sent| received.timestamp_millis() - sent);
            acknowledgement(ack)
        }
        Err(err) => {
            let outcome = format!("rejected:{}", err.code());
            match &err {
                IngestError::Rejected(r) => tracing::warn!(provider, outcome, reason = %r, duration_ms, "callback"),
                other => {
                    tracing::error!(provider, outcome, error = %other, cause = ?std::error::Error::source(other), duration_ms, "callback")
                }
            }
            measured.rejected = Some(err.code());
            measured.auth_failed = err.status() == StatusCode::UNAUTHORIZED;
            error_response(&err)
        }
    };
    measured.ingest_ms = started.elapsed().as_secs_f64() * 1000.0;
    if let Some(line) = measured.to_emf(pipeline.provider, Utc::now().timestamp_millis()) {
        pipeline.metrics_sink().emit(&line);
    }
    Ok(response)
}

/// A provider's acknowledgement: Choice and Lipia want `200 text/plain ok`, the others a small JSON body.
pub fn acknowledgement(ack: Ack) -> Response<Body> {
    let (content_type, body) = ack.parts();
    Response::builder()
        .status(StatusCode::OK)
        .header(CONTENT_TYPE, content_type)
        .body(Body::Text(body.to_owned()))
        .expect("static response parts are valid")
}

pub fn error_response(err: &IngestError) -> Response<Body> {
    let body = serde_json::json!({ "error": err.code(), "message": err.public_message() });
    Response::builder()
        .status(err.status())
        .header(CONTENT_TYPE, "application/json")
        .body(Body::Text(body.to_string()))
        .expect("static response parts are valid")
}
