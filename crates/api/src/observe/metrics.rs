//! `GET /metrics` (Prometheus text format) and the middleware that counts every request by
//! its route template and status, and every open event stream.

use crate::auth::Authed;
use crate::error::ApiError;
use crate::AppState;
use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use livexec_telemetry as telemetry;
use std::time::{Duration, Instant};

/// Longest the queue sample may take before the scrape answers without it.
const SAMPLE_TIMEOUT: Duration = Duration::from_secs(2);

/// Samples the queue from the store, then answers with every metric of this process. The
/// figures are the whole service's (every key's runs), so once keys are in use they are for
/// admin keys only, as `/statistics` is: another key gets 403.
#[utoipa::path(get, path = "/metrics", tag = "system",
    responses((status = 200, description = "Prometheus text exposition format 0.0.4",
        content_type = "text/plain; version=0.0.4", body = String),
        (status = 403, description = "A key that is not an admin key", body = crate::error::ErrorBody)))]
pub(crate) async fn scrape(
    State(state): State<AppState>,
    Authed(caller): Authed,
) -> Result<Response, ApiError> {
    if !caller.is_admin() {
        return Err(ApiError::Forbidden(
            "GET /metrics shows the whole service's figures and needs an admin key".to_owned(),
        ));
    }
    sample_queue(state.store.as_ref()).await;
    Ok(metrics_response())
}

/// Sets the queue gauges from `store`; a failure is logged and leaves them as they were.
pub async fn sample_queue(store: &dyn livexec_core::Store) {
    match tokio::time::timeout(SAMPLE_TIMEOUT, store.queue_sample()).await {
        Ok(Ok(sample)) => {
            let oldest = sample
                .oldest_queued_at
                .and_then(|t| (chrono::Utc::now() - t).to_std().ok())
                .unwrap_or_default();
            telemetry::queue_sample(sample.queued, oldest);
        }
        Ok(Err(err)) => tracing::warn!(error = %err, "queue sample for metrics failed"),
        Err(_) => tracing::warn!("queue sample for metrics timed out"),
    }
}

/// The rendered metrics with the exposition format's content type.
pub fn metrics_response() -> Response {
    let mut response = telemetry::render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(telemetry::CONTENT_TYPE),
    );
    response
}

/// Counts the request under its route template (`unmatched` when no route matched), and
/// keeps an event stream counted as open for as long as its body is being sent.
pub(crate) async fn track(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().clone();
    let start = Instant::now();
    let response = next.run(req).await;
    telemetry::http_request(
        method.as_str(),
        &route,
        response.status().as_u16(),
        start.elapsed(),
    );
    let is_stream = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    if !is_stream {
        return response;
    }
    let guard = telemetry::StreamGuard::open();
    let (parts, body) = response.into_parts();
    let body = body.into_data_stream().map(move |chunk| {
        // The guard lives in this closure, so it drops with the stream.
        let _open = &guard;
        chunk
    });
    Response::from_parts(parts, Body::from_stream(body))
}
