//! The embedded store: one SQLite file in WAL mode.
//!
//! Ids are hyphenated lowercase UUID text, times are unix milliseconds, output is BLOB. Writes
//! that read before they write (`create_execution`) open their transaction with
//! `BEGIN IMMEDIATE`, so two writers never deadlock upgrading a read lock; a busy timeout makes
//! the second one wait instead of failing.

mod decode;

use crate::rows::{
    backend, new_execution, now_ms, parse_status, parse_uuid, resolve_existing, DataError,
    EXECUTION_COLUMNS, SESSION_COLUMNS,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use decode::{to_execution, to_session};
use livexec_core::{
    CreatedExecution, Execution, ExecutionId, NewExecution, RunResult, Session, SessionId, Status,
    Store, StoreError,
};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::SqliteConnection;
use std::str::FromStr;
use std::time::Duration;
use uuid::Uuid;

/// How long a writer waits for the database lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// How many times `create_execution` retries after losing an idempotency-key race.
const KEY_RACE_TRIES: usize = 5;

/// The embedded migrations of the SQLite schema.
pub(crate) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

/// [`Store`] on one SQLite file (WAL mode, foreign keys on, busy timeout).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Open (creating it if missing) the database at `url` — `sqlite://livexec.db` (relative to
    /// the working directory) or `sqlite:///abs/path.db` — and run the migrations.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let pool = open_pool(url).await?;
        MIGRATOR.run(&pool).await.map_err(backend("migrate"))?;
        Ok(SqliteStore { pool })
    }

    /// The connection pool, shared with the embedded queue (same database, same `jobs` table).
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
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
    SqlitePoolOptions::new()
        .max_connections(max)
        .connect_with(options)
        .await
        .map_err(backend("connect"))
}

