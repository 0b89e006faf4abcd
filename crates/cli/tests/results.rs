//! Every status and error type of API.md §4 through HTTP, on the real binary with real
//! python3 and node in the real sandbox, with small limits so the suite stays fast.

mod common;

use common::cases::{check, CASES, LIMITS};
use common::Server;

async fn limited_server(dir: &std::path::Path) -> Server {
    let mut env = LIMITS.to_vec();
    env.push(("LIVEXEC_WORKERS", "4"));
    Server::start(dir, &env).await
}

#[tokio::test]
async fn every_status_and_error_type_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let server = limited_server(dir.path()).await;
    let mut ids = Vec::new();
    for c in CASES {
        ids.push(server.submit(c.language, c.code).await);
    }
    let mut problems = Vec::new();
    for (c, id) in CASES.iter().zip(&ids) {
        let v = server.wait(id).await;
        problems.extend(check(c, &v));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[tokio::test]
async fn output_over_the_cap_keeps_exactly_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    let server = limited_server(dir.path()).await;
    let id = server
        .submit("python", "print('0123456789' * 500)\nprint('never')")
        .await;
    let v = server.wait(&id).await;
    assert_eq!(v["error_type"], "OutputLimitExceeded");
    let out = v["stdout"].as_str().unwrap();
    assert_eq!(out.len(), 1000);
    assert_eq!(out, "0123456789".repeat(100));
}

#[tokio::test]
async fn execution_time_is_the_programs_own_time() {
    let dir = tempfile::tempdir().unwrap();
    let server = limited_server(dir.path()).await;
    let id = server
        .submit("python", "import time\ntime.sleep(0.3)\nprint('done')")
        .await;
    let before = server.execution(&id).await;
    assert_eq!(before["execution_time_ms"], 0, "0 before the run ends");
    let v = server.wait(&id).await;
    assert_eq!(v["status"], "COMPLETED");
    let ms = v["execution_time_ms"].as_i64().unwrap();
    assert!(ms >= 300, "slept 300 ms, reported {ms}");
    // The program's own time, not the queue's: it fits inside started_at..finished_at.
    let started = chrono::DateTime::parse_from_rfc3339(v["started_at"].as_str().unwrap()).unwrap();
    let finished =
        chrono::DateTime::parse_from_rfc3339(v["finished_at"].as_str().unwrap()).unwrap();
    assert!(ms <= (finished - started).num_milliseconds() + 1, "{v}");
    assert!(v["memory_kb"].as_i64().unwrap() > 0, "{v}");
}
