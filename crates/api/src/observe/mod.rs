//! What the service shows about itself, apart from the API of API.md: Prometheus metrics
//! (`GET /metrics`, with the per-request instrumentation that feeds them).

pub(crate) mod metrics;

use crate::AppState;
use axum::routing::get;
use axum::Router;

/// The routes of this module, merged into the service's router.
pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/metrics", get(metrics::scrape))
}
