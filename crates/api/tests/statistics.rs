//! `GET /statistics` over real HTTP on both stores: executions recorded through the real
//! store (SQLite, then PostgreSQL when `DATABASE_URL` names one) add up to the expected counts,
//! shares, nearest-rank percentiles and hours; a bad window is a 400 in the error shape. The
//! dashboard page that plots them is served.

mod common;

use common::{error_body, start_on, Server};
use livexec_api::{ApiConfig, SandboxHealth};
use livexec_core::{ErrorType, JobQueue, NewExecution, RunResult, Status, Store};
use livexec_queue::PgQueue;
use livexec_store::PgStore;
use livexec_testkit::TestDatabase;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::Arc;

/// Run time, status and error type of each recorded execution: python 10..=100 ms (ten),
/// javascript 5 ms completed and 7 ms failed, one python left QUEUED.
fn plan() -> Vec<(&'static str, i64, Status, Option<ErrorType>)> {
    let mut plan: Vec<_> = (1..=10)
        .map(|i| ("python", i * 10, Status::Completed, None))
        .collect();
    plan[9] = (
        "python",
        100,
        Status::Timeout,
        Some(ErrorType::TimeoutError),
    );
    plan.push(("javascript", 5, Status::Completed, None));
    plan.push((
        "javascript",
        7,
        Status::Failed,
        Some(ErrorType::RuntimeError),
    ));
    plan
}

async fn record<S: Store>(store: &S) {
    for (language, ms, status, error_type) in plan() {
        let session = store.create_session(language, "x").await.unwrap();
        let created = store
            .create_execution(NewExecution {
                owner: None,
                session_id: session.id,
                idempotency_key: None,
                enqueue_job: false,
                options: Default::default(),
            })
            .await
            .unwrap();
        let id = created.execution.id;
        store.start_execution(id, 1).await.unwrap().unwrap();
        let mut result = RunResult::internal_error("unused");
        result.status = status;
        result.report.error_type = error_type;
        result.report.error_message = None;
        result.report.execution_time_ms = ms;
        assert!(store.finish_execution(id, 1, &result).await.unwrap());
    }
    let waiting = store.create_session("python", "x").await.unwrap();
    store
        .create_execution(NewExecution {
            owner: None,
            session_id: waiting.id,
            idempotency_key: None,
            enqueue_job: false,
            options: Default::default(),
        })
        .await
        .unwrap();
}

async fn check<S>(s: &Server<S>) {
    let res = s.get("/statistics?days=7").await;
    assert_eq!(res.status(), StatusCode::OK);
    let stats: Value = res.json().await.unwrap();
    assert_eq!(stats["total"], 13);
    assert_eq!(stats["finished"], 12);
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    // Recorded just now: one day (a run across midnight UTC may see two; then both count).
    let per_day = stats["per_day"].as_array().unwrap();
    let count = |lang: &str| -> u64 {
        per_day
            .iter()
            .filter(|d| d["language"] == lang)
            .map(|d| d["executions"].as_u64().unwrap())
            .sum()
    };
    assert_eq!((count("python"), count("javascript")), (11, 2));
    assert!(
        per_day.iter().any(|d| d["day"] == today.as_str()),
        "{per_day:?}"
    );
    let shares = &stats["error_types"];
    assert_eq!(
        shares[0]["error_type"],
        Value::Null,
        "no error is the most common"
    );
    assert_eq!(shares[0]["executions"], 10);
    let rate = |t: &str| {
        shares
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["error_type"] == t)
            .map(|e| e["rate"].as_f64().unwrap())
    };
    assert!((rate("TimeoutError").unwrap() - 1.0 / 12.0).abs() < 1e-9);
    assert!((rate("RuntimeError").unwrap() - 1.0 / 12.0).abs() < 1e-9);
    // Nearest rank: p50 of 10..=100 is the 5th value, p95 the 10th; of [5, 7]: 5 and 7.
    assert_eq!(
        stats["run_time"],
        json!([
            {"language": "javascript", "executions": 2, "p50_ms": 5, "p95_ms": 7},
            {"language": "python", "executions": 10, "p50_ms": 50, "p95_ms": 100},
        ])
    );
    let hours = stats["peak_hours"].as_array().unwrap();
    let counted: u64 = hours
        .iter()
        .map(|h| h["executions"].as_u64().unwrap())
        .sum();
    assert_eq!(counted, 13);
    assert!(hours.iter().all(|h| h["hour"].as_u64().unwrap() < 24));

    for bad in ["0", "367", "x"] {
        let res = s.get(&format!("/statistics?days={bad}")).await;
        let message = error_body(res, StatusCode::BAD_REQUEST).await;
        assert_eq!(message, json!(["days must be an integer from 1 to 366"]));
    }
}

#[tokio::test]
async fn statistics_on_sqlite() {
    let s = common::start().await;
    record(s.store.as_ref()).await;
    check(&s).await;
    let page = s.get("/stats").await;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("/assets/stats.js"));
    let script = s.get("/assets/stats.js").await;
    assert_eq!(script.status(), StatusCode::OK);
    assert!(script.text().await.unwrap().contains("/statistics?days="));
}

#[tokio::test]
#[ignore = "needs PostgreSQL (DATABASE_URL, default 127.0.0.1:5432)"]
async fn statistics_on_postgres() {
    let admin_url = livexec_testkit::postgres_url();
    let db = TestDatabase::create(&admin_url).await;
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
    record(s.store.as_ref()).await;
    check(&s).await;
    s.store.pool().close().await;
    s.stop().await.unwrap();
    db.cleanup().await;
}
