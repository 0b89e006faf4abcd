//! The embedded store: one SQLite file in WAL mode.
//!
//! Ids are hyphenated lowercase UUID text, times are unix milliseconds, output is BLOB. Writes
//! that read before they write (`create_execution`) open their transaction with
//! `BEGIN IMMEDIATE`, so two writers never deadlock upgrading a read lock; a busy timeout makes
//! the second one wait instead of failing. This module owns only the connection settings and
//! the SQLite [`Dialect`]; the queries are shared ([`crate::sql`]).

use crate::dialect::Dialect;
use crate::rows::{backend, from_ms, parse_uuid, DataError};
use crate::sql::SqlStore;
use chrono::{DateTime, Utc};
use livexec_core::StoreError;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteQueryResult,
    SqliteSynchronous,
};
use sqlx::{Sqlite, Transaction};
use std::future::Future;
use std::str::FromStr;
use std::time::Duration;
use uuid::Uuid;

/// How long a writer waits for the database lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The embedded migrations of the SQLite schema.
pub(crate) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

/// [`Store`](livexec_core::Store) on one SQLite file (WAL mode, foreign keys on, busy timeout).
pub type SqliteStore = SqlStore<Sqlite>;

impl SqlStore<Sqlite> {
    /// Open (creating it if missing) the database at `url` — `sqlite://livexec.db` (relative to
    /// the working directory) or `sqlite:///abs/path.db` — and run the migrations.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let pool = open_pool(url).await?;
        MIGRATOR.run(&pool).await.map_err(backend("migrate"))?;
        Ok(SqlStore::from_pool(pool))
    }
}

/// Open a pool on `url` with the settings every connection needs; no migrations.
pub(crate) async fn open_pool(url: &str) -> Result<SqlitePool, StoreError> {
    let options = SqliteConnectOptions::from_str(url)
        .map_err(backend("connect"))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(BUSY_TIMEOUT)
        .foreign_keys(true);
    // An in-memory database exists once per connection: keep it to one.
    let max = if url.contains(":memory:") { 1 } else { 8 };
    // No ping before each use (sqlx's default): it is one more round trip to the
    // connection's thread per query, and a SQLite connection is a local file handle that
    // cannot go stale while it sits in the pool.
    SqlitePoolOptions::new()
        .max_connections(max)
        .test_before_acquire(false)
        .connect_with(options)
        .await
        .map_err(backend("connect"))
}

/// TEXT ids, unix-ms INTEGER times, `BEGIN IMMEDIATE` for writes.
impl Dialect for Sqlite {
    type Id = String;
    type Time = i64;
    const NULLABLE_ID_CAST: &'static str = "";
    const RELAXED_COMMIT: &'static str = "";
    const FOR_UPDATE: &'static str = "";
    const QUEUED_DAY: &'static str = "strftime('%Y-%m-%d', queued_at / 1000, 'unixepoch')";
    const KEY_LOCK: Option<&'static str> = None;
    const QUEUED_HOUR: &'static str =
        "CAST(strftime('%H', queued_at / 1000, 'unixepoch') AS BIGINT)";

    fn id(id: Uuid) -> String {
        id.to_string()
    }

    fn time(t: DateTime<Utc>) -> i64 {
        t.timestamp_millis()
    }

    fn read_id(column: &'static str, stored: String) -> Result<Uuid, DataError> {
        parse_uuid(column, &stored)
    }

    fn read_time(column: &'static str, stored: i64) -> Result<DateTime<Utc>, DataError> {
        from_ms(column, stored)
    }

    fn begin_write(
        pool: &SqlitePool,
    ) -> impl Future<Output = Result<Transaction<'static, Sqlite>, sqlx::Error>> + Send {
        pool.begin_with("BEGIN IMMEDIATE")
    }

    fn rows_affected(done: &SqliteQueryResult) -> u64 {
        done.rows_affected()
    }
}
