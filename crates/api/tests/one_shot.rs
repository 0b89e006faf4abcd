//! One-shot runs without a session (API.md §10): `POST /executions` (with `?wait=true` and
//! idempotency), `POST /executions/batch` and `GET /executions?ids=`, over the real router on
//! SQLite. The test plays the worker through the store where a run must finish.

mod common;

use common::{error_body, start};
use livexec_core::{EffectiveLimits, RunResult, SourceFile, Status, Store, TestResult, Verdict};
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

fn uuid_of(v: &Value) -> Uuid {
    Uuid::parse_str(v.as_str().expect("string id")).expect("uuid")
}

/// POST `body` to `path` with an optional idempotency key.
async fn post(
    s: &common::Server,
    path: &str,
    key: Option<&str>,
    body: &Value,
) -> reqwest::Response {
    let mut req = s.client.post(s.url(path)).json(body);
    if let Some(key) = key {
        req = req.header("idempotency-key", key);
    }
    req.send().await.unwrap()
}

fn finished(tests: Vec<TestResult>) -> RunResult {
    let mut r = RunResult::internal_error("unused");
    r.status = Status::Failed;
    r.report.error_type = Some(livexec_core::ErrorType::WrongAnswer);
    r.report.error_message = Some("1 of 2 tests failed".into());
    r.report.limits = Some(EffectiveLimits {
        time_ms: 1000,
        cpu_time_ms: None,
        memory_mb: 64,
        pids: 50,
        output_bytes: 1 << 20,
        compile_time_ms: None,
        compile_memory_mb: None,
    });
    r.report.tests = tests;
    r.report.output_files = vec![SourceFile {
        name: "out.txt".into(),
        content: b"\0\xff".to_vec(),
    }];
    r
}

fn case(verdict: Verdict, stdout: &str) -> TestResult {
    TestResult {
        verdict,
        stdout: stdout.into(),
        stderr: String::new(),
        exit_code: Some(0),
        signal: None,
        time_ms: 5,
        cpu_time_ms: Some(4),
        memory_kb: Some(800),
        message: None,
    }
}

