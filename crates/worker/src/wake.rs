//! Waking idle workers the moment work arrives, instead of at their next poll. In the same
//! process, [`WakeStore`] and [`WakeQueue`] wrap the ports the API uses and ring a shared
//! [`Wakeup`] when an execution is created or a job enqueued; [`crate::Worker::with_wakeup`]
//! makes idle loops listen for it. From other processes, the queue's arrivals (when it has
//! them, see [`JobQueue::arrivals`]) ring it ([`ring_on_arrivals`]). Polling stays as the
//! fallback (retries coming due, a feed that is down).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use livexec_core::{
    BoxStream, CreatedExecution, Execution, ExecutionId, JobQueue, Lease, NewExecution, NewOneShot,
    Owner, PortError, Quota, RunResult, Session, SessionId, SessionPatch, SourceFile, Store,
    StoreError,
};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Notify};

/// The bell idle workers of this process wait on.
pub type Wakeup = Arc<Notify>;

/// Rings `wakeup` for every arrival (up to `slots` idle loops per batch) until `shutdown`
/// becomes true or the feed ends.
pub(crate) async fn ring_on_arrivals(
    mut arrivals: BoxStream<usize>,
    wakeup: Wakeup,
    slots: usize,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            arrived = arrivals.next() => match arrived {
                Some(n) => (0..n.min(slots)).for_each(|_| wakeup.notify_one()),
                None => return,
            },
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
    }
}

/// A [`Store`] that rings `wakeup` when it creates an execution (its embedded job is runnable).
pub struct WakeStore {
    inner: Arc<dyn Store>,
    wakeup: Wakeup,
}

impl WakeStore {
    /// Wrap `inner`.
    pub fn new(inner: Arc<dyn Store>, wakeup: Wakeup) -> Self {
        WakeStore { inner, wakeup }
    }
}

#[async_trait]
impl Store for WakeStore {
    async fn create_session(&self, language: &str, code: &str) -> Result<Session, StoreError> {
        self.inner.create_session(language, code).await
    }
    async fn create_session_with_files(
        &self,
        language: &str,
        code: &str,
        files: &[SourceFile],
        owner: livexec_core::Owner,
    ) -> Result<Session, StoreError> {
        self.inner
            .create_session_with_files(language, code, files, owner)
            .await
    }
    async fn create_session_within(
        &self,
        language: &str,
        code: &str,
        files: &[SourceFile],
        owner: Owner,
        quota: &Quota,
    ) -> Result<Session, StoreError> {
        self.inner
            .create_session_within(language, code, files, owner, quota)
            .await
    }

