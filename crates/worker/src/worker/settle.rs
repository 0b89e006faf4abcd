//! How a claimed job is settled around its run: admitted (started) or turned away before it,
//! and afterwards its result recorded, its platform failure retried or given up, its job
//! acked.

use super::{PlatformFailure, Worker, PLATFORM_FAILED};
use crate::config::{retry_store, MAX_RECORD_BACKOFF};
use crate::WorkerError;
use livexec_core::ports::retry_backoff;
use livexec_core::{Execution, Lease, RunResult, Status};
use livexec_events::Publisher;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::watch;
use tracing::{debug, error, info, warn};

/// Message of an execution whose finished result could not be written after
/// `record_attempts` writes.
pub const RESULT_LOST: &str = "The program finished but its result could not be recorded";

impl Worker {
    /// Start a claimed job's execution: `Some` (now RUNNING under this attempt, with the
    /// snapshot to run) to run it; `None` when the job was settled without running it.
    ///
    /// The usual job (a QUEUED execution within its attempts, no shutdown under way) costs
    /// one statement: the guarded start returns the execution. Anything else is sorted out
    /// after reading it: unknown or finished → acked; attempts exhausted → FAILED; shutting
    /// down → handed back unrun; owned by a newer attempt → acked.
    pub(super) async fn admit(
        &self,
        lease: &Lease,
        shutdown: &watch::Receiver<bool>,
    ) -> Result<Option<Execution>, WorkerError> {
        let id = lease.job.execution_id;
        let attempt = lease.job.attempt;
        let store_err = |source| WorkerError::Store {
            execution_id: id,
            source,
        };
        if attempt <= self.config.max_attempts && !*shutdown.borrow() {
            if let Some(exec) = self
                .store
                .start_execution(id, attempt)
                .await
                .map_err(store_err)?
            {
                return Ok(Some(exec));
            }
        }
        let Some(exec) = self.store.get_execution(id).await.map_err(store_err)? else {
            warn!(execution_id = %id, "job for an unknown execution; dropping it");
            self.ack(lease).await?;
            return Ok(None);
        };
        if exec.status.is_terminal() {
            debug!(execution_id = %id, status = %exec.status, "already finished; acking");
            self.ack(lease).await?;
            return Ok(None);
        }
        if attempt > self.config.max_attempts {
            self.give_up(lease, PLATFORM_FAILED).await?;
            if let Some(bus) = &self.events {
                Publisher::start_attempt(Arc::clone(bus), id, attempt)
                    .finish(Status::Failed)
                    .await;
            }
            return Ok(None);
        }
        if *shutdown.borrow() {
            info!(execution_id = %id, status = %Status::Queued, "shutting down; handed back unrun");
            self.queue
                .release(lease)
                .await
                .map_err(|source| WorkerError::Queue {
                    execution_id: id,
                    op: "release",
                    source,
                })?;
            return Ok(None);
        }
        let started = self
            .store
            .start_execution(id, attempt)
            .await
            .map_err(store_err)?;
        if started.is_none() {
            debug!(execution_id = %id, attempt, "a newer attempt owns it; acking");
            self.ack(lease).await?;
        }
        Ok(started)
    }

