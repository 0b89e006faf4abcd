//! What the service shows about itself, apart from the API of API.md: Prometheus metrics
//! (`GET /metrics`, with the per-request instrumentation that feeds them), the OpenAPI
//! document (`GET /openapi.json`) and its rendered page (`GET /docs`), the playground (`/`), the statistics
//! (`GET /statistics`) and their dashboard (`/stats`).

pub(crate) mod cors;
pub(crate) mod docs;
pub(crate) mod metrics;
pub(crate) mod playground;
pub(crate) mod statistics;

use crate::AppState;
use axum::routing::get;
use axum::Router;

/// The routes of this module, merged into the service's router.
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/metrics", get(metrics::scrape))
        .route("/openapi.json", get(docs::openapi_json))
        .route("/docs", get(docs::docs_page))
        .route("/docs/swagger-ui-bundle.js", get(docs::swagger_js))
        .route("/docs/swagger-ui.css", get(docs::swagger_css))
        .route("/", get(playground::index))
        .route("/assets/{file}", get(playground::file))
        .route("/stats", get(playground::stats))
        .route("/statistics", get(statistics::statistics))
}
