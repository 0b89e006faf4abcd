//! `wait_for_finish` (`POST …/run?wait=true`) with a real SQLite store and both buses.

mod common;

use common::server::Server;
use livexec_core::{EventBus, Status};
use livexec_events::{
    wait_budget, wait_for_finish, Known, MemoryBus, Publisher, WaitOutcome, WAIT_MARGIN,
};
use std::sync::Arc;
use std::time::Duration;

async fn finishes_during_the_wait(bus: Arc<dyn EventBus>) {
    for known in [Known::Existing, Known::JustCreated] {
        finishes_during_a_wait(Arc::clone(&bus), known).await;
    }
}

async fn finishes_during_a_wait(bus: Arc<dyn EventBus>, known: Known) {
    let server = Arc::new(Server::start(bus).await);
    let id = server.queued_execution().await.id;
    let worker = {
        let server = Arc::clone(&server);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            assert!(server.store.start_execution(id, 1).await.unwrap().is_some());
            let publisher = Publisher::start(Arc::clone(&server.bus), id);
            publisher.handle().status(Status::Running);
            publisher.handle().stdout(b"hi\n");
            server.record(id, Status::Completed, b"hi\n", b"").await;
            publisher.finish(Status::Completed).await;
        })
    };
    let outcome = wait_for_finish(
        server.store.as_ref(),
        server.bus.as_ref(),
        id,
        known,
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    worker.await.unwrap();
    match outcome {
        WaitOutcome::Finished(e) => {
            assert_eq!(e.status, Status::Completed);
            assert_eq!(e.report.stdout, b"hi\n");
        }
        other => panic!("expected Finished, got {other:?}"),
    }
}

async fn budget_runs_out_with_the_current_state(bus: Arc<dyn EventBus>) {
    let server = Server::start(bus).await;
    let id = server.queued_execution().await.id;
    assert!(server.store.start_execution(id, 1).await.unwrap().is_some());
    let outcome = wait_for_finish(
        server.store.as_ref(),
        server.bus.as_ref(),
        id,
        Known::Existing,
        Duration::from_millis(300),
    )
    .await
    .unwrap();
    match outcome {
        WaitOutcome::Pending(e) => assert_eq!(e.status, Status::Running),
        other => panic!("expected Pending, got {other:?}"),
    }
}

async fn already_finished_answers_at_once(bus: Arc<dyn EventBus>) {
    let server = Server::start(bus).await;
    let id = server.queued_execution().await.id;
    assert!(server.store.start_execution(id, 1).await.unwrap().is_some());
    server.record(id, Status::Failed, b"", b"boom\n").await;
    let outcome = wait_for_finish(
        server.store.as_ref(),
        server.bus.as_ref(),
        id,
        Known::Existing,
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    assert!(matches!(outcome, WaitOutcome::Finished(e) if e.status == Status::Failed));
}

/// Created by the request, then run to its end before the wait even listens (a fast worker,
/// a slow request): the bus replays `Finished`, the wait answers at once from the store.
async fn just_created_and_finished_before_the_wait_listens(bus: Arc<dyn EventBus>) {
    let server = Server::start(bus).await;
    let id = server.queued_execution().await.id;
    assert!(server.store.start_execution(id, 1).await.unwrap().is_some());
    let publisher = Publisher::start(Arc::clone(&server.bus), id);
    publisher.handle().status(Status::Running);
    server.record(id, Status::Completed, b"fast\n", b"").await;
    publisher.finish(Status::Completed).await;
    let outcome = wait_for_finish(
        server.store.as_ref(),
        server.bus.as_ref(),
        id,
        Known::JustCreated,
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    match outcome {
        WaitOutcome::Finished(e) => assert_eq!(e.report.stdout, b"fast\n"),
        other => panic!("expected Finished, got {other:?}"),
    }
}

macro_rules! both_buses {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(std::sync::Arc::new(super::MemoryBus::default())).await;
                }
            )*
        }
        mod redis {
            use super::common::RedisHarness;
            $(
                #[ignore = "needs Redis (REDIS_URL, default 127.0.0.1:6379)"]
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let h = RedisHarness::new().await;
                    super::$name(std::sync::Arc::new(h.bus.clone())).await;
                    h.cleanup().await;
                }
            )*
        }
    };
}

both_buses!(
    finishes_during_the_wait,
    budget_runs_out_with_the_current_state,
    already_finished_answers_at_once,
    just_created_and_finished_before_the_wait_listens
);

#[tokio::test]
async fn unknown_execution_is_an_error() {
    let server = Server::start(Arc::new(MemoryBus::default())).await;
    let result = wait_for_finish(
        server.store.as_ref(),
        server.bus.as_ref(),
        uuid::Uuid::now_v7(),
        Known::Existing,
        Duration::from_millis(10),
    )
    .await;
    assert!(matches!(
        result,
        Err(livexec_events::EventsError::ExecutionNotFound { .. })
    ));
}

#[test]
fn the_budget_is_capped_at_the_time_limit_plus_a_margin() {
    let limit = Duration::from_secs(30);
    assert_eq!(wait_budget(None, limit), limit + WAIT_MARGIN);
    assert_eq!(wait_budget(Some(500), limit), Duration::from_millis(500));
    assert_eq!(wait_budget(Some(10_000_000), limit), limit + WAIT_MARGIN);
    assert_eq!(wait_budget(Some(0), limit), Duration::ZERO);
}
