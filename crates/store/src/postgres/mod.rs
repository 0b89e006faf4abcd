//! The scaled store: PostgreSQL.
//!
//! Ids are UUID, times are timestamptz (written at millisecond precision), output is BYTEA. An
//! idempotency-key race is settled by the unique constraint: the loser's
//! `INSERT … ON CONFLICT DO NOTHING` waits for the winner to commit, inserts nothing, and the
//! loser then reads and returns the winner's execution.

mod decode;

use crate::rows::{
    backend, new_execution, now_ms, parse_status, resolve_existing, DataError, EXECUTION_COLUMNS,
    SESSION_COLUMNS,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use decode::{to_execution, to_session};
use livexec_core::{
    CreatedExecution, Execution, ExecutionId, NewExecution, RunResult, Session, SessionId, Status,
    Store, StoreError,
};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::PgConnection;
use std::time::Duration;
use uuid::Uuid;

/// How long to wait for a pooled connection before failing.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);
/// How many times `create_execution` retries after losing an idempotency-key race.
const KEY_RACE_TRIES: usize = 5;

/// The embedded migrations of the PostgreSQL schema.
pub(crate) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// [`Store`] on a PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connect to `url` (`postgres://user@host:5432/db`) and run the migrations.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let pool = open_pool(url).await?;
        MIGRATOR.run(&pool).await.map_err(backend("migrate"))?;
        Ok(PgStore { pool })
    }

    /// The connection pool (for a database-backed queue on the same `jobs` table).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

/// Open a pool on `url`; no migrations.
pub(crate) async fn open_pool(url: &str) -> Result<PgPool, StoreError> {
    PgPoolOptions::new()
        .max_connections(10)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect(url)
        .await
        .map_err(backend("connect"))
}

async fn execution_by_key(
    conn: &mut PgConnection,
    key: &str,
) -> Result<Option<Execution>, StoreError> {
    const OP: &str = "create_execution";
    let sql = format!("SELECT {EXECUTION_COLUMNS} FROM executions WHERE idempotency_key = $1");
    let row = sqlx::query(&sql)
        .bind(key)
        .fetch_optional(&mut *conn)
        .await
        .map_err(backend(OP))?;
    row.map(|r| to_execution(OP, &r)).transpose()
}

#[async_trait]
impl Store for PgStore {
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
        .bind(id)
        .bind(language)
        .bind(source_code)
        .bind(now)
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
        let row = sqlx::query(&sql)
            .bind(id)
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
            "UPDATE sessions SET source_code = $2, language = COALESCE($3, language), \
             updated_at = $4 WHERE id = $1 RETURNING {SESSION_COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(id)
            .bind(source_code)
            .bind(language)
            .bind(now_ms())
            .fetch_optional(&self.pool)
            .await
            .map_err(backend(OP))?;
        row.map(|r| to_session(OP, &r)).transpose()
    }

    async fn create_execution(&self, new: NewExecution) -> Result<CreatedExecution, StoreError> {
        const OP: &str = "create_execution";
        let session = new.session_id;
        for _ in 0..KEY_RACE_TRIES {
            let mut tx = self.pool.begin().await.map_err(backend(OP))?;
            if let Some(key) = &new.idempotency_key {
                if let Some(existing) = execution_by_key(&mut tx, key).await? {
                    return resolve_existing(existing, new.session_id);
                }
            }
            let snapshot: Option<(String, String)> =
                sqlx::query_as("SELECT language, source_code FROM sessions WHERE id = $1")
                    .bind(session)
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
            .bind(exec.id)
            .bind(session)
            .bind(&exec.language)
            .bind(&exec.source_code)
            .bind(&exec.idempotency_key)
            .bind(exec.queued_at)
            .execute(&mut *tx)
            .await
            .map_err(backend(OP))?;
            if inserted.rows_affected() == 0 {
                // Another writer took the key between our lookup and insert: look again.
                continue;
            }
            if new.enqueue_job {
                sqlx::query("INSERT INTO jobs (execution_id, attempts, run_at) VALUES ($1, 0, $2)")
                    .bind(exec.id)
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
        let row = sqlx::query(&sql)
            .bind(id)
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
            "SELECT {EXECUTION_COLUMNS} FROM executions WHERE session_id = $1 \
             AND ($2::uuid IS NULL OR id < $2) ORDER BY id DESC LIMIT $3"
        );
        let rows = sqlx::query(&sql)
            .bind(session_id)
            .bind(before)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(backend(OP))?;
        rows.iter().map(|r| to_execution(OP, r)).collect()
    }

    async fn start_execution(&self, id: ExecutionId, attempt: i32) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE executions SET status = 'RUNNING', attempts = $2, started_at = $3 \
             WHERE id = $1 AND (status = 'QUEUED' OR (status = 'RUNNING' AND attempts < $2))",
        )
        .bind(id)
        .bind(attempt)
        .bind(now_ms())
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
            "UPDATE executions SET status = $3, stdout = $4, stderr = $5, execution_time_ms = $6, \
             error_message = $7, error_type = $8, exit_code = $9, signal = $10, \
             cpu_time_ms = $11, memory_kb = $12, finished_at = $13 \
             WHERE id = $1 AND status = 'RUNNING' AND attempts = $2",
        )
        .bind(id)
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
        .bind(now_ms())
        .execute(&self.pool)
        .await
        .map_err(backend(OP))?;
        Ok(done.rows_affected() > 0)
    }

    async fn requeue_execution(&self, id: ExecutionId, attempt: i32) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE executions SET status = 'QUEUED' \
             WHERE id = $1 AND status = 'RUNNING' AND attempts = $2",
        )
        .bind(id)
        .bind(attempt)
        .execute(&self.pool)
        .await
        .map_err(backend("requeue_execution"))?;
        Ok(done.rows_affected() > 0)
    }

    async fn fail_execution(&self, id: ExecutionId, message: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE executions SET status = 'FAILED', error_type = 'InternalError', \
             error_message = $2, finished_at = $3 \
             WHERE id = $1 AND status IN ('QUEUED', 'RUNNING')",
        )
        .bind(id)
        .bind(message)
        .bind(now_ms())
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
        let rows: Vec<(Uuid, String, i32)> = sqlx::query_as(
            "SELECT id, status, attempts FROM executions \
             WHERE status IN ('QUEUED', 'RUNNING') AND queued_at < $1 \
             ORDER BY queued_at, id LIMIT $2",
        )
        .bind(queued_before)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(backend(OP))?;
        rows.into_iter()
            .map(|(id, status, attempts)| {
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
