//! `POST /code-sessions/:id/run` and `GET /executions/:id`: queueing, snapshots and the
//! idempotency rules of API.md §3, against the real SQLite store and embedded queue.

mod common;

use common::{error_body, start};
use livexec_core::{JobQueue, Store};
use livexec_queue::SqliteQueue;
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

fn uuid_of(v: &Value) -> Uuid {
    Uuid::parse_str(v.as_str().expect("string id")).expect("uuid")
}

#[tokio::test]
async fn run_queues_an_execution_with_its_job() {
    let s = start().await;
    let id = s.create_session("python", Some("print(41 + 1)")).await;
    let (status, v) = s.run(&id, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v.as_object().unwrap().len(), 2, "{v}");
    assert_eq!(v["status"], "QUEUED");
    let exec_id = uuid_of(&v["execution_id"]);
    let queue = SqliteQueue::new(s.store.pool().clone());
    assert!(
        queue.contains(exec_id).await.unwrap(),
        "embedded job missing"
    );
    let exec = s.store.get_execution(exec_id).await.unwrap().unwrap();
    assert_eq!(exec.source_code, "print(41 + 1)");
    assert_eq!(exec.language, "python");
}

#[tokio::test]
async fn get_execution_has_the_seven_keys() {
    let s = start().await;
    let id = s.create_session("javascript", None).await;
    let (_, run) = s.run(&id, None).await;
    let res = s
        .get(&format!(
            "/executions/{}",
            run["execution_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["execution_id"], run["execution_id"]);
    assert_eq!(v["status"], "QUEUED");
    assert_eq!(v["stdout"], "");
    assert_eq!(v["stderr"], "");
    assert_eq!(v["execution_time_ms"], 0);
    assert_eq!(v["error_message"], Value::Null);
    assert_eq!(v["error_type"], Value::Null);
    assert_eq!(v["session_id"], id.as_str());
    assert_eq!(v["language"], "javascript");
    assert!(
        v.get("source_code").is_none(),
        "code is not part of the view"
    );
}

#[tokio::test]
async fn unknown_ids_are_404() {
    let s = start().await;
    let res = s.get(&format!("/executions/{}", Uuid::now_v7())).await;
    assert_eq!(
        error_body(res, StatusCode::NOT_FOUND).await,
        "Execution not found"
    );
    let (status, v) = s.run(&Uuid::now_v7().to_string(), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(v["message"], "Session not found");
    let (status, v) = s.run(&Uuid::now_v7().to_string(), Some("k")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{v}");
}

#[tokio::test]
async fn no_key_creates_a_new_execution_each_time() {
    let s = start().await;
    let id = s.create_session("python", None).await;
    let mut ids = std::collections::HashSet::new();
    for _ in 0..3 {
        let (status, v) = s.run(&id, None).await;
        assert_eq!(status, StatusCode::OK);
        ids.insert(uuid_of(&v["execution_id"]));
    }
    assert_eq!(ids.len(), 3);
}

#[tokio::test]
async fn repeated_key_returns_the_same_execution_and_its_current_status() {
    let s = start().await;
    let id = s.create_session("python", None).await;
    let (_, first) = s.run(&id, Some("key-1")).await;
    let (status, again) = s.run(&id, Some("key-1")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again, first);
    // Move it on as a worker would; a repeat must report the current status.
    let exec_id = uuid_of(&first["execution_id"]);
    assert!(s.store.start_execution(exec_id, 1).await.unwrap().is_some());
    let (_, later) = s.run(&id, Some("key-1")).await;
    assert_eq!(later["execution_id"], first["execution_id"]);
    assert_eq!(later["status"], "RUNNING");
    let res = s.get(&format!("/executions/sessions/{id}")).await;
    assert_eq!(res.json::<Vec<Value>>().await.unwrap().len(), 1);
}

#[tokio::test]
async fn twenty_racing_requests_with_one_key_make_one_execution() {
    let s = start().await;
    let id = s.create_session("python", None).await;
    let url = s.url(&format!("/code-sessions/{id}/run"));
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (client, url) = (s.client.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let res = client
                .post(url)
                .header("idempotency-key", "race-key")
                .send()
                .await
                .unwrap();
            (res.status(), res.json::<Value>().await.unwrap())
        }));
    }
    let mut ids = std::collections::HashSet::new();
    for task in tasks {
        let (status, v) = task.await.unwrap();
        assert_eq!(status, StatusCode::OK, "{v}");
        ids.insert(v["execution_id"].as_str().unwrap().to_owned());
    }
    assert_eq!(ids.len(), 1, "{ids:?}");
    let res = s.get(&format!("/executions/sessions/{id}")).await;
    let history: Vec<Value> = res.json().await.unwrap();
    assert_eq!(history.len(), 1);
    let queue = SqliteQueue::new(s.store.pool().clone());
    let exec_id = Uuid::parse_str(ids.iter().next().unwrap()).unwrap();
    assert!(queue.contains(exec_id).await.unwrap());
}

#[tokio::test]
async fn same_key_on_another_session_is_422() {
    let s = start().await;
    let a = s.create_session("python", None).await;
    let b = s.create_session("python", None).await;
    let (status, _) = s.run(&a, Some("shared")).await;
    assert_eq!(status, StatusCode::OK);
    let res = s
        .client
        .post(s.url(&format!("/code-sessions/{b}/run")))
        .header("idempotency-key", "shared")
        .send()
        .await
        .unwrap();
    let msg = error_body(res, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(
        msg,
        "Idempotency key \"shared\" is already used by another session"
    );
    let res = s.get(&format!("/executions/sessions/{b}")).await;
    assert_eq!(res.json::<Vec<Value>>().await.unwrap().len(), 0);
}

#[tokio::test]
async fn invalid_keys_are_400_and_create_nothing() {
    let s = start().await;
    let id = s.create_session("python", None).await;
    let max = "k".repeat(255);
    let (status, _) = s.run(&id, Some(&max)).await;
    assert_eq!(status, StatusCode::OK, "255 characters are allowed");
    let too_long = "k".repeat(256);
    for bad in [too_long.as_str(), "tab\there", ""] {
        let res = s
            .client
            .post(s.url(&format!("/code-sessions/{id}/run")))
            .header("idempotency-key", bad)
            .send()
            .await
            .unwrap();
        let msg = error_body(res, StatusCode::BAD_REQUEST).await;
        assert_eq!(
            msg, "idempotency-key must be 1 to 255 printable ASCII characters",
            "{bad:?}"
        );
    }
    let res = s
        .client
        .post(s.url(&format!("/code-sessions/{id}/run")))
        .header(
            "idempotency-key",
            reqwest::header::HeaderValue::from_bytes(b"k\xe9y").unwrap(),
        )
        .send()
        .await
        .unwrap();
    error_body(res, StatusCode::BAD_REQUEST).await;
    let res = s.get(&format!("/executions/sessions/{id}")).await;
    assert_eq!(res.json::<Vec<Value>>().await.unwrap().len(), 1);
}

#[tokio::test]
async fn patch_right_after_run_does_not_change_the_snapshot() {
    let s = start().await;
    let id = s.create_session("python", Some("print('before')")).await;
    let (_, run) = s.run(&id, None).await;
    let res = s
        .patch_json(
            &format!("/code-sessions/{id}"),
            &json!({"source_code":"console.log('after')","language":"javascript"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let exec = s
        .store
        .get_execution(uuid_of(&run["execution_id"]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(exec.source_code, "print('before')");
    assert_eq!(exec.language, "python");
    let (_, second) = s.run(&id, None).await;
    let exec = s
        .store
        .get_execution(uuid_of(&second["execution_id"]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(exec.source_code, "console.log('after')");
    assert_eq!(exec.language, "javascript");
}

#[tokio::test]
async fn run_takes_no_body_an_empty_one_or_an_empty_object_alike() {
    let s = start().await;
    let id = s.create_session("python", None).await;
    for body in ["", "  \n", "{}"] {
        let res = s.post_raw(&format!("/code-sessions/{id}/run"), body).await;
        assert_eq!(res.status(), StatusCode::OK, "{body:?}");
        let v: Value = res.json().await.unwrap();
        assert_eq!(v.as_object().unwrap().len(), 2, "{v}");
        let e = s.store.get_execution(uuid_of(&v["execution_id"])).await;
        assert!(e.unwrap().unwrap().options.is_default());
    }
    // A body is now read (API.md §10): one that is not JSON is refused, nothing created.
    let res = s
        .post_raw(&format!("/code-sessions/{id}/run"), "{not json")
        .await;
    error_body(res, StatusCode::BAD_REQUEST).await;
    let page = s.get(&format!("/executions/sessions/{id}")).await;
    assert_eq!(
        page.json::<Value>()
            .await
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        3
    );
}
