//! The reconciler: make sure every execution the store holds as unfinished has a job in the
//! queue. Needed when the queue is not the store's own table (Redis): Redis may lose its data,
//! or the process may crash between inserting an execution and enqueueing it.

use crate::WorkerError;
use livexec_core::{JobQueue, Status, Store};
use std::time::Duration;
use tokio::sync::watch;
use tracing::{info, warn};

/// Most executions looked at per pass.
const BATCH: u32 = 1000;

/// One pass: every QUEUED execution older than `older_than` with no job is enqueued again;
/// every RUNNING one with no job that started more than `running_stale_after` ago (its worker
/// died or lost its job) is put back to QUEUED and enqueued. Returns how many were enqueued.
pub async fn reconcile_once(
    store: &dyn Store,
    queue: &dyn JobQueue,
    older_than: Duration,
    running_stale_after: Duration,
) -> Result<usize, WorkerError> {
    let now = chrono::Utc::now();
    let cutoff = now - chrono::Duration::from_std(older_than).unwrap_or(chrono::Duration::zero());
    let unfinished = store
        .list_unfinished(cutoff, BATCH)
        .await
        .map_err(|source| WorkerError::Reconcile { source })?;
    let mut enqueued = 0;
    for unfinished in unfinished {
        let (id, status, attempt) = (unfinished.id, unfinished.status, unfinished.attempts);
        let has_job = queue
            .contains(id)
            .await
            .map_err(|source| WorkerError::Queue {
                execution_id: id,
                op: "contains",
                source,
            })?;
        if has_job {
            continue;
        }
        let store_err = |source| WorkerError::Store {
            execution_id: id,
            source,
        };
        if status == Status::Running {
            let Some(exec) = store.get_execution(id).await.map_err(store_err)? else {
                continue;
            };
            let stale = exec.started_at.is_some_and(|t| {
                (now - t).to_std().unwrap_or(Duration::ZERO) > running_stale_after
            });
            if !stale
                || !store
                    .requeue_execution(id, attempt)
                    .await
                    .map_err(store_err)?
            {
                continue;
            }
        }
        queue
            .enqueue(id, unfinished.owner)
            .await
            .map_err(|source| WorkerError::Queue {
                execution_id: id,
                op: "enqueue",
                source,
            })?;
        info!(execution_id = %id, status = "QUEUED", was = %status, "reconciler re-enqueued an execution that had no job");
        enqueued += 1;
    }
    Ok(enqueued)
}

/// [`reconcile_once`] every `every` until `shutdown` becomes true; failures are logged.
pub async fn reconcile_loop(
    store: std::sync::Arc<dyn Store>,
    queue: std::sync::Arc<dyn JobQueue>,
    every: Duration,
    older_than: Duration,
    running_stale_after: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    while !*shutdown.borrow() {
        match reconcile_once(&*store, &*queue, older_than, running_stale_after).await {
            Ok(0) => {}
            Ok(n) => info!(count = n, "reconciler pass re-enqueued executions"),
            Err(e) => warn!(error = %e, "reconciler pass failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => {}
        }
    }
}
