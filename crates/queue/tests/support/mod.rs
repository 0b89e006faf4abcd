//! Test harness: one fresh queue per test on each backend, torn down afterwards.
//!
//! - SQLite: a store database in a temp dir (the store's migrations make the `jobs` table).
//! - PostgreSQL: a database `livexec_t_<uuid>` made on `DATABASE_URL`, dropped afterwards.
//! - Redis: a key prefix `livexec_t_<uuid>` on `REDIS_URL`, its keys deleted afterwards.
//!
//! Without `DATABASE_URL` / `REDIS_URL` a test prints a loud SKIPPED line and returns, unless
//! `LIVEXEC_REQUIRE_SERVICES=1`, which turns the skip into a failure.

#![allow(dead_code)]

pub mod proxy;

use livexec_core::{ExecutionId, JobQueue, NewExecution, Store};
use livexec_queue::{PgQueue, RedisQueue, SqliteQueue};
use livexec_store::{PgStore, SqliteStore};
use std::sync::Arc;
use uuid::Uuid;

/// A queue under test, with what it needs to make jobs and to clean up.
pub struct Harness {
    /// The queue under test.
    pub queue: Arc<dyn JobQueue>,
    /// The store whose executions the jobs point at (SQL backends: a foreign key).
    store: Option<Arc<dyn Store>>,
    /// Dropped last: removes the database / keys / directory.
    cleanup: Cleanup,
}

enum Cleanup {
    Dir(#[allow(dead_code)] tempfile::TempDir),
    PgDatabase { admin_url: String, name: String },
    RedisPrefix { url: String, prefix: String },
}

/// The URL of a service, or `None` (after a loud SKIPPED line) when the variable is unset.
pub fn service_url(var: &str, example: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            let reason = format!("SKIPPED (set {var}={example} to run)");
            if std::env::var("LIVEXEC_REQUIRE_SERVICES").as_deref() == Ok("1") {
                panic!("{reason}; LIVEXEC_REQUIRE_SERVICES=1 requires it");
            }
            eprintln!("\n!!!!! {reason} !!!!!\n");
            None
        }
    }
}

/// A unique name for a test database or key prefix.
pub fn unique_name() -> String {
    format!("livexec_t_{}", Uuid::new_v4().simple())
}

/// `url` with its database (path) replaced by `name`, query string kept.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_start = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

impl Harness {
    /// A SQLite store database in a temp dir and the embedded queue on its pool.
    pub async fn sqlite() -> Option<Harness> {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("livexec.db").display());
        let store = SqliteStore::connect(&url).await.unwrap();
        let queue = SqliteQueue::new(store.pool().clone());
        Some(Harness {
            queue: Arc::new(queue),
            store: Some(Arc::new(store)),
            cleanup: Cleanup::Dir(dir),
        })
    }

    /// A fresh PostgreSQL database and the table queue on its pool.
    pub async fn postgres() -> Option<Harness> {
        let admin_url = service_url(
            "DATABASE_URL",
            "postgres://postgres@127.0.0.1:5432/postgres",
        )?;
        let name = unique_name();
        let mut admin = connect_admin(&admin_url).await;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .unwrap();
        let cleanup = Cleanup::PgDatabase {
            admin_url: admin_url.clone(),
            name: name.clone(),
        };
        let store = PgStore::connect(&with_database(&admin_url, &name))
            .await
            .unwrap();
        let queue = PgQueue::new(store.pool().clone());
        Some(Harness {
            queue: Arc::new(queue),
            store: Some(Arc::new(store)),
            cleanup,
        })
    }

    /// A Redis queue under a fresh key prefix.
    pub async fn redis() -> Option<Harness> {
        let url = service_url("REDIS_URL", "redis://127.0.0.1:6379")?;
        let prefix = unique_name();
        let queue = RedisQueue::connect(&url, &prefix).await.unwrap();
        Some(Harness {
            queue: Arc::new(queue),
            store: None,
            cleanup: Cleanup::RedisPrefix { url, prefix },
        })
    }

    /// Make an execution with a runnable job: through the store (which inserts the job in the
    /// execution's transaction) when the queue says so, else by [`JobQueue::enqueue`].
    pub async fn new_job(&self) -> ExecutionId {
        let id = match &self.store {
            Some(store) => {
                let session = store.create_session("python", "print(1)").await.unwrap();
                let created = store
                    .create_execution(NewExecution {
                        session_id: session.id,
                        idempotency_key: None,
                        enqueue_job: self.queue.enqueued_by_store(),
                    })
                    .await
                    .unwrap();
                created.execution.id
            }
            None => Uuid::now_v7(),
        };
        if !self.queue.enqueued_by_store() {
            self.queue.enqueue(id).await.unwrap();
        }
        id
    }

    /// The Redis URL and key prefix of a Redis harness.
    pub fn redis_prefix(&self) -> Option<(&str, &str)> {
        match &self.cleanup {
            Cleanup::RedisPrefix { url, prefix } => Some((url, prefix)),
            _ => None,
        }
    }
}

async fn connect_admin(url: &str) -> sqlx::PgConnection {
    use sqlx::Connection;
    sqlx::PgConnection::connect(url).await.unwrap()
}

/// Deletes every key under a Redis prefix when dropped (for queues made outside a [`Harness`]).
pub struct PrefixGuard {
    cleanup: Cleanup,
}

impl PrefixGuard {
    /// Guard the keys under `prefix` on `url`.
    pub fn new(url: &str, prefix: &str) -> PrefixGuard {
        PrefixGuard {
            cleanup: Cleanup::RedisPrefix {
                url: url.to_owned(),
                prefix: prefix.to_owned(),
            },
        }
    }
}

/// Delete every key under `prefix` (what a `FLUSHALL` does to this test's keys).
pub fn delete_prefix(url: &str, prefix: &str) {
    let client = redis::Client::open(url).unwrap();
    let mut conn = client
        .get_connection_with_timeout(std::time::Duration::from_secs(2))
        .unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query(&mut conn)
        .unwrap();
    if !keys.is_empty() {
        let _: () = redis::cmd("DEL").arg(keys).query(&mut conn).unwrap();
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        // Drop may run inside the test's runtime: do the async work on a thread of its own.
        match self {
            Cleanup::Dir(_) => {}
            Cleanup::PgDatabase { admin_url, name } => {
                let (url, name) = (admin_url.clone(), name.clone());
                let dropped = std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap();
                    rt.block_on(async {
                        let mut admin = connect_admin(&url).await;
                        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                            .execute(&mut admin)
                            .await
                    })
                })
                .join();
                if !matches!(dropped, Ok(Ok(_))) {
                    eprintln!("warning: could not drop test database {}", self.name());
                }
            }
            Cleanup::RedisPrefix { url, prefix } => {
                let (url, prefix) = (url.clone(), prefix.clone());
                if std::thread::spawn(move || delete_prefix(&url, &prefix))
                    .join()
                    .is_err()
                {
                    eprintln!("warning: could not delete test keys under {}", self.name());
                }
            }
        }
    }
}

impl Cleanup {
    fn name(&self) -> &str {
        match self {
            Cleanup::Dir(_) => "",
            Cleanup::PgDatabase { name, .. } => name,
            Cleanup::RedisPrefix { prefix, .. } => prefix,
        }
    }
}
