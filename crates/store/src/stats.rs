//! Queries that report on many executions at once: the queue sample of the metrics.

use crate::dialect::Dialect;
use crate::rows::backend;
use livexec_core::{QueueSample, StoreError};
use sqlx::{Executor, FromRow, IntoArguments, Pool};

/// How many executions are QUEUED, and the acceptance time of the oldest.
pub(crate) async fn queue_sample<DB>(pool: &Pool<DB>) -> Result<QueueSample, StoreError>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'r> (i64, Option<DB::Time>): FromRow<'r, DB::Row>,
{
    const OP: &str = "queue_sample";
    let (queued, oldest): (i64, Option<DB::Time>) =
        sqlx::query_as("SELECT COUNT(*), MIN(queued_at) FROM executions WHERE status = 'QUEUED'")
            .fetch_one(pool)
            .await
            .map_err(backend(OP))?;
    let oldest_queued_at = oldest
        .map(|t| DB::read_time("queued_at", t))
        .transpose()
        .map_err(backend(OP))?;
    Ok(QueueSample {
        queued: u64::try_from(queued).unwrap_or(0),
        oldest_queued_at,
    })
}