async fn execution_by_key(
    conn: &mut SqliteConnection,
    key: &str,
) -> Result<Option<Execution>, StoreError> {
    const OP: &str = "create_execution";
    let sql = format!("SELECT {EXECUTION_COLUMNS} FROM executions WHERE idempotency_key = ?1");
    let row = sqlx::query(&sql)
        .bind(key)
        .fetch_optional(&mut *conn)
        .await
        .map_err(backend(OP))?;
    row.map(|r| to_execution(OP, &r)).transpose()
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_session(
        &self,
        language: &str,
        source_code: &str,
    ) -> Result<Session, StoreError> {
        let now = now_ms();
        let id = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO sessions (id, language, source_code, status, created_at, updated_at) \
             VALUES (?1, ?2, ?3, 'ACTIVE', ?4, ?4)",
        )
        .bind(id.to_string())
        .bind(language)
        .bind(source_code)
        .bind(now.timestamp_millis())
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
        let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE id = ?1");
        let row = sqlx::query(&sql)
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(backend(OP))?;
        row.map(|r| to_session(OP, &r)).transpose()
    }

    async fn update_session(
        &self,
        id: SessionId,
        source_code: &str,
        language: Option<&str>,
    ) -> Result<Option<Session>, StoreError> {
        const OP: &str = "update_session";
        let sql = format!(
            "UPDATE sessions SET source_code = ?2, language = COALESCE(?3, language), \
             updated_at = ?4 WHERE id = ?1 RETURNING {SESSION_COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(id.to_string())
            .bind(source_code)
            .bind(language)
            .bind(now_ms().timestamp_millis())
            .fetch_optional(&self.pool)
            .await
            .map_err(backend(OP))?;
        row.map(|r| to_session(OP, &r)).transpose()
    }

    async fn create_execution(&self, new: NewExecution) -> Result<CreatedExecution, StoreError> {
        const OP: &str = "create_execution";
        let session = new.session_id.to_string();
        for _ in 0..KEY_RACE_TRIES {
            let mut tx = self
                .pool
                .begin_with("BEGIN IMMEDIATE")
                .await
                .map_err(backend(OP))?;
            if let Some(key) = &new.idempotency_key {
                if let Some(existing) = execution_by_key(&mut tx, key).await? {
                    return resolve_existing(existing, new.session_id);
                }
            }
            let snapshot: Option<(String, String)> =
                sqlx::query_as("SELECT language, source_code FROM sessions WHERE id = ?1")
                    .bind(&session)
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
                 idempotency_key, attempts, queued_at) VALUES (?1, ?2, ?3, ?4, 'QUEUED', ?5, 0, ?6) \
                 ON CONFLICT (idempotency_key) DO NOTHING",
            )
            .bind(exec.id.to_string())
            .bind(&session)
            .bind(&exec.language)
            .bind(&exec.source_code)
            .bind(&exec.idempotency_key)
            .bind(exec.queued_at.timestamp_millis())
            .execute(&mut *tx)
            .await
            .map_err(backend(OP))?;
            if inserted.rows_affected() == 0 {
                // Another writer took the key between our lookup and insert: look again.
                continue;
            }
            if new.enqueue_job {
                sqlx::query("INSERT INTO jobs (execution_id, attempts, run_at) VALUES (?1, 0, ?2)")
                    .bind(exec.id.to_string())
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
        let sql = format!("SELECT {EXECUTION_COLUMNS} FROM executions WHERE id = ?1");
        let row = sqlx::query(&sql)
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(backend(OP))?;
        row.map(|r| to_execution(OP, &r)).transpose()
    }

    async fn list_executions(
        &self,
        session_id: SessionId,
        limit: u32,
        before: Option<ExecutionId>,
    ) -> Result<Vec<Execution>, StoreError> {
        const OP: &str = "list_executions";
        let sql = format!(
            "SELECT {EXECUTION_COLUMNS} FROM executions WHERE session_id = ?1 \
             AND (?2 IS NULL OR id < ?2) ORDER BY id DESC LIMIT ?3"
        );
        let rows = sqlx::query(&sql)
            .bind(session_id.to_string())
            .bind(before.map(|b| b.to_string()))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(backend(OP))?;
        rows.iter().map(|r| to_execution(OP, r)).collect()
    }

    async fn start_execution(&self, id: ExecutionId, attempt: i32) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE executions SET status = 'RUNNING', attempts = ?2, started_at = ?3 \
             WHERE id = ?1 AND (status = 'QUEUED' OR (status = 'RUNNING' AND attempts < ?2))",
        )
        .bind(id.to_string())
        .bind(attempt)
        .bind(now_ms().timestamp_millis())
        .execute(&self.pool)
        .await
        .map_err(backend("start_execution"))?;
        Ok(done.rows_affected() > 0)
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
        let done = sqlx::query(
            "UPDATE executions SET status = ?3, stdout = ?4, stderr = ?5, execution_time_ms = ?6, \
             error_message = ?7, error_type = ?8, exit_code = ?9, signal = ?10, \
             cpu_time_ms = ?11, memory_kb = ?12, finished_at = ?13 \
             WHERE id = ?1 AND status = 'RUNNING' AND attempts = ?2",
        )
        .bind(id.to_string())
        .bind(attempt)
        .bind(result.status.as_str())
        .bind(&result.stdout)
        .bind(&result.stderr)
        .bind(result.execution_time_ms)
        .bind(&result.error_message)
        .bind(result.error_type.map(|e| e.as_str()))
        .bind(result.exit_code)
        .bind(result.signal)
        .bind(result.cpu_time_ms)
        .bind(result.memory_kb)
        .bind(now_ms().timestamp_millis())
        .execute(&self.pool)
        .await
        .map_err(backend(OP))?;
        Ok(done.rows_affected() > 0)
    }

    async fn requeue_execution(&self, id: ExecutionId, attempt: i32) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE executions SET status = 'QUEUED' \
             WHERE id = ?1 AND status = 'RUNNING' AND attempts = ?2",
        )
        .bind(id.to_string())
        .bind(attempt)
        .execute(&self.pool)
        .await
        .map_err(backend("requeue_execution"))?;
        Ok(done.rows_affected() > 0)
    }

    async fn fail_execution(&self, id: ExecutionId, message: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE executions SET status = 'FAILED', error_type = 'InternalError', \
             error_message = ?2, finished_at = ?3 \
             WHERE id = ?1 AND status IN ('QUEUED', 'RUNNING')",
        )
        .bind(id.to_string())
        .bind(message)
        .bind(now_ms().timestamp_millis())
        .execute(&self.pool)
        .await
        .map_err(backend("fail_execution"))?;
        Ok(done.rows_affected() > 0)
    }

    async fn list_unfinished(
        &self,
        queued_before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<(ExecutionId, Status, i32)>, StoreError> {
        const OP: &str = "list_unfinished";
        let rows: Vec<(String, String, i32)> = sqlx::query_as(
            "SELECT id, status, attempts FROM executions \
             WHERE status IN ('QUEUED', 'RUNNING') AND queued_at < ?1 \
             ORDER BY queued_at, id LIMIT ?2",
        )
        .bind(queued_before.timestamp_millis())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(backend(OP))?;
        rows.into_iter()
            .map(|(id, status, attempts)| {
                let id = parse_uuid("id", &id).map_err(backend(OP))?;
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
