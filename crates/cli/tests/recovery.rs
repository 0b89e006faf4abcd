//! Crash recovery and graceful shutdown of the real server process on its SQLite database.

mod common;

use common::{is_terminal, Server};
use nix::sys::signal::Signal;
use serde_json::Value;
use std::collections::HashMap;

fn program(i: usize) -> String {
    if i.is_multiple_of(3) {
        format!("import time\ntime.sleep(1)\nprint('slow {i}')")
    } else {
        format!("print('fast {i}')")
    }
}

fn expected(i: usize) -> String {
    if i.is_multiple_of(3) {
        format!("slow {i}\n")
    } else {
        format!("fast {i}\n")
    }
}

#[tokio::test]
async fn sigkill_mid_burst_then_restart_runs_everything_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("LIVEXEC_WORKERS", "2"), ("LIVEXEC_LEASE_MS", "1000")];
    let mut server = Server::start(dir.path(), &env).await;
    let mut ids = Vec::new();
    for i in 0..20 {
        ids.push(server.submit("python", &program(i)).await);
    }
    // Kill once some have finished and a slow one is running.
    server
        .wait_for(&ids[3], |v| v["status"] == "RUNNING" || is_terminal(v))
        .await;
    let mut finished_before: HashMap<String, Value> = HashMap::new();
    let mut running_before = Vec::new();
    for id in &ids {
        let v = server.execution(id).await;
        if is_terminal(&v) {
            finished_before.insert(id.clone(), v);
        } else if v["status"] == "RUNNING" {
            running_before.push(id.clone());
        }
    }
    server.kill9().await;
    assert!(
        finished_before.len() < ids.len(),
        "the burst finished before the kill; nothing to recover"
    );

    server.restart().await;
    for (i, id) in ids.iter().enumerate() {
        let v = server.wait(id).await;
        assert_eq!(v["status"], "COMPLETED", "{i}: {v}");
        assert_eq!(v["stdout"], expected(i), "{i}: {v}");
        if let Some(before) = finished_before.get(id) {
            assert_eq!(&v, before, "{i} changed after it had finished");
            assert_eq!(v["attempts"], 1);
        }
        assert!(v["attempts"].as_i64().unwrap() <= 3, "{v}");
        if running_before.contains(id) {
            // Its first attempt died with the server; the lease expired and a second ran it.
            assert_eq!(v["attempts"], 2, "{i}: {v}");
        }
    }
    // Every run shows up once in its session's history: nothing was duplicated.
    for id in &ids {
        let v = server.execution(id).await;
        let session = v["session_id"].as_str().unwrap();
        let hist = server.history(session).await;
        assert_eq!(hist.as_array().map(Vec::len), Some(1), "{hist}");
    }
}

#[tokio::test]
async fn sigterm_lets_the_running_program_finish_and_keeps_the_queued_one() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("LIVEXEC_WORKERS", "1")];
    let mut server = Server::start(dir.path(), &env).await;
    let running = server
        .submit("python", "import time\ntime.sleep(1)\nprint('finished')")
        .await;
    server
        .wait_for(&running, |v| v["status"] == "RUNNING")
        .await;
    let queued = server.submit("python", "print('after restart')").await;
    server.signal(Signal::SIGTERM);
    let status = server.wait_exit().await;
    assert!(
        status.success(),
        "exit status {status}:\n{}",
        server.log_text()
    );

    server.restart().await;
    let v = server.execution(&running).await;
    assert_eq!(v["status"], "COMPLETED", "finished before exit: {v}");
    assert_eq!(v["stdout"], "finished\n");
    assert_eq!(v["attempts"], 1);
    let v = server.wait(&queued).await;
    assert_eq!(v["status"], "COMPLETED", "{v}");
    assert_eq!(v["stdout"], "after restart\n");
}

#[tokio::test]
async fn a_platform_failure_is_retried_with_backoff_then_internal_error() {
    let dir = tempfile::tempdir().unwrap();
    // A runtime that works at start (its smoke test passes) and whose sandbox cannot be built
    // later: a host path it mounts disappears. Every attempt is then a platform failure.
    let vanishing = dir.path().join("vanishing-toolchain");
    std::fs::create_dir(&vanishing).unwrap();
    let runtimes = dir.path().join("runtimes");
    std::fs::create_dir(&runtimes).unwrap();
    let flaky = include_str!("../../../runtimes/python.toml")
        .replace("id = \"python\"", "id = \"flaky\"")
        .replace("aliases = [\"py\", \"python3\"]", "aliases = []")
        .replace(
            "override_env = \"LIVEXEC_PYTHON\"",
            &format!(
                "override_env = \"LIVEXEC_PYTHON\"\nmounts = [{:?}]",
                vanishing.display().to_string()
            ),
        );
    std::fs::write(runtimes.join("flaky.toml"), flaky).unwrap();
    let env = [("LIVEXEC_RUNTIMES_DIR", runtimes.to_str().unwrap())];
    let server = Server::start(dir.path(), &env).await;
    std::fs::remove_dir(&vanishing).unwrap();
    let id = server.submit("flaky", "print('never runs')").await;
    let js = server.submit("javascript", "console.log('fine')").await;
    let v = server.wait(&id).await;
    assert_eq!(v["status"], "FAILED", "{v}");
    assert_eq!(v["error_type"], "InternalError", "{v}");
    assert_eq!(v["attempts"], 3, "three attempts in all: {v}");
    assert_eq!(v["stdout"], "");
    let msg = v["error_message"].as_str().unwrap();
    assert!(!msg.contains("vanishing"), "no internals: {msg}");
    // 2 s then 4 s of backoff between the attempts.
    let queued = chrono::DateTime::parse_from_rfc3339(v["queued_at"].as_str().unwrap()).unwrap();
    let finished =
        chrono::DateTime::parse_from_rfc3339(v["finished_at"].as_str().unwrap()).unwrap();
    assert!((finished - queued).num_milliseconds() >= 6000, "{v}");
    assert_eq!(server.wait(&js).await["status"], "COMPLETED");
}
