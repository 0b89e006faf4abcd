//! Cross-cutting layers: one log line per request, and a guard that turns a panicking handler
//! into a 500 in our error shape instead of a dropped connection.

use crate::error::ApiError;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::any::Any;
use std::time::Instant;
use tower_http::catch_panic::CatchPanicLayer;

/// Longest path written to the log; longer ones are cut (they are client-controlled).
const MAX_LOGGED_PATH: usize = 200;

/// Logs `method path status ms` once per request, at info level, the path with its query
/// string (ids and options such as `?wait=true`; never code), and the id of the API key the
/// request acted as (`key`, when it had one). Never the body, never a header (so never a
/// token).
pub async fn log_request(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let uri = req.uri();
    let mut path = uri
        .path_and_query()
        .map_or_else(|| uri.path().to_owned(), |pq| pq.as_str().to_owned());
    if path.len() > MAX_LOGGED_PATH {
        // The path is ASCII (percent-encoded), so any index is a char boundary; be safe anyway.
        let cut = (0..=MAX_LOGGED_PATH)
            .rev()
            .find(|i| path.is_char_boundary(*i))
            .unwrap_or(0);
        path.truncate(cut);
        path.push('…');
    }
    let start = Instant::now();
    let response = next.run(req).await;
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    let key = response
        .extensions()
        .get::<crate::auth::LoggedKey>()
        .map(|k| k.0);
    match key {
        Some(key) => tracing::info!(
            %method,
            %path,
            status = response.status().as_u16(),
            ms = format_args!("{ms:.1}"),
            %key,
            "request"
        ),
        None => tracing::info!(
            %method,
            %path,
            status = response.status().as_u16(),
            ms = format_args!("{ms:.1}"),
            "request"
        ),
    }
    response
}

/// A layer that answers 500 `"Internal server error"` when a handler panics.
pub fn catch_panic_layer() -> CatchPanicLayer<fn(Box<dyn Any + Send + 'static>) -> Response> {
    CatchPanicLayer::custom(panic_response as fn(Box<dyn Any + Send + 'static>) -> Response)
}

fn panic_response(payload: Box<dyn Any + Send + 'static>) -> Response {
    let detail = payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "non-string panic payload".to_owned());
    ApiError::Panic { detail }.into_response()
}
