//! The HTTP API of livexec (API.md §1–7), built on axum, plus live output:
//! `GET /executions/:id/events` (Server-Sent Events) and `POST /code-sessions/:id/run?wait=true`.
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
//! `routes` (one file per resource, short handlers), `middleware` (logging, panics),
//! [`compat`] (the Judge0 and Piston drop-in APIs).

pub mod auth;
pub mod compat;
pub mod error;
pub mod extract;
mod http;
pub mod maxima;
mod middleware;
mod observe;
mod owned;
pub mod ratelimit;
pub mod response_memory;
mod routes;
mod run_body;
mod run_files;
pub mod streams;
pub mod tiers;
pub mod validate;

pub use error::ApiError;
pub use http::ConnectionLimits;
pub use maxima::RunMaxima;
pub use observe::metrics::{metrics_response, sample_queue};
pub use ratelimit::RateStore;
pub use tiers::{Tier, Tiers};

use axum::extract::DefaultBodyLimit;
use axum::Router;
use livexec_core::{Caller, EventBus, Execution, JobQueue, KeyStore, LimitOverrides, Quota, Store};
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
    /// Live events of executions (SSE and `?wait=true`): the same bus the workers publish to.
    pub events: Arc<dyn EventBus>,
    /// Limits and timeouts of the API.
    pub config: ApiConfig,
    /// What `/health` reports about the sandbox.
    pub sandbox: SandboxHealth,
    /// API keys (the same database as `store`).
    pub keys: Arc<dyn KeyStore>,
}

impl AppState {
    /// The wall-clock limit of an execution in `language`: the run stage's override (else the
    /// service default), plus the compile stage's limit for a compiled language.
    pub fn time_limit(&self, language: &str) -> Duration {
        let rt = self.runtimes.get(language);
        let run = rt
            .and_then(|r| r.run.limits.timeout_ms)
            .map_or(self.config.time_limit, Duration::from_millis);
        let compile = rt
            .and_then(|r| r.compile_limits())
            .and_then(|l| l.timeout_ms)
            .map_or(Duration::ZERO, Duration::from_millis);
        run + compile
    }

    /// The tier of `caller`: `None` for an open service.
    pub fn tier_of(&self, caller: &Caller) -> Option<Arc<Tier>> {
        self.config.tiers.of_caller(caller)
    }

    /// What one run of `caller` may ask at most: the server's maxima, with those of the
    /// caller's tier below them.
    pub fn maxima_for(&self, caller: &Caller) -> RunMaxima {
        match self.tier_of(caller) {
            Some(tier) => tier.maxima(&self.config.maxima),
            None => self.config.maxima,
        }
    }

    /// The quotas on creating executions for `caller` (none for an open service).
    pub fn quota_for(&self, caller: &Caller) -> Quota {
        self.tier_of(caller).map_or_else(Quota::none, |t| t.quota())
    }

    /// Fill the limits a run of `caller` in `language` left unset with its tier's caps where
    /// the service's defaults for that runtime are higher (see [`Tier::clamp_defaults`]), so
    /// the worker runs it within the tier without knowing tiers.
    pub fn clamp_limits(&self, caller: &Caller, language: &str, limits: &mut LimitOverrides) {
        let Some(tier) = self.tier_of(caller) else {
            return;
        };
        let rt = self.runtimes.get(language);
        let d = &self.config.default_limits;
        let run = rt.map(|r| &r.run.limits);
        let compile = rt.and_then(|r| r.compile_limits());
        let defaults = LimitOverrides {
            time_ms: run
                .and_then(|l| l.timeout_ms)
                .or(Some(self.config.time_limit.as_millis() as u64)),
            cpu_time_ms: None,
            memory_mb: run.and_then(|l| l.memory_mb).or(d.memory_mb),
            pids: run.and_then(|l| l.pids).or(d.pids),
            output_bytes: Some(self.config.default_output_bytes),
            compile_time_ms: compile.as_ref().and_then(|c| c.timeout_ms),
            compile_memory_mb: compile.as_ref().and_then(|c| c.memory_mb),
        };
        let asked = *limits;
        tier.clamp_defaults(limits, &defaults);
        if compile.is_none() {
            // No compile stage: its limits stay as asked.
            limits.compile_time_ms = asked.compile_time_ms;
            limits.compile_memory_mb = asked.compile_memory_mb;
        }
    }

