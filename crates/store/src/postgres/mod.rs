//! The scaled store: PostgreSQL.
//!
//! Ids are UUID, times are timestamptz (written at millisecond precision), output is BYTEA. An
//! idempotency-key race is settled by the unique constraint: the loser's
//! `INSERT … ON CONFLICT DO NOTHING` waits for the winner to commit, inserts nothing, and the
//! loser then reads and returns the winner's execution. This module owns only the connection
//! settings and the PostgreSQL [`Dialect`]; the queries are shared ([`crate::sql`]).

use crate::dialect::Dialect;
use crate::rows::{backend, DataError};
use crate::sql::SqlStore;
use chrono::{DateTime, Utc};
use livexec_core::StoreError;
use sqlx::postgres::{PgPool, PgPoolOptions, PgQueryResult};
use sqlx::{Connection, Postgres, Transaction};
use std::future::Future;
use std::time::Duration;
use uuid::Uuid;

/// How long to wait for a pooled connection before failing.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// A pooled connection idle longer than this is pinged before it is used again.
const PING_IF_IDLE: Duration = Duration::from_secs(1);

/// The embedded migrations of the PostgreSQL schema.
pub(crate) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// [`Store`](livexec_core::Store) on a PostgreSQL database.
pub type PgStore = SqlStore<Postgres>;

impl SqlStore<Postgres> {
    /// Connect to `url` (`postgres://user@host:5432/db`) and run the migrations.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let pool = open_pool(url).await?;
        MIGRATOR.run(&pool).await.map_err(backend("migrate"))?;
        Ok(SqlStore::from_pool(pool))
    }
}

/// Open a pool on `url`; no migrations.
///
/// sqlx pings every connection before handing it out by default: a whole round trip in
/// front of every query, on the request path. Here only a connection that sat idle for more
/// than [`PING_IF_IDLE`] is pinged (a dead one is replaced, as before); a connection in
/// steady use was checked when it went back to the pool (sqlx pings on release), moments ago.
pub(crate) async fn open_pool(url: &str) -> Result<PgPool, StoreError> {
    PgPoolOptions::new()
        .max_connections(10)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for > PING_IF_IDLE {
                    conn.ping().await?;
                }
                Ok(true)
            })
        })
        .connect(url)
        .await
        .map_err(backend("connect"))
}

/// Native UUID and timestamptz columns; a typed cast where a NULL parameter is tested.
impl Dialect for Postgres {
    type Id = Uuid;
    type Time = DateTime<Utc>;
    const NULLABLE_ID_CAST: &'static str = "::uuid";
    const RELAXED_COMMIT: &'static str =
        "FROM (SELECT set_config('synchronous_commit', 'off', true)) AS relaxed_commit";
    const FOR_UPDATE: &'static str = "FOR UPDATE";
    const QUEUED_DAY: &'static str = "to_char(queued_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')";
    const KEY_LOCK: Option<&'static str> = Some("SELECT pg_advisory_xact_lock($1)");
    const QUEUED_HOUR: &'static str =
        "CAST(EXTRACT(HOUR FROM queued_at AT TIME ZONE 'UTC') AS BIGINT)";

    fn id(id: Uuid) -> Uuid {
        id
    }

    fn time(t: DateTime<Utc>) -> DateTime<Utc> {
        t
    }

    fn read_id(_column: &'static str, stored: Uuid) -> Result<Uuid, DataError> {
        Ok(stored)
    }

    fn read_time(_column: &'static str, stored: DateTime<Utc>) -> Result<DateTime<Utc>, DataError> {
        Ok(stored)
    }

    fn begin_write(
        pool: &PgPool,
    ) -> impl Future<Output = Result<Transaction<'static, Postgres>, sqlx::Error>> + Send {
        pool.begin()
    }

    fn rows_affected(done: &PgQueryResult) -> u64 {
        done.rows_affected()
    }
}
