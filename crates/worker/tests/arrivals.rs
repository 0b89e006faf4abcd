//! An idle worker wakes when another process enqueues a job on the Redis queue, at once rather
//! than at its next poll: with an hour between polls, only the queue's arrivals can wake it.
//! Real SQLite store, real Redis queue, the fake executor.
//!
//! Needs Redis (`REDIS_URL`, default 127.0.0.1:6379): `#[ignore]`d with the reason, run by `--include-ignored`.

mod fake;

use livexec_core::{JobQueue, NewExecution, Status, Store};
use livexec_queue::RedisQueue;
use livexec_store::SqliteStore;
use livexec_worker::{Worker, WorkerConfig};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Far beyond a hello world's run: reaching it means the worker was never woken.
const PATIENCE: Duration = Duration::from_secs(60);

/// Deletes the test's Redis keys, also when it fails.
struct Keys(String, String);

impl Drop for Keys {
    fn drop(&mut self) {
        let (url, prefix) = (self.0.clone(), self.1.clone());
        livexec_testkit::on_own_runtime(async move {
            livexec_testkit::delete_keys(&url, &prefix).await;
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Redis (REDIS_URL, default 127.0.0.1:6379)"]
async fn an_idle_worker_wakes_when_another_process_enqueues() {
    let url = livexec_testkit::redis_url();
    let prefix = livexec_testkit::unique_name();
    let _keys = Keys(url.clone(), prefix.clone());
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/db.sqlite", dir.path().display());
    let store = Arc::new(SqliteStore::connect(&db).await.unwrap());
    let worker = Worker::new(
        store.clone(),
        Arc::new(RedisQueue::connect(&url, &prefix).await.unwrap()),
        Arc::new(fake::FakeExecutor::default()),
        WorkerConfig {
            idle_poll: Duration::from_secs(3600),
            ..WorkerConfig::default()
        },
    );
    let (stop, stopped) = watch::channel(false);
    let running = tokio::spawn(Arc::new(worker).run(1, stopped));
    // Let the worker make its first, empty claim and go idle (were it slower, that claim
    // would take the job below and the test would pass without telling anything, never fail).
    tokio::time::sleep(Duration::from_millis(500)).await;

    // "Another process": its own connection, no in-process bell.
    let session = store.create_session("python", "print woken").await.unwrap();
    let new = NewExecution {
        owner: None,
        session_id: session.id,
        idempotency_key: None,
        enqueue_job: false,
        options: Default::default(),
    };
    let id = store.create_execution(new).await.unwrap().execution.id;
    let other = RedisQueue::connect(&url, &prefix).await.unwrap();
    other.enqueue(id, None).await.unwrap();

    let deadline = Instant::now() + PATIENCE;
    let done = loop {
        let e = store.get_execution(id).await.unwrap().unwrap();
        if e.status.is_terminal() {
            break e;
        }
        assert!(
            Instant::now() < deadline,
            "the idle worker was not woken: {e:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        (done.status, done.report.stdout.as_slice()),
        (Status::Completed, &b"woken\n"[..])
    );
    stop.send(true).unwrap();
    running.await.unwrap();
}
