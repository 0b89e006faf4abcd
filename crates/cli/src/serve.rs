//! `livexec serve`: the HTTP API and/or the workers (`--role`), every setting a flag with an
//! environment variable. Start-up waits for the database and Redis; SIGTERM/SIGINT stop
//! claiming, let running programs finish (bounded by their time limit), hand back anything not
//! started, and exit 0.

use crate::connect::{connect, Ports};
use crate::runtimes::{prepare_engine, Prepared};
use crate::settings::{redact_url, tokio_runtime, LimitArgs, MaxArgs, SandboxArgs};
use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use livexec_api::auth::cache::CachedKeys;
use livexec_api::auth::AuthMode;
use livexec_api::{ApiConfig, AppState, SandboxHealth};
use livexec_core::KeyStore;
use livexec_events::LimitedBus;
use livexec_worker::{reconcile_loop, WakeQueue, WakeStore, Wakeup, Worker, WorkerConfig};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Which parts of the service this process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Role {
    /// The HTTP API and the workers in one process.
    All,
    /// Only the HTTP API (no sandbox on this host).
    Api,
    /// Only workers, plus `GET /health` on LIVEXEC_HEALTH_BIND.
    Worker,
}

/// Settings of `livexec serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// What this process runs: the API and workers (`all`), only the API, or only workers.
    #[arg(long, env = "LIVEXEC_ROLE", value_enum, default_value_t = Role::All)]
    pub role: Role,
    /// Address the API listens on (host:port); when unset, 127.0.0.1:$PORT (this machine
    /// only). On any other address the service refuses to start open: create a key first
    /// (`livexec keys create`), or set LIVEXEC_AUTH=off explicitly.
    #[arg(long, env = "LIVEXEC_BIND")]
    pub bind: Option<String>,
    /// Port the API listens on when LIVEXEC_BIND is unset.
    #[arg(long, env = "PORT", default_value_t = 3000)]
    pub port: u16,
    /// The database: `sqlite://FILE` (embedded, the default) or `postgres://USER@HOST/DB`.
    /// Migrations run at start.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://livexec.db",
        hide_env_values = true
    )]
    pub database_url: String,
    /// Redis for the job queue (`redis://HOST:PORT`); when unset, jobs live in the database.
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// Prefix of every Redis key of this deployment.
    #[arg(long, env = "LIVEXEC_REDIS_PREFIX", default_value = "livexec")]
    pub redis_prefix: String,
    /// Concurrent executions of this process (default: the number of CPU cores).
    #[arg(long, env = "LIVEXEC_WORKERS")]
    pub workers: Option<usize>,
    /// Largest accepted request body, in bytes (larger → 413).
    #[arg(long, env = "LIVEXEC_MAX_BODY_BYTES", default_value_t = 1_048_576)]
    pub max_body_bytes: usize,
    /// How long a client may take to send a request's head, and a keep-alive connection may
    /// idle between requests, in ms; then the connection is closed (slow clients cannot hold
    /// connections open).
    #[arg(long, env = "LIVEXEC_HEADER_READ_TIMEOUT_MS", default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub header_read_timeout_ms: u64,
    /// How long a client may take to send a request's body once its head has arrived, in ms;
    /// then the request is refused and the connection closed.
    #[arg(long, env = "LIVEXEC_BODY_READ_TIMEOUT_MS", default_value_t = 60_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub body_read_timeout_ms: u64,
    /// How long a client may read nothing of an answer being sent, in ms; then the
    /// connection is closed (a client that never reads a large answer cannot hold its memory).
    #[arg(long, env = "LIVEXEC_WRITE_STALL_TIMEOUT_MS", default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub write_stall_timeout_ms: u64,
    /// Memory, in MiB, that large answers (those carrying execution outputs, 1 MiB and more)
    /// may hold at once while they are built and sent; past it such a request gets a 503 with
    /// `Retry-After`, and a caller (a key, or a client address) holding a quarter of it a 429.
    #[arg(long, env = "LIVEXEC_RESPONSE_MEMORY_MB", default_value_t = 512, value_parser = clap::value_parser!(u64).range(1..))]
    pub response_memory_mb: u64,
    /// How fast, in KiB per second on average, a client must read a large answer (1 MiB and
    /// more) once given `LIVEXEC_WRITE_STALL_TIMEOUT_MS`: a slower one loses the connection,
    /// which releases the answer's memory.
    #[arg(long, env = "LIVEXEC_MIN_READ_RATE_KIB", default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..))]
    pub min_read_rate_kib: u64,
    /// Connections open at once, in all; at the limit new ones wait in the listen backlog
    /// until one closes. Lowered at start to half the process's file-descriptor limit (whose
    /// soft value is first raised to the hard one), so connections cannot take the
    /// descriptors the store and the sandbox need.
    #[arg(long, env = "LIVEXEC_MAX_CONNECTIONS", default_value_t = 4096, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_connections: u64,
    /// Connections one client address (an IPv4 address, an IPv6 /64) may hold open at once;
    /// the next gets a 429 and is closed. 0: no limit (behind a reverse proxy, whose address
    /// every client has).
    #[arg(
        long,
        env = "LIVEXEC_MAX_CONNECTIONS_PER_ADDRESS",
        default_value_t = 256
    )]
    pub max_connections_per_address: usize,
    /// How long a worker's claim on a job lasts, in ms; renewed while the program runs. A
    /// worker that dies loses its jobs to others after this long.
    #[arg(long, env = "LIVEXEC_LEASE_MS", default_value_t = 30_000)]
    pub lease_ms: u64,
    /// How long `POST …/run` waits for Redis to accept a job before answering anyway (the
    /// reconciler enqueues it later), in ms.
    #[arg(long, env = "LIVEXEC_ENQUEUE_TIMEOUT_MS", default_value_t = 2_000)]
    pub enqueue_timeout_ms: u64,
    /// How often the reconciler looks for executions without a job (Redis queue only), in ms.
    #[arg(long, env = "LIVEXEC_RECONCILE_INTERVAL_MS", default_value_t = 5_000)]
    pub reconcile_interval_ms: u64,
    /// How often an idle worker asks the queue for work, in ms (in `--role all` a new run
    /// also wakes it at once).
    #[arg(long, env = "LIVEXEC_IDLE_POLL_MS", default_value_t = 50)]
    pub idle_poll_ms: u64,
    /// Sandboxes kept prepared ahead of need per runtime (namespaces, mounts, cgroup, the
    /// jail's init waiting), refilled in the background; each is used once. 0 builds every
    /// sandbox on the spot.
    #[arg(long, env = "LIVEXEC_WARM_POOL", default_value_t = 2)]
    pub warm_pool: usize,
    /// Live subscriptions (open event streams plus `?wait=true` requests) this API process
    /// holds at once; past it a stream is refused with 503 and a wait polls the store instead.
    /// On the Redis bus, watchers of one execution share one reader connection per process.
    #[arg(long, env = "LIVEXEC_MAX_SUBSCRIPTIONS", default_value_t = 1000)]
    pub max_subscriptions: usize,
    /// Run every runtime's smoke test (compile and run, in the sandbox) at start; a runtime
    /// whose test fails is unavailable and `/health` degraded. `false`: a runtime whose
    /// toolchain is found is available unchecked (faster start; `livexec runtimes` checks).
    #[arg(long, env = "LIVEXEC_SMOKE_TESTS", default_value_t = true, action = clap::ArgAction::Set)]
    pub smoke_tests: bool,
    /// Origins whose web pages may call the API and open event streams (CORS), comma-separated,
    /// e.g. `https://ide.example.com`; `*` allows any. Unset: same-origin only.
    #[arg(long, env = "LIVEXEC_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,
    /// When a request needs an API key: `auto` (open while no key exists, keys required once
    /// one does), `required`, or `off` (never checked).
    #[arg(long, env = "LIVEXEC_AUTH", default_value = "auto")]
    pub auth: livexec_api::auth::AuthMode,
    /// Days to keep executions' code, inputs and outputs after they finish (and sessions after
    /// their last change or run); a background task removes older ones in small batches. The
    /// rows and their metrics stay, and usage is unaffected. 0 (the default): keep forever.
    #[arg(long, env = "LIVEXEC_RETENTION_DAYS", default_value_t = 0)]
    pub retention_days: u32,
    /// A TOML file of tiers (rate limits, quotas and per-run maxima of keys), replacing or
    /// adding to the built-in `free`, `pro` and `unlimited` by name; checked at start.
    #[arg(long, env = "LIVEXEC_TIERS")]
    pub tiers: Option<std::path::PathBuf>,
    /// How long a validated API key is trusted without asking the database, in ms (0: no
    /// cache). A revocation through this node's API (or, with Redis, any node's, or `livexec
    /// keys revoke`) takes effect at once regardless; without Redis, `livexec keys revoke`
    /// reaches a running service within this long.
    #[arg(long, env = "LIVEXEC_KEY_CACHE_MS", default_value_t = 1000)]
    pub key_cache_ms: u64,
    /// Requests without a valid key one client address may send at once before 429.
    #[arg(long, env = "LIVEXEC_AUTH_FAILURE_BURST", default_value_t = 100)]
    pub auth_failure_burst: u32,
    /// Requests without a valid key per second an address earns back after the burst.
    #[arg(long, env = "LIVEXEC_AUTH_FAILURES_PER_SECOND", default_value_t = 10)]
    pub auth_failures_per_second: u32,
    /// Address of the worker role's `GET /health` (host:port). It serves health only (no
    /// code, no data), so it listens on every interface for orchestrators' probes.
    #[arg(long, env = "LIVEXEC_HEALTH_BIND", default_value = "0.0.0.0:3001")]
    pub health_bind: String,
    #[command(flatten)]
    pub limits: LimitArgs,
    #[command(flatten)]
    pub maxima: MaxArgs,
    #[command(flatten)]
    pub sandbox: SandboxArgs,
    #[command(flatten)]
    pub compat: crate::settings::CompatArgs,
}

