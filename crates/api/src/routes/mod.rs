//! The routes of API.md, one file per resource, plus our 404 and 405 answers.

mod admin;
mod executions;
mod health;
mod one_shot;
pub(crate) mod openapi;
mod runs;
pub(crate) use runs::enqueue;
mod runtimes;
mod sessions;
mod usage;

use crate::error::ApiError;
use crate::AppState;
use axum::extract::DefaultBodyLimit;
use axum::http::{Method, Uri};
use axum::routing::{get, post};
use axum::Router;

/// Every route of API.md §1–7, plus the live event stream of an execution, the list of
/// runtimes, the maxima, and one-shot runs. Run requests (which carry files and test cases)
/// may be up to `run_body_limit` bytes; every other body has the router's limit.
pub fn router(run_body_limit: usize) -> Router<AppState> {
    let run_limit = DefaultBodyLimit::max(run_body_limit);
    Router::new()
        .route("/code-sessions", post(sessions::create))
        .route(
            "/code-sessions/{id}",
            get(sessions::show)
                .patch(sessions::update)
                .delete(sessions::delete),
        )
        .route("/code-sessions/{id}/run", post(runs::run).layer(run_limit))
        .route(
            "/executions",
            get(one_shot::many).post(one_shot::create).layer(run_limit),
        )
        .route("/executions/batch", post(one_shot::batch).layer(run_limit))
        .route(
            "/executions/{id}",
            get(executions::show).delete(executions::delete),
        )
        .route("/usage", get(usage::usage))
        .route("/executions/{id}/events", get(executions::events))
        .route("/executions/sessions/{id}", get(executions::history))
        .route("/health", get(health::health))
        .route("/runtimes", get(runtimes::list))
        .route("/limits", get(crate::maxima::limits))
        .route("/admin/keys", get(admin::list).post(admin::create))
        .route("/admin/keys/{id}", get(admin::show).delete(admin::revoke))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
}

async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::RouteNotFound {
        method,
        path: uri.path().to_owned(),
    }
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::MethodNotAllowed {
        method,
        path: uri.path().to_owned(),
    }
}
