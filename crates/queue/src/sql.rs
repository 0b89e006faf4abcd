//! The database-backed [`JobQueue`], written once over sqlx for SQLite and PostgreSQL.
//!
//! [`SqlQueue`] holds a pool on the store's database and works its `jobs` table (created by the
//! store's migrations, filled by the store in the execution's own transaction). Everything but
//! the claim is the same statement in both backends; a [`Dialect`] says what differs: how an
//! execution id is stored, whose clock "now" is (this machine's in SQLite, the database
//! server's in PostgreSQL), the name of the two-argument maximum, and the claim itself, which
//! each backend makes safe against concurrent workers its own way. SQL text uses `$N`
//! placeholders, which both drivers accept.
//!
//! **Fairness.** A claim does not take the oldest due job of the whole table: it first
//! chooses an *owner* (the API key a job belongs to, `jobs.owner`, `''` for none) among those
//! with a due, unleased job: the one with the fewest running jobs (unexpired leases), then the
//! one served longest ago (`queue_owners.served`, a counter bumped by every claim; never served
//! goes first), then the one whose next job is oldest. It then takes that owner's oldest due
//! job, so one owner's jobs stay first come, first served. A burst of one key therefore delays
//! another key's job by at most one claim per other owner with work, not by the burst. The
//! owners with jobs are found by a loose index scan of `jobs (owner, run_at, execution_id)`,
//! one index probe per owner, so a claim costs O(owners with jobs · log jobs), whatever the
//! length of one owner's backlog ([`fair_choice_sql`]). Retries and releases update the row in
//! place, so a job keeps its owner.

use crate::{new_token, port_err, QueueError};
use async_trait::async_trait;
use livexec_core::{ExecutionId, Job, JobQueue, Lease, Owner, PortError};
use sqlx::{Database, Decode, Encode, Executor, FromRow, IntoArguments, Pool, Type};
use std::future::Future;
use std::time::Duration;

/// What one backend does differently; everything else of the queue is shared.
pub(crate) trait Dialect: Database {
    /// The backend's name in errors.
    const BACKEND: &'static str;
    /// The SQL function that returns the larger of two values.
    const GREATEST: &'static str;
    /// How an execution id is stored and bound.
    type Id: for<'q> Encode<'q, Self>
        + for<'r> Decode<'r, Self>
        + Type<Self>
        + Send
        + Sync
        + Unpin
        + 'static;

    /// An execution id as bound to a query.
    fn id(id: ExecutionId) -> Self::Id;
    /// An execution id read back.
    fn read_id(stored: Self::Id) -> Result<ExecutionId, QueueError>;
    /// The SQL for the time (unix ms) `after` from now, given the placeholder `param` that is
    /// bound to [`Dialect::from_now_arg`]`(after)`.
    fn from_now_sql(param: &str) -> String;
    /// The value bound to the placeholder of [`Dialect::from_now_sql`].
    fn from_now_arg(after: Duration) -> i64;
    /// How many rows a statement changed.
    fn rows_affected(done: &Self::QueryResult) -> u64;
    /// Lease the next due job to `worker` for `lease_for` under `token`, fairly between owners
    /// (the module's doc): increment its attempts, record its owner as served, and return its
    /// id and attempt number, or `None` when no job is due and unleased.
    fn claim<'a>(
        pool: &'a Pool<Self>,
        worker: &'a str,
        lease_for: Duration,
        token: &'a str,
    ) -> impl Future<Output = Result<Option<(Self::Id, i32)>, sqlx::Error>> + Send + 'a;
}

/// Common table expressions (for a `WITH RECURSIVE`) ending in `chosen (owner)`: the one owner
/// whose due job the claim takes next, or no row when no job is due and unleased. `now` is the
/// SQL expression of the current time in unix ms (a placeholder or a scalar subquery).
///
/// `owners` walks the distinct owners of `jobs` one index probe at a time (a loose index scan:
/// `GROUP BY owner` would read every row); `candidates` gives each its running jobs, its last
/// service and the due time of its next job.
pub(crate) fn fair_choice_sql(now: &str) -> String {
    format!(
        "owners (owner) AS ( \
             SELECT MIN(owner) FROM jobs \
             UNION ALL \
             SELECT (SELECT MIN(o2.owner) FROM jobs o2 WHERE o2.owner > owners.owner) \
             FROM owners WHERE owners.owner IS NOT NULL), \
         candidates AS ( \
             SELECT o.owner, \
                 (SELECT COUNT(*) FROM jobs l \
                  WHERE l.owner = o.owner AND l.lease_until > {now}) AS busy, \
                 q.served, \
                 (SELECT d.run_at FROM jobs d \
                  WHERE d.owner = o.owner AND d.run_at <= {now} \
                      AND (d.lease_until IS NULL OR d.lease_until <= {now}) \
                  ORDER BY d.run_at, d.execution_id LIMIT 1) AS next_at \
             FROM owners o LEFT JOIN queue_owners q ON q.owner = o.owner \
             WHERE o.owner IS NOT NULL), \
         chosen AS ( \
             SELECT owner FROM candidates WHERE next_at IS NOT NULL \
             ORDER BY busy, served ASC NULLS FIRST, next_at, owner LIMIT 1)"
    )
}

