//! Implementations of the [`JobQueue`](livexec_core::JobQueue) port.
//!
//! - [`SqliteQueue`]: the embedded durable queue, a `jobs` table in the same SQLite database as
//!   the store, so a job is inserted in the same transaction as its execution.
//! - [`PgQueue`]: the same table in PostgreSQL, claimed with `FOR UPDATE SKIP LOCKED`, so a
//!   PostgreSQL deployment can run without Redis.
//! - [`RedisQueue`]: Redis Streams with a consumer group, per-claim leases, `XAUTOCLAIM` to take
//!   over the jobs of dead workers and a sorted set for delayed retries; its arrivals feed
//!   wakes idle workers of every process when a job is added.
//!
//! All three claim **fairly between owners** (the API key an execution belongs to; jobs without
//! one are a group of their own): a claim serves the owner with queued work that was served
//! longest ago (never served first), and takes that owner's oldest job, so one key's burst of
//! 1000 runs delays another key's run by one claim per other busy key, not by 1000. The SQL
//! queues first prefer the owner with the fewest running jobs ([`SqlQueue`]); Redis is strict
//! round-robin ([`RedisQueue`]). A retried or released job keeps its owner.
//!
//! All three follow the same lease protocol: a claim increments the job's attempt counter and
//! hands out a fresh token; `extend`, `ack`, `retry` and `release` act only while that token is
//! still the job's current one, so a worker whose lease expired and was taken over cannot touch
//! the job any more. The conformance suite in `tests/conformance.rs` runs against all three.

mod postgres;
mod redis;
mod redis_arrivals;
mod sql;
mod sqlite;

pub use crate::postgres::PgQueue;
pub use crate::redis::RedisQueue;
pub use crate::sql::SqlQueue;
pub use crate::sqlite::SqliteQueue;

use livexec_core::PortError;
use std::time::Duration;

/// What went wrong inside this crate, beyond the drivers' own errors (which are passed through
/// as the [`PortError`] source).
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The backend did not answer within the bound every call has.
    #[error("no answer from {backend} within {after:?}")]
    Timeout {
        /// Which backend.
        backend: &'static str,
        /// The bound that passed.
        after: Duration,
    },
    /// The backend answered something this crate cannot read.
    #[error("unexpected reply from {backend}: {detail}")]
    BadReply {
        /// Which backend.
        backend: &'static str,
        /// What was wrong with it.
        detail: String,
    },
    /// A lease token that this backend never hands out.
    #[error("malformed lease token {token:?} for {backend}")]
    BadToken {
        /// Which backend.
        backend: &'static str,
        /// The token as given.
        token: String,
    },
    /// An execution id stored by the backend is not a UUID.
    #[error("stored execution id {value:?} is not a UUID: {source}")]
    BadExecutionId {
        /// The stored value.
        value: String,
        /// Why it did not parse.
        #[source]
        source: uuid::Error,
    },
}

/// Wrap any driver error into the port's error type.
pub(crate) fn port_err(
    backend: &'static str,
    op: &'static str,
    source: impl std::error::Error + Send + Sync + 'static,
) -> PortError {
    PortError {
        backend,
        op,
        source: Box::new(source),
    }
}

/// A duration as whole milliseconds, saturating instead of overflowing.
pub(crate) fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// A fresh, unguessable lease token.
pub(crate) fn new_token() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Parse an execution id read back from a backend.
pub(crate) fn parse_execution_id(value: &str) -> Result<livexec_core::ExecutionId, QueueError> {
    uuid::Uuid::parse_str(value).map_err(|source| QueueError::BadExecutionId {
        value: value.to_owned(),
        source,
    })
}
