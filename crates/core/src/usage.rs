//! Deletion, retention and usage (issue 13): what the store answers when a session or an
//! execution is deleted, what one retention pass removed, and the usage a key is billed from.

use crate::model::ExecutionId;
use crate::tenant::Owner;
use chrono::NaiveDate;
use serde::Serialize;

/// What a guarded delete ([`Store::delete_session`](crate::Store::delete_session),
/// [`Store::delete_execution`](crate::Store::delete_execution)) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deletion {
    /// The rows are gone.
    Deleted,
    /// There was nothing to delete.
    NotFound,
    /// Nothing was deleted: this execution (the one asked for, or one of the session's) is
    /// still `QUEUED` or `RUNNING`.
    Unfinished(ExecutionId),
}

/// What one retention pass ([`Store::purge_before`](crate::Store::purge_before)) removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    /// Finished executions whose code, inputs and outputs were emptied (their rows and
    /// metrics stay).
    pub executions: u64,
    /// Idle sessions deleted, with their executions.
    pub sessions: u64,
}

/// Whose usage to add up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageScope {
    /// Every owner's (an admin without `key_id`, or an open service).
    All,
    /// One owner's (`None`: what was run while the service was open).
    Owner(Owner),
}

/// The usage of one UTC day and language, as `usage_daily` keeps it: every execution a
/// worker finished (whatever its verdict) counts; one the platform gave up on does not.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UsageRow {
    /// The UTC day the executions finished.
    pub day: NaiveDate,
    /// The runtime id.
    pub language: String,
    /// How many executions finished.
    pub executions: u64,
    /// CPU time, milliseconds.
    pub cpu_ms: u64,
    /// Wall-clock run time, milliseconds.
    pub wall_ms: u64,
    /// Peak memory × wall time, KiB·ms.
    pub memory_kib_ms: u64,
}
