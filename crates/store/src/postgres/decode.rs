//! Decoding PostgreSQL rows (UUID ids, timestamptz times) into domain values; bad data becomes a
//! [`StoreError::Backend`] naming the operation, never a panic.

use crate::rows::{backend, DecodeError, RawExecution};
use livexec_core::{Execution, Session, StoreError};
use sqlx::postgres::PgRow;
use sqlx::Row;

fn decode_execution(row: &PgRow) -> Result<RawExecution, DecodeError> {
    Ok(RawExecution {
        id: row.try_get("id")?,
        session_id: row.try_get("session_id")?,
        language: row.try_get("language")?,
        source_code: row.try_get("source_code")?,
        status: row.try_get("status")?,
        stdout: row.try_get("stdout")?,
        stderr: row.try_get("stderr")?,
        execution_time_ms: row.try_get("execution_time_ms")?,
        error_message: row.try_get("error_message")?,
        error_type: row.try_get("error_type")?,
        exit_code: row.try_get("exit_code")?,
        signal: row.try_get("signal")?,
        cpu_time_ms: row.try_get("cpu_time_ms")?,
        memory_kb: row.try_get("memory_kb")?,
        idempotency_key: row.try_get("idempotency_key")?,
        attempts: row.try_get("attempts")?,
        queued_at: row.try_get("queued_at")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
    })
}

pub(super) fn to_execution(op: &'static str, row: &PgRow) -> Result<Execution, StoreError> {
    decode_execution(row)
        .map_err(DecodeError::into_store(op))?
        .into_domain()
        .map_err(backend(op))
}

pub(super) fn to_session(op: &'static str, row: &PgRow) -> Result<Session, StoreError> {
    let decode = || -> Result<Session, sqlx::Error> {
        Ok(Session {
            id: row.try_get("id")?,
            language: row.try_get("language")?,
            source_code: row.try_get("source_code")?,
            status: row.try_get("status")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
            latest_execution_id: row.try_get("latest_execution_id")?,
        })
    };
    decode().map_err(backend(op))
}
