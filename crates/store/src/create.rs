//! What `create_execution` does when its insert inserted nothing: find out whether the
//! idempotency key already names an execution (that one is the answer, or a conflict with
//! another session), or the session does not exist.

use crate::dialect::Dialect;
use crate::rows::{backend, resolve_existing, RawExecution, EXECUTION_COLUMNS};
use livexec_core::{CreatedExecution, NewExecution, StoreError};
use sqlx::{Encode, Executor, FromRow, IntoArguments, Pool, Type};

/// Why `create_execution` inserted nothing: the execution its idempotency key already
/// names (or the conflict with another session), else `SessionNotFound`; `None` when
/// neither is visible yet (an idempotency race: look again).
pub(crate) async fn existing<DB>(
    pool: &Pool<DB>,
    op: &'static str,
    new: &NewExecution,
) -> Result<Option<Result<CreatedExecution, StoreError>>, StoreError>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'r> RawExecution<DB::Id, DB::Time>: FromRow<'r, DB::Row>,
    for<'r> (String, String): FromRow<'r, DB::Row>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
{
    if let Some(key) = &new.idempotency_key {
        let by_key =
            format!("SELECT {EXECUTION_COLUMNS} FROM executions WHERE idempotency_key = $1");
        let existing: Option<RawExecution<DB::Id, DB::Time>> = sqlx::query_as(&by_key)
            .bind(key.as_str())
            .fetch_optional(pool)
            .await
            .map_err(backend(op))?;
        if let Some(existing) = existing {
            return Ok(Some(resolve_existing(
                existing
                    .into_domain(DB::read_id, DB::read_time)
                    .map_err(backend(op))?,
                new.session_id,
            )));
        }
    }
    let session: Option<(String, String)> =
        sqlx::query_as("SELECT language, source_code FROM sessions WHERE id = $1")
            .bind(DB::id(new.session_id))
            .fetch_optional(pool)
            .await
            .map_err(backend(op))?;
    match session {
        None => Ok(Some(Err(StoreError::SessionNotFound(new.session_id)))),
        Some(_) => Ok(None),
    }
}
