//! Waiting for an execution to finish: `POST /code-sessions/:id/run?wait=true`.
//!
//! The wait subscribes to the bus *before* reading the store, so a `Finished` published in
//! between is not missed; it then waits for `Finished` (or the budget) and answers from the
//! store. An execution the request itself just created needs no read before listening: every
//! event it ever had is still on the bus, which replays them to a new subscription. If the bus fails or the subscription is interrupted, it falls back to polling the
//! store every 100 ms until the budget runs out; while subscribed, a second without events
//! also re-reads the store (an execution failed by a reconciler publishes no `Finished`).

use crate::EventsError;
use futures::StreamExt;
use livexec_core::{EventBus, EventKind, Execution, ExecutionId, Store};
use std::time::Duration;
use tokio::time::Instant;

/// Added to the execution time limit to cap a wait (queueing and start-up).
pub const WAIT_MARGIN: Duration = Duration::from_secs(5);

/// Store polling interval when the bus cannot be used.
const POLL: Duration = Duration::from_millis(100);

/// While subscribed, the store is re-read after this long without an event.
const RECHECK: Duration = Duration::from_secs(1);

/// How long a `wait=true` request waits: `timeout_ms` when given, capped at the execution
/// time limit plus [`WAIT_MARGIN`]; that cap when not given.
pub fn wait_budget(requested_ms: Option<u64>, time_limit: Duration) -> Duration {
    let cap = time_limit + WAIT_MARGIN;
    requested_ms.map_or(cap, |ms| Duration::from_millis(ms).min(cap))
}

/// How a wait ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitOutcome {
    /// The execution is terminal (answer 200).
    Finished(Execution),
    /// The budget ran out first; the execution as it stands (answer 202).
    Pending(Execution),
}

impl WaitOutcome {
    /// The outcome for the execution as it stands: `Finished` when it is terminal.
    pub fn of(execution: Execution) -> WaitOutcome {
        if execution.status.is_terminal() {
            WaitOutcome::Finished(execution)
        } else {
            WaitOutcome::Pending(execution)
        }
    }
}

/// Reads an execution, mapping absence and failure to [`EventsError`].
pub(crate) async fn get_execution(
    store: &dyn Store,
    id: ExecutionId,
) -> Result<Execution, EventsError> {
    store
        .get_execution(id)
        .await
        .map_err(|source| EventsError::Store {
            op: "get_execution",
            id,
            source,
        })?
        .ok_or(EventsError::ExecutionNotFound { id })
}

/// What the waiting request knows of the execution it waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Known {
    /// The request created it: all its events are still on the bus (both buses replay from
    /// the first to a new subscription), so the wait listens without reading the store first.
    JustCreated,
    /// Anything else (an idempotent repeat): the store is read once subscribed.
    Existing,
}

/// Waits up to `budget` for execution `id` to reach a terminal state.
pub async fn wait_for_finish(
    store: &dyn Store,
    bus: &dyn EventBus,
    id: ExecutionId,
    known: Known,
    budget: Duration,
) -> Result<WaitOutcome, EventsError> {
    let deadline = Instant::now() + budget;
    let events = match tokio::time::timeout_at(deadline, bus.subscribe(id, 0)).await {
        Ok(Ok(events)) => Some(events),
        Ok(Err(e)) => {
            tracing::warn!(execution_id = %id, error = %e,
                "cannot subscribe to events; waiting by polling the store");
            None
        }
        Err(_) => None,
    };
    if known == Known::Existing || events.is_none() {
        let execution = get_execution(store, id).await?;
        if execution.status.is_terminal() {
            return Ok(WaitOutcome::Finished(execution));
        }
    }
    if let Some(mut events) = events {
        loop {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            let slice = deadline.min(now + RECHECK);
            match tokio::time::timeout_at(slice, events.next()).await {
                Ok(Some(event)) if matches!(event.kind, EventKind::Finished(_)) => break,
                Ok(Some(_)) => continue,
                // Interrupted: poll below.
                Ok(None) => break,
                // Quiet for a while: an execution ended without `Finished` (a reconciler
                // failing it) must not hold the wait to its budget.
                Err(_) => {
                    if get_execution(store, id).await?.status.is_terminal() {
                        break;
                    }
                }
            }
        }
    }
    loop {
        let outcome = WaitOutcome::of(get_execution(store, id).await?);
        let now = Instant::now();
        if matches!(outcome, WaitOutcome::Finished(_)) || now >= deadline {
            return Ok(outcome);
        }
        tokio::time::sleep(POLL.min(deadline - now)).await;
    }
}