#[tokio::test]
async fn one_shot_is_created_without_a_session_and_waits_like_a_run() {
    let s = start().await;
    let body = json!({
        "language": "python",
        "files": [{"name": "main.py", "content": "print(input())"}, {"name": "util.py", "content": "X = 1"}],
        "tests": [{"stdin": "1\n", "expected_stdout": "1\n"}, {"stdin": "2\n", "expected_stdout": "3\n"}],
        "limits": {"time_ms": 1000, "memory_mb": 64},
        "return_files": ["out.txt"]
    });
    let res = post(&s, "/executions", Some("one-1"), &body).await;
    assert_eq!(res.status(), StatusCode::OK);
    let accepted: Value = res.json().await.unwrap();
    assert_eq!(accepted["status"], "QUEUED");
    let id = uuid_of(&accepted["execution_id"]);
    let e = s.store.get_execution(id).await.unwrap().unwrap();
    assert_eq!(
        (e.session_id, e.source_code.as_str()),
        (None, "print(input())")
    );
    let names: Vec<_> = e.options.files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["util.py"], "the main file became the code");

    // The worker's part, through the store.
    s.store.start_execution(id, 1).await.unwrap().unwrap();
    let tests = vec![
        case(Verdict::Accepted, "1\n"),
        case(Verdict::WrongAnswer, "2\n"),
    ];
    assert!(s
        .store
        .finish_execution(id, 1, &finished(tests))
        .await
        .unwrap());

    // The same request with ?wait=true: the same execution, over, in full.
    let res = post(&s, "/executions?wait=true", Some("one-1"), &body).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["location"], format!("/executions/{id}"));
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["execution_id"], id.to_string());
    assert_eq!(v["session_id"], Value::Null);
    assert_eq!(
        (v["status"].clone(), v["error_type"].clone()),
        (json!("FAILED"), json!("WrongAnswer"))
    );
    assert_eq!(v["limits"]["memory_mb"], 64);
    assert_eq!(
        (v["tests_passed"].clone(), v["tests_total"].clone()),
        (json!(1), json!(2))
    );
    assert_eq!(v["tests"][1]["verdict"], "WRONG_ANSWER");
    assert_eq!(
        v["output_files"],
        json!([{"name": "out.txt", "content": "AP8=", "encoding": "base64"}])
    );
    let got: Value = s
        .get(&format!("/executions/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(got, v);

    // Another body under that key is refused, and so is the key of a session's run.
    let other = json!({"language": "python", "source_code": "print(2)"});
    let res = post(&s, "/executions", Some("one-1"), &other).await;
    let msg = error_body(res, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert!(
        msg.as_str()
            .unwrap()
            .contains("already used for another request"),
        "{msg}"
    );
    let session = s.create_session("python", None).await;
    s.run(&session, Some("sess-key")).await;
    let res = post(&s, "/executions", Some("sess-key"), &other).await;
    error_body(res, StatusCode::UNPROCESSABLE_ENTITY).await;
}

#[tokio::test]
async fn bad_one_shots_are_refused_with_every_problem() {
    let s = start().await;
    let res = post(
        &s,
        "/executions",
        None,
        &json!({"version": 3, "stdin": 1, "x": 1}),
    )
    .await;
    let msg = error_body(res, StatusCode::BAD_REQUEST).await;
    assert_eq!(
        msg,
        json!([
            common::LANGUAGE_MESSAGE,
            "version must be a string",
            "stdin must be a string",
            "property x should not exist"
        ])
    );
    let res = post(&s, "/executions", None, &json!({"language": "python"})).await;
    let msg = error_body(res, StatusCode::BAD_REQUEST).await;
    assert_eq!(
        msg,
        json!([
            "source_code must be a string, or files must hold main.py (the main file of python)"
        ])
    );
    let body = json!({"language": "python", "source_code": "1", "files": [{"name": "main.py", "content": ""}]});
    let msg = error_body(
        post(&s, "/executions", None, &body).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(
        msg,
        json!(["files[0].name must not be main.py, the name of the main file"])
    );
    // Java's compile stage makes `*.class` files: a request's file of that name would be
    // overwritten by them, so it is refused, not silently replaced.
    let body = json!({"language": "java", "source_code": "class Main {}",
                      "files": [{"name": "Main.class", "content": ""}, {"name": "lib/A.class", "content": ""}]});
    let msg = error_body(
        post(&s, "/executions", None, &body).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(
        msg,
        json!(["files[0].name \"Main.class\" is taken by what the compile stage makes (*.class); rename the file"])
    );
    // The test registry checks no toolchain, so no version is known.
    let body = json!({"language": "python", "version": "2.7", "source_code": "1"});
    let msg = error_body(
        post(&s, "/executions", None, &body).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(
        msg,
        json!(["version 2.7 of python is not available (available: none is known here)"])
    );
    let res = s.get("/executions?ids=").await;
    assert_eq!(
        error_body(res, StatusCode::BAD_REQUEST).await,
        json!(["ids must be a comma-separated list of 1 to 100 execution ids"])
    );
}

#[tokio::test]
async fn batch_answers_aligned_with_a_bad_item_in_the_middle_and_ids_reads_them() {
    let s = start().await;
    let items = json!([
        {"language": "python", "source_code": "print(1)"},
        {"language": "cobol", "source_code": "x", "limits": {"memory_mb": 100000}},
        "not an object",
        {"language": "javascript", "source_code": "console.log(3)", "stdin": "x"}
    ]);
    let res = post(&s, "/executions/batch", None, &items).await;
    assert_eq!(res.status(), StatusCode::OK);
    let out: Value = res.json().await.unwrap();
    let out = out.as_array().unwrap();
    assert_eq!(out.len(), 4);
    assert_eq!(out[0]["status"], "QUEUED");
    assert_eq!(
        out[1]["error"],
        json!({"statusCode": 400, "error": "Bad Request",
               "message": [common::LANGUAGE_MESSAGE, "limits.memory_mb must not exceed 512"]})
    );
    assert_eq!(
        out[2]["error"]["message"],
        "A batch item must be a JSON object"
    );
    let first = uuid_of(&out[0]["execution_id"]);
    let last = uuid_of(&out[3]["execution_id"]);
    let e = s.store.get_execution(last).await.unwrap().unwrap();
    assert_eq!(
        (e.language.as_str(), e.options.stdin.as_deref()),
        ("javascript", Some("x"))
    );

    let unknown = Uuid::now_v7();
    let many: Value = s
        .get(&format!("/executions?ids={first},{unknown}, {last}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(many[0]["execution_id"], first.to_string());
    assert_eq!(many[1], Value::Null);
    assert_eq!(
        (many[2]["language"].clone(), many[2]["session_id"].clone()),
        (json!("javascript"), Value::Null)
    );

    // The batch's own limits.
    let empty = error_body(
        post(&s, "/executions/batch", None, &json!([])).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(
        empty,
        json!(["a batch must contain 1 to 20 requests, got 0"])
    );
    let many_items: Vec<Value> = (0..21).map(|_| json!({})).collect();
    let res = post(&s, "/executions/batch", None, &json!(many_items)).await;
    error_body(res, StatusCode::BAD_REQUEST).await;
    let res = post(&s, "/executions/batch", None, &json!({"a": 1})).await;
    assert_eq!(
        error_body(res, StatusCode::BAD_REQUEST).await,
        "The request body must be a JSON array"
    );
    let res = post(&s, "/executions/batch", Some("k"), &items).await;
    error_body(res, StatusCode::BAD_REQUEST).await;
    let bad_id = error_body(s.get("/executions?ids=abc").await, StatusCode::BAD_REQUEST).await;
    assert_eq!(bad_id, json!(["ids[0] must be a UUID"]));
}