impl ServeArgs {
    fn runs_api(&self) -> bool {
        self.role != Role::Worker
    }
    fn runs_workers(&self) -> bool {
        self.role != Role::Api
    }
    fn api_addr(&self) -> String {
        self.bind
            .clone()
            .unwrap_or_else(|| format!("127.0.0.1:{}", self.port))
    }
}

impl ServeArgs {
    /// An empty variable (`REDIS_URL=` in a compose file) means "unset", not "empty value".
    fn normalize(&mut self) {
        if self.database_url.trim().is_empty() {
            self.database_url = "sqlite://livexec.db".to_owned();
        }
        for opt in [&mut self.redis_url, &mut self.bind] {
            if opt.as_deref().is_some_and(|v| v.trim().is_empty()) {
                *opt = None;
            }
        }
    }
}

/// What the API side of the process speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Front {
    /// The HTTP API (`livexec serve`).
    Http,
    /// The MCP tools over stdin/stdout for one desktop agent (`livexec mcp`): no listener, the
    /// workers in the same process, and the process ends when the agent closes stdin.
    McpStdio,
}

/// Prepare the sandbox (before any thread starts), then serve until a signal.
pub fn main(args: ServeArgs) -> anyhow::Result<ExitCode> {
    main_with(args, Front::Http)
}

