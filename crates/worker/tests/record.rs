//! A finished result always records, and recording never re-runs the program: a store whose
//! result writes fail (the real SQLite store, wrapped so that its first N `finish_execution`
//! calls fail) makes the worker write the kept result again, with the fake executor proving
//! the program ran once.

mod fake;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use fake::FakeExecutor;
use livexec_core::JobQueue;
use livexec_core::{
    CreatedExecution, ErrorType, Execution, ExecutionId, NewExecution, NewOneShot, Quota,
    RunResult, Session, SessionId, SessionPatch, SourceFile, Status, Store, StoreError,
};
use livexec_queue::SqliteQueue;
use livexec_store::SqliteStore;
use livexec_worker::{Worker, WorkerConfig, RESULT_LOST};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The real store, except that the next `failing` result writes fail before reaching it.
struct FailingWrites {
    inner: SqliteStore,
    failing: AtomicUsize,
    writes: AtomicUsize,
}

#[async_trait]
impl Store for FailingWrites {
    async fn create_session_with_files(
        &self,
        l: &str,
        c: &str,
        files: &[SourceFile],
        owner: livexec_core::Owner,
    ) -> Result<Session, StoreError> {
        self.inner
            .create_session_with_files(l, c, files, owner)
            .await
    }
    async fn create_session_within(
        &self,
        l: &str,
        c: &str,
        files: &[SourceFile],
        owner: livexec_core::Owner,
        quota: &livexec_core::Quota,
    ) -> Result<Session, StoreError> {
        self.inner
            .create_session_within(l, c, files, owner, quota)
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
    async fn create_execution_within(
        &self,
        n: NewExecution,
        q: &Quota,
    ) -> Result<CreatedExecution, StoreError> {
        self.inner.create_execution_within(n, q).await
    }
    async fn create_one_shot_within(
        &self,
        n: NewOneShot,
        q: &Quota,
    ) -> Result<CreatedExecution, StoreError> {
        self.inner.create_one_shot_within(n, q).await
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
        s: SessionId,
        limit: u32,
        before: Option<ExecutionId>,
    ) -> Result<Vec<Execution>, StoreError> {
        self.inner.list_executions(s, limit, before).await
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
        self.writes.fetch_add(1, Ordering::SeqCst);
        let left = self.failing.load(Ordering::SeqCst);
        if left > 0 {
            self.failing.store(left - 1, Ordering::SeqCst);
            return Err(StoreError::Backend {
                op: "finish_execution",
                source: "invalid byte sequence for encoding \"UTF8\": 0x00".into(),
            });
        }
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
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<livexec_core::Unfinished>, StoreError> {
        self.inner.list_unfinished(before, limit).await
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

struct Fixture {
    _dir: tempfile::TempDir,
    store: Arc<FailingWrites>,
    queue: Arc<SqliteQueue>,
    executor: Arc<FakeExecutor>,
}

impl Fixture {
    async fn new(failing: usize) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/db.sqlite", dir.path().display());
        let inner = SqliteStore::connect(&url).await.unwrap();
        let queue = Arc::new(SqliteQueue::new(inner.pool().clone()));
        Fixture {
            _dir: dir,
            store: Arc::new(FailingWrites {
                inner,
                failing: AtomicUsize::new(failing),
                writes: AtomicUsize::new(0),
            }),
            queue,
            executor: Arc::default(),
        }
    }

    fn worker(&self, record_attempts: u32) -> Worker {
        let config = WorkerConfig {
            worker_id: "test-worker".into(),
            record_attempts,
            record_backoff: Duration::from_millis(1),
            ..WorkerConfig::default()
        };
        Worker::new(
            self.store.clone(),
            self.queue.clone(),
            self.executor.clone(),
            config,
        )
    }

    async fn submit(&self, code: &str) -> ExecutionId {
        let session = self.store.create_session("python", code).await.unwrap();
        let new = NewExecution {
            owner: None,
            session_id: session.id,
            idempotency_key: None,
            enqueue_job: true,
            options: Default::default(),
        };
        self.store.create_execution(new).await.unwrap().execution.id
    }
}

#[tokio::test]
async fn failed_result_writes_are_written_again_and_the_program_runs_once() {
    let f = Fixture::new(6).await;
    let w = f.worker(10);
    let id = f.submit("print recorded at last").await;
    assert!(w.step().await.unwrap());
    let e = f.store.get_execution(id).await.unwrap().unwrap();
    assert_eq!((e.status, e.attempts), (Status::Completed, 1));
    assert_eq!(e.report.stdout, b"recorded at last\n");
    assert_eq!(
        f.store.writes.load(Ordering::SeqCst),
        7,
        "6 failed writes, then one"
    );
    assert_eq!(f.executor.runs("print recorded at last"), 1);
    assert!(!w.step().await.unwrap(), "the job was acked");
    assert!(!f.queue.contains(id).await.unwrap());
}

#[tokio::test]
async fn a_result_that_never_writes_ends_the_execution_without_rerunning_it() {
    let f = Fixture::new(usize::MAX).await;
    let w = f.worker(3);
    let id = f.submit("print never stored").await;
    assert!(w.step().await.unwrap());
    let e = f.store.get_execution(id).await.unwrap().unwrap();
    assert_eq!(e.status, Status::Failed);
    assert_eq!(e.report.error_type, Some(ErrorType::InternalError));
    assert_eq!(e.report.error_message.as_deref(), Some(RESULT_LOST));
    assert_eq!(f.store.writes.load(Ordering::SeqCst), 3);
    assert!(!w.step().await.unwrap(), "settled: nothing to run again");
    assert_eq!(f.executor.runs("print never stored"), 1);
}
