//! `POST /code-sessions/:id/run`: snapshot the session into a queued execution.
//!
//! The store creates the execution (and, for the embedded queue, its job) in one transaction,
//! honouring the idempotency key. A separate queue (Redis) is then told about it, bounded by
//! `enqueue_timeout`; if that fails the client still gets 200, because the execution is
//! durable in the database and the reconciler enqueues executions that have no job.
//!
//! With `?wait=true` (and optionally `timeout_ms`) the answer waits for the execution to end:
//! 200 with the execution object of API.md §4 when it is over, 202 with the execution as it
//! stands when the wait runs out first. The wait is capped at the execution's time limit plus
//! [`livexec_events::WAIT_MARGIN`]. Idempotency is the same with and without `wait`: a repeated
//! key waits on the original execution. Both answers carry `Location: /executions/:id`.

use crate::auth::Authed;
use crate::error::{ApiError, StoreResultExt};
use crate::extract::{JsonObject, PathId, QueryMap};
use crate::response_memory::Holder;
use crate::validate::{self, Problems};
use crate::{owned, run_body, run_files, AppState, OnShutdown};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use livexec_core::{
    Caller, CreatedExecution, Execution, ExecutionId, NewExecution, RunOptions, Session, Status,
};
use livexec_events::{wait_budget, wait_for_finish, Known, WaitOutcome};
use serde::Serialize;

/// The answer to a run.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RunAccepted {
    #[schema(value_type = uuid::Uuid)]
    pub(crate) execution_id: ExecutionId,
    pub(crate) status: Status,
}

/// The run options of a body (API.md §10), within the caller's maxima (the server's, with its
/// tier's below them); a request file that collides with the `session`'s files or main file is
/// refused, and the tier's caps replace the defaults of the session's runtime where those are
/// higher.
fn options(
    state: &AppState,
    caller: &Caller,
    session: &Session,
    body: &serde_json::Map<String, serde_json::Value>,
) -> Result<RunOptions, ApiError> {
    let maxima = state.maxima_for(caller);
    let mut problems = Problems::default();
    let mut options = run_body::options(body, &maxima, &state.runtimes, &mut problems);
    problems.unknown_properties(body, run_body::OPTION_KEYS);
    if !options.files.is_empty() {
        let rt = state.runtimes.get(&session.language);
        run_files::check_files_with(
            &options.files,
            &session.files,
            rt.map(|rt| rt.file_name.as_str()).unwrap_or_default(),
            rt.and_then(|rt| rt.compile.as_ref()),
            &maxima,
            0,
            &mut problems,
        );
    }
    state.clamp_limits(caller, &session.language, &mut options.limits);
    problems.finish(|| options)
}

/// Queue a run of the session's current code (with the options of the body, if any); with
/// `?wait=true`, answer when it is over.
#[utoipa::path(post, path = "/code-sessions/{id}/run", tag = "executions",
    params(
        ("id" = uuid::Uuid, Path, description = "Session id"),
        ("wait" = Option<bool>, Query, description = "Answer when the execution is over"),
        ("timeout_ms" = Option<u64>, Query, description = "Longest wait, ms (capped)"),
        ("Idempotency-Key" = Option<String>, Header, description = "Repeat-safe key"),
    ),
    request_body(content = Option<livexec_core::RunOptions>,
        description = "Optional run options: stdin, test cases, limits, files"),
    responses(
        (status = 200, description = "Queued (without wait), or finished (with wait)",
            body = RunAccepted),
        (status = 202, description = "With wait: not over yet; the execution as it stands",
            body = livexec_core::ExecutionView),
        (status = 400, description = "Bad body, query, header or id", body = crate::error::ErrorBody),
        (status = 404, description = "No such session", body = crate::error::ErrorBody),
        (status = 413, description = "Body over the configured limit", body = crate::error::ErrorBody),
        (status = 422, description = "The idempotency key belongs to another session", body = crate::error::ErrorBody),
        (status = 429, description = "Over a rate limit or quota of the key's tier", body = crate::error::ErrorBody),
        (status = 503, description = "With wait: the answer does not fit the server's memory for large answers now (the execution is kept); retry after `Retry-After`", body = crate::error::ErrorBody),
    ))]
