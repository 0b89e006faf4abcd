//! The worker's claim, record, retry, lease and shutdown logic against the real SQLite store
//! and the real embedded queue, with a fake executor (no sandbox, no root: the real engine is
//! tested in crates/engine): every test drains the queue with `step()`, no sleeps.

mod fake;

use fake::FakeExecutor;
use livexec_core::{ErrorType, Execution, ExecutionId, JobQueue, NewExecution, Status, Store};
use livexec_queue::SqliteQueue;
use livexec_store::SqliteStore;
use livexec_worker::{reconcile_once, Worker, WorkerConfig};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

struct Fixture {
    _dir: tempfile::TempDir,
    store: Arc<SqliteStore>,
    queue: Arc<SqliteQueue>,
    executor: Arc<FakeExecutor>,
}

impl Fixture {
    async fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/db.sqlite", dir.path().display());
        let store = Arc::new(SqliteStore::connect(&url).await.unwrap());
        let queue = Arc::new(SqliteQueue::new(store.pool().clone()));
        Fixture {
            _dir: dir,
            store,
            queue,
            executor: Arc::default(),
        }
    }

    fn worker(&self, tweak: impl FnOnce(&mut WorkerConfig)) -> Worker {
        let mut config = WorkerConfig {
            worker_id: "test-worker".into(),
            ..WorkerConfig::default()
        };
        tweak(&mut config);
        Worker::new(
            self.store.clone(),
            self.queue.clone(),
            self.executor.clone(),
            config,
        )
    }

    async fn submit(&self, language: &str, code: &str, enqueue_job: bool) -> ExecutionId {
        let session = self.store.create_session(language, code).await.unwrap();
        let created = self
            .store
            .create_execution(NewExecution {
                owner: None,
                session_id: session.id,
                idempotency_key: None,
                enqueue_job,
                options: Default::default(),
            })
            .await
            .unwrap();
        created.execution.id
    }

    async fn get(&self, id: ExecutionId) -> Execution {
        self.store.get_execution(id).await.unwrap().unwrap()
    }
}

#[tokio::test]
async fn step_runs_a_program_to_completed_once() {
    let f = Fixture::new().await;
    let w = f.worker(|_| {});
    assert!(!w.step().await.unwrap(), "empty queue: no work");
    let id = f.submit("python", "print hello 42", true).await;
    assert!(w.step().await.unwrap());
    let e = f.get(id).await;
    assert_eq!(e.status, Status::Completed);
    assert_eq!(e.report.stdout, b"hello 42\n");
    assert_eq!((e.report.error_type, e.report.error_message), (None, None));
    assert_eq!((e.attempts, e.report.exit_code), (1, Some(0)));
    assert!(e.finished_at.is_some() && e.report.memory_kb.is_some());
    assert!(!w.step().await.unwrap(), "the job was acked");
    assert!(!f.queue.contains(id).await.unwrap());
}

#[tokio::test]
async fn the_stored_run_options_reach_the_executor() {
    let f = Fixture::new().await;
    let w = f.worker(|_| {});
    let session = f.store.create_session("python", "stdin").await.unwrap();
    let options = livexec_core::RunOptions {
        stdin: Some("fed".into()),
        tests: vec![livexec_core::TestCase {
            stdin: "1".into(),
            expected_stdout: None,
            args: None,
        }],
        ..Default::default()
    };
    let new = NewExecution {
        owner: None,
        session_id: session.id,
        idempotency_key: None,
        enqueue_job: true,
        options,
    };
    let id = f.store.create_execution(new).await.unwrap().execution.id;
    assert!(w.step().await.unwrap());
    assert_eq!(f.get(id).await.report.stdout, b"fed 1\n");
}

#[tokio::test]
async fn a_program_failure_is_a_result_and_never_rerun() {
    let f = Fixture::new().await;
    let w = f.worker(|_| {});
    let id = f
        .submit(
            "python",
            "print before; crash ZeroDivisionError: division by zero",
            true,
        )
        .await;
    assert!(w.step().await.unwrap());
    let e = f.get(id).await;
    assert_eq!(e.status, Status::Failed);
    assert_eq!(e.report.error_type, Some(ErrorType::RuntimeError));
    assert_eq!(
        e.report.error_message.as_deref(),
        Some("ZeroDivisionError: division by zero")
    );
    assert_eq!(e.report.stdout, b"before\n");
    assert_eq!(e.attempts, 1);
    assert!(!w.step().await.unwrap(), "a failed program is not retried");
    let src = "print before; crash ZeroDivisionError: division by zero";
    assert_eq!(f.executor.runs(src), 1);
}

