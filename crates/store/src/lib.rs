//! The [`Store`] port on SQLite (embedded default) and PostgreSQL (scaled).
//!
//! Both backends use sqlx with runtime-checked queries (no database needed at build time) and
//! carry their own migrations (`migrations/sqlite`, `migrations/postgres`), embedded in the
//! binary and run by [`SqliteStore::connect`] / [`PgStore::connect`] or by [`migrate`]. The
//! schema has the same tables and columns in both: `sessions`, `executions` and `jobs` (the
//! embedded queue's table, filled by `create_execution` in the execution's own transaction).
//!
//! ```no_run
//! # async fn demo() -> Result<(), livexec_core::StoreError> {
//! let store = livexec_store::connect("sqlite://livexec.db").await?;
//! let session = store.create_session("python", "print(1)").await?;
//! assert!(store.get_session(session.id).await?.is_some());
//! # Ok(())
//! # }
//! ```

mod create;
mod dialect;
mod json;
mod keys;
mod lifecycle;
mod postgres;
mod rows;
mod sql;
mod sqlite;
mod stats;

pub use postgres::PgStore;
pub use rows::DataError;
pub use sql::SqlStore;
pub use sqlite::SqliteStore;

use livexec_core::{KeyStore, Store, StoreError};
use rows::backend;
use sqlx::migrate::{Migrate, Migrator};
use sqlx::{Database, Pool};
use std::sync::Arc;

/// Which backend a database URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `sqlite:…`
    Sqlite,
    /// `postgres:…` or `postgresql:…`
    Postgres,
}

impl Backend {
    /// The backend of `url`, by its scheme; [`DataError::UnsupportedUrl`] for anything else.
    pub fn from_url(url: &str) -> Result<Backend, DataError> {
        let scheme = url.split_once(':').map(|(s, _)| s).unwrap_or("");
        match scheme.to_ascii_lowercase().as_str() {
            "sqlite" => Ok(Backend::Sqlite),
            "postgres" | "postgresql" => Ok(Backend::Postgres),
            _ => Err(DataError::UnsupportedUrl {
                scheme: scheme.chars().take(32).collect(),
            }),
        }
    }
}

/// Connect to the database `url` names (`sqlite:`, `postgres:` or `postgresql:`), run its
/// migrations, and return it as the service's [`Store`].
pub async fn connect(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    match Backend::from_url(url).map_err(backend("connect"))? {
        Backend::Sqlite => Ok(Arc::new(SqliteStore::connect(url).await?)),
        Backend::Postgres => Ok(Arc::new(PgStore::connect(url).await?)),
    }
}

/// Like [`connect`], with the same database also as the service's [`KeyStore`] (one pool).
pub async fn connect_with_keys(
    url: &str,
) -> Result<(Arc<dyn Store>, Arc<dyn KeyStore>), StoreError> {
    match Backend::from_url(url).map_err(backend("connect"))? {
        Backend::Sqlite => {
            let store = SqliteStore::connect(url).await?;
            Ok((Arc::new(store.clone()), Arc::new(store)))
        }
        Backend::Postgres => {
            let store = PgStore::connect(url).await?;
            Ok((Arc::new(store.clone()), Arc::new(store)))
        }
    }
}

/// Run the migrations of the database `url` names, and nothing else (`livexec migrate`).
pub async fn migrate(url: &str) -> Result<(), StoreError> {
    match Backend::from_url(url).map_err(backend("migrate"))? {
        Backend::Sqlite => {
            migrate_and_close(sqlite::open_pool(url).await?, &sqlite::MIGRATOR).await
        }
        Backend::Postgres => {
            migrate_and_close(postgres::open_pool(url).await?, &postgres::MIGRATOR).await
        }
    }
}

/// Run `migrator` on `pool`, then close the pool whatever the outcome.
async fn migrate_and_close<DB>(pool: Pool<DB>, migrator: &Migrator) -> Result<(), StoreError>
where
    DB: Database,
    DB::Connection: Migrate,
{
    let ran = migrator.run(&pool).await.map_err(backend("migrate"));
    pool.close().await;
    ran
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_backend_by_scheme() {
        assert_eq!(
            Backend::from_url("sqlite://x.db").ok(),
            Some(Backend::Sqlite)
        );
        assert_eq!(
            Backend::from_url("sqlite::memory:").ok(),
            Some(Backend::Sqlite)
        );
        assert_eq!(
            Backend::from_url("postgres://u@h/db").ok(),
            Some(Backend::Postgres)
        );
        assert_eq!(
            Backend::from_url("postgresql://u@h/db").ok(),
            Some(Backend::Postgres)
        );
        let err = Backend::from_url("mysql://u:secret@h/db")
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"mysql\""), "{err}");
        assert!(!err.contains("secret"), "{err}");
        assert!(Backend::from_url("livexec.db").is_err());
    }
}
