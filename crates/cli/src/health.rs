//! `GET /health` of the worker role, served on its own port (LIVEXEC_HEALTH_BIND): the
//! database, the queue and the sandbox, in the shape of API.md §7, and `GET /metrics` (this
//! worker's Prometheus metrics). Nothing else is served.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use livexec_core::model::rfc3339;
use livexec_core::{JobQueue, Store};
use serde_json::{json, Value};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Longest a single dependency check may take before it counts as failed.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// What the worker's health endpoint checks.
#[derive(Clone)]
pub struct WorkerHealth {
    /// The store.
    pub store: Arc<dyn Store>,
    /// The queue.
    pub queue: Arc<dyn JobQueue>,
    /// The sandbox's cgroup mode, e.g. `"cgroup v1"`.
    pub sandbox: String,
}

/// A router with only `GET /health` and `GET /metrics`.
pub fn router(state: WorkerHealth) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn health(State(s): State<WorkerHealth>) -> (StatusCode, Json<Value>) {
    let (database, queue) = tokio::join!(check(s.store.ping()), check(s.queue.ping()));
    let healthy = database == "ok" && queue == "ok";
    let body = json!({
        "status": if healthy { "ok" } else { "degraded" },
        "timestamp": rfc3339(chrono::Utc::now()),
        "checks": { "database": database, "queue": queue, "sandbox": "ok" },
        "details": { "sandbox": s.sandbox, "role": "worker" },
    });
    let code = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body))
}

async fn metrics(State(s): State<WorkerHealth>) -> axum::response::Response {
    livexec_api::sample_queue(s.store.as_ref()).await;
    livexec_api::metrics_response()
}

async fn check<E: std::fmt::Display>(ping: impl Future<Output = Result<(), E>>) -> String {
    match tokio::time::timeout(CHECK_TIMEOUT, ping).await {
        Ok(Ok(())) => "ok".to_owned(),
        Ok(Err(e)) => e.to_string(),
        Err(_) => format!("no answer within {} s", CHECK_TIMEOUT.as_secs()),
    }
}
