//! The worker: claim a job, run its execution in the sandbox, record the result. One
//! [`Worker::step`] that tests call to drain the queue deterministically, and one loop
//! ([`Worker::run`]) that the service runs with a concurrency and a shutdown signal.

use crate::command::{command_for, effective_limits};
use crate::config::retry_store;
use crate::stages::{run_staged, staged_result, Staged};
use crate::{Wakeup, WorkerConfig, WorkerError};
use livexec_core::ports::retry_backoff;
use livexec_core::{EventBus, Execution, JobQueue, Lease, RunResult, Status, Store};
use livexec_events::{Publisher, PublisherHandle};
use livexec_runtimes::Resolved;
use livexec_sandbox::{Sandbox, SandboxError, Stream};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tracing::{debug, error, info, warn};

/// Message recorded when the platform could not run an execution, after its retries.
const PLATFORM_FAILED: &str = "The platform could not run this program";

/// Claims jobs and runs them. Holds no state of its own beyond its configuration.
pub struct Worker {
    store: Arc<dyn Store>,
    queue: Arc<dyn JobQueue>,
    sandbox: Arc<Sandbox>,
    runtimes: HashMap<String, Arc<Resolved>>,
    config: WorkerConfig,
    events: Option<Arc<dyn EventBus>>,
    wakeup: Option<Wakeup>,
}

/// What ended one attempt that did not produce a program result.
enum PlatformFailure {
    Sandbox(SandboxError),
    Panicked(String),
    NoRuntime,
}

impl Worker {
    /// A worker over these ports, this sandbox and these resolved runtimes (by runtime id).
    pub fn new(
        store: Arc<dyn Store>,
        queue: Arc<dyn JobQueue>,
        sandbox: Arc<Sandbox>,
        runtimes: HashMap<String, Resolved>,
        config: WorkerConfig,
    ) -> Self {
        Worker {
            store,
            queue,
            sandbox,
            runtimes: runtimes
                .into_iter()
                .map(|(k, v)| (k, Arc::new(v)))
                .collect(),
            config,
            events: None,
            wakeup: None,
        }
    }

    /// Idle loops also wake when `wakeup` rings (see [`crate::WakeStore`]), not only every
    /// `idle_poll`.
    pub fn with_wakeup(mut self, wakeup: Wakeup) -> Self {
        self.wakeup = Some(wakeup);
        self
    }

    /// Also publish each execution's status changes and output chunks, live, on `bus`.
    pub fn with_events(mut self, bus: Arc<dyn EventBus>) -> Self {
        self.events = Some(bus);
        self
    }

    /// This worker's configuration.
    pub fn config(&self) -> &WorkerConfig {
        &self.config
    }

    /// Keeps `per_runtime` sandboxes prepared ahead of need for every runtime's run stage,
    /// with the limits its runs get ([`Sandbox::keep_warm`]; runtimes of the same mounts and
    /// limits share them): a run then only hands its code to a waiting jail. A compile stage
    /// (hundreds of ms) builds its jail on the spot. `0` builds every jail on the spot.
    pub fn keep_warm(&self, per_runtime: usize) -> Result<(), SandboxError> {
        for rt in self.runtimes.values() {
            let limits = effective_limits(&self.config.limits, &rt.run.limits);
            self.sandbox
                .keep_warm(&command_for(rt, "", &[], &[], limits), per_runtime)?;
        }
        Ok(())
    }

    /// Claim at most one job and carry it to its end (recorded, retried or handed back).
    /// `Ok(false)` when the queue had nothing runnable.
    pub async fn step(&self) -> Result<bool, WorkerError> {
        let (_tx, rx) = watch::channel(false);
        self.step_until(&rx).await
    }

    /// [`Worker::step`], handing the job back unrun if `shutdown` is set before it starts.
    pub async fn step_until(&self, shutdown: &watch::Receiver<bool>) -> Result<bool, WorkerError> {
        let claimed = self
            .queue
            .claim(&self.config.worker_id, self.config.lease)
            .await
            .map_err(|source| WorkerError::Claim { source })?;
        let Some(lease) = claimed else {
            return Ok(false);
        };
        self.process(lease, shutdown).await?;
        Ok(true)
    }

