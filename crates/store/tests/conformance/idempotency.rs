//! Idempotency keys (API.md §3): repeat, race, other session, no key.

use crate::harness::Backend;
use crate::util::{execution, keyed, result, session};
use livexec_core::{NewExecution, Status, StoreError};
use std::collections::HashSet;

pub async fn repeat_returns_same_execution_and_current_status(b: Backend) {
    let store = b.store();
    let s = session(store, "print(1)").await;
    let new = NewExecution {
        owner: None,
        session_id: s.id,
        idempotency_key: Some("repeat-key".into()),
        enqueue_job: true,
        options: Default::default(),
    };
    let first = store.create_execution(new.clone()).await.unwrap();
    assert!(first.created);
    assert_eq!(
        first.execution.idempotency_key.as_deref(),
        Some("repeat-key")
    );

    // Repeats return the same execution, as it is now, and create nothing.
    let again = store.create_execution(new.clone()).await.unwrap();
    assert!(!again.created);
    assert_eq!(again.execution, first.execution);

    // Even after the session changed, the key names the original snapshot.
    store.update_session(s.id, "print(2)", None).await.unwrap();
    assert!(store
        .start_execution(first.execution.id, 1)
        .await
        .unwrap()
        .is_some());
    let running = store.create_execution(new.clone()).await.unwrap();
    assert_eq!(running.execution.id, first.execution.id);
    assert_eq!(running.execution.status, Status::Running);
    assert_eq!(running.execution.source_code, "print(1)");

    assert!(store
        .finish_execution(first.execution.id, 1, &result(Status::Completed))
        .await
        .unwrap());
    let done = store.create_execution(new).await.unwrap();
    assert!(!done.created);
    assert_eq!(done.execution.status, Status::Completed);
    assert_eq!(done.execution.report.stdout, b"out\n");
    assert_eq!(b.count("executions").await, 1);
}

pub async fn race_of_20_creates_exactly_one(b: Backend) {
    let s = session(b.store(), "print('race')").await;
    b.warm_pool(8).await;
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let store = b.store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .create_execution(NewExecution {
                    owner: None,
                    session_id: s.id,
                    idempotency_key: Some("race-key".into()),
                    enqueue_job: true,
                    options: Default::default(),
                })
                .await
        }));
    }
    let mut ids = HashSet::new();
    let mut created = 0;
    for task in tasks {
        let out = task.await.unwrap().unwrap();
        ids.insert(out.execution.id);
        created += usize::from(out.created);
    }
    assert_eq!(ids.len(), 1, "all 20 callers got the same execution");
    assert_eq!(created, 1, "exactly one caller created it");
    let id = ids.into_iter().next().unwrap();
    assert_eq!(b.count("executions").await, 1);
    assert_eq!(b.job_rows(id).await.len(), 1);
    assert_eq!(b.count("jobs").await, 1);
}

pub async fn same_key_other_session_conflicts(b: Backend) {
    let store = b.store();
    let owner = session(store, "print(1)").await;
    let other = session(store, "print(2)").await;
    let e = keyed(store, &owner, Some("shared-key")).await;
    let err = store
        .create_execution(NewExecution {
            owner: None,
            session_id: other.id,
            idempotency_key: Some("shared-key".into()),
            enqueue_job: true,
            options: Default::default(),
        })
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::IdempotencyConflict { other_session } if other_session == owner.id),
        "{err:?}"
    );
    assert!(store
        .list_executions(other.id, 10, None)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(b.count("jobs").await, 1);
    // The owner still gets its execution back.
    assert_eq!(keyed(store, &owner, Some("shared-key")).await.id, e.id);
    // A different key on the other session works.
    assert_ne!(keyed(store, &other, Some("other-key")).await.id, e.id);
}

pub async fn no_key_creates_new_each_time(b: Backend) {
    let store = b.store();
    let s = session(store, "print(1)").await;
    let mut ids = HashSet::new();
    for _ in 0..3 {
        ids.insert(execution(store, &s).await.id);
    }
    assert_eq!(ids.len(), 3);
    assert_eq!(b.count("executions").await, 3);
    assert_eq!(b.count("jobs").await, 3);
}

/// Without a job to insert (the Redis queue enqueues elsewhere) the execution is a single
/// statement, outside any transaction: the same rules hold, and no job row appears.
pub async fn without_a_job_the_same_rules_hold(b: Backend) {
    let store = b.store();
    let owner = session(store, "print('solo')").await;
    let other = session(store, "print(2)").await;
    let new = |session_id, key: &str| NewExecution {
        owner: None,
        session_id,
        idempotency_key: Some(key.to_owned()),
        enqueue_job: false,
        options: Default::default(),
    };
    b.warm_pool(8).await;
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (store, new) = (b.store.clone(), new(owner.id, "solo-key"));
        tasks.push(tokio::spawn(
            async move { store.create_execution(new).await },
        ));
    }
    let (mut ids, mut created) = (HashSet::new(), 0);
    for task in tasks {
        let out = task.await.unwrap().unwrap();
        assert_eq!(out.execution.source_code, "print('solo')");
        ids.insert(out.execution.id);
        created += usize::from(out.created);
    }
    assert_eq!((ids.len(), created), (1, 1), "one execution, created once");
    let err = store
        .create_execution(new(other.id, "solo-key"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::IdempotencyConflict { other_session } if other_session == owner.id),
        "{err:?}"
    );
    let missing = uuid::Uuid::now_v7();
    for key in [None, Some("solo-missing".to_owned())] {
        let err = store
            .create_execution(NewExecution {
                owner: None,
                session_id: missing,
                idempotency_key: key,
                enqueue_job: false,
                options: Default::default(),
            })
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::SessionNotFound(id) if id == missing),
            "{err:?}"
        );
    }
    assert_eq!(b.count("executions").await, 1);
    assert_eq!(b.count("jobs").await, 0);
}
