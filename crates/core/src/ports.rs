//! The ports: what the service needs from a database, a job queue and an event bus.
//!
//! Each has an embedded implementation (SQLite, a table in SQLite, an in-process broadcast) and
//! a scaled one (PostgreSQL, Redis Streams, Redis). Conformance suites run the same tests
//! against each.

use crate::events::Event;
use crate::model::{
    Execution, ExecutionId, NewExecution, NewOneShot, RunResult, Session, SessionId, SessionPatch,
};
use crate::request::SourceFile;
use crate::status::Status;
use crate::tenant::{ApiKey, KeyId, Owner, Quota};
use crate::usage::{Deletion, Purged, UsageRow, UsageScope};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::time::Duration;

/// A boxed error from a backend driver.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A boxed stream of items.
pub type BoxStream<T> = std::pin::Pin<Box<dyn futures_core::Stream<Item = T> + Send>>;

/// Errors of the [`Store`].
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The session does not exist.
    #[error("session {0} not found")]
    SessionNotFound(SessionId),
    /// The idempotency key is already used by another session.
    #[error("idempotency key already used for session {other_session}")]
    IdempotencyConflict {
        /// The session that owns the key.
        other_session: SessionId,
    },
    /// The idempotency key already names an execution of another request (same session or
    /// one-shot, but another body): never a replay of it.
    #[error("idempotency key already used for another request")]
    IdempotencyKeyReused,
    /// The caller's key is at one of its tier's quotas: nothing was created.
    #[error(transparent)]
    QuotaExceeded(#[from] crate::tenant::QuotaExceeded),
    /// The database failed.
    #[error("database error during {op}: {source}")]
    Backend {
        /// The operation that failed (e.g. `create_execution`).
        op: &'static str,
        /// The driver's error.
        #[source]
        source: BoxError,
    },
}

/// A result of [`Store::create_execution`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedExecution {
    /// The execution (new, or the one the idempotency key already names).
    pub execution: Execution,
    /// Whether this call created it.
    pub created: bool,
}

