//! Isolation between keys, deletion, retention and usage (issue 13) over HTTP, on the
//! embedded store and on PostgreSQL: another key's sessions and executions answer exactly as
//! unknown ones everywhere (sessions, runs, history, events, wait, batch ids, Judge0 tokens),
//! admins read everything, idempotency keys are per key, deletes remove rows (checked with SQL)
//! and refuse unfinished executions, retention empties old data but keeps metrics, and usage
//! adds up finished runs and survives their deletion.

mod common;

use common::{error_body, start, start_on, Server};
use livexec_api::auth::token::{hash_token, new_token};
use livexec_api::{ApiConfig, SandboxHealth};
use livexec_core::{ExecutionId, JobQueue, KeyStore, RunReport, RunResult, Status, Store};
use livexec_queue::PgQueue;
use livexec_store::{PgStore, SqliteStore};
use reqwest::{Method, Response, StatusCode};
use serde_json::{json, Value};
use std::sync::Arc;
use uuid::Uuid;

/// Direct SQL on the server's database: one integer.
trait Sql {
    async fn count(&self, sql: &str) -> i64;
}

impl Sql for SqliteStore {
    async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(self.pool())
            .await
            .unwrap()
    }
}

impl Sql for PgStore {
    async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(self.pool())
            .await
            .unwrap()
    }
}

