//! Live output of executions: the event buses, the worker-side publisher and the SSE glue.
//!
//! This crate owns everything between a program writing a byte and a client reading it as a
//! Server-Sent Event:
//!
//! - [`MemoryBus`] — the embedded [`EventBus`]: per execution a bounded replay log plus a
//!   `tokio::sync::broadcast` channel, in-process.
//! - [`RedisBus`] — the scaled [`EventBus`]: one Redis Stream per execution, so a client on any
//!   API node sees output produced on any worker; the subscriptions of a process to one
//!   execution share one reader (one Redis connection).
//! - [`Publisher`] — what a worker uses for one execution attempt: numbers events, never blocks
//!   the program (a sync `send` from the blocking output callback), keeps UTF-8 characters whole
//!   across chunk boundaries, and ends with [`EventKind::Finished`].
//! - [`sse`] — the axum glue: maps an event stream to `text/event-stream`, with keep-alives,
//!   `Last-Event-ID` resume, and a final `result` event carrying the execution object.
//! - [`wait`] — waiting for an execution to finish (`POST …/run?wait=true`).
//! - [`LimitedBus`] — a cap on the subscriptions one process holds (each holds a broadcast
//!   receiver, and on the Redis bus catches up with its own `XRANGE` reads).
//!
//! # Contract of a subscription
//!
//! `subscribe(id, after)` yields every event with `seq > after`, in order, exactly once, then
//! the live ones, and ends right after `Finished`. A stream that ends **without** `Finished` was
//! interrupted (the subscriber fell behind past what the bus retains, or the bus failed); the
//! SSE glue then consults the store and either sends the result or tells the client to resume
//! with `Last-Event-ID`.
//!
//! # Sequence numbers
//!
//! Seq numbers are strictly increasing per execution. Attempt `n` of an execution numbers its
//! events from `(n - 1) << 32` + 1 (see [`first_seq`]), so a platform retry on another worker
//! continues after everything attempt `n - 1` published, without coordination. Buses drop an
//! event whose seq is not above the last one they hold, and anything after `Finished`.

pub mod limit;
pub mod memory;
pub mod publisher;
pub mod redis_bus;
mod redis_codec;
pub mod sse;
pub mod utf8;
pub mod wait;

pub use limit::{holding, LimitedBus, TooManySubscriptions};
pub use livexec_core::{Event, EventBus, EventKind};
pub use memory::{MemoryBus, MemoryBusConfig, MemoryBusStats};
pub use publisher::{first_seq, PublishStats, Publisher, PublisherConfig, PublisherHandle};
pub use redis_bus::{RedisBus, RedisBusConfig};
pub use sse::{
    execution_sse, execution_sse_admitted, execution_sse_until, last_event_id, parse_last_event_id,
    sse_events, sse_events_until, Admit, SseResponse, SseStream, StopSignal,
};
pub use wait::{wait_budget, wait_for_finish, Known, WaitOutcome, WAIT_MARGIN};

use livexec_core::{ExecutionId, PortError, StoreError};
use std::time::Duration;

/// Errors of this crate (the bus methods themselves answer with [`PortError`]).
#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    /// The Redis URL could not be parsed.
    #[error("invalid Redis URL: {source}")]
    RedisUrl {
        /// The driver's parse error.
        #[source]
        source: redis::RedisError,
    },
    /// Redis did not answer the connection attempt.
    #[error("cannot connect to Redis at {addr}: {source}")]
    RedisConnect {
        /// Host and port (never the password).
        addr: String,
        /// The driver's error or a timeout.
        #[source]
        source: livexec_core::ports::BoxError,
    },
    /// The `Last-Event-ID` header (or query value) is not an integer from 0 to 2^64 − 1.
    #[error("invalid Last-Event-ID {value:?}: expected an event id, an integer from 0 to 18446744073709551615")]
    BadLastEventId {
        /// What the client sent (lossy).
        value: String,
    },
    /// The execution does not exist.
    #[error("execution {id} not found")]
    ExecutionNotFound {
        /// Which execution.
        id: ExecutionId,
    },
    /// The store failed while reading an execution.
    #[error("store failed during {op} of execution {id}: {source}")]
    Store {
        /// The operation (`get_execution`).
        op: &'static str,
        /// Which execution.
        id: ExecutionId,
        /// The store's error.
        #[source]
        source: StoreError,
    },
    /// The event bus failed.
    #[error("event bus failed for execution {id}: {source}")]
    Bus {
        /// Which execution.
        id: ExecutionId,
        /// The bus's error.
        #[source]
        source: PortError,
    },
}

/// An operation that did not finish in time (the source of a [`PortError`] or connect error).
#[derive(Debug, thiserror::Error)]
#[error("{op} timed out after {after:?}")]
pub struct TimedOut {
    /// Which operation.
    pub op: &'static str,
    /// The bound that was hit.
    pub after: Duration,
}
