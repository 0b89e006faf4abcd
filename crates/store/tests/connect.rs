//! Opening stores by URL: backend choice, unsupported URLs, SQLite file creation and settings,
//! and `migrate` on its own.

#[path = "conformance/harness.rs"]
#[allow(dead_code)]
mod harness;

use livexec_core::StoreError;
use livexec_store::{connect, migrate, SqliteStore};

#[tokio::test]
async fn unsupported_url_is_a_clear_error() {
    for url in [
        "mysql://root:hunter2@localhost/db",
        "redis://127.0.0.1:6379",
        "livexec.db",
        "",
    ] {
        let err = match connect(url).await {
            Err(e) => e,
            Ok(_) => panic!("{url:?} was accepted"),
        };
        let text = err.to_string();
        assert!(
            matches!(err, StoreError::Backend { op: "connect", .. }),
            "{err:?}"
        );
        let source = std::error::Error::source(&err).map(ToString::to_string);
        let source = source.unwrap_or_default();
        assert!(source.contains("unsupported database URL"), "{source}");
        assert!(
            source.contains("sqlite:") && source.contains("postgres:"),
            "{source}"
        );
        assert!(!text.contains("hunter2") && !source.contains("hunter2"));
        assert!(migrate(url).await.is_err());
    }
}

#[tokio::test]
async fn sqlite_creates_its_file_in_a_fresh_dir_with_wal_and_foreign_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested-name.db");
    assert!(!path.exists());
    let url = format!("sqlite://{}", path.display());
    let store = SqliteStore::connect(&url).await.unwrap();
    assert!(path.exists());

    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(mode.to_lowercase(), "wal");
    let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(fk, 1);
    let busy: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert!(busy > 0);
    // Foreign keys are enforced: a job for no execution is refused.
    let orphan = sqlx::query("INSERT INTO jobs (execution_id, run_at) VALUES ('nope', 0)")
        .execute(store.pool())
        .await;
    assert!(orphan.is_err());

    // Data survives reopening through the generic `connect`, which re-runs migrations harmlessly.
    let session = livexec_core::Store::create_session(&store, "python", "print(1)")
        .await
        .unwrap();
    store.pool().close().await;
    let reopened = connect(&url).await.unwrap();
    assert_eq!(
        reopened.get_session(session.id).await.unwrap().unwrap(),
        session
    );
}

#[tokio::test]
async fn sqlite_missing_directory_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("no/such/dir/x.db").display());
    let err = SqliteStore::connect(&url).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Backend { op: "connect", .. }),
        "{err:?}"
    );
}

async fn tables_of_sqlite(url: &str) -> Vec<String> {
    let pool = sqlx::SqlitePool::connect(url).await.unwrap();
    let names = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name IN \
         ('sessions', 'executions', 'jobs') ORDER BY name",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    pool.close().await;
    names
}

#[tokio::test]
async fn migrate_alone_creates_the_schema_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("m.db").display());
    migrate(&url).await.unwrap();
    migrate(&url).await.unwrap();
    assert_eq!(
        tables_of_sqlite(&url).await,
        ["executions", "jobs", "sessions"]
    );
}

#[tokio::test]
#[ignore = "needs PostgreSQL (DATABASE_URL, default 127.0.0.1:5432)"]
async fn migrate_and_connect_on_postgres() {
    let admin = livexec_testkit::postgres_url();
    let db = livexec_testkit::TestDatabase::create(&admin).await;
    let db_url = db.url().to_owned();
    let outcome = async move {
        migrate(&db_url).await.unwrap();
        migrate(&db_url).await.unwrap();
        let pool = sqlx::PgPool::connect(&db_url).await.unwrap();
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public' \
             AND table_name IN ('sessions', 'executions', 'jobs') ORDER BY table_name",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        pool.close().await;
        assert_eq!(tables, ["executions", "jobs", "sessions"]);
        // postgresql: is accepted as well as postgres:, and the store works.
        let url = db_url.replacen("postgres:", "postgresql:", 1);
        let store = connect(&url).await.unwrap();
        store.ping().await.unwrap();
    };
    let outcome = tokio::spawn(outcome).await;
    db.cleanup().await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}
