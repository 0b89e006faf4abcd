//! The worker: claim a job, run its execution through the [`Executor`], record the result. One
//! [`Worker::step`] that tests call to drain the queue deterministically, and one loop
//! ([`Worker::run`]) that the service runs with a concurrency and a shutdown signal. What
//! happens to a job before and after its run (admitting, recording, retrying, acking) is in
//! `settle`.

mod observe;
mod settle;

pub use settle::RESULT_LOST;

use crate::wake::ring_on_arrivals;
use crate::{Wakeup, WorkerConfig, WorkerError};
use livexec_core::{ErrorType, EventBus, Execution, JobQueue, Lease, RunResult, Status, Store};
use livexec_engine::{ExecError, Executor, Request};
use livexec_events::{Publisher, PublisherHandle};
use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::runtime::RuntimeFlavor;
use tokio::sync::watch;
use tracing::{debug, error, info, warn};

/// The `tracing` target of the request path's timestamps (debug level): with
/// `RUST_LOG=info,livexec::path=debug`, each step of a run between the request and the answer
/// is logged, so the log's timestamps (µs) decompose a run's latency.
const PATH: &str = "livexec::path";

/// Message recorded when the platform could not run an execution, after its retries.
const PLATFORM_FAILED: &str = "The platform could not run this program";

/// Claims jobs and runs them. Holds no state of its own beyond its configuration.
pub struct Worker {
    store: Arc<dyn Store>,
    queue: Arc<dyn JobQueue>,
    executor: Arc<dyn Executor>,
    config: WorkerConfig,
    events: Option<Arc<dyn EventBus>>,
    wakeup: Option<Wakeup>,
}

/// What ended one attempt that did not produce a program result.
enum PlatformFailure {
    Executor(ExecError),
    Panicked(String),
}

