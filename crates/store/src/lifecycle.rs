//! Deletion, retention and usage (issue 13), written once for both backends.
//!
//! - Deletes are guarded in the database: an execution is deleted only by a statement that
//!   also requires it to be terminal, so a worker starting it at the same moment either wins
//!   (and the delete refuses with 409) or finds nothing to start. A session is locked first
//!   (PostgreSQL `FOR UPDATE`, SQLite's writing transaction), so no run of it can be created
//!   between the check for unfinished executions and the delete.
//! - Retention empties, in batches, what executions hold of their users (code, inputs,
//!   outputs) and deletes idle sessions; it marks nothing, and a row that was emptied no
//!   longer matches, so passes on several nodes at once only share the work.
//! - Usage is a rollup, `usage_daily`, that the database adds to in `finish_execution`'s own
//!   statement (the `usage_on_finish` trigger of both backends' migrations).

use crate::dialect::Dialect;
use crate::rows::{backend, parse_status, DataError};
use chrono::{DateTime, NaiveDate, Utc};
use livexec_core::{Deletion, Owner, Purged, StoreError, UsageRow, UsageScope};
use sqlx::{Encode, Executor, FromRow, IntoArguments, Pool, Transaction, Type};
use uuid::Uuid;

/// Finished: a terminal status (the same set as `Status::is_terminal`).
const FINISHED: &str = "status IN ('COMPLETED', 'FAILED', 'TIMEOUT')";
/// Not finished yet.
const UNFINISHED: &str = "status IN ('QUEUED', 'RUNNING')";

/// `usage_daily.owner` of an owner: the key id, `''` for none.
fn usage_owner(owner: Owner) -> String {
    owner.map(|o| o.to_string()).unwrap_or_default()
}

/// Delete execution `id` if it is finished (see [`livexec_core::Store::delete_execution`]).
pub(crate) async fn delete_execution<DB>(pool: &Pool<DB>, id: Uuid) -> Result<Deletion, StoreError>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'r> (String,): FromRow<'r, DB::Row>,
{
    const OP: &str = "delete_execution";
    let done = sqlx::query(&format!(
        "DELETE FROM executions WHERE id = $1 AND {FINISHED}"
    ))
    .bind(DB::id(id))
    .execute(pool)
    .await
    .map_err(backend(OP))?;
    if DB::rows_affected(&done) > 0 {
        return Ok(Deletion::Deleted);
    }
    // Not deleted: gone, or not finished (it cannot become unfinished again once terminal).
    let status: Option<(String,)> = sqlx::query_as("SELECT status FROM executions WHERE id = $1")
        .bind(DB::id(id))
        .fetch_optional(pool)
        .await
        .map_err(backend(OP))?;
    Ok(match status {
        None => Deletion::NotFound,
        Some((s,))
            if parse_status("status", &s)
                .map_err(backend(OP))?
                .is_terminal() =>
        {
            // Finished between the two statements: delete it now.
            return Box::pin(delete_execution(pool, id)).await;
        }
        Some(_) => Deletion::Unfinished(id),
    })
}

/// Delete session `id` and its executions unless one is unfinished (see
/// [`livexec_core::Store::delete_session`]).
pub(crate) async fn delete_session<DB>(pool: &Pool<DB>, id: Uuid) -> Result<Deletion, StoreError>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'r> (DB::Id,): FromRow<'r, DB::Row>,
{
    const OP: &str = "delete_session";
    let lock = DB::FOR_UPDATE;
    let mut tx: Transaction<'static, DB> = DB::begin_write(pool).await.map_err(backend(OP))?;
    // Locking the row keeps runs of the session out: creating one reads (PostgreSQL: key-share
    // locks) this row.
    let found: Option<(DB::Id,)> =
        sqlx::query_as(&format!("SELECT id FROM sessions WHERE id = $1 {lock}"))
            .bind(DB::id(id))
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend(OP))?;
    if found.is_none() {
        return Ok(Deletion::NotFound);
    }
    let busy: Option<(DB::Id,)> = sqlx::query_as(&format!(
        "SELECT id FROM executions WHERE session_id = $1 AND {UNFINISHED} ORDER BY id LIMIT 1"
    ))
    .bind(DB::id(id))
    .fetch_optional(&mut *tx)
    .await
    .map_err(backend(OP))?;
    if let Some((busy,)) = busy {
        let busy = DB::read_id("id", busy).map_err(backend(OP))?;
        return Ok(Deletion::Unfinished(busy));
    }
    // Executions and their jobs cascade; the deletes are explicit anyway, so nothing depends
    // on the foreign keys being enforced.
    sqlx::query("DELETE FROM executions WHERE session_id = $1")
        .bind(DB::id(id))
        .execute(&mut *tx)
        .await
        .map_err(backend(OP))?;
    sqlx::query("DELETE FROM sessions WHERE id = $1")
        .bind(DB::id(id))
        .execute(&mut *tx)
        .await
        .map_err(backend(OP))?;
    tx.commit().await.map_err(backend(OP))?;
    Ok(Deletion::Deleted)
}

