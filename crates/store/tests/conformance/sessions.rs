//! Sessions: create, get, update (language optional), latest execution id, ping.

use crate::harness::Backend;
use crate::util::{execution, session};
use uuid::Uuid;

pub async fn session_create_get_update(b: Backend) {
    let store = b.store();
    let created = store.create_session("python", "print('hi')").await.unwrap();
    assert_eq!(created.language, "python");
    assert_eq!(created.source_code, "print('hi')");
    assert_eq!(created.status, "ACTIVE");
    assert_eq!(created.latest_execution_id, None);
    assert_eq!(created.created_at, created.updated_at);

    // What was returned is exactly what is stored, timestamps to the millisecond.
    let fetched = store.get_session(created.id).await.unwrap().unwrap();
    assert_eq!(fetched, created);

    // Code only: the language stays.
    let code_only = store
        .update_session(created.id, "print(2)", None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(code_only.language, "python");
    assert_eq!(code_only.source_code, "print(2)");
    assert_eq!(code_only.created_at, created.created_at);
    assert!(code_only.updated_at >= created.updated_at);

    // Code and language.
    let both = store
        .update_session(created.id, "console.log(3)", Some("javascript"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(both.language, "javascript");
    assert_eq!(both.source_code, "console.log(3)");
    assert_eq!(store.get_session(created.id).await.unwrap().unwrap(), both);

    // Unicode and an empty program are stored as given.
    let odd = store.create_session("python", "").await.unwrap();
    let text = "print('héllo ✓ 🚀')\n\ttab";
    let odd = store
        .update_session(odd.id, text, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        store
            .get_session(odd.id)
            .await
            .unwrap()
            .unwrap()
            .source_code,
        text
    );

    // Unknown ids.
    let unknown = Uuid::now_v7();
    assert_eq!(store.get_session(unknown).await.unwrap(), None);
    assert_eq!(
        store
            .update_session(unknown, "x", Some("python"))
            .await
            .unwrap(),
        None
    );
    assert_eq!(b.count("sessions").await, 2);
}

pub async fn latest_execution_id_is_newest(b: Backend) {
    let store = b.store();
    let s = session(store, "print(1)").await;
    let other = session(store, "print(2)").await;
    assert_eq!(
        store
            .get_session(s.id)
            .await
            .unwrap()
            .unwrap()
            .latest_execution_id,
        None
    );
    let mut last = None;
    for _ in 0..3 {
        last = Some(execution(store, &s).await.id);
        // Another session's newer execution must not count.
        execution(store, &other).await;
        let got = store.get_session(s.id).await.unwrap().unwrap();
        assert_eq!(got.latest_execution_id, last);
    }
    let updated = store
        .update_session(s.id, "print(3)", None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(updated.latest_execution_id, last);
}

pub async fn ping_answers(b: Backend) {
    b.store().ping().await.unwrap();
}
