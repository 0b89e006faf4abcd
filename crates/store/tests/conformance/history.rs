//! History paging and the reconciler's list of unfinished executions.

use crate::harness::Backend;
use crate::util::{execution, result, session};
use livexec_core::{ExecutionId, Status};

pub async fn history_is_newest_first_and_pages(b: Backend) {
    let store = b.store();
    let s = session(store, "print(1)").await;
    let other = session(store, "print(2)").await;
    let mut created: Vec<ExecutionId> = Vec::new();
    for _ in 0..7 {
        created.push(execution(store, &s).await.id);
        execution(store, &other).await;
    }
    let newest_first: Vec<ExecutionId> = created.iter().rev().copied().collect();

    let all: Vec<_> = store
        .list_executions(s.id, 100, None)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(all, newest_first);

    // Pages of 3 walk the whole history with no gap and no repeat.
    let mut walked = Vec::new();
    let mut before = None;
    loop {
        let page = store.list_executions(s.id, 3, before).await.unwrap();
        assert!(page.len() <= 3);
        if page.is_empty() {
            break;
        }
        assert!(page.iter().all(|e| e.session_id == Some(s.id)));
        before = page.last().map(|e| e.id);
        walked.extend(page.into_iter().map(|e| e.id));
    }
    assert_eq!(walked, newest_first);

    // `before` is strict; the oldest has nothing before it; limit 0 is empty.
    let after_third = store
        .list_executions(s.id, 2, Some(newest_first[2]))
        .await
        .unwrap();
    let ids: Vec<_> = after_third.iter().map(|e| e.id).collect();
    assert_eq!(ids, newest_first[3..5].to_vec());
    assert!(store
        .list_executions(s.id, 10, Some(created[0]))
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .list_executions(s.id, 0, None)
        .await
        .unwrap()
        .is_empty());
    let unknown = uuid::Uuid::now_v7();
    assert!(store
        .list_executions(unknown, 10, None)
        .await
        .unwrap()
        .is_empty());
}

pub async fn list_unfinished_is_oldest_first(b: Backend) {
    let store = b.store();
    let s = session(store, "print(1)").await;
    let queued = execution(store, &s).await;
    let running = execution(store, &s).await;
    let completed = execution(store, &s).await;
    let requeued = execution(store, &s).await;
    assert!(store
        .start_execution(running.id, 1)
        .await
        .unwrap()
        .is_some());
    assert!(store
        .start_execution(completed.id, 1)
        .await
        .unwrap()
        .is_some());
    assert!(store
        .finish_execution(completed.id, 1, &result(Status::Completed))
        .await
        .unwrap());
    assert!(store
        .start_execution(requeued.id, 1)
        .await
        .unwrap()
        .is_some());
    assert!(store.requeue_execution(requeued.id, 1).await.unwrap());

    let later = chrono::Utc::now() + chrono::Duration::seconds(60);
    let triples = |list: Vec<livexec_core::Unfinished>| -> Vec<_> {
        list.into_iter()
            .map(|u| {
                assert_eq!(u.owner, None);
                (u.id, u.status, u.attempts)
            })
            .collect()
    };
    let all = triples(store.list_unfinished(later, 100).await.unwrap());
    assert_eq!(
        all,
        vec![
            (queued.id, Status::Queued, 0),
            (running.id, Status::Running, 1),
            (requeued.id, Status::Queued, 1),
        ]
    );
    assert_eq!(
        triples(store.list_unfinished(later, 2).await.unwrap()),
        all[..2].to_vec()
    );
    // Strictly before: nothing was queued before the first one.
    assert!(store
        .list_unfinished(queued.queued_at, 100)
        .await
        .unwrap()
        .is_empty());
    assert!(store.fail_execution(queued.id, "gave up").await.unwrap());
    let rest = triples(store.list_unfinished(later, 100).await.unwrap());
    assert_eq!(rest, all[1..].to_vec());
}

/// The sizes of a page list the same ids as the page, newest first, with the bytes each row
/// holds: a run with 1 MiB of stdout and 2 MiB of stderr counts those, the others a little.
pub async fn history_sizes_list_the_page_and_count_its_bytes(b: Backend) {
    let store = b.store();
    let s = session(store, "print(1)").await;
    let mut created: Vec<ExecutionId> = Vec::new();
    for _ in 0..4 {
        created.push(execution(store, &s).await.id);
    }
    let big = created[1];
    let mut finished = result(Status::Completed);
    finished.report.stdout = vec![0xff; 1 << 20];
    finished.report.stderr = vec![b'e'; 2 << 20];
    assert!(store.start_execution(big, 1).await.unwrap().is_some());
    assert!(store.finish_execution(big, 1, &finished).await.unwrap());
    for (limit, before) in [
        (10, None),
        (2, None),
        (2, Some(created[3])),
        (1, Some(created[0])),
    ] {
        let sizes = store
            .list_execution_sizes(s.id, limit, before)
            .await
            .unwrap();
        let page: Vec<ExecutionId> = store
            .list_executions(s.id, limit, before)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.id)
            .collect();
        let ids: Vec<ExecutionId> = sizes.iter().map(|(id, _)| *id).collect();
        assert_eq!(ids, page, "limit {limit}, before {before:?}");
        for (id, bytes) in sizes {
            if id == big {
                assert!((3 << 20..(3 << 20) + 65536).contains(&bytes), "{bytes}");
            } else {
                assert!(bytes < 65536, "{bytes}");
            }
        }
    }
}
