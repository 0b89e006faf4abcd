//! What one backend does differently from the other, and nothing else: how ids and times are
//! stored (UUID and timestamptz in PostgreSQL, hyphenated text and unix-ms integers in SQLite),
//! how a writing transaction begins, and a typed-NULL cast PostgreSQL needs. The queries that
//! use it are shared ([`crate::sql`]).

use crate::rows::DataError;
use chrono::{DateTime, Utc};
use sqlx::{Database, Decode, Encode, Pool, Transaction, Type};
use std::future::Future;
use uuid::Uuid;

/// A type a column of `DB` can be bound from and read into, by value.
pub(crate) trait Column<DB: Database>:
    for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB> + Type<DB> + Send + Sync + Unpin + 'static
{
}

impl<DB: Database, T> Column<DB> for T where
    T: for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB> + Type<DB> + Send + Sync + Unpin + 'static
{
}

/// What one backend does differently: the column encoding of ids and times and a few dialect
/// details. Everything else of the store is shared.
pub(crate) trait Dialect: Database {
    /// How an id column is stored and bound.
    type Id: Column<Self>;
    /// How a time column is stored and bound.
    type Time: Column<Self>;
    /// Appended to a nullable id parameter where the database must know its type to test it
    /// for NULL (`$2::uuid IS NULL` in PostgreSQL).
    const NULLABLE_ID_CAST: &'static str;
    /// A `FROM` clause for an `UPDATE` whose commit need not wait for the disk (PostgreSQL:
    /// `synchronous_commit` off for that one transaction); empty where commits do not wait
    /// anyway (SQLite in WAL mode with `synchronous = NORMAL`).
    const RELAXED_COMMIT: &'static str;
    /// Appended to a `SELECT` that locks the rows it reads until the transaction ends
    /// (PostgreSQL `FOR UPDATE`); empty where a writing transaction already excludes every
    /// other writer (SQLite's `BEGIN IMMEDIATE`).
    const FOR_UPDATE: &'static str;
    /// The UTC day (`YYYY-MM-DD` text) of an execution's `queued_at`, for statistics.
    const QUEUED_DAY: &'static str;
    /// A statement that, inside a transaction, waits for and holds until its end a lock on one
    /// API key (`$1`: a BIGINT of the key id), so that quota checks of one key run one at a
    /// time; `None` where writing transactions are serialized anyway (SQLite's
    /// `BEGIN IMMEDIATE`).
    const KEY_LOCK: Option<&'static str>;
    /// The UTC hour (0–23, a BIGINT) of an execution's `queued_at`, for statistics.
    const QUEUED_HOUR: &'static str;

    /// An id as bound to a query.
    fn id(id: Uuid) -> Self::Id;
    /// A time as bound to a query.
    fn time(t: DateTime<Utc>) -> Self::Time;
    /// An id read from `column`.
    fn read_id(column: &'static str, stored: Self::Id) -> Result<Uuid, DataError>;
    /// A time read from `column`.
    fn read_time(column: &'static str, stored: Self::Time) -> Result<DateTime<Utc>, DataError>;
    /// Begin a transaction that reads and then writes.
    fn begin_write(
        pool: &Pool<Self>,
    ) -> impl Future<Output = Result<Transaction<'static, Self>, sqlx::Error>> + Send;
    /// How many rows a statement changed.
    fn rows_affected(done: &Self::QueryResult) -> u64;
}
