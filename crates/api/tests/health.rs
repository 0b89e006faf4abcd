//! `GET /health`: ok, and degraded naming the failing check (sandbox, database).

mod common;

use common::start_with;
use livexec_api::{ApiConfig, SandboxHealth};
use reqwest::StatusCode;
use serde_json::Value;

async fn health(s: &common::Server) -> (StatusCode, Value) {
    let res = s.get("/health").await;
    let status = res.status();
    (status, res.json().await.unwrap())
}

#[tokio::test]
async fn healthy_service_is_200_ok() {
    let s = start_with(ApiConfig::default(), SandboxHealth::Ok("cgroup v1".into())).await;
    let (status, v) = health(&s).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["status"], "ok");
    assert_eq!(
        v["checks"],
        serde_json::json!({"database":"ok","queue":"ok","sandbox":"ok"})
    );
    assert_eq!(v["details"]["sandbox"], "cgroup v1");
    let t = v["timestamp"].as_str().unwrap();
    assert!(chrono::DateTime::parse_from_rfc3339(t).is_ok(), "{t}");
}

#[tokio::test]
async fn api_role_without_sandbox_is_still_ok() {
    let s = start_with(ApiConfig::default(), SandboxHealth::NotUsed).await;
    let (status, v) = health(&s).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["status"], "ok");
    assert_eq!(v["checks"]["sandbox"], "not used");
}

#[tokio::test]
async fn broken_sandbox_is_503_naming_it() {
    let why = "no usable cgroup: memory controller missing";
    let s = start_with(ApiConfig::default(), SandboxHealth::Failed(why.into())).await;
    let (status, v) = health(&s).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(v["status"], "degraded");
    assert_eq!(v["checks"]["sandbox"], why);
    assert_eq!(v["checks"]["database"], "ok");
    assert_eq!(v["checks"]["queue"], "ok");
}

#[tokio::test]
async fn closed_database_is_503_naming_it() {
    let s = start_with(ApiConfig::default(), SandboxHealth::Ok("cgroup v1".into())).await;
    s.store.pool().close().await;
    let (status, v) = health(&s).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(v["status"], "degraded");
    let db = v["checks"]["database"].as_str().unwrap();
    assert_ne!(db, "ok");
    assert!(!db.is_empty());
    // The embedded queue shares the pool, so it is down too.
    assert_ne!(v["checks"]["queue"], "ok");
    assert_eq!(v["checks"]["sandbox"], "ok");
    // And the other endpoints answer 500 without details.
    let res = s
        .post_json("/code-sessions", &serde_json::json!({"language":"python"}))
        .await;
    let msg = common::error_body(res, StatusCode::INTERNAL_SERVER_ERROR).await;
    assert_eq!(msg, "Internal server error");
}
