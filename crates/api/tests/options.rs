//! Run options on `POST /code-sessions/:id/run` (API.md §10): what is stored, what the
//! execution shows, and every rejection with its message, against the real SQLite store.

mod common;

use common::{error_body, start, start_with};
use livexec_api::{ApiConfig, RunMaxima, SandboxHealth};
use livexec_core::{Compare, SourceFile, Store};
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

fn uuid_of(v: &Value) -> Uuid {
    Uuid::parse_str(v.as_str().expect("string id")).expect("uuid")
}

fn file(name: &str, content: &[u8]) -> SourceFile {
    SourceFile {
        name: name.into(),
        content: content.to_vec(),
    }
}

#[tokio::test]
async fn options_are_stored_with_the_session_files_first_and_shown_in_the_execution() {
    let s = start().await;
    let id = s.create_session("python", Some("import pkg")).await;
    let patch = json!({"files": [{"name": "pkg/__init__.py", "content": "X = 1\n"}]});
    let res = s.patch_json(&format!("/code-sessions/{id}"), &patch).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body = json!({
        "stdin": "1 2\n\u{0}",
        "args": ["-v", ""],
        "env": {"MODE": "judge"},
        "files": [{"name": "data.bin", "content": "AP8=", "encoding": "base64"}],
        "limits": {"time_ms": 2000, "memory_mb": 64},
        "tests": [{"stdin": "1\n", "expected_stdout": "2\n"}, {"stdin": "", "args": ["x"]}],
        "compare": "exact",
        "stop_on_failure": true,
        "return_files": ["out.txt", "*.png"]
    });
    let res = s
        .post_json(&format!("/code-sessions/{id}/run"), &body)
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v.as_object().unwrap().len(), 2, "{v}");
    let e = s
        .store
        .get_execution(uuid_of(&v["execution_id"]))
        .await
        .unwrap()
        .unwrap();
    let o = &e.options;
    assert_eq!(o.stdin.as_deref(), Some("1 2\n\u{0}"));
    assert_eq!(o.args, ["-v", ""]);
    assert_eq!(o.env.get("MODE").map(String::as_str), Some("judge"));
    assert_eq!(
        o.files,
        [
            file("pkg/__init__.py", b"X = 1\n"),
            file("data.bin", &[0, 0xff])
        ]
    );
    assert_eq!(
        (o.limits.time_ms, o.limits.memory_mb, o.limits.pids),
        (Some(2000), Some(64), None)
    );
    assert_eq!(o.tests.len(), 2);
    assert_eq!(o.tests[1].args.as_deref(), Some(&["x".to_owned()][..]));
    assert_eq!(o.tests[1].expected_stdout, None);
    assert_eq!((o.compare, o.stop_on_failure), (Compare::Exact, true));
    assert_eq!(o.return_files, ["out.txt", "*.png"]);

    // Queued: no limits yet; the test and file keys are there because they were asked for.
    let view: Value = s
        .get(&format!("/executions/{}", e.id))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(view["limits"], Value::Null);
    assert_eq!(
        (view["tests_total"].clone(), view["tests_passed"].clone()),
        (json!(2), json!(0))
    );
    assert_eq!(view["tests"], json!([]));
    assert_eq!(view["output_files"], json!([]));
    // A bodiless run has none of them but `limits`.
    let (_, plain) = s.run(&id, None).await;
    let plain: Value = s
        .get(&format!(
            "/executions/{}",
            plain["execution_id"].as_str().unwrap()
        ))
        .await
        .json()
        .await
        .unwrap();
    for key in ["tests", "tests_passed", "tests_total", "output_files"] {
        assert!(plain.get(key).is_none(), "{key} in {plain}");
    }
    assert_eq!(plain["limits"], Value::Null);
}

/// The 400 message of a run with `body`.
async fn run_problems(s: &common::Server, session: &str, body: Value) -> Vec<String> {
    let res = s
        .post_json(&format!("/code-sessions/{session}/run"), &body)
        .await;
    let msg = error_body(res, StatusCode::BAD_REQUEST).await;
    serde_json::from_value(msg).unwrap()
}

