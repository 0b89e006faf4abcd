//! CORS over real HTTP: with allowed origins set, a page on such an origin may call the API
//! (preflight and simple requests, the event stream included); other origins, and every
//! origin when none is set, get no CORS header.

mod common;

use common::start_with;
use livexec_api::{ApiConfig, SandboxHealth};
use reqwest::Method;

const PAGE: &str = "https://ide.example.test";

async fn server(origins: &[&str]) -> common::Server {
    let config = ApiConfig {
        cors_origins: origins.iter().map(|o| o.to_string()).collect(),
        ..ApiConfig::default()
    };
    start_with(config, SandboxHealth::Ok("cgroup v1".into())).await
}

fn allowed(res: &reqwest::Response) -> Option<String> {
    res.headers()
        .get("access-control-allow-origin")
        .map(|v| v.to_str().unwrap().to_owned())
}

#[tokio::test]
async fn allowed_origin_may_call_and_stream() {
    let s = server(&[PAGE]).await;
    let pre = s
        .client
        .request(Method::OPTIONS, s.url("/code-sessions"))
        .header("origin", PAGE)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type,idempotency-key",
        )
        .send()
        .await
        .unwrap();
    assert!(pre.status().is_success(), "preflight: {}", pre.status());
    assert_eq!(allowed(&pre).as_deref(), Some(PAGE));
    let methods = pre.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap();
    assert!(
        methods.contains("POST") && methods.contains("PATCH"),
        "{methods}"
    );

    let created = s
        .client
        .post(s.url("/code-sessions"))
        .header("origin", PAGE)
        .json(&serde_json::json!({"language": "python"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    assert_eq!(allowed(&created).as_deref(), Some(PAGE));

    // The event stream (EventSource sends Origin too); an unknown id still answers with CORS
    // so the page can read the error.
    let missing = s
        .client
        .get(s.url(&format!("/executions/{}/events", uuid::Uuid::now_v7())))
        .header("origin", PAGE)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(allowed(&missing).as_deref(), Some(PAGE));

    let other = s
        .client
        .get(s.url("/runtimes"))
        .header("origin", "https://evil.example.test")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 200);
    assert_eq!(allowed(&other), None);
}

#[tokio::test]
async fn no_origins_no_cors_and_star_allows_any() {
    let none = server(&[]).await;
    let res = none
        .client
        .get(none.url("/runtimes"))
        .header("origin", PAGE)
        .send()
        .await
        .unwrap();
    assert_eq!(allowed(&res), None);

    let any = server(&["*"]).await;
    let res = any
        .client
        .get(any.url("/runtimes"))
        .header("origin", PAGE)
        .send()
        .await
        .unwrap();
    assert_eq!(allowed(&res).as_deref(), Some("*"));
}
