//! The [`Store`] logic, written once over sqlx for both backends.
//!
//! [`SqlStore`] holds a pool of any sqlx database that is a [`Dialect`]; its queries, binds,
//! transactions and row decoding are shared. A dialect says only what differs
//! ([`crate::dialect`]). SQL text uses `$N` placeholders, which both drivers accept.

use crate::create;
use crate::dialect::Dialect;
use crate::json;
use crate::lifecycle;
use crate::rows::{
    backend, now_ms, parse_status, DataError, RawExecution, RawSession, EXECUTION_BYTES,
    EXECUTION_COLUMNS, SESSION_COLUMNS,
};
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use livexec_core::{
    CreatedExecution, Deletion, Execution, ExecutionId, NewExecution, NewOneShot, Owner, Purged,
    Quota, QuotaExceeded, QuotaKind, RunResult, Session, SessionId, SessionPatch, SourceFile,
    Store, StoreError, Unfinished, UsageRow, UsageScope,
};
use sqlx::{Database, Encode, Executor, FromRow, IntoArguments, Pool, Type};
use uuid::Uuid;

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

/// A page of a session's history, newest first: `columns` of the executions of session `$1`
/// older than `$2` (when it is not NULL), at most `$3`.
fn history_page<DB: Dialect>(columns: &str) -> String {
    let cast = DB::NULLABLE_ID_CAST;
    format!(
        "SELECT {columns} FROM executions WHERE session_id = $1 \
         AND ($2{cast} IS NULL OR id < $2) ORDER BY id DESC LIMIT $3"
    )
}

/// The domain session of a stored row, or a [`StoreError::Backend`] for `op` on bad data.
fn session<DB: Dialect>(
    op: &'static str,
    row: RawSession<DB::Id, DB::Time>,
) -> Result<Session, StoreError> {
    row.into_domain(DB::read_id, DB::read_time)
        .map_err(backend(op))
}

/// Inserts a new ACTIVE session: id, language, code, time (created and updated), files,
/// owner.
const SESSION_INSERT: &str = "INSERT INTO sessions (id, language, source_code, status, \
     created_at, updated_at, files, owner_key_id) VALUES ($1, $2, $3, 'ACTIVE', $4, $4, $5, $6)";

/// The session just inserted as [`SESSION_INSERT`] wrote it.
fn new_session(
    id: SessionId,
    language: &str,
    source_code: &str,
    files: &[SourceFile],
    owner: Owner,
    now: DateTime<Utc>,
) -> Session {
    Session {
        id,
        language: language.to_owned(),
        source_code: source_code.to_owned(),
        status: "ACTIVE".to_owned(),
        created_at: now,
        updated_at: now,
        latest_execution_id: None,
        files: files.to_vec(),
        owner,
    }
}

/// `Retry-After` of a refusal by the sessions quota: it frees only when the key deletes a
/// session (or retention does), so a guess that keeps clients from hammering.
const SESSIONS_RETRY_AFTER_SECS: u64 = 60;