/// A request with a token.
async fn call<S>(
    s: &Server<S>,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> Response {
    let mut req = s.client.request(method, s.url(path)).bearer_auth(token);
    if let Some(body) = body {
        req = req.json(&body);
    }
    req.send().await.unwrap()
}

async fn get<S>(s: &Server<S>, path: &str, token: &str) -> Response {
    call(s, Method::GET, path, token, None).await
}

async fn json_of(res: Response, status: StatusCode) -> Value {
    assert_eq!(res.status(), status);
    res.json().await.unwrap()
}

/// A new key's token.
async fn key<S: KeyStore>(s: &Server<S>, name: &str, admin: bool) -> (String, Uuid) {
    let token = new_token().unwrap();
    let key = s
        .store
        .create_key(name, "free", admin, &hash_token(&token))
        .await
        .unwrap();
    (token, key.id)
}

/// Run session `id` with an idempotency key as `token`; the execution id.
async fn run<S>(s: &Server<S>, session: &str, token: &str, idem: &str) -> ExecutionId {
    let res = s
        .client
        .post(s.url(&format!("/code-sessions/{session}/run")))
        .bearer_auth(token)
        .header("idempotency-key", idem)
        .send()
        .await
        .unwrap();
    let body = json_of(res, StatusCode::OK).await;
    body["execution_id"].as_str().unwrap().parse().unwrap()
}

/// Start and finish `id` through the store, as a worker would, with known figures.
async fn finish<S: Store>(s: &Server<S>, id: ExecutionId, cpu: i64, wall: i64, mem_kb: i64) {
    let started = s.store.start_execution(id, 1).await.unwrap();
    assert!(started.is_some(), "execution {id} starts");
    let result = RunResult {
        status: Status::Completed,
        report: RunReport {
            stdout: b"secret output".to_vec(),
            stderr: b"secret error".to_vec(),
            execution_time_ms: wall,
            exit_code: Some(0),
            cpu_time_ms: Some(cpu),
            memory_kb: Some(mem_kb),
            ..RunReport::default()
        },
    };
    assert!(s.store.finish_execution(id, 1, &result).await.unwrap());
}

/// The whole scenario, on any store.
async fn scenario<S: Store + KeyStore + Sql>(s: &Server<S>) {
    let (alice, alice_id) = key(s, "alice", false).await;
    let (bob, _) = key(s, "bob", false).await;
    let (admin, _) = key(s, "admin", true).await;

    let res = call(
        s,
        Method::POST,
        "/code-sessions",
        &alice,
        Some(json!({"language": "python", "templateCode": "print('alice')"})),
    )
    .await;
    let a = json_of(res, StatusCode::CREATED).await["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = call(
        s,
        Method::POST,
        "/code-sessions",
        &bob,
        Some(json!({"language": "python"})),
    )
    .await;
    let b = json_of(res, StatusCode::CREATED).await["session_id"]
        .as_str()
        .unwrap()
        .to_owned();

    // The same idempotency key from two API keys: two executions.
    let ea = run(s, &a, &alice, "same").await;
    let eb = run(s, &b, &bob, "same").await;
    assert_ne!(ea, eb);
    assert_eq!(
        run(s, &a, &alice, "same").await,
        ea,
        "a replay within one key"
    );

    // Bob sees none of Alice's: every answer is the one an unknown id gets.
    let unknown = Uuid::now_v7();
    let unknown_session = error_body(
        get(s, &format!("/code-sessions/{unknown}"), &bob).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let unknown_execution = error_body(
        get(s, &format!("/executions/{unknown}"), &bob).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let as_unknown_session = [
        call(s, Method::GET, &format!("/code-sessions/{a}"), &bob, None).await,
        call(
            s,
            Method::PATCH,
            &format!("/code-sessions/{a}"),
            &bob,
            Some(json!({"source_code": "print('bob')"})),
        )
        .await,
        call(
            s,
            Method::POST,
            &format!("/code-sessions/{a}/run"),
            &bob,
            None,
        )
        .await,
        call(
            s,
            Method::POST,
            &format!("/code-sessions/{a}/run?wait=true&timeout_ms=100"),
            &bob,
            None,
        )
        .await,
        call(
            s,
            Method::GET,
            &format!("/executions/sessions/{a}"),
            &bob,
            None,
        )
        .await,
        call(
            s,
            Method::DELETE,
            &format!("/code-sessions/{a}"),
            &bob,
            None,
        )
        .await,
    ];
    for res in as_unknown_session {
        assert_eq!(
            error_body(res, StatusCode::NOT_FOUND).await,
            unknown_session
        );
    }
    let as_unknown_execution = [
        call(s, Method::GET, &format!("/executions/{ea}"), &bob, None).await,
        call(
            s,
            Method::GET,
            &format!("/executions/{ea}/events"),
            &bob,
            None,
        )
        .await,
        call(s, Method::DELETE, &format!("/executions/{ea}"), &bob, None).await,
    ];
    for res in as_unknown_execution {
        assert_eq!(
            error_body(res, StatusCode::NOT_FOUND).await,
            unknown_execution
        );
    }
    // The session was not changed by Bob's PATCH.
    let session = json_of(
        get(s, &format!("/code-sessions/{a}"), &alice).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(session["source_code"], "print('alice')");
    // Batch ids: another key's is null, as an unknown one.
    let ids = format!("/executions?ids={ea},{eb},{unknown}");
    let batch = json_of(get(s, &ids, &bob).await, StatusCode::OK).await;
    assert!(batch[0].is_null() && batch[2].is_null());
    assert_eq!(batch[1]["execution_id"], json!(eb));

    // One-shot runs belong to their key.
    let res = call(
        s,
        Method::POST,
        "/executions",
        &bob,
        Some(json!({"language": "python", "source_code": "print('one-shot')"})),
    )
    .await;
    let one: ExecutionId = json_of(res, StatusCode::OK).await["execution_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        error_body(
            get(s, &format!("/executions/{one}"), &alice).await,
            StatusCode::NOT_FOUND
        )
        .await,
        unknown_execution
    );
    // Judge0: another key's token answers as an unknown token.
    let j_unknown = get(s, &format!("/submissions/{unknown}"), &alice).await;
    let (j_status, j_body) = (j_unknown.status(), j_unknown.text().await.unwrap());
    let j_other = get(s, &format!("/submissions/{one}"), &alice).await;
    assert_eq!(j_other.status(), j_status);
    assert_eq!(j_other.text().await.unwrap(), j_body);
    assert_eq!(
        get(s, &format!("/submissions/{one}"), &bob).await.status(),
        StatusCode::OK
    );
    let j_batch = json_of(
        get(s, &format!("/submissions/batch?tokens={one},{ea}"), &alice).await,
        StatusCode::OK,
    )
    .await;
    assert!(j_batch["submissions"][0].is_null());
    assert!(!j_batch["submissions"][1].is_null());

    // An admin reads everything; statistics are admin-only.
    for path in [
        format!("/code-sessions/{a}"),
        format!("/executions/{ea}"),
        format!("/executions/{one}"),
        format!("/executions/sessions/{a}"),
    ] {
        assert_eq!(
            get(s, &path, &admin).await.status(),
            StatusCode::OK,
            "{path}"
        );
    }
    let both = json_of(get(s, &ids, &admin).await, StatusCode::OK).await;
    assert!(!both[0].is_null() && !both[1].is_null());
    error_body(get(s, "/statistics", &bob).await, StatusCode::FORBIDDEN).await;
    assert_eq!(get(s, "/statistics", &admin).await.status(), StatusCode::OK);

    // Deleting an unfinished execution, or its session: 409, naming it. QUEUED, then RUNNING.
    for _ in 0..2 {
        let res = call(
            s,
            Method::DELETE,
            &format!("/executions/{ea}"),
            &alice,
            None,
        )
        .await;
        let msg = error_body(res, StatusCode::CONFLICT).await;
        assert!(msg.as_str().unwrap().contains(&ea.to_string()), "{msg}");
        let res = call(
            s,
            Method::DELETE,
            &format!("/code-sessions/{a}"),
            &alice,
            None,
        )
        .await;
        let msg = error_body(res, StatusCode::CONFLICT).await;
        assert!(msg.as_str().unwrap().contains(&ea.to_string()), "{msg}");
        if s.store.start_execution(ea, 1).await.unwrap().is_none() {
            break;
        }
    }
    // Finished (through the store, with known figures): deleted, rows and job gone.
    s.store.requeue_execution(ea, 1).await.unwrap();
    finish(s, ea, 100, 200, 2048).await;
    let res = call(
        s,
        Method::DELETE,
        &format!("/executions/{ea}"),
        &alice,
        None,
    )
    .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        s.store
            .count(&format!(
                "SELECT COUNT(*) FROM executions WHERE id = '{ea}'"
            ))
            .await,
        0
    );
    assert_eq!(
        s.store
            .count(&format!(
                "SELECT COUNT(*) FROM jobs WHERE execution_id = '{ea}'"
            ))
            .await,
        0
    );
    let res = call(
        s,
        Method::DELETE,
        &format!("/executions/{ea}"),
        &alice,
        None,
    )
    .await;
    assert_eq!(
        error_body(res, StatusCode::NOT_FOUND).await,
        unknown_execution
    );

    // A session with finished executions: deleted with them.
    let e2 = run(s, &a, &alice, "second").await;
    finish(s, e2, 50, 100, 1024).await;
    let res = call(
        s,
        Method::DELETE,
        &format!("/code-sessions/{a}"),
        &alice,
        None,
    )
    .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    for sql in [
        format!("SELECT COUNT(*) FROM sessions WHERE id = '{a}'"),
        format!("SELECT COUNT(*) FROM executions WHERE session_id = '{a}'"),
        format!("SELECT COUNT(*) FROM executions WHERE id = '{e2}'"),
    ] {
        assert_eq!(s.store.count(&sql).await, 0, "{sql}");
    }
    assert_eq!(
        get(s, &format!("/code-sessions/{a}"), &alice)
            .await
            .status(),
        StatusCode::NOT_FOUND
    );

    // Usage survives the deletions: 2 runs, 150 ms CPU, 300 ms wall, 2048·200 + 1024·100 KiB·ms.
    let usage = json_of(get(s, "/usage", &alice).await, StatusCode::OK).await;
    assert_eq!(usage["key_id"], json!(alice_id));
    let total = &usage["total"];
    assert_eq!(total["executions"], 2);
    assert_eq!(total["cpu_ms"], 150);
    assert_eq!(total["wall_ms"], 300);
    assert_eq!(total["memory_kib_ms"], 2048 * 200 + 1024 * 100);
    assert_eq!(total["memory_mib_seconds"], json!(0.5));
    assert_eq!(total["cpu_seconds"], json!(0.15));
    assert_eq!(usage["by_language"][0]["language"], "python");
    assert_eq!(usage["by_day"].as_array().unwrap().len(), 1);
    let admin_view = json_of(
        get(s, &format!("/usage?key_id={alice_id}"), &admin).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(admin_view["total"], usage["total"]);
    error_body(
        get(s, &format!("/usage?key_id={alice_id}"), &bob).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let bobs = json_of(get(s, "/usage", &bob).await, StatusCode::OK).await;
    assert_eq!(bobs["total"]["executions"], 0);
    for bad in [
        "/usage?from=2026-13-01",
        "/usage?from=2026-02-01&to=2026-01-01",
        "/usage?from=2024-01-01&to=2026-01-01",
        "/usage?key_id=nope",
    ] {
        error_body(get(s, bad, &admin).await, StatusCode::BAD_REQUEST).await;
    }

    // Retention: a finished one-shot loses code and output, keeps its metrics; Bob's session
    // with a queued execution is kept.
    finish(s, one, 7, 9, 512).await;
    let cutoff = chrono::Utc::now() + chrono::Duration::days(1);
    let purged = s.store.purge_before(cutoff, 500).await.unwrap();
    assert_eq!(purged.executions, 1);
    assert_eq!(purged.sessions, 0);
    let emptied = format!(
        "SELECT COUNT(*) FROM executions WHERE id = '{one}' AND source_code = '' \
         AND length(stdout) = 0 AND length(stderr) = 0 AND options IS NULL \
         AND cpu_time_ms = 7 AND execution_time_ms = 9 AND memory_kb = 512"
    );
    assert_eq!(s.store.count(&emptied).await, 1);
    let view = json_of(
        get(s, &format!("/executions/{one}"), &bob).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(view["stdout"], "");
    assert_eq!(
        s.store.purge_before(cutoff, 500).await.unwrap().executions,
        0
    );
    assert_eq!(
        s.store
            .count(&format!("SELECT COUNT(*) FROM sessions WHERE id = '{b}'"))
            .await,
        1
    );
}

#[tokio::test]
async fn isolation_deletion_retention_and_usage_on_sqlite() {
    let s = start().await;
    scenario(&s).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL (DATABASE_URL, default 127.0.0.1:5432)"]
async fn isolation_deletion_retention_and_usage_on_postgres() {
    let admin_url = livexec_testkit::postgres_url();
    let db = livexec_testkit::TestDatabase::create(&admin_url).await;
    let store = Arc::new(PgStore::connect(db.url()).await.unwrap());
    let queue: Arc<dyn JobQueue> = Arc::new(PgQueue::new(store.pool().clone()));
    let s = start_on(
        tempfile::tempdir().unwrap(),
        store,
        queue,
        ApiConfig::default(),
        SandboxHealth::Ok("cgroup v1".into()),
    )
    .await;
    scenario(&s).await;
    s.store.pool().close().await;
    s.stop().await.unwrap();
    db.cleanup().await;
}

/// The service-wide metrics are the admins', as the statistics are.
#[tokio::test]
async fn metrics_need_an_admin_key_once_keys_exist() {
    let s = start().await;
    assert_eq!(
        s.get("/metrics").await.status(),
        StatusCode::OK,
        "open service"
    );
    let (bob, _) = key(&s, "bob", false).await;
    let (admin, _) = key(&s, "admin", true).await;
    assert_eq!(
        error_body(get(&s, "/metrics", &bob).await, StatusCode::FORBIDDEN).await,
        "GET /metrics shows the whole service's figures and needs an admin key"
    );
    assert_eq!(get(&s, "/metrics", &admin).await.status(), StatusCode::OK);
}

/// Revoking a key ends its open event streams (with `interrupted`), not only its next
/// requests; another key's stream goes on.
#[tokio::test]
async fn revoking_a_key_ends_its_open_event_streams() {
    let s = start().await;
    let (alice, alice_id) = key(&s, "alice", false).await;
    let (bob, _) = key(&s, "bob", false).await;
    let (admin, _) = key(&s, "admin", true).await;
    let body = json!({"language": "python", "source_code": "print(1)"});
    let mut streams = Vec::new();
    for token in [&alice, &bob] {
        // No worker here: the execution stays queued and its stream open.
        let res = call(&s, Method::POST, "/executions", token, Some(body.clone())).await;
        let id = json_of(res, StatusCode::OK).await["execution_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let res = get(&s, &format!("/executions/{id}/events"), token).await;
        assert_eq!(res.status(), StatusCode::OK);
        streams.push(res);
    }
    let bob_stream = streams.pop().unwrap();
    let mut alice_stream = streams.pop().unwrap();
    let res = call(
        &s,
        Method::DELETE,
        &format!("/admin/keys/{alice_id}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    // A guard, not a timing assertion: without the revocation the stream never ends.
    let mut text = String::new();
    let read = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        while let Some(chunk) = alice_stream.chunk().await.unwrap() {
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await;
    assert!(read.is_ok(), "alice's stream still open after 60 s: {text}");
    assert!(text.contains("event: interrupted"), "{text}");
    assert!(text.contains("API key was revoked"), "{text}");
    // Bob's stream is still open: nothing more has arrived and it has not ended.
    let mut bob_stream = bob_stream;
    let more = tokio::time::timeout(std::time::Duration::from_millis(300), async {
        let mut seen = String::new();
        while let Some(chunk) = bob_stream.chunk().await.unwrap() {
            seen.push_str(&String::from_utf8_lossy(&chunk));
            if seen.contains("interrupted") {
                return seen;
            }
        }
        seen
    })
    .await;
    if let Ok(seen) = more {
        panic!("bob's stream ended: {seen}");
    }
}