    /// How long `execution` may take at most: its own limits where it set them (each test
    /// case is one run), else [`AppState::time_limit`]'s.
    pub fn wait_limit(&self, execution: &Execution) -> Duration {
        let rt = self.runtimes.get(&execution.language);
        let limits = &execution.options.limits;
        let run = limits
            .time_ms
            .map(Duration::from_millis)
            .or_else(|| {
                rt.and_then(|r| r.run.limits.timeout_ms)
                    .map(Duration::from_millis)
            })
            .unwrap_or(self.config.time_limit);
        let compile = limits
            .compile_time_ms
            .or_else(|| {
                rt.and_then(|r| r.compile_limits())
                    .and_then(|l| l.timeout_ms)
            })
            .map_or(Duration::ZERO, Duration::from_millis);
        let runs = u32::try_from(execution.options.tests.len().max(1)).unwrap_or(u32::MAX);
        run.saturating_mul(runs) + compile
    }
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
    /// The service's default wall-clock limit of one execution (`LIVEXEC_TIMEOUT_MS`); with a
    /// runtime's own override it caps how long `?wait=true` waits. Default 30 s.
    pub time_limit: Duration,
    /// The service's default limits of a run stage, as `GET /runtimes` reports them under a
    /// runtime's own (128 MiB, 50 pids, 30 000 ms, 500 millicores by default).
    pub default_limits: livexec_runtimes::LimitOverrides,
    /// What one run may ask at most (`LIVEXEC_MAX_*`), shown by `GET /limits`.
    pub maxima: RunMaxima,
    /// Which drop-in APIs (Judge0, Piston) are served besides the native one.
    pub compat: compat::CompatConfig,
    /// Origins whose pages may call the API and open event streams (CORS), e.g.
    /// `https://ide.example.com`; `*` allows any. Empty (the default): no CORS headers, so
    /// only pages served by livexec itself can (`LIVEXEC_CORS_ORIGINS`).
    pub cors_origins: Vec<String>,
    /// When a request needs an API key (`LIVEXEC_AUTH`, default `auto`).
    pub auth: auth::AuthMode,
    /// The tiers keys belong to (`LIVEXEC_TIERS`, default the built-in ones).
    pub tiers: Tiers,
    /// Where the request rate buckets of keys live: in process (the default) or in Redis
    /// (shared by every API node).
    pub rate_store: RateStore,
    /// The service's default `output_bytes` of a run (what the worker uses when a run sets
    /// none), bytes; a tier's lower cap replaces it. Default 1 MiB.
    pub default_output_bytes: u64,
    /// Refused authentication attempts one client address may make before 429.
    pub auth_failures: auth::failures::FailureLimit,
    /// How long a client may take to send a request's head (request line and headers), and
    /// how long a keep-alive connection may idle between requests, before the connection is
    /// closed (`LIVEXEC_HEADER_READ_TIMEOUT_MS`, default 30 s). Bounds how long a slow or
    /// silent client holds a connection. Served by [`launch`] only.
    pub header_read_timeout: Duration,
    /// How long a client may take to send a request's body once its head has arrived
    /// (`LIVEXEC_BODY_READ_TIMEOUT_MS`, default 60 s): past it the request is answered as one
    /// whose body could not be read, and the connection closes.
    pub body_read_timeout: Duration,
    /// How many connections may be open at once, in all and per client address
    /// (`LIVEXEC_MAX_CONNECTIONS`, `LIVEXEC_MAX_CONNECTIONS_PER_ADDRESS`). Served by
    /// [`launch`] only.
    pub connections: ConnectionLimits,
    /// The open event streams of each key on this process (live counts, shared by clones),
    /// held against its tier's `event_streams`.
    pub stream_slots: streams::StreamSlots,
    /// How long a client may read nothing of an answer being sent before its connection is
    /// closed (`LIVEXEC_WRITE_STALL_TIMEOUT_MS`, default 30 s): a client that asks for a
    /// large answer and never reads it holds the answer's memory that long at most. Served
    /// by [`launch`] only.
    pub write_stall_timeout: Duration,
    /// The memory large answers (those carrying execution outputs) may hold at once, and
    /// its live count, shared by clones (`LIVEXEC_RESPONSE_MEMORY_MB`, default 512 MiB), and
    /// how fast a large answer must be read (`LIVEXEC_MIN_READ_RATE_KIB`, default 1 MiB/s);
    /// see [`response_memory`].
    pub response_memory: response_memory::ResponseMemory,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            max_body_bytes: 1024 * 1024,
            enqueue_timeout: Duration::from_secs(2),
            time_limit: Duration::from_secs(30),
            default_limits: livexec_runtimes::LimitOverrides {
                memory_mb: Some(128),
                pids: Some(50),
                timeout_ms: Some(30_000),
                cpu_millicores: Some(500),
                open_files: None,
                tmpfs_mb: None,
            },
            maxima: RunMaxima::default(),
            compat: compat::CompatConfig::default(),
            cors_origins: Vec::new(),
            auth: auth::AuthMode::Auto,
            tiers: Tiers::builtin(),
            rate_store: RateStore::default(),
            default_output_bytes: 1 << 20,
            auth_failures: auth::failures::FailureLimit::default(),
            header_read_timeout: http::DEFAULT_HEADER_READ_TIMEOUT,
            body_read_timeout: http::DEFAULT_BODY_READ_TIMEOUT,
            connections: ConnectionLimits::default(),
            stream_slots: streams::StreamSlots::default(),
            write_stall_timeout: http::DEFAULT_WRITE_STALL_TIMEOUT,
            response_memory: response_memory::ResponseMemory::default(),
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
    let body_read_timeout = state.config.body_read_timeout;
    let run_body_limit = state.config.maxima.request_bytes;
    let cors = observe::cors::layer(&state.config.cors_origins);
    let app = routes::router(run_body_limit)
        .merge(compat::router(&state))
        .merge(observe::router())
        // The merged routes' 405s (the native ones keep their own).
        .method_not_allowed_fallback(routes::method_not_allowed_anywhere)
        // Inside authentication: it needs the caller.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            ratelimit::limit_requests,
        ))
        .layer(axum::middleware::from_fn_with_state(
            auth::Gate::new(state.clone()),
            auth::authenticate,
        ))
        .with_state(state)
        .layer(axum::middleware::from_fn(observe::metrics::track))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn(move |request, next| {
            http::body_deadline(body_read_timeout, request, next)
        }))
        .layer(middleware::catch_panic_layer())
        .layer(axum::middleware::from_fn(middleware::log_request));
    match cors {
        // Outermost: it answers preflight requests itself, before routing.
        Some(cors) => app.layer(cors),
        None => app,
    }
}

