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

use crate::compat::Surface;
use crate::error::ApiError;
use crate::AppState;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

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

/// 405 on a drop-in API's route, in that API's shape: Judge0 `{"error"}`, Piston
/// `{"message"}` (the native routes have [`method_not_allowed`]).
pub(crate) async fn method_not_allowed_anywhere(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
) -> Response {
    let path = uri.path();
    let message = format!("{method} is not allowed on {path}");
    let body = match Surface::of(path, &state.config.compat) {
        Surface::Judge0 => json!({ "error": message }),
        Surface::Piston => json!({ "message": message }),
        Surface::Native | Surface::Mcp => {
            return ApiError::MethodNotAllowed {
                method,
                path: path.to_owned(),
            }
            .into_response()
        }
    };
    (StatusCode::METHOD_NOT_ALLOWED, Json(body)).into_response()
}
