//! The [`Store`] logic, written once over sqlx for both backends.
//!
//! [`SqlStore`] holds a pool of any sqlx database that is a [`Dialect`]; its queries, binds,
//! transactions and row decoding are shared. A dialect says only what differs: how ids and times
//! are stored (UUID and timestamptz in PostgreSQL, hyphenated text and unix-ms integers in
//! SQLite), how a writing transaction begins, and a typed-NULL cast PostgreSQL needs. SQL text
//! uses `$N` placeholders, which both drivers accept.

use crate::rows::{
    backend, new_execution, now_ms, parse_status, resolve_existing, DataError, RawExecution,
    RawSession, EXECUTION_COLUMNS, SESSION_COLUMNS,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use livexec_core::{
    CreatedExecution, Execution, ExecutionId, NewExecution, RunResult, Session, SessionId, Status,
    Store, StoreError,
};
use sqlx::{Database, Decode, Encode, Executor, FromRow, IntoArguments, Pool, Transaction, Type};
use std::future::Future;
use uuid::Uuid;

/// How many times `create_execution` retries after losing an idempotency-key race.
const KEY_RACE_TRIES: usize = 5;

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

/// A [`Store`] on a pool of the sqlx database `DB`: [`SqliteStore`](crate::SqliteStore) or
/// [`PgStore`](crate::PgStore).
#[derive(Debug)]
pub struct SqlStore<DB: Database> {
    pool: Pool<DB>,
}

/// Cheap: clones share the pool (derived `Clone` would ask for `DB: Clone`).
impl<DB: Database> Clone for SqlStore<DB> {
    fn clone(&self) -> Self {
        SqlStore {
            pool: self.pool.clone(),
        }
    }
}

impl<DB: Database> SqlStore<DB> {
    /// A store on a pool whose database is already migrated.
    pub(crate) fn from_pool(pool: Pool<DB>) -> Self {
        SqlStore { pool }
    }

    /// The connection pool, shared with the database-backed queue (same `jobs` table).
    pub fn pool(&self) -> &Pool<DB> {
        &self.pool
    }
}

/// The domain execution of a stored row, or a [`StoreError::Backend`] for `op` on bad data.
fn execution<DB: Dialect>(
    op: &'static str,
    row: RawExecution<DB::Id, DB::Time>,
) -> Result<Execution, StoreError> {
    row.into_domain(DB::read_id, DB::read_time)
        .map_err(backend(op))
}

/// The domain session of a stored row, or a [`StoreError::Backend`] for `op` on bad data.
fn session<DB: Dialect>(
    op: &'static str,
    row: RawSession<DB::Id, DB::Time>,
) -> Result<Session, StoreError> {
    row.into_domain(DB::read_id, DB::read_time)
        .map_err(backend(op))
}

#[async_trait]
impl<DB> Store for SqlStore<DB>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'r> RawExecution<DB::Id, DB::Time>: FromRow<'r, DB::Row>,
    for<'r> RawSession<DB::Id, DB::Time>: FromRow<'r, DB::Row>,
    for<'r> (String, String): FromRow<'r, DB::Row>,
    for<'r> (DB::Id, String, i32): FromRow<'r, DB::Row>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB>,
    for<'q> Vec<u8>: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB>,
    for<'q> i32: Encode<'q, DB> + Type<DB>,
    for<'q> Option<i32>: Encode<'q, DB>,
    for<'q> Option<DB::Id>: Encode<'q, DB>,
{
    async fn create_session(
        &self,
        language: &str,
        source_code: &str,
    ) -> Result<Session, StoreError> {
        let now = now_ms();
        let id = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO sessions (id, language, source_code, status, created_at, updated_at) \
             VALUES ($1, $2, $3, 'ACTIVE', $4, $4)",
        )
        .bind(DB::id(id))
        .bind(language)
        .bind(source_code)
        .bind(DB::time(now))
        .execute(&self.pool)
        .await
        .map_err(backend("create_session"))?;
        Ok(Session {
            id,
            language: language.to_owned(),
            source_code: source_code.to_owned(),
            status: "ACTIVE".to_owned(),
            created_at: now,
            updated_at: now,
            latest_execution_id: None,
        })
    }

    async fn get_session(&self, id: SessionId) -> Result<Option<Session>, StoreError> {
        const OP: &str = "get_session";
        let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE id = $1");
        let row: Option<RawSession<DB::Id, DB::Time>> = sqlx::query_as(&sql)
            .bind(DB::id(id))
            .fetch_optional(&self.pool)
            .await
            .map_err(backend(OP))?;
        row.map(|r| session::<DB>(OP, r)).transpose()
    }

    async fn update_session(
        &self,
        id: SessionId,
        source_code: &str,
        language: Option<&str>,
    ) -> Result<Option<Session>, StoreError> {
        const OP: &str = "update_session";
        let sql = format!(
            "UPDATE sessions SET source_code = $2, language = COALESCE($3, language), \
             updated_at = $4 WHERE id = $1 RETURNING {SESSION_COLUMNS}"
        );
        let row: Option<RawSession<DB::Id, DB::Time>> = sqlx::query_as(&sql)
            .bind(DB::id(id))
            .bind(source_code)
            .bind(language)
            .bind(DB::time(now_ms()))
            .fetch_optional(&self.pool)
            .await
            .map_err(backend(OP))?;
        row.map(|r| session::<DB>(OP, r)).transpose()
    }

    async fn create_execution(&self, new: NewExecution) -> Result<CreatedExecution, StoreError> {
        const OP: &str = "create_execution";
        let by_key =
            format!("SELECT {EXECUTION_COLUMNS} FROM executions WHERE idempotency_key = $1");
        for _ in 0..KEY_RACE_TRIES {
            let mut tx = DB::begin_write(&self.pool).await.map_err(backend(OP))?;
            if let Some(key) = &new.idempotency_key {
                let existing: Option<RawExecution<DB::Id, DB::Time>> = sqlx::query_as(&by_key)
                    .bind(key.as_str())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(backend(OP))?;
                if let Some(existing) = existing {
                    return resolve_existing(execution::<DB>(OP, existing)?, new.session_id);
                }
            }
            let snapshot: Option<(String, String)> =
                sqlx::query_as("SELECT language, source_code FROM sessions WHERE id = $1")
                    .bind(DB::id(new.session_id))
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(backend(OP))?;
            let Some((language, source_code)) = snapshot else {
                return Err(StoreError::SessionNotFound(new.session_id));
            };
            let exec = new_execution(
                new.session_id,
                language,
                source_code,
                new.idempotency_key.clone(),
                now_ms(),
            );
            let inserted = sqlx::query(
                "INSERT INTO executions (id, session_id, language, source_code, status, \
                 idempotency_key, attempts, queued_at) VALUES ($1, $2, $3, $4, 'QUEUED', $5, 0, $6) \
                 ON CONFLICT (idempotency_key) DO NOTHING",
            )
            .bind(DB::id(exec.id))
            .bind(DB::id(new.session_id))
            .bind(exec.language.as_str())
            .bind(exec.source_code.as_str())
            .bind(exec.idempotency_key.as_deref())
            .bind(DB::time(exec.queued_at))
            .execute(&mut *tx)
            .await
            .map_err(backend(OP))?;
            if DB::rows_affected(&inserted) == 0 {
                // Another writer took the key between our lookup and insert: look again.
                continue;
            }
            if new.enqueue_job {
                // The queue's times are unix milliseconds in both backends.
                sqlx::query("INSERT INTO jobs (execution_id, attempts, run_at) VALUES ($1, 0, $2)")
                    .bind(DB::id(exec.id))
                    .bind(exec.queued_at.timestamp_millis())
                    .execute(&mut *tx)
                    .await
                    .map_err(backend(OP))?;
            }
            tx.commit().await.map_err(backend(OP))?;
            return Ok(CreatedExecution {
                execution: exec,
                created: true,
            });
        }
        Err(backend(OP)(DataError::KeyRaceUnresolved {
            tries: KEY_RACE_TRIES,
        }))
    }

    async fn get_execution(&self, id: ExecutionId) -> Result<Option<Execution>, StoreError> {
        const OP: &str = "get_execution";
        let sql = format!("SELECT {EXECUTION_COLUMNS} FROM executions WHERE id = $1");
        let row: Option<RawExecution<DB::Id, DB::Time>> = sqlx::query_as(&sql)
            .bind(DB::id(id))
            .fetch_optional(&self.pool)
            .await
            .map_err(backend(OP))?;
        row.map(|r| execution::<DB>(OP, r)).transpose()
    }

    async fn list_executions(
        &self,
        session_id: SessionId,
        limit: u32,
        before: Option<ExecutionId>,
    ) -> Result<Vec<Execution>, StoreError> {
        const OP: &str = "list_executions";
        let cast = DB::NULLABLE_ID_CAST;
        let sql = format!(
            "SELECT {EXECUTION_COLUMNS} FROM executions WHERE session_id = $1 \
             AND ($2{cast} IS NULL OR id < $2) ORDER BY id DESC LIMIT $3"
        );
        let rows: Vec<RawExecution<DB::Id, DB::Time>> = sqlx::query_as(&sql)
            .bind(DB::id(session_id))
            .bind(before.map(DB::id))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(backend(OP))?;
        rows.into_iter().map(|r| execution::<DB>(OP, r)).collect()
    }

    async fn start_execution(&self, id: ExecutionId, attempt: i32) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE executions SET status = 'RUNNING', attempts = $2, started_at = $3 \
             WHERE id = $1 AND (status = 'QUEUED' OR (status = 'RUNNING' AND attempts < $2))",
        )
        .bind(DB::id(id))
        .bind(attempt)
        .bind(DB::time(now_ms()))
        .execute(&self.pool)
        .await
        .map_err(backend("start_execution"))?;
        Ok(DB::rows_affected(&done) > 0)
    }

    async fn finish_execution(
        &self,
        id: ExecutionId,
        attempt: i32,
        result: &RunResult,
    ) -> Result<bool, StoreError> {
        const OP: &str = "finish_execution";
        if !result.status.is_terminal() {
            return Err(backend(OP)(DataError::NonTerminalResult {
                status: result.status,
            }));
        }
        let compile = compile_json(result).map_err(backend(OP))?;
        let error_message = result.error_message.as_deref().map(storable);
        let done = sqlx::query(
            "UPDATE executions SET status = $3, stdout = $4, stderr = $5, execution_time_ms = $6, \
             error_message = $7, error_type = $8, exit_code = $9, signal = $10, \
             cpu_time_ms = $11, memory_kb = $12, finished_at = $13, compile = $14 \
             WHERE id = $1 AND status = 'RUNNING' AND attempts = $2",
        )
        .bind(DB::id(id))
        .bind(attempt)
        .bind(result.status.as_str())
        .bind(&result.stdout)
        .bind(&result.stderr)
        .bind(result.execution_time_ms)
        .bind(error_message.as_deref())
        .bind(result.error_type.map(|e| e.as_str()))
        .bind(result.exit_code)
        .bind(result.signal)
        .bind(result.cpu_time_ms)
        .bind(result.memory_kb)
        .bind(DB::time(now_ms()))
        .bind(compile.as_deref())
        .execute(&self.pool)
        .await
        .map_err(backend(OP))?;
        Ok(DB::rows_affected(&done) > 0)
    }

    async fn requeue_execution(&self, id: ExecutionId, attempt: i32) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE executions SET status = 'QUEUED' \
             WHERE id = $1 AND status = 'RUNNING' AND attempts = $2",
        )
        .bind(DB::id(id))
        .bind(attempt)
        .execute(&self.pool)
        .await
        .map_err(backend("requeue_execution"))?;
        Ok(DB::rows_affected(&done) > 0)
    }

    async fn fail_execution(&self, id: ExecutionId, message: &str) -> Result<bool, StoreError> {
        let message = storable(message);
        let done = sqlx::query(
            "UPDATE executions SET status = 'FAILED', error_type = 'InternalError', \
             error_message = $2, finished_at = $3 \
             WHERE id = $1 AND status IN ('QUEUED', 'RUNNING')",
        )
        .bind(DB::id(id))
        .bind(message.as_ref())
        .bind(DB::time(now_ms()))
        .execute(&self.pool)
        .await
        .map_err(backend("fail_execution"))?;
        Ok(DB::rows_affected(&done) > 0)
    }

    async fn list_unfinished(
        &self,
        queued_before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<(ExecutionId, Status, i32)>, StoreError> {
        const OP: &str = "list_unfinished";
        let rows: Vec<(DB::Id, String, i32)> = sqlx::query_as(
            "SELECT id, status, attempts FROM executions \
             WHERE status IN ('QUEUED', 'RUNNING') AND queued_at < $1 \
             ORDER BY queued_at, id LIMIT $2",
        )
        .bind(DB::time(queued_before))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(backend(OP))?;
        rows.into_iter()
            .map(|(id, status, attempts)| {
                let id = DB::read_id("id", id).map_err(backend(OP))?;
                let status = parse_status("status", &status).map_err(backend(OP))?;
                Ok((id, status, attempts))
            })
            .collect()
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(backend("ping"))?;
        Ok(())
    }
}

/// Text as every backend stores it: PostgreSQL refuses NUL in text, so NUL becomes U+FFFD
/// (as invalid UTF-8 does in output) everywhere, and the same message reads back from both.
fn storable(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains('\0') {
        std::borrow::Cow::Owned(text.replace('\0', "\u{FFFD}"))
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

/// The compile report as stored: JSON text (NUL and every other control character escaped, so
/// no backend's text rules can refuse it).
fn compile_json(result: &RunResult) -> Result<Option<String>, DataError> {
    result
        .compile
        .as_ref()
        .map(|c| serde_json::to_string(c).map_err(|source| DataError::BadCompile { source }))
        .transpose()
}
