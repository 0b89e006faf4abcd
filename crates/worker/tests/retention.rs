//! The retention pass (`LIVEXEC_RETENTION_DAYS`) against the real SQLite store: it works in
//! batches until one comes back short, stops between batches on shutdown, empties only
//! finished executions, and keeps their metrics.

use livexec_core::{ExecutionId, NewOneShot, RunResult, Status, Store};
use livexec_store::SqliteStore;
use livexec_worker::{retention_once, RetentionConfig};
use std::time::Duration;
use tokio::sync::watch;

async fn finished_run(store: &SqliteStore, code: &str) -> ExecutionId {
    let id = queued_run(store, code).await;
    assert!(store.start_execution(id, 1).await.unwrap().is_some());
    let mut result = RunResult::internal_error("unused");
    result.status = Status::Completed;
    result.report.error_message = None;
    result.report.error_type = None;
    result.report.stdout = b"a secret the program printed".to_vec();
    result.report.exit_code = Some(0);
    result.report.cpu_time_ms = Some(7);
    result.report.memory_kb = Some(2048);
    result.report.execution_time_ms = 9;
    assert!(store.finish_execution(id, 1, &result).await.unwrap());
    id
}

async fn queued_run(store: &SqliteStore, code: &str) -> ExecutionId {
    let created = store
        .create_one_shot(NewOneShot {
            language: "python".into(),
            source_code: code.into(),
            idempotency_key: None,
            enqueue_job: true,
            options: Default::default(),
            owner: None,
        })
        .await
        .unwrap();
    created.execution.id
}

fn config(batch: u32) -> RetentionConfig {
    RetentionConfig {
        keep_for: Duration::ZERO,
        batch,
        pause: Duration::from_millis(1),
        every: Duration::from_secs(3600),
    }
}

#[tokio::test]
async fn a_pass_works_in_batches_and_empties_only_finished_runs() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/db.sqlite", dir.path().display());
    let store = SqliteStore::connect(&url).await.unwrap();
    let mut finished = Vec::new();
    for i in 0..5 {
        finished.push(finished_run(&store, &format!("print({i})")).await);
    }
    let waiting = queued_run(&store, "print('still queued')").await;
    // Strictly before "now": let the clock pass the finish times.
    tokio::time::sleep(Duration::from_millis(20)).await;

    let (_tx, running) = watch::channel(false);
    let purged = retention_once(&store, &config(2), &running).await.unwrap();
    // 2 + 2 + 1: the pass went on past full batches and stopped at the short one.
    assert_eq!(purged.executions, 5);
    for id in &finished {
        let e = store.get_execution(*id).await.unwrap().unwrap();
        assert_eq!(e.source_code, "", "{id}");
        assert!(e.report.stdout.is_empty(), "{id}");
        assert_eq!(e.status, Status::Completed);
        assert_eq!(
            (e.report.cpu_time_ms, e.report.memory_kb),
            (Some(7), Some(2048))
        );
    }
    let e = store.get_execution(waiting).await.unwrap().unwrap();
    assert_eq!(e.source_code, "print('still queued')");
    // Idempotent: nothing left to do.
    let again = retention_once(&store, &config(2), &running).await.unwrap();
    assert_eq!(again.executions, 0);

    // On shutdown a pass stops after the batch in hand.
    for i in 0..5 {
        finished_run(&store, &format!("print({i})")).await;
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    let (_tx, stopping) = watch::channel(true);
    let cut_short = retention_once(&store, &config(2), &stopping).await.unwrap();
    assert_eq!(cut_short.executions, 2);
}