/// The source of truth: sessions and executions.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Create a session without extra files.
    async fn create_session(
        &self,
        language: &str,
        source_code: &str,
    ) -> Result<Session, StoreError> {
        self.create_session_with_files(language, source_code, &[], None)
            .await
    }
    /// Create a session owned by `owner` with extra files beside the main one (already
    /// validated).
    async fn create_session_with_files(
        &self,
        language: &str,
        source_code: &str,
        files: &[SourceFile],
        owner: Owner,
    ) -> Result<Session, StoreError>;
    /// [`Store::create_session_with_files`] within `quota.sessions`: when `owner` is a key and
    /// its tier limits sessions, the count of its sessions and the insert happen under the
    /// key's lock, so the limit holds on any number of API nodes;
    /// [`StoreError::QuotaExceeded`] (kind `Sessions`) when the key already holds that many.
    async fn create_session_within(
        &self,
        language: &str,
        source_code: &str,
        files: &[SourceFile],
        owner: Owner,
        quota: &Quota,
    ) -> Result<Session, StoreError>;
    /// Fetch a session, with its latest execution id.
    async fn get_session(&self, id: SessionId) -> Result<Option<Session>, StoreError>;
    /// Change a session's code and, when given, its language. `None` if it does not exist.
    async fn update_session(
        &self,
        id: SessionId,
        source_code: &str,
        language: Option<&str>,
    ) -> Result<Option<Session>, StoreError> {
        let patch = SessionPatch {
            source_code: Some(source_code.to_owned()),
            language: language.map(str::to_owned),
            files: None,
        };
        self.patch_session(id, &patch).await
    }
    /// Change what `patch` gives (code, language, the whole set of files) and nothing else.
    /// `None` if the session does not exist.
    async fn patch_session(
        &self,
        id: SessionId,
        patch: &SessionPatch,
    ) -> Result<Option<Session>, StoreError>;
    /// In one transaction: look up the idempotency key; if new, snapshot the session into a
    /// QUEUED execution (and, when `enqueue_job`, insert its embedded-queue job).
    async fn create_execution(&self, new: NewExecution) -> Result<CreatedExecution, StoreError> {
        self.create_execution_within(new, &Quota::none()).await
    }
    /// [`Store::create_execution`] within `quota` for `new.owner`: in the same transaction,
    /// the owner's executions QUEUED or RUNNING and created this UTC day are counted (with
    /// the new one) and the creation is refused ([`StoreError::QuotaExceeded`]) when over.
    /// A replay of an idempotency key is answered as always, whatever the quota.
    async fn create_execution_within(
        &self,
        new: NewExecution,
        quota: &Quota,
    ) -> Result<CreatedExecution, StoreError>;
    /// Like [`Store::create_execution`] for a one-shot run: a QUEUED execution without a
    /// session. A key that already names a one-shot execution of the same request returns it
    /// (`created: false`); one that names anything else is
    /// [`StoreError::IdempotencyKeyReused`].
    async fn create_one_shot(&self, new: NewOneShot) -> Result<CreatedExecution, StoreError> {
        self.create_one_shot_within(new, &Quota::none()).await
    }
    /// [`Store::create_one_shot`] within `quota`, as [`Store::create_execution_within`].
    async fn create_one_shot_within(
        &self,
        new: NewOneShot,
        quota: &Quota,
    ) -> Result<CreatedExecution, StoreError>;
    /// Fetch an execution.
    async fn get_execution(&self, id: ExecutionId) -> Result<Option<Execution>, StoreError>;
    /// The ids of what [`Store::list_executions`] would return, each with the bytes its row
    /// holds (code, outputs, options, files, results), without reading those: so that a
    /// page of executions can be read in parts of bounded size.
    async fn list_execution_sizes(
        &self,
        session_id: SessionId,
        limit: u32,
        before: Option<ExecutionId>,
    ) -> Result<Vec<(ExecutionId, u64)>, StoreError>;
    /// A session's executions, newest first, at most `limit`, strictly older than `before`.
    async fn list_executions(
        &self,
        session_id: SessionId,
        limit: u32,
        before: Option<ExecutionId>,
    ) -> Result<Vec<Execution>, StoreError>;
    /// Guarded `QUEUED → RUNNING` (or a newer attempt taking over a `RUNNING` one whose
    /// attempt number is lower): sets `attempts = attempt` and `started_at`, and returns the
    /// execution as it now stands, in the same statement (a worker needs its snapshot to run
    /// it). `None` when the guard did not match (unknown, terminal, or a newer attempt owns it).
    async fn start_execution(
        &self,
        id: ExecutionId,
        attempt: i32,
    ) -> Result<Option<Execution>, StoreError>;
    /// Guarded `RUNNING (attempts = attempt) → terminal`. False when the guard did not match.
    async fn finish_execution(
        &self,
        id: ExecutionId,
        attempt: i32,
        result: &RunResult,
    ) -> Result<bool, StoreError>;
    /// Guarded `RUNNING (attempts = attempt) → QUEUED`, when an attempt is abandoned.
    async fn requeue_execution(&self, id: ExecutionId, attempt: i32) -> Result<bool, StoreError>;
    /// Any non-terminal state → `FAILED`/`InternalError` with this message (retries exhausted).
    async fn fail_execution(&self, id: ExecutionId, message: &str) -> Result<bool, StoreError>;
    /// Non-terminal executions queued before `queued_before`, oldest first (for reconcilers).
    async fn list_unfinished(
        &self,
        queued_before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Unfinished>, StoreError>;
    /// A cheap round trip to the database.
    async fn ping(&self) -> Result<(), StoreError>;
    /// How many executions are QUEUED and since when the oldest is (for metrics).
    async fn queue_sample(&self) -> Result<crate::QueueSample, StoreError>;
    /// What executions accepted at or after `since` add up to (`GET /statistics`).
    async fn statistics(&self, since: DateTime<Utc>) -> Result<crate::Statistics, StoreError>;
    /// Delete a session and all its executions (their jobs cascade), unless one of them is
    /// `QUEUED` or `RUNNING`: then nothing is deleted. Safe against a concurrent run of the
    /// session (no execution is created for it while this runs).
    async fn delete_session(&self, id: SessionId) -> Result<Deletion, StoreError>;
    /// Delete a finished execution (its job cascades). One that is `QUEUED` or `RUNNING` is
    /// not deleted, in the same guarded statement, so a worker starting it cannot race it.
    async fn delete_execution(&self, id: ExecutionId) -> Result<Deletion, StoreError>;
    /// One retention batch: empty the source code, inputs (options, session files) and
    /// outputs (stdout, stderr, compile output, test results, output files) of at most `limit`
    /// executions finished before `before` that still hold any (rows and metrics stay), and
    /// delete at most `limit` sessions not updated since `before` with no execution queued
    /// since then nor unfinished. Idempotent: run by every node at once, each row is emptied
    /// or deleted once.
    async fn purge_before(&self, before: DateTime<Utc>, limit: u32) -> Result<Purged, StoreError>;
    /// Usage per UTC day (from `from` to `to`, both included) and language, by day then
    /// language, from the `usage_daily` rollup (kept when executions are deleted).
    async fn usage(
        &self,
        scope: UsageScope,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
    ) -> Result<Vec<UsageRow>, StoreError>;
}

