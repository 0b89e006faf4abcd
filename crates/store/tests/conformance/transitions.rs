//! The guarded status updates: start, finish, requeue, fail; terminal states never change.

use crate::harness::Backend;
use crate::util::{execution, result, session};
use livexec_core::{ErrorType, Execution, Status, Store, StoreError};

async fn get(store: &dyn Store, e: &Execution) -> Execution {
    store.get_execution(e.id).await.unwrap().unwrap()
}

pub async fn start_is_guarded(b: Backend) {
    let store = b.store();
    let s = session(store, "print(1)").await;
    let e = execution(store, &s).await;
    // The execution comes back as it now stands, as a later read sees it.
    let running = store
        .start_execution(e.id, 1)
        .await
        .unwrap()
        .expect("started");
    assert_eq!(running, get(store, &e).await);
    assert_eq!((running.status, running.attempts), (Status::Running, 1));
    assert_eq!(
        (running.source_code.as_str(), running.language.as_str()),
        (e.source_code.as_str(), e.language.as_str())
    );
    let first_start = running.started_at.expect("started_at set");
    assert!(first_start >= e.queued_at);
    assert_eq!(running.finished_at, None);

    // The same attempt cannot start twice; a stale one cannot take over.
    assert!(store.start_execution(e.id, 1).await.unwrap().is_none());
    assert!(store.start_execution(e.id, 0).await.unwrap().is_none());
    // A newer attempt takes over a RUNNING execution (its worker's lease expired).
    let taken = store
        .start_execution(e.id, 2)
        .await
        .unwrap()
        .expect("taken over");
    assert_eq!(taken, get(store, &e).await);
    assert_eq!((taken.status, taken.attempts), (Status::Running, 2));
    assert!(taken.started_at.unwrap() >= first_start);
    assert!(store.start_execution(e.id, 1).await.unwrap().is_none());
    assert!(store.start_execution(e.id, 2).await.unwrap().is_none());
    assert_eq!(get(store, &e).await.attempts, 2);
    // Unknown execution: nothing to change.
    assert!(store
        .start_execution(uuid::Uuid::now_v7(), 1)
        .await
        .unwrap()
        .is_none());
}

pub async fn finish_is_guarded_and_refuses_stale_attempts(b: Backend) {
    let store = b.store();
    let s = session(store, "print(1)").await;
    let e = execution(store, &s).await;
    // Not started: nothing to finish.
    assert!(!store
        .finish_execution(e.id, 0, &result(Status::Completed))
        .await
        .unwrap());
    assert_eq!(get(store, &e).await.status, Status::Queued);

    assert!(store.start_execution(e.id, 1).await.unwrap().is_some());
    assert!(store.start_execution(e.id, 2).await.unwrap().is_some());
    // Attempt 1 lost its lease: its result is refused.
    assert!(!store
        .finish_execution(e.id, 1, &result(Status::Completed))
        .await
        .unwrap());
    assert_eq!(get(store, &e).await.status, Status::Running);

    let timeout = result(Status::Timeout);
    assert!(store.finish_execution(e.id, 2, &timeout).await.unwrap());
    let done = get(store, &e).await;
    assert_eq!(done.status, Status::Timeout);
    assert_eq!(done.report.stdout, timeout.report.stdout);
    assert_eq!(done.report.stderr, timeout.report.stderr);
    assert_eq!(done.report.execution_time_ms, 42);
    assert_eq!(done.report.error_message.as_deref(), Some("it broke"));
    assert_eq!(done.report.error_type, Some(ErrorType::RuntimeError));
    assert_eq!(done.report.exit_code, Some(1));
    assert_eq!(done.report.signal, Some(9));
    assert_eq!(done.report.cpu_time_ms, Some(7));
    assert_eq!(done.report.memory_kb, Some(2048));
    assert_eq!(done.attempts, 2);
    assert!(done.finished_at.unwrap() >= done.started_at.unwrap());

    // Exactly one final result: a second finish, of any attempt, is refused.
    for attempt in [1, 2, 3] {
        assert!(!store
            .finish_execution(e.id, attempt, &result(Status::Completed))
            .await
            .unwrap());
    }
    assert_eq!(get(store, &e).await, done);
}