#[tokio::test]
async fn the_time_limit_is_a_timeout_result() {
    let f = Fixture::new().await;
    let w = f.worker(|_| {});
    let id = f.submit("python", "sleep", true).await;
    assert!(w.step().await.unwrap());
    let e = f.get(id).await;
    assert_eq!(e.status, Status::Timeout);
    assert_eq!(e.report.error_type, Some(ErrorType::TimeoutError));
    assert_eq!(
        e.report.error_message.as_deref(),
        Some("Execution exceeded the time limit of 0.5 s")
    );
}

#[tokio::test]
async fn a_platform_failure_is_retried_then_ends_internal_error() {
    let f = Fixture::new().await;
    // The executor cannot run the program (a platform failure, not a result).
    let id = f.submit("python", "broken", true).await;

    let w = f.worker(|c| c.max_attempts = 2);
    assert!(w.step().await.unwrap());
    let e = f.get(id).await;
    assert_eq!(e.status, Status::Queued, "requeued for a retry");
    assert_eq!(e.attempts, 1);
    assert!(
        f.queue.contains(id).await.unwrap(),
        "the job waits out its backoff"
    );
    assert!(!w.step().await.unwrap(), "not runnable before the backoff");

    // Last attempt: a worker that allows only this one gives up at once.
    let last = f.worker(|c| c.max_attempts = 1);
    let id2 = f.submit("python", "broken; print 2", true).await;
    assert!(last.step().await.unwrap());
    let e = f.get(id2).await;
    assert_eq!(e.status, Status::Failed);
    assert_eq!(e.report.error_type, Some(ErrorType::InternalError));
    let msg = e.report.error_message.unwrap();
    assert!(!msg.contains("/nonexistent"), "no internals leak: {msg}");
    assert!(!f.queue.contains(id2).await.unwrap());
}

#[tokio::test]
async fn a_request_the_sandbox_refuses_fails_at_once_without_a_retry() {
    let f = Fixture::new().await;
    let id = f.submit("python", "refused ../x", true).await;
    let w = f.worker(|c| c.max_attempts = 3);
    assert!(w.step().await.unwrap());
    let e = f.get(id).await;
    assert_eq!(e.status, Status::Failed, "no second attempt can succeed");
    assert_eq!(e.attempts, 1);
    assert_eq!(e.report.error_type, Some(ErrorType::InternalError));
    let msg = e.report.error_message.unwrap();
    assert!(
        msg.contains("../x"),
        "the message names the refused file: {msg}"
    );
    assert!(!f.queue.contains(id).await.unwrap(), "the job is dropped");
    assert_eq!(f.executor.runs("refused ../x"), 1);
}

#[tokio::test]
async fn a_claim_past_max_attempts_fails_without_running() {
    let f = Fixture::new().await;
    let id = f.submit("python", "print must not run", true).await;
    // A worker that died: it claimed with a tiny lease and never came back.
    let dead = f
        .queue
        .claim("dead", Duration::from_millis(1))
        .await
        .unwrap();
    assert_eq!(dead.unwrap().job.attempt, 1);
    assert!(f.store.start_execution(id, 1).await.unwrap().is_some());
    tokio::time::sleep(Duration::from_millis(20)).await;
    let w = f.worker(|c| c.max_attempts = 1);
    assert!(w.step().await.unwrap());
    let e = f.get(id).await;
    assert_eq!(e.status, Status::Failed);
    assert_eq!(e.report.error_type, Some(ErrorType::InternalError));
    assert!(e.report.stdout.is_empty());
    assert!(!w.step().await.unwrap());
    assert_eq!(f.executor.runs("print must not run"), 0);
}

#[tokio::test]
async fn an_expired_lease_is_taken_over_by_the_next_attempt() {
    let f = Fixture::new().await;
    let id = f.submit("python", "print second attempt", true).await;
    let dead = f
        .queue
        .claim("dead", Duration::from_millis(1))
        .await
        .unwrap();
    assert!(dead.is_some());
    assert!(f.store.start_execution(id, 1).await.unwrap().is_some());
    tokio::time::sleep(Duration::from_millis(20)).await;
    let w = f.worker(|_| {});
    assert!(w.step().await.unwrap());
    let e = f.get(id).await;
    assert_eq!(e.status, Status::Completed);
    assert_eq!(e.report.stdout, b"second attempt\n");
    assert_eq!(e.attempts, 2);
}

#[tokio::test]
async fn a_finished_execution_is_acked_not_rerun() {
    let f = Fixture::new().await;
    let w = f.worker(|_| {});
    let id = f.submit("python", "print once", true).await;
    assert!(w.step().await.unwrap());
    let before = f.get(id).await;
    // A duplicate job (e.g. the reconciler raced the worker) for a finished execution.
    f.queue.enqueue(id, None).await.unwrap();
    assert!(w.step().await.unwrap());
    assert_eq!(f.get(id).await, before);
    assert_eq!(f.executor.runs("print once"), 1);
    assert!(!f.queue.contains(id).await.unwrap());
}