    /// Run `concurrency` loops of [`Worker::step_until`] until `shutdown` becomes true, then
    /// return once every program that had started has finished and been recorded.
    pub async fn run(self: Arc<Self>, concurrency: usize, shutdown: watch::Receiver<bool>) {
        let mut tasks = tokio::task::JoinSet::new();
        for slot in 0..concurrency.max(1) {
            let worker = Arc::clone(&self);
            let shutdown = shutdown.clone();
            tasks.spawn(async move { worker.run_slot(slot, shutdown).await });
        }
        while let Some(res) = tasks.join_next().await {
            if let Err(e) = res {
                error!(error = %e, "worker loop panicked");
            }
        }
        info!(worker = %self.config.worker_id, "worker stopped");
    }

    async fn run_slot(&self, slot: usize, mut shutdown: watch::Receiver<bool>) {
        let mut failures: u32 = 0;
        while !*shutdown.borrow() {
            let pause = match self.step_until(&shutdown).await {
                Ok(true) => {
                    failures = 0;
                    continue;
                }
                Ok(false) => {
                    failures = 0;
                    self.config.idle_poll
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    warn!(slot, error = %e, "worker step failed; backing off");
                    Duration::from_millis(200u64.saturating_mul(1 << failures.min(5)))
                }
            };
            let rung = async {
                match &self.wakeup {
                    Some(w) => w.notified().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = rung => {}
                _ = shutdown.changed() => {}
            }
        }
        debug!(slot, "worker slot stopped claiming");
    }

    async fn process(
        &self,
        lease: Lease,
        shutdown: &watch::Receiver<bool>,
    ) -> Result<(), WorkerError> {
        let id = lease.job.execution_id;
        let attempt = lease.job.attempt;
        let store_err = |source| WorkerError::Store {
            execution_id: id,
            source,
        };
        let Some(exec) = self.store.get_execution(id).await.map_err(store_err)? else {
            warn!(execution_id = %id, "job for an unknown execution; dropping it");
            return self.ack(&lease).await;
        };
        if exec.status.is_terminal() {
            debug!(execution_id = %id, status = %exec.status, "already finished; acking");
            return self.ack(&lease).await;
        }
        if attempt > self.config.max_attempts {
            self.give_up(&lease).await?;
            if let Some(bus) = &self.events {
                Publisher::start_attempt(Arc::clone(bus), id, attempt)
                    .finish(Status::Failed)
                    .await;
            }
            return Ok(());
        }
        if *shutdown.borrow() {
            info!(execution_id = %id, status = %Status::Queued, "shutting down; handed back unrun");
            return self
                .queue
                .release(&lease)
                .await
                .map_err(|source| WorkerError::Queue {
                    execution_id: id,
                    op: "release",
                    source,
                });
        }
        if !self
            .store
            .start_execution(id, attempt)
            .await
            .map_err(store_err)?
        {
            debug!(execution_id = %id, attempt, "a newer attempt owns it; acking");
            return self.ack(&lease).await;
        }
        let waited = (chrono::Utc::now() - exec.queued_at).num_milliseconds();
        info!(execution_id = %id, attempt, status = %Status::Running, queued_ms = waited, language = %exec.language, "execution started");
        let publisher = self
            .events
            .as_ref()
            .map(|bus| Publisher::start_attempt(Arc::clone(bus), id, attempt));
        if let Some(p) = &publisher {
            p.handle().status(Status::Running);
        }
        let lost = Arc::new(AtomicBool::new(false));
        let keeper = self.keep_lease(lease.clone(), Arc::clone(&lost));
        let ran = self
            .run_program(&exec, publisher.as_ref().map(Publisher::handle))
            .await;
        keeper.abort();
        if lost.load(Ordering::SeqCst) {
            warn!(execution_id = %id, attempt, "lease lost while running; result discarded");
            if let Some(p) = publisher {
                p.close().await;
            }
            return Ok(());
        }
        let ended = match ran {
            Ok(staged) => {
                let result = staged_result(&staged);
                self.record(&lease, &result).await
            }
            Err(failure) => self.platform_failure(&lease, failure).await,
        };
        if let Some(p) = publisher {
            match ended {
                Ok(Some(status)) => {
                    p.finish(status).await;
                }
                _ => {
                    p.handle().status(Status::Queued);
                    p.close().await;
                }
            }
        }
        ended.map(|_| ())
    }

    /// Extend the lease every third of its length until aborted; flag `lost` if it is lost.
    fn keep_lease(&self, lease: Lease, lost: Arc<AtomicBool>) -> tokio::task::JoinHandle<()> {
        let queue = Arc::clone(&self.queue);
        let every = self.config.lease / 3;
        let lease_for = self.config.lease;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                match queue.extend(&lease, lease_for).await {
                    Ok(true) => {}
                    Ok(false) => {
                        lost.store(true, Ordering::SeqCst);
                        return;
                    }
                    Err(e) => {
                        warn!(execution_id = %lease.job.execution_id, error = %e, "lease extension failed; will retry")
                    }
                }
            }
        })
    }

    async fn run_program(
        &self,
        exec: &Execution,
        live: Option<PublisherHandle>,
    ) -> Result<Staged, PlatformFailure> {
        let rt = Arc::clone(
            self.runtimes
                .get(&exec.language)
                .ok_or(PlatformFailure::NoRuntime)?,
        );
        let defaults = self.config.limits.clone();
        let source = exec.source_code.clone();
        let sandbox = Arc::clone(&self.sandbox);
        let joined = tokio::task::spawn_blocking(move || {
            run_staged(
                &sandbox,
                &rt,
                &defaults,
                &source,
                &[],
                &mut |stream, chunk| {
                    if let Some(live) = &live {
                        match stream {
                            Stream::Stdout => live.stdout(chunk),
                            Stream::Stderr => live.stderr(chunk),
                        }
                    }
                },
            )
        })
        .await;
        match joined {
            Ok(Ok(staged)) => Ok(staged),
            Ok(Err(e)) => Err(PlatformFailure::Sandbox(e)),
            Err(e) => Err(PlatformFailure::Panicked(e.to_string())),
        }
    }

    /// Record the result; `Some(status)` when it was recorded (then the job is acked).
    async fn record(
        &self,
        lease: &Lease,
        result: &RunResult,
    ) -> Result<Option<Status>, WorkerError> {
        let id = lease.job.execution_id;
        let attempt = lease.job.attempt;
        let recorded = retry_store(|| self.store.finish_execution(id, attempt, result))
            .await
            .map_err(|source| WorkerError::Store {
                execution_id: id,
                source,
            })?;
        if !recorded {
            warn!(execution_id = %id, attempt, "result not recorded: another attempt owns the execution");
            return Ok(None);
        }
        info!(
            execution_id = %id,
            attempt,
            status = %result.status,
            ms = result.execution_time_ms,
            error_type = result.error_type.map(|t| t.as_str()),
            "execution finished"
        );
        self.ack(lease).await?;
        Ok(Some(result.status))
    }

    async fn platform_failure(
        &self,
        lease: &Lease,
        failure: PlatformFailure,
    ) -> Result<Option<Status>, WorkerError> {
        let id = lease.job.execution_id;
        let attempt = lease.job.attempt;
        match &failure {
            PlatformFailure::Sandbox(e) => {
                warn!(execution_id = %id, attempt, error = %e, "sandbox failed")
            }
            PlatformFailure::Panicked(e) => {
                error!(execution_id = %id, attempt, error = %e, "sandbox thread panicked")
            }
            PlatformFailure::NoRuntime => {
                warn!(execution_id = %id, attempt, "runtime not available on this worker")
            }
        }
        if attempt >= self.config.max_attempts {
            self.give_up(lease).await?;
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

    /// Retries exhausted: FAILED/`InternalError`, then drop the job.
    async fn give_up(&self, lease: &Lease) -> Result<(), WorkerError> {
        let id = lease.job.execution_id;
        retry_store(|| self.store.fail_execution(id, PLATFORM_FAILED))
            .await
            .map_err(|source| WorkerError::Store {
                execution_id: id,
                source,
            })?;
        info!(execution_id = %id, attempt = lease.job.attempt, status = %Status::Failed, error_type = "InternalError", "execution failed: attempts exhausted");
        self.ack(lease).await
    }

    async fn ack(&self, lease: &Lease) -> Result<(), WorkerError> {
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