#[async_trait]
impl<DB> Store for SqlStore<DB>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'r> RawExecution<DB::Id, DB::Time>: FromRow<'r, DB::Row>,
    for<'r> RawSession<DB::Id, DB::Time>: FromRow<'r, DB::Row>,
    for<'r> (String, String): FromRow<'r, DB::Row>,
    for<'r> (String, String, Option<String>, Option<DB::Id>): FromRow<'r, DB::Row>,
    for<'r> (DB::Id, String, i32, Option<DB::Id>): FromRow<'r, DB::Row>,
    for<'r> (DB::Id, i64): FromRow<'r, DB::Row>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB>,
    for<'q> Vec<u8>: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB>,
    for<'q> i32: Encode<'q, DB> + Type<DB>,
    for<'q> Option<i32>: Encode<'q, DB>,
    for<'q> Option<DB::Id>: Encode<'q, DB>,
    for<'r> (i64, Option<DB::Time>): FromRow<'r, DB::Row>,
    for<'r> (String, String, i64): FromRow<'r, DB::Row>,
    for<'r> (Option<String>, i64, f64): FromRow<'r, DB::Row>,
    for<'r> (String, i64, Option<i64>, Option<i64>): FromRow<'r, DB::Row>,
    for<'r> (i64, i64): FromRow<'r, DB::Row>,
    for<'r> (String, Option<DB::Id>): FromRow<'r, DB::Row>,
    for<'r> (String,): FromRow<'r, DB::Row>,
    for<'r> (DB::Id,): FromRow<'r, DB::Row>,
    for<'r> (String, String, i64, i64, i64, i64): FromRow<'r, DB::Row>,
    for<'r> (i64,): FromRow<'r, DB::Row>,
{
    async fn create_session_with_files(
        &self,
        language: &str,
        source_code: &str,
        files: &[SourceFile],
        owner: Owner,
    ) -> Result<Session, StoreError> {
        const OP: &str = "create_session";
        let now = now_ms();
        let id = Uuid::now_v7();
        let stored_files = json::encode_list("files", files).map_err(backend(OP))?;
        sqlx::query(SESSION_INSERT)
            .bind(DB::id(id))
            .bind(language)
            .bind(source_code)
            .bind(DB::time(now))
            .bind(stored_files.as_deref())
            .bind(owner.map(DB::id))
            .execute(&self.pool)
            .await
            .map_err(backend(OP))?;
        Ok(new_session(id, language, source_code, files, owner, now))
    }

    async fn create_session_within(
        &self,
        language: &str,
        source_code: &str,
        files: &[SourceFile],
        owner: Owner,
        quota: &Quota,
    ) -> Result<Session, StoreError> {
        let (Some(key), Some(limit)) = (owner, quota.sessions) else {
            return self
                .create_session_with_files(language, source_code, files, owner)
                .await;
        };
        const OP: &str = "create_session";
        const HELD: &str = "SELECT COUNT(*) FROM sessions WHERE owner_key_id = $1";
        let stored_files = json::encode_list("files", files).map_err(backend(OP))?;
        let mut tx = DB::begin_write(&self.pool).await.map_err(backend(OP))?;
        create::lock_key(&mut tx, key, OP).await?;
        let (held,): (i64,) = sqlx::query_as(HELD)
            .bind(DB::id(key))
            .fetch_one(&mut *tx)
            .await
            .map_err(backend(OP))?;
        if held >= i64::from(limit) {
            // Dropping the transaction rolls it back: nothing was written.
            return Err(StoreError::QuotaExceeded(QuotaExceeded {
                kind: QuotaKind::Sessions,
                tier: quota.tier.clone(),
                limit,
                retry_after_secs: SESSIONS_RETRY_AFTER_SECS,
            }));
        }
        let now = now_ms();
        let id = Uuid::now_v7();
        sqlx::query(SESSION_INSERT)
            .bind(DB::id(id))
            .bind(language)
            .bind(source_code)
            .bind(DB::time(now))
            .bind(stored_files.as_deref())
            .bind(Some(DB::id(key)))
            .execute(&mut *tx)
            .await
            .map_err(backend(OP))?;
        tx.commit().await.map_err(backend(OP))?;
        Ok(new_session(id, language, source_code, files, owner, now))
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

    async fn patch_session(
        &self,
        id: SessionId,
        patch: &SessionPatch,
    ) -> Result<Option<Session>, StoreError> {
        const OP: &str = "update_session";
        // An empty set of files is stored as NULL like a session that never had any, so
        // "keep the files" needs its own flag beside the value.
        let files = match &patch.files {
            Some(files) => Some(json::encode_list("files", files).map_err(backend(OP))?),
            None => None,
        };
        let sql = format!(
            "UPDATE sessions SET source_code = COALESCE($2, source_code), \
             language = COALESCE($3, language), \
             files = CASE WHEN $5 = 1 THEN $4 ELSE files END, updated_at = $6 \
             WHERE id = $1 RETURNING {SESSION_COLUMNS}"
        );
        let row: Option<RawSession<DB::Id, DB::Time>> = sqlx::query_as(&sql)
            .bind(DB::id(id))
            .bind(patch.source_code.as_deref())
            .bind(patch.language.as_deref())
            .bind(files.as_ref().and_then(|f| f.as_deref()))
            .bind(i32::from(files.is_some()))
            .bind(DB::time(now_ms()))
            .fetch_optional(&self.pool)
            .await
            .map_err(backend(OP))?;
        row.map(|r| session::<DB>(OP, r)).transpose()
    }

    async fn create_execution_within(
        &self,
        new: NewExecution,
        quota: &Quota,
    ) -> Result<CreatedExecution, StoreError> {
        create::create_execution(&self.pool, new, quota).await
    }

    async fn create_one_shot_within(
        &self,
        new: NewOneShot,
        quota: &Quota,
    ) -> Result<CreatedExecution, StoreError> {
        create::create_one_shot(&self.pool, new, quota).await
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

    async fn list_execution_sizes(
        &self,
        session_id: SessionId,
        limit: u32,
        before: Option<ExecutionId>,
    ) -> Result<Vec<(ExecutionId, u64)>, StoreError> {
        const OP: &str = "list_execution_sizes";
        // `octet_length`: PostgreSQL, and SQLite from 3.43 (sqlx bundles a newer one).
        let sql = history_page::<DB>(&format!("id, {EXECUTION_BYTES}"));
        let rows: Vec<(DB::Id, i64)> = sqlx::query_as(&sql)
            .bind(DB::id(session_id))
            .bind(before.map(DB::id))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(backend(OP))?;
        rows.into_iter()
            .map(|(id, bytes)| {
                let id = DB::read_id("id", id).map_err(backend(OP))?;
                Ok((id, u64::try_from(bytes).unwrap_or(0)))
            })
            .collect()
    }

    async fn list_executions(
        &self,
        session_id: SessionId,
        limit: u32,
        before: Option<ExecutionId>,
    ) -> Result<Vec<Execution>, StoreError> {
        const OP: &str = "list_executions";
        let sql = history_page::<DB>(EXECUTION_COLUMNS);
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
        let json = |r: Result<_, DataError>| r.map_err(backend(OP));
        let status = result.status;
        let result = &result.report;
        let compile = json(
            result
                .compile
                .as_ref()
                .map(|c| json::encode("compile", c))
                .transpose(),
        )?;
        let limits = json(
            result
                .limits
                .as_ref()
                .map(|l| json::encode("limits", l))
                .transpose(),
        )?;
        let tests = json(json::encode_list("tests", &result.tests))?;
        let output_files = json(json::encode_list("output_files", &result.output_files))?;
        let error_message = result.error_message.as_deref().map(storable);
        // One statement: the database's `usage_on_finish` trigger (migration
        // 20261205000000_usage_trigger) adds the run to `usage_daily` in it, so the result and
        // its usage commit together in one round trip.
        let done = sqlx::query(
            "UPDATE executions SET status = $3, stdout = $4, stderr = $5, execution_time_ms = $6, \
             error_message = $7, error_type = $8, exit_code = $9, signal = $10, \
             cpu_time_ms = $11, memory_kb = $12, finished_at = $13, compile = $14, \
             limits = $15, tests = $16, output_files = $17, error_line = $18 \
             WHERE id = $1 AND status = 'RUNNING' AND attempts = $2",
        )
        .bind(DB::id(id))
        .bind(attempt)
        .bind(status.as_str())
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
        .bind(limits.as_deref())
        .bind(tests.as_deref())
        .bind(output_files.as_deref())
        .bind(result.error_line)
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
    ) -> Result<Vec<Unfinished>, StoreError> {
        const OP: &str = "list_unfinished";
        let rows: Vec<(DB::Id, String, i32, Option<DB::Id>)> = sqlx::query_as(
            "SELECT id, status, attempts, owner_key_id FROM executions \
             WHERE status IN ('QUEUED', 'RUNNING') AND queued_at < $1 \
             ORDER BY queued_at, id LIMIT $2",
        )
        .bind(DB::time(queued_before))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(backend(OP))?;
        rows.into_iter()
            .map(|(id, status, attempts, owner)| {
                let id = DB::read_id("id", id).map_err(backend(OP))?;
                let status = parse_status("status", &status).map_err(backend(OP))?;
                let owner = owner
                    .map(|o| DB::read_id("owner_key_id", o))
                    .transpose()
                    .map_err(backend(OP))?;
                Ok(Unfinished {
                    id,
                    status,
                    attempts,
                    owner,
                })
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

    async fn statistics(
        &self,
        since: DateTime<Utc>,
    ) -> Result<livexec_core::Statistics, StoreError> {
        crate::stats::statistics::<DB>(&self.pool, since).await
    }

    async fn delete_session(&self, id: SessionId) -> Result<Deletion, StoreError> {
        lifecycle::delete_session::<DB>(&self.pool, id).await
    }

    async fn delete_execution(&self, id: ExecutionId) -> Result<Deletion, StoreError> {
        lifecycle::delete_execution::<DB>(&self.pool, id).await
    }

    async fn purge_before(&self, before: DateTime<Utc>, limit: u32) -> Result<Purged, StoreError> {
        lifecycle::purge_before::<DB>(&self.pool, before, limit).await
    }

    async fn usage(
        &self,
        scope: UsageScope,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<UsageRow>, StoreError> {
        lifecycle::usage::<DB>(&self.pool, scope, from, to).await
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
