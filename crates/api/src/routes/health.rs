//! `GET /health`: the database, the queue and the sandbox, each check bounded in time.

use crate::{AppState, SandboxHealth};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use livexec_core::model::rfc3339;
use serde_json::{json, Map, Value};
use std::future::Future;
use std::time::Duration;

/// Longest a single dependency check may take before it counts as failed.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

const OK: &str = "ok";

/// 200 `ok` when every check passes, else 503 `degraded` naming the failing check.
#[utoipa::path(get, path = "/health", tag = "system",
    responses(
        (status = 200, description = "Every check passed", body = super::openapi::Health),
        (status = 503, description = "A check failed", body = super::openapi::Health),
    ))]
pub async fn health(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let (database, queue) = tokio::join!(
        bounded("database", state.store.ping()),
        bounded("queue", state.queue.ping()),
    );
    let mut details = Map::new();
    let sandbox = match &state.sandbox {
        SandboxHealth::Ok(what) => {
            details.insert("sandbox".into(), json!(what));
            OK.to_owned()
        }
        SandboxHealth::Failed(why) => why.clone(),
        SandboxHealth::NotUsed => "not used".to_owned(),
    };
    let sandbox_ok = !matches!(state.sandbox, SandboxHealth::Failed(_));
    let healthy = database == OK && queue == OK && sandbox_ok;
    let body = json!({
        "status": if healthy { "ok" } else { "degraded" },
        "timestamp": rfc3339(chrono::Utc::now()),
        "checks": { "database": database, "queue": queue, "sandbox": sandbox },
        "details": details,
    });
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}

/// `"ok"`, or the error (or timeout) as a string; failures are logged as warnings.
async fn bounded<E: std::fmt::Display>(
    check: &'static str,
    ping: impl Future<Output = Result<(), E>>,
) -> String {
    let outcome = match tokio::time::timeout(CHECK_TIMEOUT, ping).await {
        Ok(Ok(())) => return OK.to_owned(),
        Ok(Err(err)) => err.to_string(),
        Err(_) => format!("no answer within {} s", CHECK_TIMEOUT.as_secs()),
    };
    tracing::warn!(check, error = %outcome, "health check failed");
    outcome
}
