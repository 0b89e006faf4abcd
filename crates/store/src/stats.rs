//! Queries that report on many executions at once: the queue sample of the metrics and the
//! statistics of `GET /statistics`, all computed by the database (counts, shares,
//! nearest-rank percentiles with window functions, UTC days and hours from the dialect).

use crate::dialect::Dialect;
use crate::rows::backend;
use chrono::{DateTime, Utc};
use livexec_core::insight::{DayCount, ErrorTypeShare, HourCount, RunTimePercentiles};
use livexec_core::{QueueSample, Statistics, StoreError};
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

/// Finished: a terminal status (the same set as `Status::is_terminal`).
const FINISHED: &str = "status IN ('COMPLETED', 'FAILED', 'TIMEOUT')";

/// Executions accepted at or after `since`, added up.
pub(crate) async fn statistics<DB>(
    pool: &Pool<DB>,
    since: DateTime<Utc>,
) -> Result<Statistics, StoreError>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'r> (String, String, i64): FromRow<'r, DB::Row>,
    for<'r> (Option<String>, i64, f64): FromRow<'r, DB::Row>,
    for<'r> (String, i64, Option<i64>, Option<i64>): FromRow<'r, DB::Row>,
    for<'r> (i64, i64): FromRow<'r, DB::Row>,
{
    const OP: &str = "statistics";
    let day = DB::QUEUED_DAY;
    let hour = DB::QUEUED_HOUR;
    let per_day: Vec<(String, String, i64)> = sqlx::query_as(&format!(
        "SELECT {day} AS day, language, COUNT(*) FROM executions WHERE queued_at >= $1 \
         GROUP BY day, language ORDER BY day, language"
    ))
    .bind(DB::time(since))
    .fetch_all(pool)
    .await
    .map_err(backend(OP))?;
    let error_types: Vec<(Option<String>, i64, f64)> = sqlx::query_as(&format!(
        "SELECT error_type, COUNT(*), \
         CAST(COUNT(*) AS DOUBLE PRECISION) / CAST(SUM(COUNT(*)) OVER () AS DOUBLE PRECISION) \
         FROM executions WHERE queued_at >= $1 AND {FINISHED} \
         GROUP BY error_type ORDER BY COUNT(*) DESC, error_type"
    ))
    .bind(DB::time(since))
    .fetch_all(pool)
    .await
    .map_err(backend(OP))?;
    let run_time: Vec<(String, i64, Option<i64>, Option<i64>)> = sqlx::query_as(&format!(
        "SELECT language, MAX(n), \
         MIN(CASE WHEN rn >= 0.50 * n THEN ms END), MIN(CASE WHEN rn >= 0.95 * n THEN ms END) \
         FROM (SELECT language, CAST(execution_time_ms AS BIGINT) AS ms, \
                 ROW_NUMBER() OVER (PARTITION BY language ORDER BY execution_time_ms) AS rn, \
                 COUNT(*) OVER (PARTITION BY language) AS n \
               FROM executions WHERE queued_at >= $1 AND {FINISHED}) AS ranked \
         GROUP BY language ORDER BY language"
    ))
    .bind(DB::time(since))
    .fetch_all(pool)
    .await
    .map_err(backend(OP))?;
    let hours: Vec<(i64, i64)> = sqlx::query_as(&format!(
        "SELECT {hour} AS hour, COUNT(*) FROM executions WHERE queued_at >= $1 \
         GROUP BY hour ORDER BY COUNT(*) DESC, hour"
    ))
    .bind(DB::time(since))
    .fetch_all(pool)
    .await
    .map_err(backend(OP))?;
    let count = |n: i64| u64::try_from(n).unwrap_or(0);
    let per_day: Vec<DayCount> = per_day
        .into_iter()
        .map(|(day, language, n)| DayCount {
            day,
            language,
            executions: count(n),
        })
        .collect();
    let error_types: Vec<ErrorTypeShare> = error_types
        .into_iter()
        .map(|(error_type, n, rate)| ErrorTypeShare {
            error_type,
            executions: count(n),
            rate,
        })
        .collect();
    Ok(Statistics {
        since: livexec_core::model::rfc3339(since),
        total: per_day.iter().map(|d| d.executions).sum(),
        finished: error_types.iter().map(|e| e.executions).sum(),
        per_day,
        error_types,
        run_time: run_time
            .into_iter()
            .map(|(language, n, p50, p95)| RunTimePercentiles {
                language,
                executions: count(n),
                p50_ms: p50,
                p95_ms: p95,
            })
            .collect(),
        peak_hours: hours
            .into_iter()
            .map(|(h, n)| HourCount {
                hour: u8::try_from(h).unwrap_or(0),
                executions: count(n),
            })
            .collect(),
    })
}
