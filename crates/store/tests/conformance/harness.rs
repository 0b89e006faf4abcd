//! Runs one conformance case against a fresh database of each backend.
//!
//! SQLite: a file in a new temp dir. PostgreSQL: a [`TestDatabase`] made through
//! `DATABASE_URL` (default: the local PostgreSQL) and dropped afterwards, even when the case
//! panics. The PostgreSQL half is `#[ignore]`d with the reason (`livexec_testkit`'s rule):
//! `--include-ignored` runs it, and it fails when PostgreSQL is not there.

use livexec_core::Store;
use livexec_store::{PgStore, SqliteStore};
use livexec_testkit::TestDatabase;
use std::future::Future;
use std::sync::Arc;
use uuid::Uuid;

/// A store under test, with raw access to its tables for what the trait does not show.
#[derive(Clone)]
pub struct Backend {
    /// The store, as the service sees it.
    pub store: Arc<dyn Store>,
    raw: Raw,
}

#[derive(Clone)]
enum Raw {
    Sqlite(SqliteStore),
    Pg(PgStore),
}

/// A row of the `jobs` table.
#[derive(Debug, PartialEq, Eq)]
pub struct JobRow {
    pub attempts: i32,
    pub run_at: i64,
    pub lease_until: Option<i64>,
    pub lease_token: Option<String>,
}

impl Backend {
    /// The store as a trait object reference.
    pub fn store(&self) -> &dyn Store {
        &*self.store
    }

    /// The `jobs` rows of an execution.
    pub async fn job_rows(&self, id: Uuid) -> Vec<JobRow> {
        let sql =
            "SELECT attempts, run_at, lease_until, lease_token FROM jobs WHERE execution_id = ";
        let rows: Vec<(i32, i64, Option<i64>, Option<String>)> = match &self.raw {
            Raw::Sqlite(s) => sqlx::query_as(&format!("{sql}?1"))
                .bind(id.to_string())
                .fetch_all(s.pool())
                .await
                .unwrap(),
            Raw::Pg(s) => sqlx::query_as(&format!("{sql}$1"))
                .bind(id)
                .fetch_all(s.pool())
                .await
                .unwrap(),
        };
        rows.into_iter()
            .map(|(attempts, run_at, lease_until, lease_token)| JobRow {
                attempts,
                run_at,
                lease_until,
                lease_token,
            })
            .collect()
    }

    /// Open `n` pooled connections (held together, so each is a new one), then hand them back:
    /// concurrent callers afterwards really overlap instead of queueing behind connection set-up.
    pub async fn warm_pool(&self, n: usize) {
        match &self.raw {
            Raw::Sqlite(s) => {
                let mut held = Vec::new();
                for _ in 0..n {
                    held.push(s.pool().acquire().await.unwrap());
                }
            }
            Raw::Pg(s) => {
                let mut held = Vec::new();
                for _ in 0..n {
                    held.push(s.pool().acquire().await.unwrap());
                }
            }
        }
    }

    /// Number of rows in a table.
    pub async fn count(&self, table: &str) -> i64 {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        match &self.raw {
            Raw::Sqlite(s) => sqlx::query_scalar(&sql).fetch_one(s.pool()).await.unwrap(),
            Raw::Pg(s) => sqlx::query_scalar(&sql).fetch_one(s.pool()).await.unwrap(),
        }
    }

    /// Overwrite an execution's status column with arbitrary text (simulating bad data).
    pub async fn corrupt_status(&self, id: Uuid, status: &str) {
        match &self.raw {
            Raw::Sqlite(s) => {
                sqlx::query("UPDATE executions SET status = ?1 WHERE id = ?2")
                    .bind(status)
                    .bind(id.to_string())
                    .execute(s.pool())
                    .await
                    .unwrap();
            }
            Raw::Pg(s) => {
                sqlx::query("UPDATE executions SET status = $1 WHERE id = $2")
                    .bind(status)
                    .bind(id)
                    .execute(s.pool())
                    .await
                    .unwrap();
            }
        }
    }
}

/// Run `case` against a fresh SQLite file in a new temp dir.
pub async fn run_sqlite<F, Fut>(case: F)
where
    F: FnOnce(Backend) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("livexec.db").display());
    let store = SqliteStore::connect(&url).await.unwrap();
    let backend = Backend {
        store: Arc::new(store.clone()),
        raw: Raw::Sqlite(store),
    };
    case(backend).await;
}

/// Run `case` against a fresh PostgreSQL database, dropping it afterwards.
pub async fn run_postgres<F, Fut>(case: F)
where
    F: FnOnce(Backend) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let admin_url = livexec_testkit::postgres_url();
    let db = TestDatabase::create(&admin_url).await;
    let store = PgStore::connect(db.url()).await.unwrap();
    let pool = store.pool().clone();
    let backend = Backend {
        store: Arc::new(store.clone()),
        raw: Raw::Pg(store),
    };
    let outcome = tokio::spawn(case(backend)).await;
    pool.close().await;
    db.cleanup().await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}
