//! Run bodies a hostile client sends that the API used to accept although the program could
//! never be started (the worker then failed it as InternalError, three times): a file where
//! the main file would need a directory, and arguments or environment past what `execve`
//! takes; and bodies whose checks took minutes (tens of thousands of files, compared pair by
//! pair). Each is a 400 in the error shape that says what is wrong, over HTTP against the
//! real router and SQLite store.

mod common;

use common::{error_body, start};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::BTreeMap;

async fn problems(s: &common::Server, path: &str, body: Value) -> Vec<String> {
    let res = s.post_json(path, &body).await;
    let msg = error_body(res, StatusCode::BAD_REQUEST).await;
    serde_json::from_value(msg).unwrap()
}

#[tokio::test]
async fn a_file_under_the_main_file_is_refused_on_runs_one_shots_and_sessions() {
    let s = start().await;
    let id = s.create_session("python", None).await;
    let body = json!({"files": [{"name": "main.py/x", "content": "x"}]});
    let want = "files[0].name \"main.py/x\" and the main file main.py cannot both be files \
                (one is the other's directory)";
    let run = problems(&s, &format!("/code-sessions/{id}/run"), body.clone()).await;
    assert_eq!(run, [want]);
    let mut one_shot = body.clone();
    one_shot["language"] = "python".into();
    one_shot["source_code"] = "print(1)".into();
    assert_eq!(problems(&s, "/executions", one_shot).await, [want]);
    let res = s.patch_json(&format!("/code-sessions/{id}"), &body).await;
    let msg = error_body(res, StatusCode::BAD_REQUEST).await;
    assert_eq!(msg, json!([want]));
    let mut create = body.clone();
    create["language"] = "python".into();
    assert_eq!(problems(&s, "/code-sessions", create).await, [want]);
    // A PATCH to the language whose main file the files would sit under.
    let c = json!({"files": [{"name": "main.c/h.h", "content": ""}]});
    let res = s.patch_json(&format!("/code-sessions/{id}"), &c).await;
    assert_eq!(res.status(), StatusCode::OK, "fine for python");
    let res = s
        .patch_json(
            &format!("/code-sessions/{id}"),
            &json!({"language": "c", "source_code": "int main(void) { return 0; }"}),
        )
        .await;
    let msg = error_body(res, StatusCode::BAD_REQUEST).await;
    assert_eq!(
        msg,
        json!([
            "files[0].name \"main.c/h.h\" and the main file main.c cannot both be files \
                (one is the other's directory)"
        ])
    );
}

#[tokio::test]
async fn args_and_env_past_what_execve_takes_are_refused() {
    let s = start().await;
    let id = s.create_session("bash", None).await;
    let path = format!("/code-sessions/{id}/run");
    let big = "x".repeat(200_000);
    assert_eq!(
        problems(&s, &path, json!({"args": [big]})).await,
        ["args and env must not exceed 65536 bytes together, got 200001"]
    );
    let many: Vec<&str> = vec!["x"; 1025];
    assert_eq!(
        problems(&s, &path, json!({"args": many})).await,
        ["args must contain no more than 1024 elements"]
    );
    let env: BTreeMap<String, String> = (0..1025).map(|i| (format!("K{i}"), "v".into())).collect();
    assert_eq!(
        problems(&s, &path, json!({"env": env})).await,
        ["env must contain no more than 1024 variables"]
    );
    let env = BTreeMap::from([("BIG".to_owned(), "y".repeat(70_000))]);
    assert_eq!(
        problems(&s, &path, json!({"env": env})).await,
        ["args and env must not exceed 65536 bytes together, got 70005"]
    );
    let case = json!({"stdin": "", "args": ["z".repeat(65_536)]});
    assert_eq!(
        problems(&s, &path, json!({"tests": [{"stdin": ""}, case]})).await,
        ["tests[1].args and env must not exceed 65536 bytes together, got 65537"]
    );
    // At the maximum it is accepted.
    let res = s
        .post_json(&path, &json!({"args": ["a".repeat(65_535)]}))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn more_files_than_the_maximum_are_refused_without_checking_each_pair() {
    let s = start().await;
    let id = s.create_session("python", None).await;
    // 20 000 files took 38 s of the API's CPU before (every pair of names compared).
    let files: Vec<Value> = (0..20_000)
        .map(|i| json!({"name": format!("f{i}"), "content": ""}))
        .collect();
    let want = ["files must contain no more than 1024 elements"];
    let run = format!("/code-sessions/{id}/run");
    assert_eq!(problems(&s, &run, json!({ "files": files })).await, want);
    let ok: Vec<Value> = (0..1024)
        .map(|i| json!({"name": format!("d/f{i}"), "content": ""}))
        .collect();
    let res = s.post_json(&run, &json!({ "files": ok })).await;
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn one_pid_is_below_the_floor_the_jail_needs_its_init_and_the_program() {
    // `limits.pids: 1` was accepted and every such run failed as InternalError: the jail's
    // init is one of the pids, so the program could never be started.
    let s = start().await;
    let id = s.create_session("python", None).await;
    let path = format!("/code-sessions/{id}/run");
    assert_eq!(
        problems(&s, &path, json!({"limits": {"pids": 1}})).await,
        ["limits.pids must be at least 2"]
    );
    let v: Value = s.get("/limits").await.json().await.unwrap();
    assert_eq!(v["pids"], json!({"min": 2, "max": 256}));
    let res = s.post_json(&path, &json!({"limits": {"pids": 2}})).await;
    assert_eq!(res.status(), StatusCode::OK);
}
