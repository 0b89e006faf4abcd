//! The HTTP API of livexec (API.md §1–7), built on axum.
//!
//! [`router`] builds the whole service from an [`AppState`]: the routes, our own 404/405
//! answers, the body limit, a panic guard and one log line per request. [`launch`] serves it
//! on a listener until a shutdown future resolves, draining in-flight requests (the shape of
//! atuin's `launch(listener, shutdown)`), so tests can bind `127.0.0.1:0`.
//!
//! ```no_run
//! # async fn demo(state: livexec_api::AppState) -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! livexec_api::launch(listener, state, async {
//!     let _ = tokio::signal::ctrl_c().await;
//! })
//! .await
//! # }
//! ```
//!
//! Module map: [`error`] (the one error type and its status mapping), [`extract`] (extractors
//! that answer in our error shape), [`validate`] (every problem of a request at once),
//! `routes` (one file per resource, short handlers), `middleware` (logging, panics).

pub mod error;
pub mod extract;
mod middleware;
mod routes;
pub mod validate;

pub use error::ApiError;

use axum::extract::DefaultBodyLimit;
use axum::Router;
use livexec_core::{JobQueue, Store};
use livexec_runtimes::Registry;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Everything a handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// Sessions and executions.
    pub store: Arc<dyn Store>,
    /// Where accepted executions wait for a worker.
    pub queue: Arc<dyn JobQueue>,
    /// The languages this service runs (validates `language`, gives default templates).
    pub runtimes: Arc<Registry>,
    /// Limits and timeouts of the API.
    pub config: ApiConfig,
    /// What `/health` reports about the sandbox.
    pub sandbox: SandboxHealth,
}

/// Settings of the API layer.
#[derive(Clone, Debug)]
pub struct ApiConfig {
    /// Largest accepted request body in bytes; larger → 413 (`LIVEXEC_MAX_BODY_BYTES`,
    /// default 1 MiB).
    pub max_body_bytes: usize,
    /// How long `POST /code-sessions/:id/run` waits for a non-embedded queue to accept a job
    /// before answering anyway (the execution is durable; a reconciler enqueues it later).
    /// Default 2 s.
    pub enqueue_timeout: Duration,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            max_body_bytes: 1024 * 1024,
            enqueue_timeout: Duration::from_secs(2),
        }
    }
}

/// The sandbox's state as `/health` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SandboxHealth {
    /// Working, with a description (e.g. `"cgroup v1"`), reported under `details.sandbox`.
    Ok(String),
    /// Broken: `/health` answers 503 with this as the `sandbox` check.
    Failed(String),
    /// This process runs no sandbox (`--role api`): reported as `"not used"`, not a failure.
    NotUsed,
}

/// The whole HTTP service: routes, 404/405 in our error shape, the body limit, panic guard
/// and per-request logging.
pub fn router(state: AppState) -> Router {
    let body_limit = state.config.max_body_bytes;
    routes::router()
        .with_state(state)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::catch_panic_layer())
        .layer(axum::middleware::from_fn(middleware::log_request))
}

/// Serve [`router`] on `listener` until `shutdown` resolves, then finish in-flight requests
/// and return.
pub async fn launch(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "HTTP API listening");
    }
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}
