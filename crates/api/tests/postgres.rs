//! The API over PostgreSQL (`PgStore` + `PgQueue`), the scaled deployment's source of truth:
//! the whole flow, the idempotency race and conflict, NUL rejection, history paging and health.
//! Each test makes its own database. Needs `DATABASE_URL=postgres://…`.

mod common;

use common::{error_body, start_on, Server};
use livexec_api::{ApiConfig, SandboxHealth};
use livexec_core::{JobQueue, Store};
use livexec_queue::PgQueue;
use livexec_store::PgStore;
use livexec_testkit::TestDatabase;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::Arc;
use uuid::Uuid;

/// A server on a fresh [`TestDatabase`].
async fn start_pg() -> (Server<PgStore>, TestDatabase) {
    let admin_url = livexec_testkit::postgres_url();
    let db = TestDatabase::create(&admin_url).await;
    let store = Arc::new(PgStore::connect(db.url()).await.unwrap());
    let queue: Arc<dyn JobQueue> = Arc::new(PgQueue::new(store.pool().clone()));
    let server = start_on(
        tempfile::tempdir().unwrap(),
        store,
        queue,
        ApiConfig::default(),
        SandboxHealth::Ok("cgroup v1".into()),
    )
    .await;
    (server, db)
}

/// Stop the server, then drop its database.
async fn stop_pg(server: Server<PgStore>, db: TestDatabase) {
    server.store.pool().close().await;
    server.stop().await.unwrap();
    db.cleanup().await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL (DATABASE_URL, default 127.0.0.1:5432)"]
async fn full_flow_on_postgres() {
    let (s, db) = start_pg().await;
    let res = s
        .post_json("/code-sessions", &json!({"language":"javascript"}))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let id = res.json::<Value>().await.unwrap()["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = s
        .patch_json(
            &format!("/code-sessions/{id}"),
            &json!({"source_code":"a\u{0}b"}),
        )
        .await;
    let msg = error_body(res, StatusCode::BAD_REQUEST).await;
    assert_eq!(msg, json!(["source_code must not contain NUL characters"]));

    // Twenty racing requests with one key: one execution, with its job.
    let url = s.url(&format!("/code-sessions/{id}/run"));
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (client, url) = (s.client.clone(), url.clone());
            tokio::spawn(async move {
                let res = client
                    .post(url)
                    .header("idempotency-key", "pg-race")
                    .send()
                    .await
                    .unwrap();
                (res.status(), res.json::<Value>().await.unwrap())
            })
        })
        .collect();
    let mut ids = HashSet::new();
    for t in tasks {
        let (status, v) = t.await.unwrap();
        assert_eq!(status, StatusCode::OK, "{v}");
        assert_eq!(v["status"], "QUEUED");
        ids.insert(v["execution_id"].as_str().unwrap().to_owned());
    }
    assert_eq!(ids.len(), 1);
    let first = Uuid::parse_str(ids.iter().next().unwrap()).unwrap();
    let queue = PgQueue::new(s.store.pool().clone());
    assert!(queue.contains(first).await.unwrap());

    // The same key on another session.
    let other = s.create_session("python", None).await;
    let res = s
        .client
        .post(s.url(&format!("/code-sessions/{other}/run")))
        .header("idempotency-key", "pg-race")
        .send()
        .await
        .unwrap();
    let msg = error_body(res, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(
        msg,
        "Idempotency key \"pg-race\" is already used by another session"
    );

    // More runs, then page through the history newest first.
    let mut created = vec![first.to_string()];
    for _ in 0..4 {
        let (status, v) = s.run(&id, None).await;
        assert_eq!(status, StatusCode::OK);
        created.push(v["execution_id"].as_str().unwrap().to_owned());
    }
    created.reverse();
    let mut path = format!("/executions/sessions/{id}?limit=2");
    let mut seen = Vec::new();
    loop {
        let res = s.get(&path).await;
        assert_eq!(res.status(), StatusCode::OK);
        let link = res
            .headers()
            .get("link")
            .map(|v| v.to_str().unwrap().to_owned());
        let page: Vec<Value> = res.json().await.unwrap();
        seen.extend(
            page.iter()
                .map(|e| e["execution_id"].as_str().unwrap().to_owned()),
        );
        let Some(link) = link else { break };
        path = link[1..link.find('>').unwrap()].to_owned();
        assert!(seen.len() <= created.len());
    }
    assert_eq!(seen, created);

    let res = s.get(&format!("/code-sessions/{id}")).await;
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["latest_execution_id"], created[0].as_str());
    let exec = s
        .store
        .get_execution(Uuid::parse_str(&created[0]).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(exec.source_code, "console.log(\"Hello World\")");

    let res = s.get("/health").await;
    assert_eq!(res.status(), StatusCode::OK);
    stop_pg(s, db).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL (DATABASE_URL, default 127.0.0.1:5432)"]
async fn closed_postgres_pool_is_503_and_500() {
    let (s, db) = start_pg().await;
    s.store.pool().close().await;
    let res = s.get("/health").await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["status"], "degraded");
    assert_ne!(v["checks"]["database"], "ok");
    let res = s.get(&format!("/executions/{}", Uuid::now_v7())).await;
    let msg = error_body(res, StatusCode::INTERNAL_SERVER_ERROR).await;
    assert_eq!(msg, "Internal server error");
    stop_pg(s, db).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL (DATABASE_URL, default 127.0.0.1:5432)"]
async fn run_options_and_session_files_on_postgres() {
    let (s, db) = start_pg().await;
    let id = s.create_session("python", None).await;
    let path = format!("/code-sessions/{id}");
    let patch = json!({"files": [{"name": "d.bin", "content": "AP8A", "encoding": "base64"}]});
    assert_eq!(s.patch_json(&path, &patch).await.status(), StatusCode::OK);
    let v: Value = s.get(&path).await.json().await.unwrap();
    assert_eq!(v["files"][0]["content"], "AP8A");
    let body = json!({"stdin": "a\u{0}b", "files": [{"name": "x.txt", "content": "\u{0}"}],
                      "tests": [{"stdin": "\u{0}", "expected_stdout": "\u{0}"}]});
    let res = s.post_json(&format!("{path}/run"), &body).await;
    assert_eq!(res.status(), StatusCode::OK);
    let run: Value = res.json().await.unwrap();
    let exec_id = Uuid::parse_str(run["execution_id"].as_str().unwrap()).unwrap();
    let e = s.store.get_execution(exec_id).await.unwrap().unwrap();
    assert_eq!(e.options.stdin.as_deref(), Some("a\u{0}b"));
    let names: Vec<_> = e.options.files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["d.bin", "x.txt"]);
    assert_eq!(e.options.files[0].content, [0, 0xff, 0]);
    assert_eq!(e.options.tests[0].expected_stdout.as_deref(), Some("\u{0}"));
    stop_pg(s, db).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL (DATABASE_URL, default 127.0.0.1:5432)"]
async fn one_shot_and_batch_on_postgres() {
    let (s, db) = start_pg().await;
    let body = json!({"language": "python", "source_code": "print(1)", "stdin": "\u{0}"});
    let res = s
        .client
        .post(s.url("/executions"))
        .header("idempotency-key", "pg-one")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let v: Value = res.json().await.unwrap();
    let id = Uuid::parse_str(v["execution_id"].as_str().unwrap()).unwrap();
    let e = s.store.get_execution(id).await.unwrap().unwrap();
    assert_eq!(
        (e.session_id, e.options.stdin.as_deref()),
        (None, Some("\u{0}"))
    );
    let items = json!([body, {"language": "nope"}]);
    let out: Value = s
        .post_json("/executions/batch", &items)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(out[0]["status"], "QUEUED");
    assert_eq!(out[1]["error"]["statusCode"], 400);
    let many: Value = s
        .get(&format!("/executions?ids={id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(many[0]["session_id"], Value::Null);
    stop_pg(s, db).await;
}
