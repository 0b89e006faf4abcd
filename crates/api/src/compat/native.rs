//! The native side of every adapter: one run of some code, created exactly as the one-shot
//! `POST /executions` creates it (a queued execution without a session), and a wait for its
//! end.

use crate::AppState;
use livexec_core::{Caller, Execution, ExecutionId, NewOneShot, RunOptions, StoreError};
use livexec_events::{wait_budget, wait_for_finish, EventsError, Known, StopSignal, WaitOutcome};

/// Why a run could not be created or waited for (a platform failure, never the client's).
#[derive(Debug, thiserror::Error)]
pub enum NativeError {
    /// The store failed.
    #[error("store failed while creating the run: {0}")]
    Store(#[from] StoreError),
    /// Waiting for the end failed.
    #[error("waiting for execution {id} failed: {source}")]
    Wait {
        /// The execution waited for.
        id: ExecutionId,
        /// The event bus's or store's error.
        #[source]
        source: EventsError,
    },
}

/// Create a queued execution of `source_code` in runtime `language` (an id) with `options`
/// for `caller`: a one-shot run, exactly as `POST /executions` creates it (within the quotas
/// of the caller's tier: [`StoreError::QuotaExceeded`] when over one).
pub async fn submit(
    state: &AppState,
    language: &str,
    source_code: &str,
    options: RunOptions,
    caller: &Caller,
) -> Result<Execution, NativeError> {
    let by_store = state.queue.enqueued_by_store();
    let new = NewOneShot {
        language: language.to_owned(),
        source_code: source_code.to_owned(),
        idempotency_key: None,
        enqueue_job: by_store,
        options,
        owner: caller.owner(),
    };
    let created = state
        .store
        .create_one_shot_within(new, &state.quota_for(caller))
        .await?;
    let execution = created.execution;
    tracing::info!(execution_id = %execution.id, %language, "compat run queued");
    if !by_store {
        crate::routes::enqueue(state, &execution).await;
    }
    Ok(execution)
}

/// Wait for an execution this request just created to end, at most its time limit plus the
/// usual margin; the execution as it stands then. When `stop` resolves first (the server is
/// shutting down), the execution as it stands, as the native `?wait=true` does.
pub async fn wait(
    state: &AppState,
    execution: Execution,
    stop: StopSignal,
) -> Result<Execution, NativeError> {
    let budget = wait_budget(None, state.time_limit(&execution.language));
    let id = execution.id;
    let finish = wait_for_finish(
        state.store.as_ref(),
        state.events.as_ref(),
        id,
        Known::JustCreated,
        budget,
    );
    let outcome = tokio::select! {
        outcome = finish => outcome.map_err(|source| NativeError::Wait { id, source })?,
        () = stop => {
            let now = state.store.get_execution(id).await?;
            WaitOutcome::of(now.unwrap_or(execution))
        }
    };
    Ok(match outcome {
        WaitOutcome::Finished(e) | WaitOutcome::Pending(e) => e,
    })
}