/// [`main`] with the API spoken through `front`.
pub fn main_with(mut args: ServeArgs, front: Front) -> anyhow::Result<ExitCode> {
    if front == Front::McpStdio {
        // One agent, one process: it runs the programs itself.
        args.role = Role::All;
    }
    args.normalize();
    // Before anything records: metrics recorded earlier would be lost.
    livexec_telemetry::install();
    // A bad URL is a configuration error: say so before anything starts.
    livexec_store::Backend::from_url(&args.database_url)?;
    args.sandbox.export_interpreters();
    let limits = args.limits.limits()?;
    let mut registry = args.sandbox.registry()?;
    args.limits.cap_compile_cpu(&mut registry)?;
    // Workers check every runtime here (the API then offers what works); an API-only process
    // offers every runtime its workers may have.
    let engine = if args.runs_workers() {
        Some(prepare_engine(
            &args.sandbox,
            &mut registry,
            &limits,
            args.smoke_tests,
        )?)
    } else {
        None
    };
    let registry = Arc::new(registry);
    let rt = tokio_runtime()?;
    rt.block_on(serve(args, front, registry, engine, limits))?;
    tracing::info!("livexec stopped");
    Ok(ExitCode::SUCCESS)
}

/// The connection limits of `args`, the total lowered to half the file-descriptor limit
/// after its soft value is raised to the hard one (as Go's runtime does at start: the default
/// soft limit, often 1024, is a relic of `select(2)`, which nothing here uses).
fn connection_limits(args: &ServeArgs) -> livexec_api::ConnectionLimits {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let wanted = usize::try_from(args.max_connections).unwrap_or(usize::MAX);
    let descriptors = match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => hard,
            Err(e) => {
                tracing::warn!(error = %e, soft, hard, "could not raise the file-descriptor limit");
                soft
            }
        },
        Ok((soft, _)) => soft,
        Err(e) => {
            tracing::warn!(error = %e, "could not read the file-descriptor limit");
            u64::MAX
        }
    };
    let half = usize::try_from(descriptors / 2)
        .unwrap_or(usize::MAX)
        .max(1);
    if wanted > half {
        tracing::warn!(
            max_connections = wanted,
            file_descriptors = descriptors,
            "LIVEXEC_MAX_CONNECTIONS lowered to {half}, half the file-descriptor limit \
             (raise it with `ulimit -n` or systemd's LimitNOFILE)"
        );
    }
    livexec_api::ConnectionLimits {
        total: wanted.min(half),
        per_address: args.max_connections_per_address,
    }
}

