//! [`PgQueue`]: the `jobs` table in PostgreSQL, so a PostgreSQL deployment can run without Redis.
//!
//! The table is created by the store's migrations and filled by the store in the same
//! transaction as the execution. Workers on many machines claim with
//! `SELECT … FOR UPDATE SKIP LOCKED`, so they never wait on each other and never take the same
//! job. Times are unix milliseconds of the *database server's* clock, so every worker judges
//! leases on one clock whatever its own says. This module owns the PostgreSQL [`Dialect`] (the
//! claim and the clock); the other statements are shared ([`crate::sql`]).

use crate::sql::{Dialect, SqlQueue};
use crate::{millis, QueueError};
use livexec_core::ExecutionId;
use sqlx::postgres::{PgPool, PgQueryResult};
use sqlx::Postgres;
use std::future::Future;
use std::time::Duration;
use uuid::Uuid;

/// The job queue in the store's PostgreSQL database. Cheap to clone (it shares the pool).
pub type PgQueue = SqlQueue<Postgres>;

/// The database server's clock in unix milliseconds, as an SQL expression.
macro_rules! now_ms {
    () => {
        "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT"
    };
}

/// Native UUID ids; times read from the server's clock inside each statement.
impl Dialect for Postgres {
    const BACKEND: &'static str = "postgres queue";
    const GREATEST: &'static str = "GREATEST";
    type Id = Uuid;

    fn id(id: ExecutionId) -> Uuid {
        id
    }

    fn read_id(stored: Uuid) -> Result<ExecutionId, QueueError> {
        Ok(stored)
    }

    fn from_now_sql(param: &str) -> String {
        format!("{} + {param}", now_ms!())
    }

    fn from_now_arg(after: Duration) -> i64 {
        millis(after)
    }

    fn rows_affected(done: &PgQueryResult) -> u64 {
        done.rows_affected()
    }

    fn claim<'a>(
        pool: &'a PgPool,
        worker: &'a str,
        lease_for: Duration,
        token: &'a str,
    ) -> impl Future<Output = Result<Option<(Uuid, i32)>, sqlx::Error>> + Send + 'a {
        // Rows locked by a concurrent claim are skipped, not waited for; a row whose lease a
        // concurrent claim just took is re-checked against the WHERE clause after locking.
        sqlx::query_as(concat!(
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
        .bind(token)
        .bind(worker)
        .fetch_optional(pool)
    }
}
