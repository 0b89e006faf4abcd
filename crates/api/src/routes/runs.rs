//! `POST /code-sessions/:id/run`: snapshot the session into a queued execution.
//!
//! The store creates the execution (and, for the embedded queue, its job) in one transaction,
//! honouring the idempotency key. A separate queue (Redis) is then told about it, bounded by
//! `enqueue_timeout`; if that fails the client still gets 200, because the execution is
//! durable in the database and the reconciler enqueues executions that have no job.

use crate::error::{ApiError, StoreResultExt};
use crate::extract::PathId;
use crate::validate;
use crate::AppState;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use livexec_core::{ExecutionId, NewExecution, Status};
use serde::Serialize;

/// The answer to a run.
#[derive(Debug, Serialize)]
pub struct RunAccepted {
    execution_id: ExecutionId,
    status: Status,
}

/// Queue a run of the session's current code.
pub async fn run(
    State(state): State<AppState>,
    PathId(session_id): PathId,
    headers: HeaderMap,
) -> Result<Json<RunAccepted>, ApiError> {
    let key = validate::idempotency_key(&headers)?;
    let by_store = state.queue.enqueued_by_store();
    let created = state
        .store
        .create_execution(NewExecution {
            session_id,
            idempotency_key: key.clone(),
            enqueue_job: by_store,
        })
        .await
        .for_idempotency_key(key.as_deref())?;
    let execution = created.execution;
    if created.created {
        tracing::info!(execution_id = %execution.id, %session_id, status = %execution.status, "execution queued");
        if !by_store {
            enqueue(&state, execution.id).await;
        }
    }
    Ok(Json(RunAccepted {
        execution_id: execution.id,
        status: execution.status,
    }))
}

/// Hand the execution to a separate queue; failures are logged, never returned.
async fn enqueue(state: &AppState, id: ExecutionId) {
    let limit = state.config.enqueue_timeout;
    match tokio::time::timeout(limit, state.queue.enqueue(id)).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => tracing::warn!(
            execution_id = %id,
            error = %err,
            "enqueue failed; the execution stays QUEUED in the database for the reconciler"
        ),
        Err(_) => tracing::warn!(
            execution_id = %id,
            timeout_ms = limit.as_millis() as u64,
            "enqueue timed out; the execution stays QUEUED in the database for the reconciler"
        ),
    }
}