async fn serve(
    args: ServeArgs,
    front: Front,
    registry: Arc<livexec_runtimes::Registry>,
    engine: Option<Prepared>,
    limits: livexec_sandbox::Limits,
) -> anyhow::Result<()> {
    // A bad tiers file stops the start, before anything waits for a service.
    let tiers = match &args.tiers {
        Some(path) => livexec_api::Tiers::from_file(path).map_err(anyhow::Error::msg)?,
        None => livexec_api::Tiers::builtin(),
    };
    let (stop_tx, stop) = watch::channel(false);
    let stop_tx = Arc::new(stop_tx);
    tokio::spawn(watch_signals(stop_tx.clone()));
    let Some(Ports {
        store,
        keys,
        queue,
        events,
    }) = connect(
        &args.database_url,
        args.redis_url.as_deref(),
        &args.redis_prefix,
        &stop,
    )
    .await?
    else {
        return Ok(());
    };
    // In one process, the API rings the workers when it accepts a run: no poll delay.
    let wakeup: Wakeup = Arc::new(tokio::sync::Notify::new());
    let mut tasks: JoinSet<anyhow::Result<()>> = JoinSet::new();
    if args.role != Role::All && args.redis_url.is_none() {
        tracing::warn!(
            "without REDIS_URL live events stay inside this process: SSE clients of an API-only \
             process see no live output from other processes, only the final result"
        );
    }
    let sandbox_health = match &engine {
        Some(e) => e.health.clone(),
        None => SandboxHealth::NotUsed,
    };
    if args.runs_api() {
        // With Redis, every API node shares the keys' request buckets there.
        let rate_store = match &args.redis_url {
            Some(url) => livexec_api::RateStore::connect_redis(url, &args.redis_prefix)
                .await
                .context("connecting to Redis for the rate limits")?,
            None => livexec_api::RateStore::in_process(),
        };
        let keys = cached_keys(&args, keys.clone()).await?;
        // Over HTTP the listener is bound first: whether the service may start open depends
        // on the address it got. Over stdio there is no address and every call is local.
        let (listener, auth) = match front {
            Front::Http => {
                let addr = args.api_addr();
                let listener = tokio::net::TcpListener::bind(&addr)
                    .await
                    .with_context(|| format!("binding the API to {addr}"))?;
                let bound = listener
                    .local_addr()
                    .with_context(|| format!("reading the address of {addr}"))?;
                let auth = effective_auth(args.auth, bound, keys.as_ref()).await?;
                (Some(listener), auth)
            }
            Front::McpStdio => (None, args.auth),
        };
        let state = AppState {
            store: Arc::new(WakeStore::new(store.clone(), wakeup.clone())),
            queue: Arc::new(WakeQueue::new(queue.clone(), wakeup.clone())),
            runtimes: registry,
            events: Arc::new(LimitedBus::new(events.clone(), args.max_subscriptions)),
            keys,
            config: ApiConfig {
                max_body_bytes: args.max_body_bytes,
                header_read_timeout: Duration::from_millis(args.header_read_timeout_ms),
                body_read_timeout: Duration::from_millis(args.body_read_timeout_ms),
                connections: connection_limits(&args),
                write_stall_timeout: Duration::from_millis(args.write_stall_timeout_ms),
                response_memory: livexec_api::response_memory::ResponseMemory::paced(
                    args.response_memory_mb << 20,
                    args.min_read_rate_kib << 10,
                    Duration::from_millis(args.write_stall_timeout_ms),
                ),
                stream_slots: Default::default(),
                enqueue_timeout: Duration::from_millis(args.enqueue_timeout_ms),
                time_limit: Duration::from_millis(args.limits.timeout_ms),
                default_limits: livexec_runtimes::LimitOverrides {
                    memory_mb: Some(limits.memory_bytes >> 20),
                    pids: Some(limits.pids),
                    timeout_ms: Some(limits.wall_ms),
                    cpu_millicores: Some(limits.cpu_millicores),
                    open_files: None,
                    tmpfs_mb: None,
                },
                maxima: args.maxima.maxima()?,
                compat: args.compat.config(),
                cors_origins: args.cors_origins.clone(),
                tiers,
                rate_store,
                default_output_bytes: limits.output_bytes as u64,
                auth,
                auth_failures: livexec_api::auth::failures::FailureLimit {
                    per_second: args.auth_failures_per_second,
                    burst: args.auth_failure_burst,
                },
            },
            sandbox: sandbox_health,
        };
        match listener {
            Some(listener) => {
                let shutdown = stopped(stop.clone());
                tasks.spawn(async move {
                    livexec_api::launch(listener, state, shutdown)
                        .await
                        .context("serving the API")
                });
            }
            None => {
                let stop_tx = stop_tx.clone();
                tasks.spawn(async move {
                    let served = livexec_api::compat::serve_mcp_stdio(state).await;
                    // The agent is gone: stop the workers too (running programs finish).
                    let _ = stop_tx.send(true);
                    served.context("serving MCP over stdio")
                });
            }
        }
    }
    let workers = args.workers.unwrap_or_else(livexec_runtimes::machine_cores);
    if let Some(engine) = engine {
        let mode = engine.engine.sandbox().isolation().to_string();
        // Test cases may run side by side only in worker slots idle at the moment.
        engine.engine.set_slots(workers);
        let config = WorkerConfig {
            worker_id: worker_id(),
            lease: Duration::from_millis(args.lease_ms.max(300)),
            max_attempts: 3,
            idle_poll: Duration::from_millis(args.idle_poll_ms.max(1)),
            ..WorkerConfig::default()
        };
        let worker = Arc::new(
            Worker::new(store.clone(), queue.clone(), engine.engine, config)
                .with_wakeup(wakeup.clone())
                .with_events(events.clone()),
        );
        worker
            .keep_warm(args.warm_pool)
            .context("preparing warm sandboxes")?;
        let stop_w = stop.clone();
        tasks.spawn(async move {
            worker.run(workers, stop_w).await;
            Ok(())
        });
        if !queue.enqueued_by_store() {
            let lease = Duration::from_millis(args.lease_ms);
            let stale = Duration::from_millis(args.limits.timeout_ms) + lease * 2;
            let every = Duration::from_millis(args.reconcile_interval_ms.max(100));
            let older = Duration::from_millis(args.enqueue_timeout_ms) + Duration::from_secs(1);
            let (s, q, st) = (store.clone(), queue.clone(), stop.clone());
            tasks.spawn(async move {
                reconcile_loop(s, q, every, older, stale, st).await;
                Ok(())
            });
        }
        if args.role == Role::Worker {
            let listener = tokio::net::TcpListener::bind(&args.health_bind)
                .await
                .with_context(|| format!("binding the health endpoint to {}", args.health_bind))?;
            let app = crate::health::router(crate::health::WorkerHealth {
                store: store.clone(),
                queue: queue.clone(),
                sandbox: mode.clone(),
            });
            let shutdown = stopped(stop.clone());
            tracing::info!(addr = %args.health_bind, "worker health endpoint listening");
            // The API's connection handling: a head deadline and bounded connections.
            let header_read_timeout = Duration::from_millis(args.header_read_timeout_ms);
            let limits = connection_limits(&args);
            tasks.spawn(async move {
                livexec_api::serve_router(listener, app, header_read_timeout, limits, shutdown)
                    .await
                    .context("serving the health endpoint")
            });
        }
        tracing::info!(workers, sandbox = %mode, "workers started");
    }
    if args.retention_days > 0 {
        let config = livexec_worker::RetentionConfig::days(args.retention_days);
        let (s, st) = (store.clone(), stop.clone());
        tracing::info!(days = args.retention_days, "retention on");
        tasks.spawn(async move {
            livexec_worker::retention_loop(s, config, st).await;
            Ok(())
        });
    }
    tracing::info!(
        role = ?args.role,
        database = %redact_url(&args.database_url),
        queue = if args.redis_url.is_some() { "redis" } else { "database" },
        "livexec serving; SIGTERM or Ctrl-C stops it gracefully"
    );
    let mut first_error = None;
    while let Some(done) = tasks.join_next().await {
        let failed = match done {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e),
            Err(e) => Some(anyhow::anyhow!("a service task panicked: {e}")),
        };
        if let Some(e) = failed {
            tracing::error!(error = %format!("{e:#}"), "service task failed; shutting down");
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// The key store the API uses: `keys` behind the cache of validated keys, kept right across
/// nodes through Redis when the deployment has it.
async fn cached_keys(
    args: &ServeArgs,
    keys: Arc<dyn KeyStore>,
) -> anyhow::Result<Arc<dyn KeyStore>> {
    let ttl = Duration::from_millis(args.key_cache_ms);
    Ok(match &args.redis_url {
        None => Arc::new(CachedKeys::new(keys, ttl)),
        Some(url) => Arc::new(
            CachedKeys::with_redis(keys, ttl, url, &args.redis_prefix)
                .await
                .context("connecting to Redis for key revocations")?,
        ),
    })
}

/// The authentication mode to serve with on `addr`, or an error when that would leave the
/// API open on an address other machines can reach. On such an address `auto` becomes
/// `required` once started (revoking every key must not reopen it). Says loudly when the
/// service is open.
async fn effective_auth(
    mode: AuthMode,
    addr: std::net::SocketAddr,
    keys: &dyn KeyStore,
) -> anyhow::Result<AuthMode> {
    let local = addr.ip().is_loopback();
    match mode {
        AuthMode::Off => {
            tracing::warn!(
                %addr,
                "LIVEXEC_AUTH=off: the API is OPEN, no key is checked; anyone who reaches {addr} \
                 can run code and read every execution"
            );
            Ok(AuthMode::Off)
        }
        AuthMode::Required => Ok(AuthMode::Required),
        AuthMode::Auto => {
            let active = keys.active_keys().await.context("counting API keys")?;
            match (active, local) {
                (0, false) => bail!(
                    "refusing to serve the API open on {addr}: no API key exists, so anyone \
                     who reaches this address could run code. Create a key first (`livexec \
                     keys create --name admin --admin`), or bind to this machine only \
                     (LIVEXEC_BIND=127.0.0.1:{port}), or set LIVEXEC_AUTH=off to serve it \
                     open on purpose",
                    port = addr.port()
                ),
                (0, true) => {
                    tracing::warn!(
                        %addr,
                        "the API is OPEN: no API key exists, so anyone on this machine can run \
                         code; `livexec keys create --name NAME` makes keys required"
                    );
                    Ok(AuthMode::Auto)
                }
                (_, false) => Ok(AuthMode::Required),
                (_, true) => Ok(AuthMode::Auto),
            }
        }
    }
}

/// Resolves once `stop` becomes true (or its sender is gone).
async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// First SIGTERM/SIGINT: graceful stop. Second: exit at once.
async fn watch_signals(stop: Arc<watch::Sender<bool>>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; stop with SIGKILL");
        return;
    };
    let mut seen = 0;
    loop {
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        seen += 1;
        if seen == 1 {
            tracing::info!(
                signal = name,
                "stopping: no new work is claimed; running programs finish, then exit"
            );
            let _ = stop.send(true);
        } else {
            tracing::warn!(signal = name, "second signal: exiting now; unfinished jobs are recovered when their lease expires");
            std::process::exit(130);
        }
    }
}

/// `hostname-pid`, to tell workers apart in the queue.
fn worker_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "host".to_owned());
    format!("{host}-{}", std::process::id())
}
