//! `POST /code-sessions`, `GET /code-sessions/:id`, `PATCH /code-sessions/:id` over real HTTP
//! against a real SQLite store.

mod common;

use common::{error_body, start, LANGUAGE_MESSAGE};
use livexec_core::Store;
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

async fn session_json(s: &common::Server, id: &str) -> Value {
    let res = s.get(&format!("/code-sessions/{id}")).await;
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.unwrap()
}

#[tokio::test]
async fn create_answers_201_with_id_and_active() {
    let s = start().await;
    let res = s
        .post_json("/code-sessions", &json!({"language":"python"}))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v.as_object().unwrap().len(), 2, "{v}");
    assert_eq!(v["status"], "ACTIVE");
    let id = Uuid::parse_str(v["session_id"].as_str().unwrap()).unwrap();
    assert!(s.store.get_session(id).await.unwrap().is_some());
}

#[tokio::test]
async fn template_absent_null_empty_and_given() {
    let s = start().await;
    let cases = [
        (json!({"language":"python"}), "print(\"Hello World\")"),
        (
            json!({"language":"python","templateCode":null}),
            "print(\"Hello World\")",
        ),
        (
            json!({"language":"javascript"}),
            "console.log(\"Hello World\")",
        ),
        (json!({"language":"javascript","templateCode":""}), ""),
        (
            json!({"language":"python","templateCode":"x = 1\n"}),
            "x = 1\n",
        ),
    ];
    for (body, expected) in cases {
        let res = s.post_json("/code-sessions", &body).await;
        assert_eq!(res.status(), StatusCode::CREATED, "{body}");
        let id = res.json::<Value>().await.unwrap()["session_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let v = session_json(&s, &id).await;
        assert_eq!(v["source_code"], expected, "{body}");
        assert_eq!(v["language"], body["language"]);
    }
}

#[tokio::test]
async fn create_rejects_bad_language_with_exact_message() {
    let s = start().await;
    for body in [
        json!({"language":"cobol"}),
        json!({}),
        json!({"language":null}),
        json!({"language":3}),
        json!({"language":"Python"}),
    ] {
        let res = s.post_json("/code-sessions", &body).await;
        let msg = error_body(res, StatusCode::BAD_REQUEST).await;
        assert_eq!(msg, json!([LANGUAGE_MESSAGE]), "{body}");
    }
}

#[tokio::test]
async fn create_lists_every_problem_at_once() {
    let s = start().await;
    let body = json!({"language":"cobol","templateCode":42,"foo":1,"bar":{"x":1}});
    let msg = error_body(
        s.post_json("/code-sessions", &body).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    let msgs: Vec<&str> = msg
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    assert_eq!(msgs.len(), 4, "{msgs:?}");
    for expected in [
        LANGUAGE_MESSAGE,
        "templateCode must be a string",
        "property foo should not exist",
        "property bar should not exist",
    ] {
        assert!(msgs.contains(&expected), "{expected} missing from {msgs:?}");
    }
}

#[tokio::test]
async fn create_rejects_unknown_property_and_wrong_types() {
    let s = start().await;
    let msg = error_body(
        s.post_json("/code-sessions", &json!({"language":"python","foo":true}))
            .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(msg, json!(["property foo should not exist"]));
    for bad in [json!(1), json!(true), json!([]), json!({})] {
        let body = json!({"language":"python","templateCode":bad});
        let msg = error_body(
            s.post_json("/code-sessions", &body).await,
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert_eq!(msg, json!(["templateCode must be a string"]), "{body}");
    }
}

#[tokio::test]
async fn get_session_returns_every_field() {
    let s = start().await;
    let id = s.create_session("python", Some("print(1)")).await;
    let v = session_json(&s, &id).await;
    for key in [
        "session_id",
        "status",
        "language",
        "source_code",
        "created_at",
        "updated_at",
        "latest_execution_id",
    ] {
        assert!(v.get(key).is_some(), "missing {key} in {v}");
    }
    assert_eq!(v["session_id"], id.as_str());
    assert_eq!(v["status"], "ACTIVE");
    assert_eq!(v["language"], "python");
    assert_eq!(v["source_code"], "print(1)");
    assert_eq!(v["latest_execution_id"], Value::Null);
    for key in ["created_at", "updated_at"] {
        let t = v[key].as_str().unwrap();
        assert!(chrono::DateTime::parse_from_rfc3339(t).is_ok(), "{key}={t}");
    }
    let (status, run) = s.run(&id, None).await;
    assert_eq!(status, StatusCode::OK);
    let v = session_json(&s, &id).await;
    assert_eq!(v["latest_execution_id"], run["execution_id"]);
}

#[tokio::test]
async fn patch_updates_code_and_optionally_language() {
    let s = start().await;
    let id = s.create_session("python", None).await;
    let path = format!("/code-sessions/{id}");
    let res = s
        .patch_json(&path, &json!({"source_code":"print(2)"}))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v, json!({"session_id": id, "status": "ACTIVE"}));
    let v = session_json(&s, &id).await;
    assert_eq!(
        (v["source_code"].as_str(), v["language"].as_str()),
        (Some("print(2)"), Some("python"))
    );

    let body = json!({"source_code":"console.log(3)","language":"javascript"});
    assert_eq!(s.patch_json(&path, &body).await.status(), StatusCode::OK);
    let v = session_json(&s, &id).await;
    assert_eq!(v["source_code"], "console.log(3)");
    assert_eq!(v["language"], "javascript");
    let t1 = chrono::DateTime::parse_from_rfc3339(v["updated_at"].as_str().unwrap()).unwrap();
    let t0 = chrono::DateTime::parse_from_rfc3339(v["created_at"].as_str().unwrap()).unwrap();
    assert!(t1 >= t0);
}

#[tokio::test]
async fn patch_validation_rules() {
    let s = start().await;
    let id = s.create_session("python", None).await;
    let path = format!("/code-sessions/{id}");
    let cases = [
        (
            json!({"source_code":""}),
            json!(["source_code should not be empty"]),
        ),
        (
            json!({"source_code":5}),
            json!(["source_code must be a string"]),
        ),
        (
            json!({}),
            json!([
                "source_code should not be empty",
                "source_code must be a string"
            ]),
        ),
        (
            json!({"source_code":"x","language":"cobol"}),
            json!([LANGUAGE_MESSAGE]),
        ),
        (
            json!({"source_code":[],"language":1,"extra":0}),
            json!([
                "source_code must be a string",
                LANGUAGE_MESSAGE,
                "property extra should not exist"
            ]),
        ),
    ];
    for (body, expected) in cases {
        let msg = error_body(s.patch_json(&path, &body).await, StatusCode::BAD_REQUEST).await;
        assert_eq!(msg, expected, "{body}");
    }
    // Nothing changed.
    assert_eq!(
        session_json(&s, &id).await["source_code"],
        "print(\"Hello World\")"
    );
}

#[tokio::test]
async fn patch_unknown_session_is_404() {
    let s = start().await;
    let path = format!("/code-sessions/{}", Uuid::now_v7());
    let msg = error_body(
        s.patch_json(&path, &json!({"source_code":"x"})).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(msg, "Session not found");
    // Validation runs first: an invalid body on an unknown session is a 400.
    let res = s.patch_json(&path, &json!({"source_code":""})).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn get_unknown_session_is_404() {
    let s = start().await;
    let res = s.get(&format!("/code-sessions/{}", Uuid::new_v4())).await;
    assert_eq!(
        error_body(res, StatusCode::NOT_FOUND).await,
        "Session not found"
    );
}