/// API keys (issue 13). Only a SHA-256 hash of a key's secret token is stored; the token itself
/// is shown once, by whoever creates the key.
#[async_trait]
pub trait KeyStore: Send + Sync + 'static {
    /// Store a new key whose token hashes to `token_hash` (32 bytes, SHA-256).
    async fn create_key(
        &self,
        name: &str,
        tier: &str,
        admin: bool,
        token_hash: &[u8; 32],
    ) -> Result<ApiKey, StoreError>;
    /// The key whose token hashes to `token_hash`, revoked or not (the caller refuses a revoked
    /// one exactly like an unknown one).
    async fn key_by_hash(&self, token_hash: &[u8; 32]) -> Result<Option<ApiKey>, StoreError>;
    /// One key by id, revoked or not.
    async fn get_key(&self, id: KeyId) -> Result<Option<ApiKey>, StoreError>;
    /// Every key, oldest first, revoked ones included.
    async fn list_keys(&self) -> Result<Vec<ApiKey>, StoreError>;
    /// Revoke a key (at once, for good; its sessions and executions stay). The key as it now
    /// stands, `None` when there is no such key. Revoking twice keeps the first time.
    async fn revoke_key(&self, id: KeyId) -> Result<Option<ApiKey>, StoreError>;
    /// How many keys are not revoked (0: the service is open unless `LIVEXEC_AUTH=required`).
    async fn active_keys(&self) -> Result<u64, StoreError>;
}

/// A non-terminal execution as [`Store::list_unfinished`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unfinished {
    /// The execution.
    pub id: ExecutionId,
    /// `QUEUED` or `RUNNING`.
    pub status: Status,
    /// How many times a worker has started it.
    pub attempts: i32,
    /// Its owner (the queue schedules fairly between owners).
    pub owner: Owner,
}

/// Errors of the queue and the event bus.
#[derive(Debug, thiserror::Error)]
#[error("{backend} failed during {op}: {source}")]
pub struct PortError {
    /// Which backend (`sqlite queue`, `redis`, …).
    pub backend: &'static str,
    /// Which operation.
    pub op: &'static str,
    /// The driver's error.
    #[source]
    pub source: BoxError,
}

/// A unit of work: run this execution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// The execution to run.
    pub execution_id: ExecutionId,
    /// Which attempt this claim is (1 on the first claim).
    pub attempt: i32,
}

/// A claimed job, held until acked, retried, released or expired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The job.
    pub job: Job,
    /// Backend-specific claim token (row token, stream message id, …).
    pub token: String,
}

/// Durable queue of executions to run, with leases.
#[async_trait]
pub trait JobQueue: Send + Sync + 'static {
    /// True when [`Store::create_execution`] with `enqueue_job` already makes the job (the
    /// embedded queue); then [`JobQueue::enqueue`] need not be called after creation.
    fn enqueued_by_store(&self) -> bool;
    /// Make a job for this execution of `owner`, runnable at once. Idempotent per execution.
    /// Jobs are dispatched fairly between owners (issue 13).
    async fn enqueue(&self, execution_id: ExecutionId, owner: Owner) -> Result<(), PortError>;
    /// Take the next runnable job (including ones whose lease expired) for `lease_for`.
    async fn claim(&self, worker: &str, lease_for: Duration) -> Result<Option<Lease>, PortError>;
    /// Extend a lease; false when it was lost (expired and taken by someone else).
    async fn extend(&self, lease: &Lease, lease_for: Duration) -> Result<bool, PortError>;
    /// The job is done; remove it.
    async fn ack(&self, lease: &Lease) -> Result<(), PortError>;
    /// The attempt failed for a platform reason: run again after `delay` (counts an attempt).
    async fn retry(&self, lease: &Lease, delay: Duration) -> Result<(), PortError>;
    /// Hand the job back unrun (shutdown): runnable at once, the attempt is not counted.
    async fn release(&self, lease: &Lease) -> Result<(), PortError>;
    /// Whether a job for this execution exists (pending, delayed or leased).
    async fn contains(&self, execution_id: ExecutionId) -> Result<bool, PortError>;
    /// A cheap round trip to the backend.
    async fn ping(&self) -> Result<(), PortError>;
    /// Jobs as they arrive, from any process: each item is how many arrived since the last
    /// (at least one). Idle workers wake on it at once instead of at their next poll; it
    /// starts from the jobs present when this returns, and a job it misses (the backend was
    /// unreachable) is still found by polling. `None` (the default) when the queue has no
    /// such feed: workers then poll, and in one process the API rings them.
    async fn arrivals(&self) -> Option<BoxStream<usize>> {
        None
    }
}

/// Fan-out of live execution events, with replay from a sequence number.
#[async_trait]
pub trait EventBus: Send + Sync + 'static {
    /// Publish an event (its `seq` is assigned by the publisher, one per execution).
    async fn publish(&self, event: Event) -> Result<(), PortError>;
    /// Every event of the execution with `seq > after`, then live ones until `Finished`.
    async fn subscribe(
        &self,
        execution_id: ExecutionId,
        after: u64,
    ) -> Result<BoxStream<Event>, PortError>;
}

/// How long to wait before retry number `attempt` (1-based) after a platform failure:
/// 2 s, 4 s, 8 s, …
pub fn retry_backoff(attempt: i32) -> Duration {
    let exp = attempt.clamp(1, 10) as u32 - 1;
    Duration::from_secs(2u64 << exp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_two_seconds() {
        assert_eq!(retry_backoff(1), Duration::from_secs(2));
        assert_eq!(retry_backoff(2), Duration::from_secs(4));
        assert_eq!(retry_backoff(0), Duration::from_secs(2));
    }
}