impl Worker {
    /// A worker over these ports that runs programs with `executor` (the real
    /// [`livexec_engine::Engine`], or a fake in tests).
    pub fn new(
        store: Arc<dyn Store>,
        queue: Arc<dyn JobQueue>,
        executor: Arc<dyn Executor>,
        config: WorkerConfig,
    ) -> Self {
        Worker {
            store,
            queue,
            executor,
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

    /// Keeps `per_runtime` sandboxes prepared ahead of need for every runtime's run stage
    /// ([`Executor::keep_warm`]): a run then only hands its code to a waiting jail. `0`
    /// builds every jail on the spot.
    pub fn keep_warm(&self, per_runtime: usize) -> Result<(), ExecError> {
        self.executor.keep_warm(per_runtime)
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
        debug!(target: PATH, execution_id = %lease.job.execution_id, "claimed");
        self.process(lease, shutdown).await?;
        Ok(true)
    }

    /// Run `concurrency` loops of [`Worker::step_until`] until `shutdown` becomes true, then
    /// return once every program that had started has finished, been recorded and had its
    /// jail torn down.
    ///
    /// Idle loops wait for the next poll, for the [`crate::Wakeup`] of [`Worker::with_wakeup`],
    /// and for the queue's [`JobQueue::arrivals`] when it has them (jobs enqueued by other
    /// processes), whichever comes first.
    pub async fn run(self: Arc<Self>, concurrency: usize, shutdown: watch::Receiver<bool>) {
        let concurrency = concurrency.max(1);
        livexec_telemetry::worker_slots(concurrency);
        let wakeup = self.wakeup.clone().unwrap_or_default();
        let mut tasks = tokio::task::JoinSet::new();
        // Before the first claims: a job enqueued after them is an arrival.
        if let Some(arrivals) = self.queue.arrivals().await {
            let (wakeup, shutdown) = (wakeup.clone(), shutdown.clone());
            tasks.spawn(ring_on_arrivals(arrivals, wakeup, concurrency, shutdown));
        }
        for slot in 0..concurrency {
            let worker = Arc::clone(&self);
            let (wakeup, shutdown) = (wakeup.clone(), shutdown.clone());
            tasks.spawn(async move { worker.run_slot(slot, &wakeup, shutdown).await });
        }
        while let Some(res) = tasks.join_next().await {
            if let Err(e) = res {
                error!(error = %e, "worker loop panicked");
            }
        }
        // The jails of the last runs may still be in the reaper's hands; a graceful stop
        // leaves no run cgroup behind for the next start to sweep.
        let executor = Arc::clone(&self.executor);
        if let Err(e) = tokio::task::spawn_blocking(move || executor.wait_idle()).await {
            error!(error = %e, "waiting for the last jails' teardown failed");
        }
        info!(worker = %self.config.worker_id, "worker stopped");
    }

    async fn run_slot(&self, slot: usize, wakeup: &Wakeup, mut shutdown: watch::Receiver<bool>) {
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
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = wakeup.notified() => {}
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
        let Some(exec) = self.admit(&lease, shutdown).await? else {
            return Ok(());
        };
        let waited = (chrono::Utc::now() - exec.queued_at).num_milliseconds();
        info!(execution_id = %id, attempt, status = %Status::Running, queued_ms = waited, language = %exec.language, "execution started");
        let publisher = self
            .events
            .as_ref()
            .map(|bus| Publisher::start_attempt(Arc::clone(bus), id, attempt));
        if let Some(p) = &publisher {
            p.handle().status(Status::Running);
        }
        let busy = observe::started(&exec);
        let lost = Arc::new(AtomicBool::new(false));
        let keeper = self.keep_lease(lease.clone(), Arc::clone(&lost));
        let began = std::time::Instant::now();
        let ran = self
            .run_program(&exec, publisher.as_ref().map(Publisher::handle))
            .await;
        if let Ok(result) = &ran {
            observe::ran(&exec, result, began.elapsed());
        }
        debug!(target: PATH, execution_id = %id, "program back in the worker");
        drop(busy);
        if lost.load(Ordering::SeqCst) {
            keeper.abort();
            warn!(execution_id = %id, attempt, "lease lost while running; result discarded");
            if let Some(p) = publisher {
                p.close().await;
            }
            return Ok(());
        }
        // A recorded result is acked only after `Finished` is out: whoever waits for this
        // execution (`?wait=true`, SSE) answers from the store on `Finished` and needs nothing
        // from the queue. Should the process die in between, the job is claimed again and
        // acked at once, its execution being terminal.
        // The lease is still kept while the result is written: a write that fails is
        // written again, the program is never run again for it.
        let (ended, ack_after) = match ran {
            Ok(result) => {
                let ended = self.record(&lease, &result, &lost).await;
                if let Ok(Some(status)) = ended {
                    observe::finished(&exec, status, result.report.error_type);
                }
                (ended, true)
            }
            Err(failure) => {
                let ended = self.platform_failure(&lease, failure).await;
                if let Ok(Some(status)) = ended {
                    observe::finished(&exec, status, Some(ErrorType::InternalError));
                }
                (ended, false)
            }
        };
        keeper.abort();
        if let Some(p) = publisher {
            match ended {
                Ok(Some(status)) => {
                    p.finish(status).await;
                    debug!(target: PATH, execution_id = %id, "finish published");
                }
                _ => {
                    p.handle().status(Status::Queued);
                    p.close().await;
                }
            }
        }
        if ack_after && matches!(ended, Ok(Some(_))) {
            self.ack(&lease).await?;
            debug!(target: PATH, execution_id = %id, "acked");
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
    ) -> Result<RunResult, PlatformFailure> {
        let request = Request {
            language: exec.language.clone(),
            source: exec.source_code.clone(),
            options: exec.options.clone(),
            stdin_bytes: None,
        };
        let executor = Arc::clone(&self.executor);
        let run = move || {
            executor.execute(&request, &mut |stream, chunk| {
                if let Some(live) = &live {
                    live.output(stream, chunk);
                }
            })
        };
        // On the multi-threaded runtime the program runs on this very thread, which hands its
        // other tasks to another one: no hand-off to a blocking thread and back between the
        // claim and the result. Elsewhere (a current-thread runtime, as in tests) it goes to
        // the blocking pool. A panic in the executor is caught either way.
        let joined = match tokio::runtime::Handle::current().runtime_flavor() {
            RuntimeFlavor::MultiThread => tokio::task::block_in_place(|| {
                std::panic::catch_unwind(AssertUnwindSafe(run)).map_err(panic_message)
            }),
            _ => tokio::task::spawn_blocking(run)
                .await
                .map_err(|e| e.to_string()),
        };
        match joined {
            Ok(Ok(result)) => Ok(result),
            Ok(Err(e)) => Err(PlatformFailure::Executor(e)),
            Err(e) => Err(PlatformFailure::Panicked(e)),
        }
    }
}

/// What a panic said, for the log.
fn panic_message(payload: Box<dyn Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(s) => *s,
        Err(payload) => payload.downcast_ref::<&str>().map_or_else(
            || "a panic without a message".to_owned(),
            |s| (*s).to_owned(),
        ),
    }
}