pub async fn requeue_is_guarded(b: Backend) {
    let store = b.store();
    let s = session(store, "print(1)").await;
    let e = execution(store, &s).await;
    assert!(!store.requeue_execution(e.id, 0).await.unwrap(), "QUEUED");
    assert!(store.start_execution(e.id, 1).await.unwrap().is_some());
    assert!(
        !store.requeue_execution(e.id, 2).await.unwrap(),
        "other attempt"
    );
    assert!(store.requeue_execution(e.id, 1).await.unwrap());
    let back = get(store, &e).await;
    assert_eq!((back.status, back.attempts), (Status::Queued, 1));
    assert!(!store.requeue_execution(e.id, 1).await.unwrap(), "twice");
    // The next attempt starts it again and finishes it.
    assert!(store.start_execution(e.id, 2).await.unwrap().is_some());
    assert!(store
        .finish_execution(e.id, 2, &result(Status::Completed))
        .await
        .unwrap());
    let done = get(store, &e).await;
    assert_eq!((done.status, done.attempts), (Status::Completed, 2));
    assert_eq!(done.report.error_type, None);
}

pub async fn fail_moves_any_unfinished_to_internal_error(b: Backend) {
    let store = b.store();
    let s = session(store, "print(1)").await;
    let queued = execution(store, &s).await;
    let running = execution(store, &s).await;
    assert!(store
        .start_execution(running.id, 3)
        .await
        .unwrap()
        .is_some());
    for e in [&queued, &running] {
        assert!(store
            .fail_execution(e.id, "retries exhausted")
            .await
            .unwrap());
        let failed = get(store, e).await;
        assert_eq!(failed.status, Status::Failed);
        assert_eq!(failed.report.error_type, Some(ErrorType::InternalError));
        assert_eq!(
            failed.report.error_message.as_deref(),
            Some("retries exhausted")
        );
        assert!(failed.finished_at.is_some());
        assert!(!store.fail_execution(e.id, "again").await.unwrap());
        assert_eq!(get(store, e).await, failed);
    }
    assert!(!store
        .fail_execution(uuid::Uuid::now_v7(), "x")
        .await
        .unwrap());
}

/// Every way to reach a terminal state, then every update tried with every attempt number.
pub async fn terminal_states_never_change(b: Backend) {
    let store = b.store();
    let s = session(store, "print(1)").await;
    let mut terminal = Vec::new();
    for status in [Status::Completed, Status::Failed, Status::Timeout] {
        let e = execution(store, &s).await;
        assert!(store.start_execution(e.id, 1).await.unwrap().is_some());
        assert!(store
            .finish_execution(e.id, 1, &result(status))
            .await
            .unwrap());
        terminal.push(get(store, &e).await);
    }
    let failed_queued = execution(store, &s).await;
    assert!(store.fail_execution(failed_queued.id, "x").await.unwrap());
    terminal.push(get(store, &failed_queued).await);

    for before in &terminal {
        assert!(before.status.is_terminal());
        for attempt in 0..=3 {
            assert!(store
                .start_execution(before.id, attempt)
                .await
                .unwrap()
                .is_none());
            for status in [Status::Completed, Status::Failed, Status::Timeout] {
                assert!(!store
                    .finish_execution(before.id, attempt, &result(status))
                    .await
                    .unwrap());
            }
            assert!(!store.requeue_execution(before.id, attempt).await.unwrap());
        }
        assert!(!store.fail_execution(before.id, "late").await.unwrap());
        assert_eq!(
            &get(store, before).await,
            before,
            "{} changed",
            before.status
        );
    }
    let later = chrono::Utc::now() + chrono::Duration::seconds(60);
    assert!(store.list_unfinished(later, 100).await.unwrap().is_empty());
}

pub async fn finish_rejects_non_terminal_result(b: Backend) {
    let store = b.store();
    let s = session(store, "print(1)").await;
    let e = execution(store, &s).await;
    assert!(store.start_execution(e.id, 1).await.unwrap().is_some());
    for status in [Status::Queued, Status::Running] {
        let err = store
            .finish_execution(e.id, 1, &result(status))
            .await
            .unwrap_err();
        assert!(
            matches!(
                &err,
                StoreError::Backend {
                    op: "finish_execution",
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("terminal"), "{err}");
    }
    let still = get(store, &e).await;
    assert_eq!((still.status, still.attempts), (Status::Running, 1));
}