/// Serve [`router`] on `listener` until `shutdown` resolves, then finish in-flight requests
/// and return. Long requests do not hold the shutdown up: open event streams end with an
/// `interrupted` event (clients resume elsewhere with `Last-Event-ID`) and `?wait=true`
/// answers 202 with the execution as it stands.
pub async fn launch(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "HTTP API listening");
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let signal = async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    };
    let config = http::ServeConfig {
        header_read_timeout: state.config.header_read_timeout,
        limits: state.config.connections,
        compat: state.config.compat,
        write_stall_timeout: state.config.write_stall_timeout,
    };
    let app = router(state).layer(axum::Extension(Stopping(stop_rx)));
    // The peer address (in each request) feeds the per-address bucket of refused
    // authentication attempts.
    http::serve(listener, app, config, signal).await
}

/// Serves `app`, a router other than the API's (a worker's health endpoint), on `listener`
/// the way [`launch`] serves the API: the head deadline (`header_read_timeout`), the
/// connection `limits` (refusals in the native error shape) and a graceful shutdown when
/// `shutdown` resolves.
pub async fn serve_router(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    header_read_timeout: Duration,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let config = http::ServeConfig {
        header_read_timeout,
        limits,
        compat: compat::CompatConfig {
            judge0: false,
            piston: false,
            mcp: false,
        },
        write_stall_timeout: http::DEFAULT_WRITE_STALL_TIMEOUT,
    };
    http::serve(listener, app, config, shutdown).await
}

/// Tells long-running handlers that [`launch`] is shutting down (absent when the router is
/// served some other way: then nothing is cut short).
#[derive(Clone)]
pub(crate) struct Stopping(tokio::sync::watch::Receiver<bool>);

impl Stopping {
    /// Resolves once shutdown has begun.
    pub(crate) async fn wait(mut self) {
        // An error means the sender is gone, which happens only after `launch` returned.
        let _ = self.0.wait_for(|stopping| *stopping).await;
    }
}

/// Extractor: a future that resolves when the server starts shutting down (never, when the
/// router is served without [`launch`]).
pub(crate) struct OnShutdown(pub(crate) livexec_events::StopSignal);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for OnShutdown {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(OnShutdown(match parts.extensions.get::<Stopping>() {
            Some(s) => Box::pin(s.clone().wait()),
            None => Box::pin(std::future::pending()),
        }))
    }
}
