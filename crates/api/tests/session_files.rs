//! Sessions hold files (API.md §10): `POST /code-sessions` and `PATCH` take `files`,
//! `GET` returns them (base64, ready to send back), and a run snapshots them.

mod common;

use common::{error_body, start};
use livexec_core::Store;
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

#[tokio::test]
async fn patch_replaces_the_files_whole_and_get_returns_them() {
    let s = start().await;
    let id = s.create_session("python", Some("print(1)")).await;
    let path = format!("/code-sessions/{id}");
    let v: Value = s.get(&path).await.json().await.unwrap();
    assert_eq!(v["files"], json!([]));

    let patch = json!({"files": [
        {"name": "pkg/__init__.py", "content": "X = 1\n"},
        {"name": "blob", "content": "AAH/", "encoding": "base64"}
    ]});
    let res = s.patch_json(&path, &patch).await;
    assert_eq!(res.status(), StatusCode::OK);
    let v: Value = s.get(&path).await.json().await.unwrap();
    assert_eq!(v["source_code"], "print(1)", "files alone leave the code");
    assert_eq!(
        v["files"],
        json!([
            {"name": "pkg/__init__.py", "content": "WCA9IDEK", "encoding": "base64"},
            {"name": "blob", "content": "AAH/", "encoding": "base64"}
        ])
    );
    // What GET gives can be sent back as it is.
    let again = json!({"files": v["files"].clone(), "source_code": "print(2)"});
    assert_eq!(s.patch_json(&path, &again).await.status(), StatusCode::OK);
    let w: Value = s.get(&path).await.json().await.unwrap();
    assert_eq!(
        (w["files"].clone(), w["source_code"].clone()),
        (v["files"].clone(), json!("print(2)"))
    );
    // Code alone keeps the files; an empty list removes them.
    s.patch_json(&path, &json!({"source_code": "print(3)"}))
        .await;
    let w: Value = s.get(&path).await.json().await.unwrap();
    assert_eq!(w["files"], v["files"]);
    s.patch_json(&path, &json!({"files": []})).await;
    let w: Value = s.get(&path).await.json().await.unwrap();
    assert_eq!(w["files"], json!([]));
}

#[tokio::test]
async fn create_takes_files_and_a_run_snapshots_them() {
    let s = start().await;
    let res = s
        .post_json(
            "/code-sessions",
            &json!({"language": "python", "files": [{"name": "data.txt", "content": "42"}]}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let id = res.json::<Value>().await.unwrap()["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, run) = s.run(&id, None).await;
    let patch = json!({"files": [{"name": "other.txt", "content": "0"}]});
    s.patch_json(&format!("/code-sessions/{id}"), &patch).await;
    let exec_id = Uuid::parse_str(run["execution_id"].as_str().unwrap()).unwrap();
    let e = s.store.get_execution(exec_id).await.unwrap().unwrap();
    let names: Vec<_> = e.options.files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        ["data.txt"],
        "the run keeps what the session had when it ran"
    );
}

#[tokio::test]
async fn bad_session_files_are_refused_with_every_problem() {
    let s = start().await;
    let res = s
        .post_json(
            "/code-sessions",
            &json!({"language": "python", "files": [
                {"name": "main.py", "content": ""}, {"name": "/x", "content": ""}
            ]}),
        )
        .await;
    let msg = error_body(res, StatusCode::BAD_REQUEST).await;
    assert_eq!(
        msg,
        json!(["files[1].name must be a relative path, not \"/x\""])
    );
    let res = s
        .post_json(
            "/code-sessions",
            &json!({"language": "python", "files": [{"name": "main.py", "content": ""}]}),
        )
        .await;
    let msg = error_body(res, StatusCode::BAD_REQUEST).await;
    assert_eq!(
        msg,
        json!(["files[0].name must not be main.py, the name of the main file"])
    );

    // PATCH: the language that would make a file the main file is refused too.
    let id = s.create_session("python", None).await;
    let path = format!("/code-sessions/{id}");
    let patch = json!({"files": [{"name": "main.c", "content": ""}]});
    assert_eq!(s.patch_json(&path, &patch).await.status(), StatusCode::OK);
    let res = s
        .patch_json(
            &path,
            &json!({"source_code": "int main(){}", "language": "c"}),
        )
        .await;
    let msg = error_body(res, StatusCode::BAD_REQUEST).await;
    assert_eq!(
        msg,
        json!(["files[0].name must not be main.c, the name of the main file"])
    );
    let res = s.patch_json(&path, &json!({"files": "x", "zz": 1})).await;
    let msg = error_body(res, StatusCode::BAD_REQUEST).await;
    assert_eq!(
        msg,
        json!([
            "files must be an array of objects",
            "property zz should not exist"
        ])
    );
    // Without files the old messages are unchanged.
    let msg = error_body(
        s.patch_json(&path, &json!({})).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(
        msg,
        json!([
            "source_code should not be empty",
            "source_code must be a string"
        ])
    );
    let missing = format!("/code-sessions/{}", Uuid::now_v7());
    let msg = error_body(s.patch_json(&missing, &patch).await, StatusCode::NOT_FOUND).await;
    assert_eq!(msg, "Session not found");
}
