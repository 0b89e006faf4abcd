//! `GET /executions/sessions/:id`: newest first, `limit`/`before` paging with a `Link` header.

mod common;

use common::{error_body, start};
use reqwest::StatusCode;
use serde_json::Value;
use uuid::Uuid;

async fn runs(s: &common::Server, session: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for _ in 0..n {
        let (status, v) = s.run(session, None).await;
        assert_eq!(status, StatusCode::OK);
        ids.push(v["execution_id"].as_str().unwrap().to_owned());
    }
    ids
}

fn ids_of(page: &[Value]) -> Vec<String> {
    page.iter()
        .map(|e| e["execution_id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn empty_history_is_an_empty_array() {
    let s = start().await;
    let id = s.create_session("python", None).await;
    let res = s.get(&format!("/executions/sessions/{id}")).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers().get("link").is_none());
    assert_eq!(res.json::<Value>().await.unwrap(), serde_json::json!([]));
}

#[tokio::test]
async fn unknown_session_is_404() {
    let s = start().await;
    let res = s
        .get(&format!("/executions/sessions/{}", Uuid::now_v7()))
        .await;
    assert_eq!(
        error_body(res, StatusCode::NOT_FOUND).await,
        "Session not found"
    );
}

#[tokio::test]
async fn history_is_newest_first_with_execution_objects() {
    let s = start().await;
    let id = s.create_session("python", None).await;
    let other = s.create_session("python", None).await;
    let mut created = runs(&s, &id, 4).await;
    runs(&s, &other, 2).await;
    let res = s.get(&format!("/executions/sessions/{id}")).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers().get("link").is_none());
    let page: Vec<Value> = res.json().await.unwrap();
    created.reverse();
    assert_eq!(ids_of(&page), created);
    for e in &page {
        for key in [
            "status",
            "stdout",
            "stderr",
            "execution_time_ms",
            "error_message",
            "error_type",
        ] {
            assert!(e.get(key).is_some(), "{key} missing in {e}");
        }
        assert_eq!(e["session_id"], id.as_str());
    }
}

#[tokio::test]
async fn paging_follows_link_headers_to_the_end() {
    let s = start().await;
    let id = s.create_session("python", None).await;
    let mut created = runs(&s, &id, 5).await;
    created.reverse();
    let mut path = format!("/executions/sessions/{id}?limit=2");
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let res = s.get(&path).await;
        assert_eq!(res.status(), StatusCode::OK);
        let link = res
            .headers()
            .get("link")
            .map(|v| v.to_str().unwrap().to_owned());
        let page: Vec<Value> = res.json().await.unwrap();
        assert!(page.len() <= 2);
        seen.extend(ids_of(&page));
        pages += 1;
        let Some(link) = link else { break };
        assert!(link.ends_with(">; rel=\"next\""), "{link}");
        let target = link
            .strip_prefix('<')
            .and_then(|l| l.split('>').next())
            .unwrap()
            .to_owned();
        assert!(target.starts_with(&format!("/executions/sessions/{id}?limit=2&before=")));
        path = target;
        assert!(pages < 10, "paging does not end");
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, created);

    // Exactly a full last page: no Link.
    let res = s.get(&format!("/executions/sessions/{id}?limit=5")).await;
    assert!(res.headers().get("link").is_none());
    assert_eq!(res.json::<Vec<Value>>().await.unwrap().len(), 5);
    // `before` alone.
    let res = s
        .get(&format!("/executions/sessions/{id}?before={}", created[1]))
        .await;
    let page: Vec<Value> = res.json().await.unwrap();
    assert_eq!(ids_of(&page), created[2..].to_vec());
}

#[tokio::test]
async fn invalid_limit_or_before_is_400() {
    let s = start().await;
    let id = s.create_session("python", None).await;
    for limit in ["0", "1001", "abc", "-5", "", "2.5"] {
        let res = s
            .get(&format!("/executions/sessions/{id}?limit={limit}"))
            .await;
        let msg = error_body(res, StatusCode::BAD_REQUEST).await;
        assert_eq!(
            msg,
            serde_json::json!(["limit must be an integer between 1 and 1000"]),
            "limit={limit}"
        );
    }
    let res = s
        .get(&format!("/executions/sessions/{id}?limit=1000"))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = s
        .get(&format!("/executions/sessions/{id}?limit=0&before=nope"))
        .await;
    let msg = error_body(res, StatusCode::BAD_REQUEST).await;
    assert_eq!(msg.as_array().unwrap().len(), 2, "{msg}");
}
