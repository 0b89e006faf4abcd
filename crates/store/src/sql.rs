//! The [`Store`] logic, written once over sqlx for both backends.
//!
//! [`SqlStore`] holds a pool of any sqlx database that is a [`Dialect`]; its queries, binds,
//! transactions and row decoding are shared. A dialect says only what differs
//! ([`crate::dialect`]). SQL text uses `$N` placeholders, which both drivers accept.

use crate::create::existing;
use crate::dialect::Dialect;
use crate::rows::{
    backend, new_execution, now_ms, parse_status, DataError, RawExecution, RawSession,
    EXECUTION_COLUMNS, SESSION_COLUMNS,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use livexec_core::{
    CreatedExecution, Execution, ExecutionId, NewExecution, RunResult, Session, SessionId, Status,
    Store, StoreError,
};
use sqlx::{Database, Encode, Executor, FromRow, IntoArguments, Pool, Type};
use uuid::Uuid;

/// How many times `create_execution` retries after losing an idempotency-key race.
const KEY_RACE_TRIES: usize = 5;

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
    for<'r> (i64, Option<DB::Time>): FromRow<'r, DB::Row>,
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
            files: Vec::new(),
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
        // The insert takes the session's snapshot itself: one statement on the request path
        // instead of a read and then a write. It inserts nothing when the key is taken or the
        // session unknown; which one is told apart after.
        const INSERT: &str = "INSERT INTO executions (id, session_id, language, source_code, \
             status, idempotency_key, attempts, queued_at) \
             SELECT $1, id, language, source_code, 'QUEUED', $3, 0, $4 FROM sessions \
             WHERE id = $2 \
             ON CONFLICT (idempotency_key) DO NOTHING RETURNING language, source_code";
        for _ in 0..KEY_RACE_TRIES {
            let mut exec = new_execution(
                new.session_id,
                String::new(),
                String::new(),
                new.idempotency_key.clone(),
                now_ms(),
            );
            let insert = sqlx::query_as::<_, (String, String)>(INSERT)
                .bind(DB::id(exec.id))
                .bind(DB::id(new.session_id))
                .bind(exec.idempotency_key.as_deref())
                .bind(DB::time(exec.queued_at));
            let snapshot = if new.enqueue_job {
                // The execution and its job commit together.
                let mut tx = DB::begin_write(&self.pool).await.map_err(backend(OP))?;
                let snapshot = insert.fetch_optional(&mut *tx).await.map_err(backend(OP))?;
                if snapshot.is_some() {
                    // The queue's times are unix milliseconds in both backends.
                    sqlx::query(
                        "INSERT INTO jobs (execution_id, attempts, run_at) VALUES ($1, 0, $2)",
                    )
                    .bind(DB::id(exec.id))
                    .bind(exec.queued_at.timestamp_millis())
                    .execute(&mut *tx)
                    .await
                    .map_err(backend(OP))?;
                    tx.commit().await.map_err(backend(OP))?;
                }
                snapshot
            } else {
                // One statement commits on its own, before its row comes back (both drivers
                // finish the statement first), so no transaction round trips around it.
                insert
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(backend(OP))?
            };
            let Some((language, source_code)) = snapshot else {
                match existing(&self.pool, OP, &new).await? {
                    Some(found) => return found,
                    // The key's owner was not visible yet: try again.
                    None => continue,
                }
            };
            exec.language = language;
            exec.source_code = source_code;
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

    async fn start_execution(
        &self,
        id: ExecutionId,
        attempt: i32,
    ) -> Result<Option<Execution>, StoreError> {
        const OP: &str = "start_execution";
        // The one write of a run whose commit does not wait for the disk: losing it takes a
        // crash of the database server itself (a crash of ours loses nothing), and then the
        // execution is QUEUED at its previous attempt again, finish_execution's guard refuses
        // this attempt's result, its job is not acked, and the next claim after the lease runs
        // it anew. The log is flushed in order, so the result's (waiting) commit makes this one
        // durable too.
        let relaxed = DB::RELAXED_COMMIT;
        let sql = format!(
            "UPDATE executions SET status = 'RUNNING', attempts = $2, started_at = $3 {relaxed} \
             WHERE id = $1 AND (status = 'QUEUED' OR (status = 'RUNNING' AND attempts < $2)) \
             RETURNING {EXECUTION_COLUMNS}"
        );
        let row: Option<RawExecution<DB::Id, DB::Time>> = sqlx::query_as(&sql)
            .bind(DB::id(id))
            .bind(attempt)
            .bind(DB::time(now_ms()))
            .fetch_optional(&self.pool)
            .await
            .map_err(backend(OP))?;
        row.map(|r| execution::<DB>(OP, r)).transpose()
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

    async fn queue_sample(&self) -> Result<livexec_core::QueueSample, StoreError> {
        crate::stats::queue_sample::<DB>(&self.pool).await
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
