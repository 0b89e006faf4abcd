//! The worker of livexec: claim a job → run its execution in the sandbox → record the result.
//!
//! [`Worker::step`] carries one job to its end and is what tests call to drain a queue
//! deterministically; [`Worker::run`] loops it with a concurrency until shutdown.
//! [`to_result`] maps a sandbox [`livexec_sandbox::Outcome`] to the statuses, error types and
//! messages of API.md §4; [`command_for`] builds the sandbox command of a run (the code goes in
//! as a file, never as argv). [`reconcile_once`] repairs a queue that lost jobs.
//!
//! Retries are for the platform, not for the program: a program that fails, times out or
//! blows a limit is a result, recorded once; only a sandbox that could not run it (or a worker
//! that died) leads to another attempt, with backoff, up to `max_attempts`.
//!
//! ```no_run
//! # async fn demo(
//! #     store: std::sync::Arc<dyn livexec_core::Store>,
//! #     queue: std::sync::Arc<dyn livexec_core::JobQueue>,
//! # ) -> Result<(), Box<dyn std::error::Error>> {
//! use livexec_worker::{Worker, WorkerConfig};
//! use std::collections::HashMap;
//! use std::sync::Arc;
//!
//! let sandbox = Arc::new(livexec_sandbox::Sandbox::new(Default::default())?);
//! let registry = livexec_runtimes::Registry::builtin()?;
//! let python = registry.get("python").ok_or("no python runtime")?.resolve()?;
//! let runtimes = HashMap::from([("python".to_owned(), python)]);
//! let worker = Arc::new(Worker::new(store, queue, sandbox, runtimes, WorkerConfig::default()));
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

mod command;
mod config;
mod reconcile;
mod result;
mod stages;
mod wake;
mod worker;

pub use command::{command_for, compile_command, effective_limits};
pub use config::WorkerConfig;
pub use reconcile::{reconcile_loop, reconcile_once};
pub use result::{format_bytes, format_seconds, signal_name, to_result};
pub use stages::{run_staged, staged_result, Staged};
pub use wake::{WakeQueue, WakeStore, Wakeup};
pub use worker::Worker;

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
