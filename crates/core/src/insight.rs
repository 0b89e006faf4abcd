//! What the service reports about itself beyond single executions: the queue as sampled for
//! metrics ([`QueueSample`]).

use chrono::{DateTime, Utc};

/// The queue as the store sees it: executions in status QUEUED.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueSample {
    /// How many executions are QUEUED.
    pub queued: u64,
    /// When the oldest QUEUED execution was accepted; `None` when none is.
    pub oldest_queued_at: Option<DateTime<Utc>>,
}
