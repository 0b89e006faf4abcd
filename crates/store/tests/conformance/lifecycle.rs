//! Deletion, retention and usage (issue 13): guarded deletes, one retention batch, and the
//! usage rollup that finishing adds to and deleting leaves alone.

use crate::harness::Backend;
use crate::util::{execution, result, session};
use livexec_core::{Deletion, NewOneShot, Status, UsageScope};
use uuid::Uuid;

pub async fn deletes_are_guarded_and_remove_rows(b: Backend) {
    let store = b.store();
    let s = session(store, "print(1)").await;
    let e = execution(store, &s).await;
    // QUEUED, then RUNNING: refused, naming it.
    assert_eq!(
        store.delete_execution(e.id).await.unwrap(),
        Deletion::Unfinished(e.id)
    );
    assert_eq!(
        store.delete_session(s.id).await.unwrap(),
        Deletion::Unfinished(e.id)
    );
    store.start_execution(e.id, 1).await.unwrap().unwrap();
    assert_eq!(
        store.delete_execution(e.id).await.unwrap(),
        Deletion::Unfinished(e.id)
    );
    assert_eq!(
        store.delete_session(s.id).await.unwrap(),
        Deletion::Unfinished(e.id)
    );
    // Finished: gone, with its job.
    assert!(store
        .finish_execution(e.id, 1, &result(Status::Completed))
        .await
        .unwrap());
    assert_eq!(
        store.delete_execution(e.id).await.unwrap(),
        Deletion::Deleted
    );
    assert_eq!(store.get_execution(e.id).await.unwrap(), None);
    assert!(b.job_rows(e.id).await.is_empty());
    assert_eq!(
        store.delete_execution(e.id).await.unwrap(),
        Deletion::NotFound
    );
    // A session with a finished execution: both gone.
    let e2 = execution(store, &s).await;
    store.fail_execution(e2.id, "gave up").await.unwrap();
    assert_eq!(store.delete_session(s.id).await.unwrap(), Deletion::Deleted);
    assert_eq!(store.get_session(s.id).await.unwrap(), None);
    assert_eq!(store.get_execution(e2.id).await.unwrap(), None);
    assert_eq!(
        store.delete_session(s.id).await.unwrap(),
        Deletion::NotFound
    );
    assert_eq!(
        store.delete_session(Uuid::now_v7()).await.unwrap(),
        Deletion::NotFound
    );
}

pub async fn usage_adds_up_finished_runs_and_survives_deletion(b: Backend) {
    let store = b.store();
    let owner = Some(Uuid::now_v7());
    let today = chrono::Utc::now().date_naive();
    let mut ids = Vec::new();
    for _ in 0..2 {
        let e = store
            .create_one_shot(NewOneShot {
                language: "python".into(),
                source_code: "print(1)".into(),
                idempotency_key: None,
                enqueue_job: true,
                options: Default::default(),
                owner,
            })
            .await
            .unwrap()
            .execution;
        store.start_execution(e.id, 1).await.unwrap().unwrap();
        // cpu 7 ms, wall 42 ms, 2048 KiB.
        assert!(store
            .finish_execution(e.id, 1, &result(Status::Completed))
            .await
            .unwrap());
        ids.push(e.id);
    }
    // A result recorded again (a retry's late duplicate) is refused and counts once.
    assert!(!store
        .finish_execution(ids[0], 1, &result(Status::Completed))
        .await
        .unwrap());
    // Ones the platform gave up on do not count: queued, and running (the database adds
    // usage for a finished run's result only, not for a give-up of a running one).
    let s = session(store, "x").await;
    let failed = execution(store, &s).await;
    store.fail_execution(failed.id, "gave up").await.unwrap();
    let running = execution(store, &s).await;
    store.start_execution(running.id, 1).await.unwrap().unwrap();
    assert!(store.fail_execution(running.id, "gave up").await.unwrap());
    for id in ids {
        assert_eq!(store.delete_execution(id).await.unwrap(), Deletion::Deleted);
    }
    let rows = store
        .usage(UsageScope::Owner(owner), today, today)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    let r = &rows[0];
    assert_eq!((r.day, r.language.as_str()), (today, "python"));
    assert_eq!((r.executions, r.cpu_ms, r.wall_ms), (2, 14, 84));
    assert_eq!(r.memory_kib_ms, 2 * 2048 * 42);
    let all = store.usage(UsageScope::All, today, today).await.unwrap();
    assert_eq!(all.iter().map(|r| r.executions).sum::<u64>(), 2);
    let other = store
        .usage(UsageScope::Owner(Some(Uuid::now_v7())), today, today)
        .await
        .unwrap();
    assert!(other.is_empty());
    let yesterday = today.pred_opt().unwrap();
    assert!(store
        .usage(UsageScope::All, yesterday, yesterday)
        .await
        .unwrap()
        .is_empty());
}

/// A queued one-shot run without an owner, with its job.
async fn one_shot(store: &dyn livexec_core::Store) -> livexec_core::Execution {
    store
        .create_one_shot(NewOneShot {
            language: "python".into(),
            source_code: "print('one-shot')".into(),
            idempotency_key: None,
            enqueue_job: true,
            options: Default::default(),
            owner: None,
        })
        .await
        .unwrap()
        .execution
}

pub async fn retention_empties_old_data_in_batches_and_keeps_metrics(b: Backend) {
    let store = b.store();
    let busy = session(store, "print('busy')").await;
    let queued = execution(store, &busy).await;
    let idle = session(store, "print('idle')").await;
    let idle_run = execution(store, &idle).await;
    store.fail_execution(idle_run.id, "gave up").await.unwrap();
    let mut done = Vec::new();
    for _ in 0..3 {
        let e = one_shot(store).await;
        store.start_execution(e.id, 1).await.unwrap().unwrap();
        assert!(store
            .finish_execution(e.id, 1, &result(Status::Completed))
            .await
            .unwrap());
        done.push(e.id);
    }
    // Nothing is old yet.
    let now = chrono::Utc::now() - chrono::Duration::hours(1);
    assert_eq!(store.purge_before(now, 2).await.unwrap().executions, 0);
    // Everything is: batches of 2 empty 2 (one-shot runs, or the idle session's), then the
    // rest, then none; the idle session goes with its execution, the busy one (a queued
    // execution) stays.
    let later = chrono::Utc::now() + chrono::Duration::days(1);
    let first = store.purge_before(later, 2).await.unwrap();
    assert_eq!(first.executions, 2);
    let kept = store.get_execution(done[0]).await.unwrap().unwrap();
    assert_eq!(kept.source_code, "");
    assert!(kept.report.stdout.is_empty() && kept.report.stderr.is_empty());
    assert_eq!(
        (kept.report.cpu_time_ms, kept.report.memory_kb),
        (Some(7), Some(2048))
    );
    assert_eq!(kept.report.execution_time_ms, 42);
    assert_eq!(kept.status, Status::Completed);
    let second = store.purge_before(later, 2).await.unwrap();
    assert!(first.executions + second.executions >= 3);
    assert_eq!(first.sessions + second.sessions, 1);
    assert_eq!(store.get_execution(idle_run.id).await.unwrap(), None);
    assert_eq!(store.get_session(idle.id).await.unwrap(), None);
    assert!(store.get_session(busy.id).await.unwrap().is_some());
    assert_eq!(
        store
            .get_execution(queued.id)
            .await
            .unwrap()
            .unwrap()
            .source_code,
        "print('busy')"
    );
    let third = store.purge_before(later, 2).await.unwrap();
    assert_eq!((third.executions, third.sessions), (0, 0));
}
