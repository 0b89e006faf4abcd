//! [`PgQueue`]: the `jobs` table in PostgreSQL, so a PostgreSQL deployment can run without Redis.
//!
//! The table is created by the store's migrations and filled by the store in the same
//! transaction as the execution. Workers on many machines claim with
//! `SELECT … FOR UPDATE SKIP LOCKED`, so they never wait on each other and never take the same
//! job. The claim first chooses the owner to serve (fairly between owners, see [`crate::sql`])
//! and takes that owner's oldest unlocked due job; when concurrent claims hold all of them, it
//! falls back to the oldest unlocked due job of anyone, so a worker never idles beside work. Times are unix milliseconds of the *database server's* clock, so every worker judges
//! leases on one clock whatever its own says. This module owns the PostgreSQL [`Dialect`] (the
//! claim and the clock); the other statements are shared ([`crate::sql`]).

use crate::sql::{fair_choice_sql, Dialect, SqlQueue};
use crate::{millis, QueueError};
use livexec_core::ExecutionId;
use sqlx::postgres::{PgPool, PgQueryResult};
use sqlx::Postgres;
use std::sync::LazyLock;
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

    async fn claim<'a>(
        pool: &'a PgPool,
        worker: &'a str,
        lease_for: Duration,
        token: &'a str,
    ) -> Result<Option<(Uuid, i32)>, sqlx::Error> {
        let row = claim_with(pool, &FAIR_CLAIM, worker, lease_for, token).await?;
        if row.is_some() {
            return Ok(row);
        }
        // The chosen owner's due jobs were all locked by concurrent claims (or none is due):
        // take the oldest unlocked due job of anyone rather than idle a worker.
        claim_with(pool, &ANY_CLAIM, worker, lease_for, token).await
    }
}

/// The fair claim statement ([`claim_sql`]), built once.
static FAIR_CLAIM: LazyLock<String> = LazyLock::new(|| claim_sql(true));
/// The fallback claim statement ([`claim_sql`]), built once.
static ANY_CLAIM: LazyLock<String> = LazyLock::new(|| claim_sql(false));

/// The claim statement: lease the oldest due job (of the owner [`fair_choice_sql`] chooses
/// when `fair`, else of anyone) and mark its owner served, in one statement. Rows locked by a
/// concurrent claim are skipped, not waited for; a row whose lease a concurrent claim just
/// took is re-checked against the WHERE clause after locking.
fn claim_sql(fair: bool) -> String {
    let now = "(SELECT ms FROM clock)";
    let owner_filter = if fair {
        "j.owner = (SELECT owner FROM chosen) AND"
    } else {
        ""
    };
    format!(
        "WITH RECURSIVE clock AS (SELECT {} AS ms), {}, \
         next AS ( \
             SELECT j.execution_id FROM jobs j \
             WHERE {owner_filter} j.run_at <= {now} \
                 AND (j.lease_until IS NULL OR j.lease_until <= {now}) \
             ORDER BY j.run_at, j.execution_id LIMIT 1 \
             FOR UPDATE OF j SKIP LOCKED), \
         claimed AS ( \
             UPDATE jobs SET attempts = jobs.attempts + 1, lease_until = clock.ms + $1, \
                 lease_token = $2, worker = $3 \
             FROM next, clock WHERE jobs.execution_id = next.execution_id \
             RETURNING jobs.execution_id, jobs.attempts, jobs.owner), \
         served AS ( \
             INSERT INTO queue_owners (owner, served) \
             SELECT claimed.owner, (SELECT COALESCE(MAX(served), 0) + 1 FROM queue_owners) \
             FROM claimed \
             ON CONFLICT (owner) DO UPDATE SET served = excluded.served) \
         SELECT execution_id, attempts FROM claimed",
        now_ms!(),
        fair_choice_sql(now),
    )
}

/// Run one claim statement.
async fn claim_with(
    pool: &PgPool,
    sql: &str,
    worker: &str,
    lease_for: Duration,
    token: &str,
) -> Result<Option<(Uuid, i32)>, sqlx::Error> {
    sqlx::query_as(sql)
        .bind(millis(lease_for))
        .bind(token)
        .bind(worker)
        .fetch_optional(pool)
        .await
}
