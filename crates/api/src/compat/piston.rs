//! Piston v2's API: `GET /api/v2/runtimes` and `POST /api/v2/execute`, translated to a
//! native session and run that the request waits for. Lenient where the clients need it: a
//! JSON body is read whatever its `Content-Type` (the npm client sends `text/plain`), a
//! trailing slash is accepted (the Python client adds one), `version` may be absent.
//! Errors are Piston's `{"message"}` with a JSON content type.

use super::native;
use super::piston_wire::{self as wire, Request};
use crate::auth::Authed;
use crate::response_memory::Holder;
use crate::{AppState, OnShutdown};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use livexec_runtimes::{Availability, Runtime};
use serde_json::{json, Value};

/// Piston's routes, each also with a trailing slash.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v2/runtimes", get(runtimes))
        .route("/api/v2/runtimes/", get(runtimes))
        .route("/api/v2/execute", post(execute))
        .route("/api/v2/execute/", post(execute))
}

/// Piston's error answer.
pub fn message(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "message": message.into() }))).into_response()
}

/// Piston's name of our runtime (it calls C++ `c++` and SQLite `sqlite3`).
fn piston_name(rt: &Runtime) -> &str {
    match rt.id.as_str() {
        "cpp" => "c++",
        "sql" => "sqlite3",
        id => id,
    }
}

/// The toolchain's version, or `0.0.0` when it was not probed.
fn version(state: &AppState, rt: &Runtime) -> String {
    match state.runtimes.availability(&rt.id) {
        Availability::Available { version } => version.clone(),
        _ => "0.0.0".to_owned(),
    }
}

/// `GET /api/v2/runtimes`: `[{language, version, aliases, runtime?}]` of the usable runtimes.
async fn runtimes(State(state): State<AppState>) -> Json<Value> {
    let list = state
        .runtimes
        .iter()
        .filter(|rt| state.runtimes.availability(&rt.id).usable())
        .map(|rt| {
            let name = piston_name(rt);
            let aliases: Vec<&str> = std::iter::once(rt.id.as_str())
                .chain(rt.aliases.iter().map(String::as_str))
                .filter(|a| *a != name)
                .collect();
            let mut v =
                json!({ "language": name, "version": version(&state, rt), "aliases": aliases });
            if let Some(runtime) = match rt.id.as_str() {
                "javascript" | "typescript" => Some("node"),
                "c" | "cpp" => Some("gcc"),
                _ => None,
            } {
                v["runtime"] = json!(runtime);
            }
            v
        })
        .collect();
    Json(list)
}

/// `POST /api/v2/execute`: run, wait, answer `{language, version, run, compile?}`.
async fn execute(
    State(state): State<AppState>,
    OnShutdown(stop): OnShutdown,
    Authed(caller): Authed,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let bytes = match body {
        Ok(b) => b,
        Err(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return message(StatusCode::PAYLOAD_TOO_LARGE, "request body is too large")
        }
        Err(_) => {
            return message(
                StatusCode::BAD_REQUEST,
                "the request body could not be read",
            )
        }
    };
    let body = match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(m)) => m,
        _ => {
            return message(
                StatusCode::BAD_REQUEST,
                "the request body must be a JSON object",
            )
        }
    };
    let req = match wire::parse(&body) {
        Ok(r) => r,
        Err(m) => return message(StatusCode::BAD_REQUEST, m),
    };
    let Some(rt) = state
        .runtimes
        .lookup_usable(&req.language)
        .filter(|rt| wire::version_matches(req.version.as_deref(), &version(&state, rt)))
    else {
        let v = req.version.as_deref().unwrap_or("*");
        return message(
            StatusCode::BAD_REQUEST,
            format!("{}-{v} runtime is unknown", req.language),
        );
    };
    let mut options = match wire::options(&req, &state.maxima_for(&caller), rt.compiled()) {
        Ok(o) => o,
        Err(m) => return message(StatusCode::BAD_REQUEST, m),
    };
    state.clamp_limits(&caller, &rt.id, &mut options.limits);
    let Request { main, .. } = req;
    let run = async {
        let e = native::submit(&state, &rt.id, &main, options, &caller, 1).await?;
        native::wait(&state, e, stop).await
    };
    match run.await {
        Ok(e) => {
            let mut answer = json!({
                "language": piston_name(rt),
                "version": version(&state, rt),
                "run": wire::run_report(&e),
            });
            // Piston has `compile` only for compiled languages.
            let compile = wire::compile_report(&e);
            if !compile.is_null() {
                answer["compile"] = compile;
            }
            drop(e);
            let memory = &state.config.response_memory;
            match memory.answer(Holder::of(&caller), StatusCode::OK, &answer) {
                Ok(response) => response,
                Err(refused) => refused.response_in(super::Surface::Piston),
            }
        }
        Err(native::NativeError::Store(livexec_core::StoreError::QuotaExceeded(q))) => {
            crate::ratelimit::Limited::from(q).response_in(super::Surface::Piston)
        }
        Err(native::NativeError::Invalid {
            messages,
            too_large,
        }) => {
            let status = if too_large {
                StatusCode::PAYLOAD_TOO_LARGE
            } else {
                StatusCode::BAD_REQUEST
            };
            message(status, messages.join("; "))
        }
        Err(err) => {
            tracing::error!(error = %err, "piston execute failed");
            message(StatusCode::INTERNAL_SERVER_ERROR, err.to_string())
        }
    }
}
