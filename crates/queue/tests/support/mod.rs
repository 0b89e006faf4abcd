//! Test harness: one fresh queue per test on each backend, torn down afterwards.
//!
//! - SQLite: a store database in a temp dir (the store's migrations make the `jobs` table).
//! - PostgreSQL: a [`TestDatabase`] made on `DATABASE_URL`, dropped afterwards.
//! - Redis: a key prefix [`livexec_testkit::unique_name`] on `REDIS_URL`, its keys deleted
//!   afterwards.
//!
//! The PostgreSQL and Redis tests are `#[ignore]`d with the reason (`livexec_testkit`'s rule):
//! `--include-ignored` runs them, and they fail when the service is not there.

#![allow(dead_code)]

pub mod proxy;

use livexec_core::{ExecutionId, JobQueue, NewExecution, Owner, Store};
use livexec_queue::{PgQueue, RedisQueue, SqliteQueue};
use livexec_store::{PgStore, SqliteStore};
use livexec_testkit::TestDatabase;
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
    PgDatabase(Option<TestDatabase>),
    RedisPrefix { url: String, prefix: String },
}

impl Harness {
    /// A SQLite store database in a temp dir and the embedded queue on its pool.
    pub async fn sqlite() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("livexec.db").display());
        let store = SqliteStore::connect(&url).await.unwrap();
        let queue = SqliteQueue::new(store.pool().clone());
        Harness {
            queue: Arc::new(queue),
            store: Some(Arc::new(store)),
            cleanup: Cleanup::Dir(dir),
        }
    }

    /// A fresh PostgreSQL database and the table queue on its pool.
    pub async fn postgres() -> Harness {
        let admin_url = livexec_testkit::postgres_url();
        let db = TestDatabase::create(&admin_url).await;
        let store = PgStore::connect(db.url()).await.unwrap();
        let cleanup = Cleanup::PgDatabase(Some(db));
        let queue = PgQueue::new(store.pool().clone());
        Harness {
            queue: Arc::new(queue),
            store: Some(Arc::new(store)),
            cleanup,
        }
    }

    /// A Redis queue under a fresh key prefix.
    pub async fn redis() -> Harness {
        let url = livexec_testkit::redis_url();
        let prefix = livexec_testkit::unique_name();
        let queue = RedisQueue::connect(&url, &prefix).await.unwrap();
        Harness {
            queue: Arc::new(queue),
            store: None,
            cleanup: Cleanup::RedisPrefix { url, prefix },
        }
    }

    /// Make an execution with a runnable job: through the store (which inserts the job in the
    /// execution's transaction) when the queue says so, else by [`JobQueue::enqueue`].
    pub async fn new_job(&self) -> ExecutionId {
        self.new_job_for(None).await
    }

    /// [`Harness::new_job`] for an execution of `owner` (an API key id, `None` for none).
    pub async fn new_job_for(&self, owner: Owner) -> ExecutionId {
        let id = match &self.store {
            Some(store) => {
                let session = store
                    .create_session_with_files("python", "print(1)", &[], owner)
                    .await
                    .unwrap();
                let created = store
                    .create_execution(NewExecution {
                        owner,
                        session_id: session.id,
                        idempotency_key: None,
                        enqueue_job: self.queue.enqueued_by_store(),
                        options: Default::default(),
                    })
                    .await
                    .unwrap();
                created.execution.id
            }
            None => Uuid::now_v7(),
        };
        if !self.queue.enqueued_by_store() {
            self.queue.enqueue(id, owner).await.unwrap();
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

impl Drop for Cleanup {
    fn drop(&mut self) {
        match self {
            Cleanup::Dir(_) => {}
            Cleanup::PgDatabase(db) => {
                if let Some(db) = db.take() {
                    let name = db.name().to_owned();
                    if !livexec_testkit::on_own_runtime(db.cleanup()) {
                        eprintln!("warning: could not drop test database {name}");
                    }
                }
            }
            Cleanup::RedisPrefix { url, prefix } => {
                let (url, owned) = (url.clone(), prefix.clone());
                let deleted = livexec_testkit::on_own_runtime(async move {
                    livexec_testkit::delete_keys(&url, &owned).await;
                });
                if !deleted {
                    eprintln!("warning: could not delete test keys under {prefix}");
                }
            }
        }
    }
}