/// A [`JobQueue`] on the `jobs` table of a migrated store database:
/// [`SqliteQueue`](crate::SqliteQueue) or [`PgQueue`](crate::PgQueue). Cheap to clone (it shares
/// the pool). A claim serves, among the owners with a due job, the one with the fewest running
/// jobs, then the one served longest ago (never served first), and takes its oldest due job.
#[derive(Debug)]
pub struct SqlQueue<DB: Database> {
    pool: Pool<DB>,
}

/// Clones share the pool (derived `Clone` would ask for `DB: Clone`).
impl<DB: Database> Clone for SqlQueue<DB> {
    fn clone(&self) -> Self {
        SqlQueue {
            pool: self.pool.clone(),
        }
    }
}

impl<DB: Database> SqlQueue<DB> {
    /// A queue on the pool of a migrated store database (`SqliteStore::pool()` or
    /// `PgStore::pool()`).
    pub fn new(pool: Pool<DB>) -> Self {
        SqlQueue { pool }
    }
}

#[async_trait]
impl<DB> JobQueue for SqlQueue<DB>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'r> (bool,): FromRow<'r, DB::Row>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
{
    fn enqueued_by_store(&self) -> bool {
        true
    }

    async fn enqueue(&self, execution_id: ExecutionId, owner: Owner) -> Result<(), PortError> {
        let sql = format!(
            "INSERT INTO jobs (execution_id, attempts, run_at, owner) VALUES ($1, 0, {}, $3) \
             ON CONFLICT (execution_id) DO NOTHING",
            DB::from_now_sql("$2")
        );
        sqlx::query(&sql)
            .bind(DB::id(execution_id))
            .bind(DB::from_now_arg(Duration::ZERO))
            .bind(owner.map(|o| o.to_string()).unwrap_or_default())
            .execute(&self.pool)
            .await
            .map_err(|e| port_err(DB::BACKEND, "enqueue", e))?;
        Ok(())
    }

    async fn claim(&self, worker: &str, lease_for: Duration) -> Result<Option<Lease>, PortError> {
        let token = new_token();
        let row = DB::claim(&self.pool, worker, lease_for, &token)
            .await
            .map_err(|e| port_err(DB::BACKEND, "claim", e))?;
        let Some((id, attempt)) = row else {
            return Ok(None);
        };
        let execution_id = DB::read_id(id).map_err(|e| port_err(DB::BACKEND, "claim", e))?;
        Ok(Some(Lease {
            job: Job {
                execution_id,
                attempt,
            },
            token,
        }))
    }

    async fn extend(&self, lease: &Lease, lease_for: Duration) -> Result<bool, PortError> {
        let sql = format!(
            "UPDATE jobs SET lease_until = {} WHERE execution_id = $1 AND lease_token = $2",
            DB::from_now_sql("$3")
        );
        let done = sqlx::query(&sql)
            .bind(DB::id(lease.job.execution_id))
            .bind(lease.token.as_str())
            .bind(DB::from_now_arg(lease_for))
            .execute(&self.pool)
            .await
            .map_err(|e| port_err(DB::BACKEND, "extend", e))?;
        Ok(DB::rows_affected(&done) == 1)
    }

    async fn ack(&self, lease: &Lease) -> Result<(), PortError> {
        sqlx::query("DELETE FROM jobs WHERE execution_id = $1 AND lease_token = $2")
            .bind(DB::id(lease.job.execution_id))
            .bind(lease.token.as_str())
            .execute(&self.pool)
            .await
            .map_err(|e| port_err(DB::BACKEND, "ack", e))?;
        Ok(())
    }

    async fn retry(&self, lease: &Lease, delay: Duration) -> Result<(), PortError> {
        let sql = format!(
            "UPDATE jobs SET run_at = {}, lease_until = NULL, lease_token = NULL, worker = NULL \
             WHERE execution_id = $1 AND lease_token = $2",
            DB::from_now_sql("$3")
        );
        sqlx::query(&sql)
            .bind(DB::id(lease.job.execution_id))
            .bind(lease.token.as_str())
            .bind(DB::from_now_arg(delay))
            .execute(&self.pool)
            .await
            .map_err(|e| port_err(DB::BACKEND, "retry", e))?;
        Ok(())
    }

    async fn release(&self, lease: &Lease) -> Result<(), PortError> {
        let sql = format!(
            "UPDATE jobs SET run_at = {}, attempts = {}(attempts - 1, 0), lease_until = NULL, \
                 lease_token = NULL, worker = NULL \
             WHERE execution_id = $1 AND lease_token = $2",
            DB::from_now_sql("$3"),
            DB::GREATEST
        );
        sqlx::query(&sql)
            .bind(DB::id(lease.job.execution_id))
            .bind(lease.token.as_str())
            .bind(DB::from_now_arg(Duration::ZERO))
            .execute(&self.pool)
            .await
            .map_err(|e| port_err(DB::BACKEND, "release", e))?;
        Ok(())
    }

    async fn contains(&self, execution_id: ExecutionId) -> Result<bool, PortError> {
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM jobs WHERE execution_id = $1)")
            .bind(DB::id(execution_id))
            .fetch_one(&self.pool)
            .await
            .map_err(|e| port_err(DB::BACKEND, "contains", e))
    }

    async fn ping(&self) -> Result<(), PortError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(|e| port_err(DB::BACKEND, "ping", e))?;
        Ok(())
    }
}