    async fn get_session(&self, id: SessionId) -> Result<Option<Session>, StoreError> {
        self.inner.get_session(id).await
    }
    async fn patch_session(
        &self,
        id: SessionId,
        patch: &SessionPatch,
    ) -> Result<Option<Session>, StoreError> {
        self.inner.patch_session(id, patch).await
    }
    async fn update_session(
        &self,
        id: SessionId,
        source_code: &str,
        language: Option<&str>,
    ) -> Result<Option<Session>, StoreError> {
        self.inner.update_session(id, source_code, language).await
    }
    async fn create_execution_within(
        &self,
        new: NewExecution,
        quota: &Quota,
    ) -> Result<CreatedExecution, StoreError> {
        let job = new.enqueue_job;
        let created = self.inner.create_execution_within(new, quota).await?;
        if created.created && job {
            self.wakeup.notify_one();
        }
        Ok(created)
    }
    async fn create_one_shot_within(
        &self,
        new: NewOneShot,
        quota: &Quota,
    ) -> Result<CreatedExecution, StoreError> {
        let job = new.enqueue_job;
        let created = self.inner.create_one_shot_within(new, quota).await?;
        if created.created && job {
            self.wakeup.notify_one();
        }
        Ok(created)
    }
    async fn get_execution(&self, id: ExecutionId) -> Result<Option<Execution>, StoreError> {
        self.inner.get_execution(id).await
    }
    async fn list_execution_sizes(
        &self,
        session_id: SessionId,
        limit: u32,
        before: Option<ExecutionId>,
    ) -> Result<Vec<(ExecutionId, u64)>, StoreError> {
        self.inner
            .list_execution_sizes(session_id, limit, before)
            .await
    }
    async fn list_executions(
        &self,
        session_id: SessionId,
        limit: u32,
        before: Option<ExecutionId>,
    ) -> Result<Vec<Execution>, StoreError> {
        self.inner.list_executions(session_id, limit, before).await
    }
    async fn start_execution(
        &self,
        id: ExecutionId,
        attempt: i32,
    ) -> Result<Option<Execution>, StoreError> {
        self.inner.start_execution(id, attempt).await
    }
    async fn finish_execution(
        &self,
        id: ExecutionId,
        attempt: i32,
        result: &RunResult,
    ) -> Result<bool, StoreError> {
        self.inner.finish_execution(id, attempt, result).await
    }
    async fn requeue_execution(&self, id: ExecutionId, attempt: i32) -> Result<bool, StoreError> {
        self.inner.requeue_execution(id, attempt).await
    }
    async fn fail_execution(&self, id: ExecutionId, message: &str) -> Result<bool, StoreError> {
        self.inner.fail_execution(id, message).await
    }
    async fn list_unfinished(
        &self,
        queued_before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<livexec_core::Unfinished>, StoreError> {
        self.inner.list_unfinished(queued_before, limit).await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }
    async fn queue_sample(&self) -> Result<livexec_core::QueueSample, StoreError> {
        self.inner.queue_sample().await
    }
    async fn statistics(
        &self,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<livexec_core::Statistics, StoreError> {
        self.inner.statistics(since).await
    }
    async fn delete_session(
        &self,
        id: livexec_core::SessionId,
    ) -> Result<livexec_core::Deletion, StoreError> {
        self.inner.delete_session(id).await
    }
    async fn delete_execution(
        &self,
        id: livexec_core::ExecutionId,
    ) -> Result<livexec_core::Deletion, StoreError> {
        self.inner.delete_execution(id).await
    }
    async fn purge_before(
        &self,
        before: chrono::DateTime<chrono::Utc>,
        limit: u32,
    ) -> Result<livexec_core::Purged, StoreError> {
        self.inner.purge_before(before, limit).await
    }
    async fn usage(
        &self,
        scope: livexec_core::UsageScope,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
    ) -> Result<Vec<livexec_core::UsageRow>, StoreError> {
        self.inner.usage(scope, from, to).await
    }
}

/// A [`JobQueue`] that rings `wakeup` when a job becomes runnable at once.
pub struct WakeQueue {
    inner: Arc<dyn JobQueue>,
    wakeup: Wakeup,
}

impl WakeQueue {
    /// Wrap `inner`.
    pub fn new(inner: Arc<dyn JobQueue>, wakeup: Wakeup) -> Self {
        WakeQueue { inner, wakeup }
    }
}

#[async_trait]
impl JobQueue for WakeQueue {
    fn enqueued_by_store(&self) -> bool {
        self.inner.enqueued_by_store()
    }
    async fn enqueue(
        &self,
        execution_id: ExecutionId,
        owner: livexec_core::Owner,
    ) -> Result<(), PortError> {
        self.inner.enqueue(execution_id, owner).await?;
        self.wakeup.notify_one();
        Ok(())
    }
    async fn claim(&self, worker: &str, lease_for: Duration) -> Result<Option<Lease>, PortError> {
        self.inner.claim(worker, lease_for).await
    }
    async fn extend(&self, lease: &Lease, lease_for: Duration) -> Result<bool, PortError> {
        self.inner.extend(lease, lease_for).await
    }
    async fn ack(&self, lease: &Lease) -> Result<(), PortError> {
        self.inner.ack(lease).await
    }
    async fn retry(&self, lease: &Lease, delay: Duration) -> Result<(), PortError> {
        self.inner.retry(lease, delay).await
    }
    async fn release(&self, lease: &Lease) -> Result<(), PortError> {
        self.inner.release(lease).await?;
        self.wakeup.notify_one();
        Ok(())
    }
    async fn contains(&self, execution_id: ExecutionId) -> Result<bool, PortError> {
        self.inner.contains(execution_id).await
    }
    async fn ping(&self) -> Result<(), PortError> {
        self.inner.ping().await
    }
    async fn arrivals(&self) -> Option<BoxStream<usize>> {
        self.inner.arrivals().await
    }
}