    /// Record the result; `Some(status)` when it was recorded (the caller then acks the job).
    ///
    /// The finished result is written until a write succeeds: a failed write is retried as a
    /// write (backoff from `record_backoff`, doubling up to [`MAX_RECORD_BACKOFF`]) while the
    /// caller keeps the lease, never by running the program again. After `record_attempts`
    /// failed writes the execution is ended FAILED/`InternalError` with
    /// [`RESULT_LOST`] (a short, fixed message that any backend stores), so the job is settled
    /// rather than re-run on lease expiry. A lease lost meanwhile stops the writes: another
    /// attempt owns the execution.
    pub(super) async fn record(
        &self,
        lease: &Lease,
        result: &RunResult,
        lost: &AtomicBool,
    ) -> Result<Option<Status>, WorkerError> {
        let id = lease.job.execution_id;
        let attempt = lease.job.attempt;
        let store_err = |source| WorkerError::Store {
            execution_id: id,
            source,
        };
        let mut pause = self.config.record_backoff;
        let mut failed: u32 = 0;
        let recorded = loop {
            match self.store.finish_execution(id, attempt, result).await {
                Ok(recorded) => break recorded,
                Err(e) if lost.load(Ordering::SeqCst) => return Err(store_err(e)),
                Err(e) => {
                    failed += 1;
                    if failed >= self.config.record_attempts.max(1) {
                        error!(execution_id = %id, attempt, error = %e, writes = failed, "the result could not be recorded; ending the execution without it");
                        retry_store(|| self.store.fail_execution(id, RESULT_LOST))
                            .await
                            .map_err(store_err)?;
                        return Ok(Some(Status::Failed));
                    }
                    warn!(execution_id = %id, attempt, error = %e, writes = failed, "recording the result failed; writing it again");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(MAX_RECORD_BACKOFF);
                }
            }
        };
        if !recorded {
            warn!(execution_id = %id, attempt, "result not recorded: another attempt owns the execution");
            return Ok(None);
        }
        info!(
            execution_id = %id,
            attempt,
            status = %result.status,
            ms = result.report.execution_time_ms,
            error_type = result.report.error_type.map(|t| t.as_str()),
            "execution finished"
        );
        Ok(Some(result.status))
    }

    pub(super) async fn platform_failure(
        &self,
        lease: &Lease,
        failure: PlatformFailure,
    ) -> Result<Option<Status>, WorkerError> {
        let id = lease.job.execution_id;
        let attempt = lease.job.attempt;
        match &failure {
            PlatformFailure::Executor(e) => {
                warn!(execution_id = %id, attempt, error = %e, "the program could not be run")
            }
            PlatformFailure::Panicked(e) => {
                error!(execution_id = %id, attempt, error = %e, "the executor panicked")
            }
        }
        // A request the sandbox refuses as such (a file it cannot write, a NUL in an
        // argument) would be refused again: failed at once, saying why.
        if let PlatformFailure::Executor(e) = &failure {
            if e.is_permanent() {
                let message = format!("The sandbox refused this request: {e}");
                self.give_up(lease, &message).await?;
                return Ok(Some(Status::Failed));
            }
        }
        if attempt >= self.config.max_attempts {
            self.give_up(lease, PLATFORM_FAILED).await?;
            return Ok(Some(Status::Failed));
        }
        let store_err = |source| WorkerError::Store {
            execution_id: id,
            source,
        };
        retry_store(|| self.store.requeue_execution(id, attempt))
            .await
            .map_err(store_err)?;
        let delay = retry_backoff(attempt);
        self.queue
            .retry(lease, delay)
            .await
            .map_err(|source| WorkerError::Queue {
                execution_id: id,
                op: "retry",
                source,
            })?;
        info!(execution_id = %id, attempt, status = %Status::Queued, retry_in_ms = delay.as_millis() as u64, "execution will be retried");
        Ok(None)
    }

    /// Retries exhausted, or no retry can help: FAILED/`InternalError` with `message`, then
    /// drop the job.
    async fn give_up(&self, lease: &Lease, message: &str) -> Result<(), WorkerError> {
        let id = lease.job.execution_id;
        retry_store(|| self.store.fail_execution(id, message))
            .await
            .map_err(|source| WorkerError::Store {
                execution_id: id,
                source,
            })?;
        info!(execution_id = %id, attempt = lease.job.attempt, status = %Status::Failed, error_type = "InternalError", reason = message, "execution failed");
        self.ack(lease).await
    }

    pub(super) async fn ack(&self, lease: &Lease) -> Result<(), WorkerError> {
        self.queue
            .ack(lease)
            .await
            .map_err(|source| WorkerError::Queue {
                execution_id: lease.job.execution_id,
                op: "ack",
                source,
            })
    }
}
