//! [`PgQueue`]: the `jobs` table in PostgreSQL, so a PostgreSQL deployment can run without Redis.
//!
//! The table is created by the store's migrations and filled by the store in the same
//! transaction as the execution. Workers on many machines claim with
//! `SELECT … FOR UPDATE SKIP LOCKED`, so they never wait on each other and never take the same
//! job. Times are unix milliseconds of the *database server's* clock, so every worker judges
//! leases on one clock whatever its own says.

use crate::{millis, new_token, port_err};
use async_trait::async_trait;
use livexec_core::{ExecutionId, Job, JobQueue, Lease, PortError};
use sqlx::PgPool;
use std::time::Duration;
use uuid::Uuid;

const BACKEND: &str = "postgres queue";

/// The database server's clock in unix milliseconds, as an SQL expression.
macro_rules! now_ms {
    () => {
        "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT"
    };
}

/// The job queue in the store's PostgreSQL database. Cheap to clone (it shares the pool).
#[derive(Debug, Clone)]
pub struct PgQueue {
    pool: PgPool,
}

impl PgQueue {
    /// A queue on the pool of a migrated store database (`PgStore::pool()`).
    pub fn new(pool: PgPool) -> Self {
        PgQueue { pool }
    }
}

#[async_trait]
impl JobQueue for PgQueue {
    fn enqueued_by_store(&self) -> bool {
        true
    }

    async fn enqueue(&self, execution_id: ExecutionId) -> Result<(), PortError> {
        sqlx::query(concat!(
            "INSERT INTO jobs (execution_id, attempts, run_at) VALUES ($1, 0, ",
            now_ms!(),
            ") ON CONFLICT (execution_id) DO NOTHING"
        ))
        .bind(execution_id)
        .execute(&self.pool)
        .await
        .map_err(|e| port_err(BACKEND, "enqueue", e))?;
        Ok(())
    }

    async fn claim(&self, worker: &str, lease_for: Duration) -> Result<Option<Lease>, PortError> {
        let token = new_token();
        // Rows locked by a concurrent claim are skipped, not waited for; a row whose lease a
        // concurrent claim just took is re-checked against the WHERE clause after locking.
        let row: Option<(Uuid, i32)> = sqlx::query_as(concat!(
            "WITH clock AS (SELECT ",
            now_ms!(),
            " AS ms), next AS ( \
                 SELECT j.execution_id FROM jobs j, clock \
                 WHERE j.run_at <= clock.ms AND (j.lease_until IS NULL OR j.lease_until <= clock.ms) \
                 ORDER BY j.run_at, j.execution_id LIMIT 1 \
                 FOR UPDATE OF j SKIP LOCKED) \
             UPDATE jobs SET attempts = jobs.attempts + 1, lease_until = clock.ms + $1, \
                 lease_token = $2, worker = $3 \
             FROM next, clock WHERE jobs.execution_id = next.execution_id \
             RETURNING jobs.execution_id, jobs.attempts"
        ))
        .bind(millis(lease_for))
        .bind(&token)
        .bind(worker)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| port_err(BACKEND, "claim", e))?;
        Ok(row.map(|(execution_id, attempt)| Lease {
            job: Job {
                execution_id,
                attempt,
            },
            token,
        }))
    }

    async fn extend(&self, lease: &Lease, lease_for: Duration) -> Result<bool, PortError> {
        let done = sqlx::query(concat!(
            "UPDATE jobs SET lease_until = ",
            now_ms!(),
            " + $3 WHERE execution_id = $1 AND lease_token = $2"
        ))
        .bind(lease.job.execution_id)
        .bind(&lease.token)
        .bind(millis(lease_for))
        .execute(&self.pool)
        .await
        .map_err(|e| port_err(BACKEND, "extend", e))?;
        Ok(done.rows_affected() == 1)
    }

    async fn ack(&self, lease: &Lease) -> Result<(), PortError> {
        sqlx::query("DELETE FROM jobs WHERE execution_id = $1 AND lease_token = $2")
            .bind(lease.job.execution_id)
            .bind(&lease.token)
            .execute(&self.pool)
            .await
            .map_err(|e| port_err(BACKEND, "ack", e))?;
        Ok(())
    }

    async fn retry(&self, lease: &Lease, delay: Duration) -> Result<(), PortError> {
        sqlx::query(concat!(
            "UPDATE jobs SET run_at = ",
            now_ms!(),
            " + $3, lease_until = NULL, lease_token = NULL, worker = NULL \
             WHERE execution_id = $1 AND lease_token = $2"
        ))
        .bind(lease.job.execution_id)
        .bind(&lease.token)
        .bind(millis(delay))
        .execute(&self.pool)
        .await
        .map_err(|e| port_err(BACKEND, "retry", e))?;
        Ok(())
    }

    async fn release(&self, lease: &Lease) -> Result<(), PortError> {
        sqlx::query(concat!(
            "UPDATE jobs SET run_at = ",
            now_ms!(),
            ", attempts = GREATEST(attempts - 1, 0), lease_until = NULL, lease_token = NULL, \
               worker = NULL \
             WHERE execution_id = $1 AND lease_token = $2"
        ))
        .bind(lease.job.execution_id)
        .bind(&lease.token)
        .execute(&self.pool)
        .await
        .map_err(|e| port_err(BACKEND, "release", e))?;
        Ok(())
    }

    async fn contains(&self, execution_id: ExecutionId) -> Result<bool, PortError> {
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM jobs WHERE execution_id = $1)")
            .bind(execution_id)
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
