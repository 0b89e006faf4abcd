//! [`SqliteQueue`]: the embedded durable queue, the `jobs` table of the store's SQLite database.
//!
//! The table is created by the store's migrations, and the store inserts a job in the same
//! transaction as its execution, so nothing accepted is ever lost between the two. A claim is a
//! single `UPDATE … RETURNING` statement: SQLite runs it under the database's write lock, so two
//! workers never claim the same job. Times are unix milliseconds of this machine's clock, the
//! same clock the store uses for `run_at`.

use crate::{millis, new_token, parse_execution_id, port_err};
use async_trait::async_trait;
use livexec_core::{ExecutionId, Job, JobQueue, Lease, PortError};
use sqlx::SqlitePool;
use std::time::Duration;

const BACKEND: &str = "sqlite queue";

/// The job queue in the store's SQLite database. Cheap to clone (it shares the pool).
#[derive(Debug, Clone)]
pub struct SqliteQueue {
    pool: SqlitePool,
}

impl SqliteQueue {
    /// A queue on the pool of a migrated store database (`SqliteStore::pool()`).
    pub fn new(pool: SqlitePool) -> Self {
        SqliteQueue { pool }
    }
}

/// Now, in unix milliseconds.
fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Execution ids are stored as hyphenated text.
fn id_text(id: ExecutionId) -> String {
    id.hyphenated().to_string()
}

#[async_trait]
impl JobQueue for SqliteQueue {
    fn enqueued_by_store(&self) -> bool {
        true
    }

    async fn enqueue(&self, execution_id: ExecutionId) -> Result<(), PortError> {
        sqlx::query(
            "INSERT INTO jobs (execution_id, attempts, run_at) VALUES (?1, 0, ?2) \
             ON CONFLICT (execution_id) DO NOTHING",
        )
        .bind(id_text(execution_id))
        .bind(now_ms())
        .execute(&self.pool)
        .await
        .map_err(|e| port_err(BACKEND, "enqueue", e))?;
        Ok(())
    }

    async fn claim(&self, worker: &str, lease_for: Duration) -> Result<Option<Lease>, PortError> {
        let now = now_ms();
        let token = new_token();
        // One statement: SQLite takes the write lock before it reads, so the subquery and the
        // update see the same state and no other writer can claim the row in between.
        let row: Option<(String, i32)> = sqlx::query_as(
            "UPDATE jobs SET attempts = attempts + 1, lease_until = ?2, lease_token = ?3, \
                 worker = ?4 \
             WHERE execution_id = ( \
                 SELECT execution_id FROM jobs \
                 WHERE run_at <= ?1 AND (lease_until IS NULL OR lease_until <= ?1) \
                 ORDER BY run_at, execution_id LIMIT 1) \
             AND run_at <= ?1 AND (lease_until IS NULL OR lease_until <= ?1) \
             RETURNING execution_id, attempts",
        )
        .bind(now)
        .bind(now.saturating_add(millis(lease_for)))
        .bind(&token)
        .bind(worker)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| port_err(BACKEND, "claim", e))?;
        let Some((id, attempt)) = row else {
            return Ok(None);
        };
        let execution_id = parse_execution_id(&id).map_err(|e| port_err(BACKEND, "claim", e))?;
        Ok(Some(Lease {
            job: Job {
                execution_id,
                attempt,
            },
            token,
        }))
    }

    async fn extend(&self, lease: &Lease, lease_for: Duration) -> Result<bool, PortError> {
        let done = sqlx::query(
            "UPDATE jobs SET lease_until = ?3 WHERE execution_id = ?1 AND lease_token = ?2",
        )
        .bind(id_text(lease.job.execution_id))
        .bind(&lease.token)
        .bind(now_ms().saturating_add(millis(lease_for)))
        .execute(&self.pool)
        .await
        .map_err(|e| port_err(BACKEND, "extend", e))?;
        Ok(done.rows_affected() == 1)
    }

    async fn ack(&self, lease: &Lease) -> Result<(), PortError> {
        sqlx::query("DELETE FROM jobs WHERE execution_id = ?1 AND lease_token = ?2")
            .bind(id_text(lease.job.execution_id))
            .bind(&lease.token)
            .execute(&self.pool)
            .await
            .map_err(|e| port_err(BACKEND, "ack", e))?;
        Ok(())
    }

    async fn retry(&self, lease: &Lease, delay: Duration) -> Result<(), PortError> {
        sqlx::query(
            "UPDATE jobs SET run_at = ?3, lease_until = NULL, lease_token = NULL, worker = NULL \
             WHERE execution_id = ?1 AND lease_token = ?2",
        )
        .bind(id_text(lease.job.execution_id))
        .bind(&lease.token)
        .bind(now_ms().saturating_add(millis(delay)))
        .execute(&self.pool)
        .await
        .map_err(|e| port_err(BACKEND, "retry", e))?;
        Ok(())
    }

    async fn release(&self, lease: &Lease) -> Result<(), PortError> {
        sqlx::query(
            "UPDATE jobs SET run_at = ?3, attempts = MAX(attempts - 1, 0), lease_until = NULL, \
                 lease_token = NULL, worker = NULL \
             WHERE execution_id = ?1 AND lease_token = ?2",
        )
        .bind(id_text(lease.job.execution_id))
        .bind(&lease.token)
        .bind(now_ms())
        .execute(&self.pool)
        .await
        .map_err(|e| port_err(BACKEND, "release", e))?;
        Ok(())
    }

    async fn contains(&self, execution_id: ExecutionId) -> Result<bool, PortError> {
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM jobs WHERE execution_id = ?1)")
            .bind(id_text(execution_id))
            .fetch_one(&self.pool)
            .await
            .map_err(|e| port_err(BACKEND, "contains", e))
    }

    async fn ping(&self) -> Result<(), PortError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(|e| port_err(BACKEND, "ping", e))?;
        Ok(())
    }
}
