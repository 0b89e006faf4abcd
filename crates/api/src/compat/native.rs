//! The native side of every adapter: one run of some code, created exactly as the one-shot
//! `POST /executions` creates it (a queued execution without a session), and a wait for its
//! end.

use crate::validate::Problems;
use crate::{run_files, AppState};
use livexec_core::{Caller, Execution, ExecutionId, NewOneShot, RunOptions, StoreError};
use livexec_events::{wait_budget, wait_for_finish, EventsError, Known, StopSignal, WaitOutcome};

/// Why a run could not be created or waited for: the request's own problem
/// ([`NativeError::Invalid`]), else a platform failure.
#[derive(Debug, thiserror::Error)]
pub enum NativeError {
    /// The request cannot run as it stands (its files, arguments or source): the caller's
    /// error, which each surface answers in its own client's shape. Nothing was created.
    #[error("{}", messages.join("; "))]
    Invalid {
        /// What is wrong, each naming the field (`files[1].name`, `args[0]`).
        messages: Vec<String>,
        /// Every problem is one of size (the files' total): a 413 rather than a 400.
        too_large: bool,
    },
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
///
/// First the checks every surface shares ([`run_files::check_decoded`]), so that no surface
/// can queue what the sandbox would refuse (and the worker retry in vain):
/// [`NativeError::Invalid`]. `files_from` is the index the surface gives `options.files[0]`
/// in its own request, for the messages.
pub async fn submit(
    state: &AppState,
    language: &str,
    source_code: &str,
    options: RunOptions,
    caller: &Caller,
    files_from: usize,
) -> Result<Execution, NativeError> {
    if let Some(rt) = state.runtimes.get(language) {
        let mut p = Problems::default();
        run_files::check_decoded(
            source_code,
            &options,
            &rt.file_name,
            rt.compile.as_ref(),
            &state.maxima_for(caller),
            files_from,
            &mut p,
        );
        if let Some((messages, too_large)) = p.into_list() {
            return Err(NativeError::Invalid {
                messages,
                too_large,
            });
        }
    }
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
