//! Live events of an execution: status changes and output chunks, numbered in order.

use crate::model::ExecutionId;
use crate::status::Status;

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    /// The execution moved to this status.
    Status(Status),
    /// A chunk the program wrote to stdout.
    Stdout(Vec<u8>),
    /// A chunk the program wrote to stderr.
    Stderr(Vec<u8>),
    /// The execution reached its terminal state; the stream of events ends here.
    Finished(Status),
}

/// One event of one execution. `seq` starts at 1 and grows by one per event of that execution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Whose event.
    pub execution_id: ExecutionId,
    /// Position in the execution's event sequence (1-based).
    pub seq: u64,
    /// What happened.
    pub kind: EventKind,
}
