//! Runs one conformance case against a fresh database of each backend.
//!
//! SQLite: a file in a new temp dir. PostgreSQL: a new database `livexec_t_<uuid>` created
//! through `DATABASE_URL` (a postgres URL) and dropped afterwards, even when the case panics.
//! Without `DATABASE_URL` the PostgreSQL half prints SKIPPED, or panics when
//! `LIVEXEC_REQUIRE_SERVICES=1`.

use livexec_core::Store;
use livexec_store::{PgStore, SqliteStore};
use sqlx::Executor;
use std::future::Future;
use std::io::Write;
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

/// `DATABASE_URL` when it is a postgres URL; otherwise SKIPPED (or a panic under
/// `LIVEXEC_REQUIRE_SERVICES=1`).
pub fn postgres_url(test: &str) -> Option<String> {
    match std::env::var("DATABASE_URL") {
        Ok(url) if url.starts_with("postgres:") || url.starts_with("postgresql:") => Some(url),
        _ => {
            let reason = "set DATABASE_URL=postgres://… to run";
            if std::env::var("LIVEXEC_REQUIRE_SERVICES").as_deref() == Ok("1") {
                panic!("{test}: PostgreSQL required (LIVEXEC_REQUIRE_SERVICES=1): {reason}");
            }
            // Straight to the stderr handle: the test harness does not capture it, so the skip
            // shows in every run, not only in failures.
            let _ = writeln!(std::io::stderr(), "SKIPPED {test} on PostgreSQL ({reason})");
            None
        }
    }
}

/// `url` with its database name replaced by `database`.
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let authority_start = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_end = base[authority_start..]
        .find('/')
        .map(|i| authority_start + i)
        .unwrap_or(base.len());
    format!("{}/{database}{query}", &base[..host_end])
}

/// A fresh PostgreSQL database, created through the admin URL; dropped by [`TempPg::drop_db`].
pub struct TempPg {
    admin: sqlx::PgPool,
    name: String,
    /// URL of the new database.
    pub url: String,
}

impl TempPg {
    /// Create `livexec_t_<uuid>`.
    pub async fn create(admin_url: &str) -> TempPg {
        let admin = sqlx::PgPool::connect(admin_url)
            .await
            .unwrap_or_else(|e| panic!("DATABASE_URL is set but PostgreSQL is unreachable: {e}"));
        let name = format!("livexec_t_{}", Uuid::new_v4().simple());
        admin
            .execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .unwrap();
        let url = with_database(admin_url, &name);
        TempPg { admin, name, url }
    }

    /// Drop the database (closing whatever is still connected to it).
    pub async fn drop_db(self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        self.admin.execute(sql.as_str()).await.unwrap();
        self.admin.close().await;
    }
}

/// Run `case` against a fresh PostgreSQL database, dropping it afterwards.
pub async fn run_postgres<F, Fut>(test: &str, case: F)
where
    F: FnOnce(Backend) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(admin_url) = postgres_url(test) else {
        return;
    };
    let db = TempPg::create(&admin_url).await;
    let store = PgStore::connect(&db.url).await.unwrap();
    let pool = store.pool().clone();
    let backend = Backend {
        store: Arc::new(store.clone()),
        raw: Raw::Pg(store),
    };
    let outcome = tokio::spawn(case(backend)).await;
    pool.close().await;
    db.drop_db().await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

#[test]
fn with_database_replaces_only_the_path() {
    assert_eq!(
        with_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
        "postgres://postgres@127.0.0.1:5432/x"
    );
    assert_eq!(
        with_database("postgres://u:p@h/db?sslmode=disable", "x"),
        "postgres://u:p@h/x?sslmode=disable"
    );
    assert_eq!(with_database("postgres://h:1", "x"), "postgres://h:1/x");
}