#[tokio::test]
async fn shutdown_before_start_hands_the_job_back_unrun() {
    let f = Fixture::new().await;
    let w = f.worker(|_| {});
    let id = f.submit("python", "print later", true).await;
    let (_tx, stopping) = watch::channel(true);
    assert!(w.step_until(&stopping).await.unwrap());
    let e = f.get(id).await;
    assert_eq!((e.status, e.attempts), (Status::Queued, 0));
    assert!(
        w.step().await.unwrap(),
        "released jobs are runnable at once"
    );
    let e = f.get(id).await;
    assert_eq!((e.status, e.attempts), (Status::Completed, 1));
}

#[tokio::test]
async fn run_drains_concurrently_and_stops_on_shutdown() {
    let f = Fixture::new().await;
    let w = Arc::new(f.worker(|c| c.idle_poll = Duration::from_millis(10)));
    let mut ids = Vec::new();
    for i in 0..6 {
        ids.push(f.submit("python", &format!("print {i}"), true).await);
    }
    let (tx, rx) = watch::channel(false);
    let running = tokio::spawn(w.clone().run(3, rx));
    for (i, id) in ids.iter().enumerate() {
        loop {
            let e = f.get(*id).await;
            if e.status.is_terminal() {
                assert_eq!(e.status, Status::Completed);
                assert_eq!(e.report.stdout, format!("{i}\n").into_bytes());
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    tx.send(true).unwrap();
    running.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_stop_lets_the_running_program_finish_and_records_it() {
    let f = Fixture::new().await;
    let w = Arc::new(f.worker(|c| c.idle_poll = Duration::from_millis(10)));
    let gate = f.executor.gate();
    let id = f.submit("python", "gate; print finished", true).await;
    let queued = f.submit("python", "print must wait", true).await;
    let (tx, rx) = watch::channel(false);
    let running = tokio::spawn(w.clone().run(1, rx));
    tokio::task::spawn_blocking(move || gate.started.recv().map(|()| gate.open))
        .await
        .unwrap()
        .map(|open| {
            // The program is running: stop, then let it finish.
            tx.send(true).unwrap();
            open.send(()).unwrap();
        })
        .unwrap();
    running.await.unwrap();
    let e = f.get(id).await;
    assert_eq!((e.status, e.attempts), (Status::Completed, 1));
    assert_eq!(e.report.stdout, b"finished\n");
    assert_eq!(
        f.get(queued).await.status,
        Status::Queued,
        "not started after the stop"
    );
    assert_eq!(f.executor.runs("print must wait"), 0);
}

#[tokio::test]
async fn reconcile_enqueues_unfinished_executions_without_a_job() {
    let f = Fixture::new().await;
    let lost = f.submit("python", "print recovered", false).await;
    let has_job = f.submit("python", "print fine", true).await;
    assert!(!f.queue.contains(lost).await.unwrap());
    let n = reconcile_once(
        &*f.store,
        &*f.queue,
        Duration::ZERO,
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    assert_eq!(n, 1);
    assert!(f.queue.contains(lost).await.unwrap());
    let w = f.worker(|_| {});
    while w.step().await.unwrap() {}
    for id in [lost, has_job] {
        assert_eq!(f.get(id).await.status, Status::Completed);
    }
    assert_eq!(f.get(lost).await.report.stdout, b"recovered\n");
    let n = reconcile_once(
        &*f.store,
        &*f.queue,
        Duration::ZERO,
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    assert_eq!(n, 0, "finished executions are left alone");
}

#[tokio::test]
async fn live_events_carry_status_output_and_the_end() {
    use futures::StreamExt;
    use livexec_core::{EventBus, EventKind};
    use livexec_events::{MemoryBus, MemoryBusConfig};
    let f = Fixture::new().await;
    let bus: Arc<dyn EventBus> = Arc::new(MemoryBus::new(MemoryBusConfig::default()));
    let w = f.worker(|_| {}).with_events(bus.clone());
    let id = f.submit("python", "print out; stderr err", true).await;
    assert!(w.step().await.unwrap());
    let events: Vec<_> = bus.subscribe(id, 0).await.unwrap().collect().await;
    let kinds: Vec<EventKind> = events.iter().map(|e| e.kind.clone()).collect();
    assert_eq!(kinds.first(), Some(&EventKind::Status(Status::Running)));
    assert_eq!(kinds.last(), Some(&EventKind::Finished(Status::Completed)));
    let (mut out, mut err) = (Vec::new(), Vec::new());
    for k in &kinds {
        match k {
            EventKind::Stdout(b) => out.extend_from_slice(b),
            EventKind::Stderr(b) => err.extend_from_slice(b),
            _ => {}
        }
    }
    assert_eq!(
        (out.as_slice(), err.as_slice()),
        (&b"out\n"[..], &b"err\n"[..])
    );
    assert!(events.windows(2).all(|w| w[0].seq < w[1].seq));
}
