//! The database-backed [`JobQueue`], written once over sqlx for SQLite and PostgreSQL.
//!
//! [`SqlQueue`] holds a pool on the store's database and works its `jobs` table (created by the
//! store's migrations, filled by the store in the execution's own transaction). Everything but
//! the claim is the same statement in both backends; a [`Dialect`] says what differs: how an
//! execution id is stored, whose clock "now" is (this machine's in SQLite, the database
//! server's in PostgreSQL), the name of the two-argument maximum, and the claim itself, which
//! each backend makes safe against concurrent workers its own way. SQL text uses `$N`
//! placeholders, which both drivers accept.

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
    /// Lease the next due job to `worker` for `lease_for` under `token`: increment its attempts
    /// and return its id and attempt number, or `None` when no job is due and unleased.
    fn claim<'a>(
        pool: &'a Pool<Self>,
        worker: &'a str,
        lease_for: Duration,
        token: &'a str,
    ) -> impl Future<Output = Result<Option<(Self::Id, i32)>, sqlx::Error>> + Send + 'a;
}

/// A [`JobQueue`] on the `jobs` table of a migrated store database:
/// [`SqliteQueue`](crate::SqliteQueue) or [`PgQueue`](crate::PgQueue). Cheap to clone (it shares
/// the pool).
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