/// One retention batch (see [`livexec_core::Store::purge_before`]).
pub(crate) async fn purge_before<DB>(
    pool: &Pool<DB>,
    before: DateTime<Utc>,
    limit: u32,
) -> Result<Purged, StoreError>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> Vec<u8>: Encode<'q, DB> + Type<DB>,
{
    const OP: &str = "purge_before";
    // What still holds anything of the user's; an emptied row no longer matches.
    let holds = "(source_code <> '' OR length(stdout) > 0 OR length(stderr) > 0 \
         OR options IS NOT NULL OR session_files IS NOT NULL OR compile IS NOT NULL \
         OR tests IS NOT NULL OR output_files IS NOT NULL)";
    let executions = sqlx::query(&format!(
        "UPDATE executions SET source_code = '', stdout = $3, stderr = $3, options = NULL, \
         session_files = NULL, compile = NULL, tests = NULL, output_files = NULL \
         WHERE id IN (SELECT id FROM executions WHERE finished_at < $1 AND {FINISHED} \
                      AND {holds} LIMIT $2)"
    ))
    .bind(DB::time(before))
    .bind(i64::from(limit))
    .bind(Vec::<u8>::new())
    .execute(pool)
    .await
    .map_err(backend(OP))?;
    // Idle sessions: not changed since `before`, nothing run since then, nothing unfinished.
    // Their executions go with them (usage stays in usage_daily).
    let idle = "SELECT s.id FROM sessions s WHERE s.updated_at < $1 AND NOT EXISTS \
         (SELECT 1 FROM executions e WHERE e.session_id = s.id \
          AND (e.queued_at >= $1 OR e.status IN ('QUEUED', 'RUNNING'))) LIMIT $2";
    let lock = DB::FOR_UPDATE;
    let mut tx: Transaction<'static, DB> = DB::begin_write(pool).await.map_err(backend(OP))?;
    // Lock them first (as delete_session does), so no run of them is created meanwhile; the
    // delete then checks again with what committed before the locks.
    sqlx::query(&format!("{idle} {lock}"))
        .bind(DB::time(before))
        .bind(i64::from(limit))
        .execute(&mut *tx)
        .await
        .map_err(backend(OP))?;
    let sessions = sqlx::query(&format!("DELETE FROM sessions WHERE id IN ({idle})"))
        .bind(DB::time(before))
        .bind(i64::from(limit))
        .execute(&mut *tx)
        .await
        .map_err(backend(OP))?;
    tx.commit().await.map_err(backend(OP))?;
    Ok(Purged {
        executions: DB::rows_affected(&executions),
        sessions: DB::rows_affected(&sessions),
    })
}

/// Usage per day and language (see [`livexec_core::Store::usage`]).
pub(crate) async fn usage<DB>(
    pool: &Pool<DB>,
    scope: UsageScope,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<UsageRow>, StoreError>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> i32: Encode<'q, DB> + Type<DB>,
    for<'r> (String, String, i64, i64, i64, i64): FromRow<'r, DB::Row>,
{
    const OP: &str = "usage";
    let (all, owner) = match scope {
        UsageScope::All => (1, String::new()),
        UsageScope::Owner(o) => (0, usage_owner(o)),
    };
    let rows: Vec<(String, String, i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT day, language, CAST(SUM(executions) AS BIGINT), CAST(SUM(cpu_ms) AS BIGINT), \
         CAST(SUM(wall_ms) AS BIGINT), CAST(SUM(memory_kib_ms) AS BIGINT) FROM usage_daily \
         WHERE day >= $1 AND day <= $2 AND ($3 = 1 OR owner = $4) \
         GROUP BY day, language ORDER BY day, language",
    )
    .bind(from.format("%Y-%m-%d").to_string())
    .bind(to.format("%Y-%m-%d").to_string())
    .bind(all)
    .bind(owner)
    .fetch_all(pool)
    .await
    .map_err(backend(OP))?;
    let count = |n: i64| u64::try_from(n).unwrap_or(0);
    rows.into_iter()
        .map(|(day, language, n, cpu, wall, mem)| {
            let day = NaiveDate::parse_from_str(&day, "%Y-%m-%d")
                .map_err(|_| backend(OP)(DataError::BadDay { value: day.clone() }))?;
            Ok(UsageRow {
                day,
                language,
                executions: count(n),
                cpu_ms: count(cpu),
                wall_ms: count(wall),
                memory_kib_ms: count(mem),
            })
        })
        .collect()
}