#[tokio::test]
async fn every_violation_is_listed_at_once_and_nothing_is_created() {
    let s = start().await;
    let id = s.create_session("python", None).await;
    let problems = run_problems(
        &s,
        &id,
        json!({
            "stdin": 5,
            "args": ["ok", 3],
            "env": {"": "x", "A=B": "x", "PATH": "/evil", "LD_PRELOAD": "x", "HOME": "/",
                    "N\u{0}UL": "x", "GOOD": 7},
            "files": [
                {"name": "/etc/passwd", "content": ""},
                {"name": "../up.txt", "content": ""},
                {"name": "a\u{0}b", "content": ""},
                {"name": "main.py", "content": ""},
                {"name": "d.txt", "content": "x"},
                {"name": "d.txt", "content": "y"},
                {"name": "b.bin", "content": "!!!", "encoding": "base64"},
                {"name": "c.txt", "content": "x", "encoding": "utf16"},
                {"name": "e.txt", "content": "x", "mode": 755}
            ],
            "limits": {"memory_mb": 100000, "time_ms": 1, "pids": "many", "disk_mb": 1},
            "tests": [{"expected_stdout": "1"}, {"stdin": "", "expected_stdout": 1}, 7],
            "compare": "fuzzy",
            "stop_on_failure": "yes",
            "return_files": ["/abs", "../x", "ok/*.png"],
            "color": true
        }),
    )
    .await;
    let expected = [
        "stdin must be a string",
        "args must be an array of strings",
        "env keys must not be empty",
        "env key \"A=B\" must not contain =",
        "env key PATH is set by the sandbox and cannot be overridden",
        "env key LD_PRELOAD is set by the sandbox and cannot be overridden",
        "env key HOME is set by the sandbox and cannot be overridden",
        "env key \"N\\0UL\" must not contain NUL characters",
        "env.GOOD must be a string",
        "files[0].name must be a relative path, not \"/etc/passwd\"",
        "files[1].name must not contain .. (\"../up.txt\")",
        "files[2].name must not contain NUL characters",
        "files[5].name duplicates files[4].name (\"d.txt\")",
        "files[6].content is not valid base64",
        "files[7].encoding must be one of the following values: utf8, base64",
        "files[8].property mode should not exist",
        "files[3].name must not be main.py, the name of the main file",
        "limits.memory_mb must not exceed 512",
        "limits.time_ms must be at least 10",
        "limits.pids must be a positive integer",
        "limits.property disk_mb should not exist",
        "tests[0].stdin must be a string",
        "tests[1].expected_stdout must be a string",
        "tests[2] must be an object",
        "compare must be one of the following values: exact, trim",
        "stop_on_failure must be a boolean value",
        "return_files[0] must be a relative path pattern without .. (e.g. out.txt or *.png)",
        "return_files[1] must be a relative path pattern without .. (e.g. out.txt or *.png)",
        "return_files[2] must name files of the working dir itself, not of a subdirectory (\"ok/*.png\")",
        "property color should not exist",
    ];
    for e in expected {
        assert!(
            problems.iter().any(|p| p == e),
            "missing {e:?} in {problems:#?}"
        );
    }
    assert_eq!(problems.len(), expected.len(), "{problems:#?}");
    let page: Value = s
        .get(&format!("/executions/sessions/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page, json!([]), "nothing created");
}

#[tokio::test]
async fn names_that_collide_with_the_session_files_or_one_another_are_refused() {
    let s = start().await;
    let id = s.create_session("c", None).await;
    let patch = json!({"files": [{"name": "lib/util.h", "content": "#pragma once\n"}]});
    assert_eq!(
        s.patch_json(&format!("/code-sessions/{id}"), &patch)
            .await
            .status(),
        StatusCode::OK
    );
    let problems = run_problems(
        &s,
        &id,
        json!({"files": [
            {"name": "lib/util.h", "content": ""},
            {"name": "lib", "content": ""},
            {"name": "x", "content": ""},
            {"name": "x/y", "content": ""},
            {"name": "main.c", "content": ""},
            {"name": "./a", "content": ""},
            {"name": "main", "content": ""}
        ]}),
    )
    .await;
    let expected = [
        "files[5].name must be a plain relative path without empty or . parts (\"./a\")",
        "files[6].name \"main\" is taken by what the compile stage makes (main); rename the file",
        "files[3].name \"x/y\" and \"x\" cannot both be files (one is the other's directory)",
        "files[1].name \"lib\" and \"lib/util.h\" cannot both be files (one is the other's directory)",
        "files[4].name must not be main.c, the name of the main file",
        "files[0].name \"lib/util.h\" is already a file of the session",
        "files[1].name \"lib\" and the session's file \"lib/util.h\" cannot both be files (one is the other's directory)",
    ];
    for e in expected {
        assert!(
            problems.iter().any(|p| p == e),
            "missing {e:?} in {problems:#?}"
        );
    }
    assert_eq!(problems.len(), expected.len(), "{problems:#?}");
}

#[tokio::test]
async fn too_many_tests_and_env_of_a_runtime_are_refused() {
    let s = start().await;
    let id = s.create_session("python", None).await;
    let tests: Vec<Value> = (0..65).map(|_| json!({"stdin": ""})).collect();
    let problems = run_problems(&s, &id, json!({"tests": tests})).await;
    assert_eq!(problems, ["tests must contain no more than 64 elements"]);
    let tests: Vec<Value> = (0..64)
        .map(|_| json!({"stdin": "", "expected_stdout": ""}))
        .collect();
    let res = s
        .post_json(
            &format!("/code-sessions/{id}/run"),
            &json!({"tests": tests}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let problems = run_problems(&s, &id, json!({"env": {"LD_LIBRARY_PATH": "/x"}})).await;
    assert_eq!(
        problems,
        ["env key LD_LIBRARY_PATH is set by the sandbox and cannot be overridden"]
    );
}

#[tokio::test]
async fn sizes_over_the_maxima_are_413() {
    let config = ApiConfig {
        maxima: RunMaxima {
            file_bytes: 1000,
            request_bytes: 4096,
            ..RunMaxima::default()
        },
        ..ApiConfig::default()
    };
    let s = start_with(config, SandboxHealth::Ok("cgroup v1".into())).await;
    let id = s.create_session("python", None).await;
    let run = format!("/code-sessions/{id}/run");
    let files = json!([{"name": "a", "content": "x".repeat(600)}, {"name": "b", "content": "y".repeat(600)}]);
    let msg = error_body(
        s.post_json(&run, &json!({"files": files})).await,
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await;
    assert_eq!(
        msg,
        json!(["files must not exceed 1000 bytes in total, got 1200"])
    );
    // With the session's files counted too.
    let patch = json!({"files": [{"name": "s", "content": "z".repeat(600)}]});
    assert_eq!(
        s.patch_json(&format!("/code-sessions/{id}"), &patch)
            .await
            .status(),
        StatusCode::OK
    );
    let msg = error_body(
        s.post_json(
            &run,
            &json!({"files": [{"name": "a", "content": "x".repeat(600)}]}),
        )
        .await,
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await;
    assert_eq!(
        msg,
        json!(["files must not exceed 1000 bytes in total (with the session's files), got 1200"])
    );
    // A size problem beside another problem: one 400 listing both.
    let body = json!({"files": files, "stdin": 1});
    let msg = error_body(s.post_json(&run, &body).await, StatusCode::BAD_REQUEST).await;
    assert_eq!(msg.as_array().unwrap().len(), 2, "{msg}");
    // A body over the run request maximum.
    let big = json!({"stdin": "x".repeat(5000)});
    let msg = error_body(s.post_json(&run, &big).await, StatusCode::PAYLOAD_TOO_LARGE).await;
    assert_eq!(msg, "request entity too large");
    let page: Value = s
        .get(&format!("/executions/sessions/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page, json!([]), "nothing created");
}

#[tokio::test]
async fn limits_route_and_runtimes_show_the_maxima() {
    let s = start().await;
    let v: Value = s.get("/limits").await.json().await.unwrap();
    assert_eq!(v["memory_mb"], json!({"min": 8, "max": 512}));
    assert_eq!(v["time_ms"], json!({"min": 10, "max": 60000}));
    assert_eq!(v["tests"], json!({"max": 64}));
    assert_eq!(v["batch"], json!({"max": 20}));
    assert_eq!(v["file_bytes"], json!({"max": 4 << 20}));
    let runtimes: Value = s.get("/runtimes").await.json().await.unwrap();
    let by_id = |id: &str| {
        runtimes
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .unwrap()["max_limits"]
            .clone()
    };
    assert_eq!(by_id("python")["memory_mb"], 512);
    assert_eq!(by_id("python")["compile_time_ms"], Value::Null);
    assert_eq!(by_id("c")["compile_memory_mb"], 2048);
}

#[tokio::test]
async fn idempotency_covers_the_body() {
    let s = start().await;
    let id = s.create_session("python", None).await;
    let run = |body: Option<Value>| {
        let mut req = s
            .client
            .post(s.url(&format!("/code-sessions/{id}/run")))
            .header("idempotency-key", "k-body");
        if let Some(body) = body {
            req = req.json(&body);
        }
        req.send()
    };
    let first: Value = run(Some(json!({"stdin": "1\n"})))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // The same request, spelled otherwise (defaults written out): the same execution.
    let same = run(Some(json!({"stdin": "1\n", "args": [], "compare": "trim"})))
        .await
        .unwrap();
    assert_eq!(same.status(), StatusCode::OK);
    assert_eq!(
        same.json::<Value>().await.unwrap()["execution_id"],
        first["execution_id"]
    );
    let reused = "Idempotency key \"k-body\" was already used for another request (another \
                  body); send a new key for a new request";
    for other in [Some(json!({"stdin": "2\n"})), None, Some(json!({}))] {
        let res = run(other).await.unwrap();
        assert_eq!(
            error_body(res, StatusCode::UNPROCESSABLE_ENTITY).await,
            reused
        );
    }
    let page: Value = s
        .get(&format!("/executions/sessions/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page.as_array().unwrap().len(), 1);
}
