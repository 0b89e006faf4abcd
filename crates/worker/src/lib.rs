//! The worker of livexec: claim a job → run its execution through an [`Executor`] → record
//! the result.
//!
//! [`Worker::step`] carries one job to its end and is what tests call to drain a queue
//! deterministically; [`Worker::run`] loops it with a concurrency until shutdown.
//! What runs the program is an `Arc<dyn Executor>`: the real [`livexec_engine::Engine`] in
//! the service, a fake in the tests of this crate's retry, lease and shutdown logic.
//! [`reconcile_once`] repairs a queue that lost jobs.
//!
//! Retries are for the platform, not for the program: a program that fails, times out or
//! blows a limit is a result, recorded once; only an executor that could not run it (or a
//! worker that died) leads to another attempt, with backoff, up to `max_attempts`.
//!
//! ```no_run
//! # async fn demo(
//! #     store: std::sync::Arc<dyn livexec_core::Store>,
//! #     queue: std::sync::Arc<dyn livexec_core::JobQueue>,
//! # ) -> Result<(), Box<dyn std::error::Error>> {
//! use livexec_engine::Engine;
//! use livexec_worker::{Worker, WorkerConfig};
//! use std::sync::Arc;
//!
//! let sandbox = Arc::new(livexec_sandbox::Sandbox::new(Default::default())?);
//! let mut registry = livexec_runtimes::Registry::builtin()?;
//! let (engine, _) = Engine::start(sandbox, &mut registry, Default::default(), true);
//! let worker = Arc::new(Worker::new(store, queue, Arc::new(engine), WorkerConfig::default()));
//!
//! // Tests: drain the queue deterministically.
//! while worker.step().await? {}
//!
//! // Service: 4 concurrent executions until the shutdown signal turns true.
//! let (stop, stopped) = tokio::sync::watch::channel(false);
//! let running = tokio::spawn(worker.clone().run(4, stopped));
//! stop.send(true)?;
//! running.await?;
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

mod config;
mod reconcile;
mod retention;
mod wake;
mod worker;

pub use config::{WorkerConfig, MAX_RECORD_BACKOFF};
pub use livexec_engine::{ExecError, Executor, Request};
pub use reconcile::{reconcile_loop, reconcile_once};
pub use retention::{retention_loop, retention_once, RetentionConfig};
pub use wake::{WakeQueue, WakeStore, Wakeup};
pub use worker::{Worker, RESULT_LOST};

use livexec_core::{ExecutionId, PortError, StoreError};

/// Why a worker step (or a reconciler pass) could not complete.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// Claiming from the queue failed.
    #[error("claiming a job failed: {source}")]
    Claim {
        /// The queue's error.
        #[source]
        source: PortError,
    },
    /// A queue operation on a claimed job failed.
    #[error("queue {op} for execution {execution_id} failed: {source}")]
    Queue {
        /// The execution.
        execution_id: ExecutionId,
        /// Which operation (`ack`, `retry`, `release`, …).
        op: &'static str,
        /// The queue's error.
        #[source]
        source: PortError,
    },
    /// A store operation on an execution failed.
    #[error("store failed for execution {execution_id}: {source}")]
    Store {
        /// The execution.
        execution_id: ExecutionId,
        /// The store's error.
        #[source]
        source: StoreError,
    },
    /// Listing unfinished executions for the reconciler failed.
    #[error("reconciler could not list unfinished executions: {source}")]
    Reconcile {
        /// The store's error.
        #[source]
        source: StoreError,
    },
}
