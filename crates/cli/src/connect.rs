//! Start-up connections: the store, the queue and the event bus the settings name, waiting
//! for the database and Redis (with a clear log line and growing pauses) instead of crashing
//! when they are not up yet.

use crate::settings::redact_url;
use livexec_core::{EventBus, JobQueue, KeyStore, Store};
use livexec_events::{MemoryBus, MemoryBusConfig, RedisBus};
use livexec_queue::{PgQueue, RedisQueue, SqliteQueue};
use livexec_store::{Backend, PgStore, SqliteStore};
use std::fmt::Display;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The store, the queue and the event bus of a running service.
pub struct Ports {
    /// Sessions and executions.
    pub store: Arc<dyn Store>,
    /// API keys, in the same database.
    pub keys: Arc<dyn KeyStore>,
    /// Jobs.
    pub queue: Arc<dyn JobQueue>,
    /// Live events: shared by the API (SSE, `?wait=true`) and the workers (publishing).
    pub events: Arc<dyn EventBus>,
}

/// Connect the store for `database_url` (running its migrations), the queue and the event
/// bus: Redis for both when `redis_url` is set, else the jobs table of the store's own
/// database and an in-process bus. Waits for each until it answers or `shutdown` is set
/// (then `None`).
pub async fn connect(
    database_url: &str,
    redis_url: Option<&str>,
    redis_prefix: &str,
    shutdown: &watch::Receiver<bool>,
) -> anyhow::Result<Option<Ports>> {
    let backend = Backend::from_url(database_url)?;
    let shown = redact_url(database_url);
    let (store, keys, table_queue): (Arc<dyn Store>, Arc<dyn KeyStore>, Arc<dyn JobQueue>) =
        match backend {
            Backend::Sqlite => {
                let Some(s) = wait_for("database", &shown, shutdown, || {
                    SqliteStore::connect(database_url)
                })
                .await
                else {
                    return Ok(None);
                };
                let q = SqliteQueue::new(s.pool().clone());
                (Arc::new(s.clone()), Arc::new(s), Arc::new(q))
            }
            Backend::Postgres => {
                let Some(s) = wait_for("database", &shown, shutdown, || {
                    PgStore::connect(database_url)
                })
                .await
                else {
                    return Ok(None);
                };
                let q = PgQueue::new(s.pool().clone());
                (Arc::new(s.clone()), Arc::new(s), Arc::new(q))
            }
        };
    tracing::info!(database = %shown, "database ready (migrations applied)");
    let (queue, events): (Arc<dyn JobQueue>, Arc<dyn EventBus>) = match redis_url {
        None => (
            table_queue,
            Arc::new(MemoryBus::new(MemoryBusConfig::default())),
        ),
        Some(url) => {
            let shown = redact_url(url);
            let Some(q) = wait_for("redis", &shown, shutdown, || {
                RedisQueue::connect(url, redis_prefix)
            })
            .await
            else {
                return Ok(None);
            };
            let Some(bus) = wait_for("redis", &shown, shutdown, || {
                RedisBus::connect(url, redis_prefix)
            })
            .await
            else {
                return Ok(None);
            };
            tracing::info!(redis = %shown, prefix = redis_prefix, "redis queue and event bus ready");
            (Arc::new(q), Arc::new(bus))
        }
    };
    Ok(Some(Ports {
        store,
        keys,
        queue,
        events,
    }))
}

/// Call `attempt` until it succeeds, logging each failure and pausing 0.5 s, 1 s, 2 s, … 5 s.
/// `None` when `shutdown` is set while waiting.
async fn wait_for<T, E, F, Fut>(
    what: &str,
    target: &str,
    shutdown: &watch::Receiver<bool>,
    mut attempt: F,
) -> Option<T>
where
    E: Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut pause = Duration::from_millis(500);
    let mut shutdown = shutdown.clone();
    tracing::info!("connecting to {what} at {target}");
    loop {
        let outcome = tokio::select! {
            r = attempt() => r,
            _ = shutdown.wait_for(|s| *s) => return None,
        };
        match outcome {
            Ok(v) => return Some(v),
            Err(e) => {
                tracing::warn!(
                    "waiting for {what} at {target}: {e}; retrying in {} ms",
                    pause.as_millis()
                );
            }
        }
        if *shutdown.borrow() {
            return None;
        }
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = shutdown.changed() => return None,
        }
        pause = (pause * 2).min(Duration::from_secs(5));
    }
}
