//! Run requests over HTTP through the whole service (API.md §10): the real binary (API,
//! worker, engine, sandbox) on its SQLite file. What a request asks — stdin, arguments,
//! environment, the session's and the request's files, limits, test cases — reaches the
//! program, and what it gave comes back in the execution object.

mod common;

use common::Server;
use serde_json::{json, Value};

#[tokio::test]
async fn a_session_run_with_options_feeds_the_program_and_echoes_its_limits() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[("LIVEXEC_WORKERS", "1")]).await;
    let code = "import os, sys\nfrom pkg import X\n\
                print(sys.stdin.read().strip(), sys.argv[1:], os.environ['MODE'], X, \
                open('data/d.txt').read())";
    let session = server.session("python", code).await;
    let patch = json!({"files": [{"name": "pkg/__init__.py", "content": "X = 7\n"}]});
    let r = server
        .http
        .patch(server.url(&format!("/code-sessions/{session}")))
        .json(&patch)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body = json!({
        "stdin": "hello\n",
        "args": ["a", "b"],
        "env": {"MODE": "judge"},
        "files": [{"name": "data/d.txt", "content": "D"}],
        "limits": {"time_ms": 5000, "memory_mb": 96}
    });
    let r = server
        .http
        .post(server.url(&format!("/code-sessions/{session}/run?wait=true")))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", server.log_text());
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], "COMPLETED", "{v}");
    assert_eq!(v["stdout"], "hello ['a', 'b'] judge 7 D\n");
    assert_eq!(
        (
            v["limits"]["time_ms"].clone(),
            v["limits"]["memory_mb"].clone()
        ),
        (json!(5000), json!(96))
    );
    assert!(v.get("tests").is_none(), "{v}");
}

#[tokio::test]
async fn one_shots_judge_test_cases_and_a_batch_reads_back_by_ids() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[("LIVEXEC_WORKERS", "2")]).await;
    let body = json!({
        "language": "python",
        "source_code": "print(int(input()) * 2)",
        "tests": [
            {"stdin": "2\n", "expected_stdout": "4\n"},
            {"stdin": "3\n", "expected_stdout": "7"},
            {"stdin": "x\n", "expected_stdout": "0\n"}
        ],
        "limits": {"time_ms": 5000}
    });
    let r = server
        .http
        .post(server.url("/executions?wait=true"))
        .header("idempotency-key", "judge-1")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", server.log_text());
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["session_id"], Value::Null);
    assert_eq!(
        (v["status"].clone(), v["error_type"].clone()),
        (json!("FAILED"), json!("WrongAnswer")),
        "{v}"
    );
    assert_eq!(v["error_message"], "2 of 3 tests failed");
    assert_eq!(
        (v["tests_passed"].clone(), v["tests_total"].clone()),
        (json!(1), json!(3))
    );
    let verdicts: Vec<&str> = v["tests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["verdict"].as_str().unwrap())
        .collect();
    assert_eq!(verdicts, ["ACCEPTED", "WRONG_ANSWER", "RUNTIME_ERROR"]);
    assert_eq!(v["tests"][1]["stdout"], "6\n");
    assert_eq!(v["limits"]["time_ms"], 5000);

    let items = json!([
        {"language": "python", "source_code": "print('one')"},
        {"language": "python", "source_code": "print(", "limits": {"pids": 0}},
        {"language": "javascript", "source_code": "console.log(require('fs').readFileSync(0, 'utf8').trim())", "stdin": "two\n"}
    ]);
    let out: Value = server
        .http
        .post(server.url("/executions/batch"))
        .json(&items)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        out[1]["error"]["message"],
        json!(["limits.pids must be at least 2"])
    );
    let (a, b) = (
        out[0]["execution_id"].as_str().unwrap(),
        out[2]["execution_id"].as_str().unwrap(),
    );
    server.wait(a).await;
    server.wait(b).await;
    let many: Value = server
        .http
        .get(server.url(&format!("/executions?ids={a},{b}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (many[0]["stdout"].clone(), many[1]["stdout"].clone()),
        (json!("one\n"), json!("two\n")),
        "{many}"
    );
}