pub async fn run(
    State(state): State<AppState>,
    PathId(session_id): PathId,
    QueryMap(query): QueryMap,
    OnShutdown(stop): OnShutdown,
    Authed(caller): Authed,
    headers: HeaderMap,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    tracing::debug!(target: "livexec::path", session_id = ?session_id, "run request in");
    let key = validate::idempotency_key(&headers)?;
    let query = validate::run_query(&query)?;
    // Read first: another key's session is unknown to this caller, and must not be run (nor
    // an idempotent replay of it answered).
    let session = owned::session(&state, &caller, session_id).await?;
    let options = options(&state, &caller, &session, &body)?;
    let by_store = state.queue.enqueued_by_store();
    let new = NewExecution {
        session_id,
        idempotency_key: key.clone(),
        enqueue_job: by_store,
        options,
        owner: caller.owner(),
    };
    let created = state
        .store
        .create_execution_within(new, &state.quota_for(&caller))
        .await
        .for_idempotency_key(key.as_deref())?;
    respond(&state, created, query, stop, Holder::of(&caller)).await
}

/// After an execution was created (or found by its key): hand it to a separate queue when
/// new, then answer `{execution_id, status}`, or with `?wait=true` the execution once over.
pub(crate) async fn respond(
    state: &AppState,
    created: CreatedExecution,
    query: validate::RunQuery,
    stop: livexec_events::StopSignal,
    holder: Holder,
) -> Result<Response, ApiError> {
    let execution = created.execution;
    if created.created {
        tracing::info!(execution_id = %execution.id, session_id = ?execution.session_id, status = %execution.status, "execution queued");
        if !state.queue.enqueued_by_store() {
            enqueue(state, &execution).await;
        }
    }
    if !query.wait {
        return Ok(Json(RunAccepted {
            execution_id: execution.id,
            status: execution.status,
        })
        .into_response());
    }
    let budget = wait_budget(query.timeout_ms, state.wait_limit(&execution));
    let id = execution.id;
    let known = match created.created {
        true => Known::JustCreated,
        false => Known::Existing,
    };
    let outcome = tokio::select! {
        outcome = wait_for_finish(
            state.store.as_ref(),
            state.events.as_ref(),
            execution.id,
            known,
            budget,
        ) => outcome?,
        // Shutting down: answer with the execution as it stands instead of holding it up.
        () = stop => {
            WaitOutcome::of(state.store.get_execution(execution.id).await?.unwrap_or(execution))
        }
    };
    tracing::debug!(target: "livexec::path", execution_id = %id, "wait over");
    answer(state, outcome, holder)
}

/// 200 with a finished execution, 202 with a pending one; `Location: /executions/:id`. A
/// large one within the memory of answers (503/429 when it does not fit).
fn answer(state: &AppState, outcome: WaitOutcome, holder: Holder) -> Result<Response, ApiError> {
    let (status, execution) = match outcome {
        WaitOutcome::Finished(e) => (StatusCode::OK, e),
        WaitOutcome::Pending(e) => (StatusCode::ACCEPTED, e),
    };
    let id = execution.id;
    let view = execution.into_view();
    let mut response = state.config.response_memory.answer(holder, status, &view)?;
    // Built from a UUID only, so always a valid header value.
    if let Ok(location) = HeaderValue::from_str(&format!("/executions/{id}")) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// Hand the execution to a separate queue; failures are logged, never returned.
pub(crate) async fn enqueue(state: &AppState, execution: &Execution) {
    let (id, owner) = (execution.id, execution.owner);
    let limit = state.config.enqueue_timeout;
    match tokio::time::timeout(limit, state.queue.enqueue(id, owner)).await {
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
