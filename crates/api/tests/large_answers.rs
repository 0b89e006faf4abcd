//! Large answers over real HTTP: an execution whose output is 4 MiB of control bytes is a
//! ~24 MiB JSON body. Its memory is held against the server's budget for large answers while
//! it is sent (and released once it is), a client that stops reading it holds the budget until
//! the write-stall timeout closes its connection, and meanwhile others' large answers get a
//! 503 and the same caller's a 429 — in the shape of the API asked — while small answers are
//! served as usual.

mod common;

use common::{error_body, mcp, mcp_call, mcp_session, start_with, Server};
use livexec_api::auth::token::{hash_token, new_token};
use livexec_api::response_memory::ResponseMemory;
use livexec_api::{ApiConfig, SandboxHealth};
use livexec_core::{ExecutionId, KeyStore, RunReport, RunResult, Status, Store};
use reqwest::{Method, Response, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Bytes of output of the large execution: each `\x01` is six bytes of JSON (`\u0001`).
const OUTPUT: usize = 4 << 20;

/// A safety net for waits on the server, not a timing: each ends far sooner.
const GUARD: Duration = Duration::from_secs(60);

fn config(budget_mb: u64, write_stall: Duration) -> (ApiConfig, ResponseMemory) {
    let memory = ResponseMemory::new(budget_mb << 20);
    let config = ApiConfig {
        response_memory: memory.clone(),
        write_stall_timeout: write_stall,
        ..ApiConfig::default()
    };
    (config, memory)
}

/// A new key's token (tier `unlimited`: no request rate to run into).
async fn key(s: &Server, name: &str) -> String {
    let token = new_token().unwrap();
    s.store
        .create_key(name, "unlimited", false, &hash_token(&token))
        .await
        .unwrap();
    token
}

fn authed(req: reqwest::RequestBuilder, token: Option<&str>) -> reqwest::RequestBuilder {
    match token {
        Some(t) => req.bearer_auth(t),
        None => req,
    }
}

/// A new session of `token`'s (or an open caller's).
async fn session(s: &Server, token: Option<&str>) -> String {
    let res = authed(s.client.post(s.url("/code-sessions")), token)
        .json(&serde_json::json!({"language": "python"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    res.json::<Value>().await.unwrap()["session_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A finished execution of `token`'s (or an open caller's) with `stdout` as its output.
async fn execution(s: &Server, token: Option<&str>, stdout: Vec<u8>) -> ExecutionId {
    let session = session(s, token).await;
    execution_in(s, token, &session, stdout).await
}

/// A finished execution of `session` with `stdout` as its output.
async fn execution_in(
    s: &Server,
    token: Option<&str>,
    session: &str,
    stdout: Vec<u8>,
) -> ExecutionId {
    let res = authed(
        s.client
            .post(s.url(&format!("/code-sessions/{session}/run"))),
        token,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let id: ExecutionId = res.json::<Value>().await.unwrap()["execution_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    finish(s, id, stdout).await;
    id
}

/// Start and finish `id` through the store with `stdout`, as a worker would.
async fn finish(s: &Server, id: ExecutionId, stdout: Vec<u8>) {
    assert!(s.store.start_execution(id, 1).await.unwrap().is_some());
    let result = RunResult {
        status: Status::Completed,
        report: RunReport {
            stdout,
            exit_code: Some(0),
            ..RunReport::default()
        },
    };
    assert!(s.store.finish_execution(id, 1, &result).await.unwrap());
}

/// Waits for the one queued execution (bounded by [`GUARD`]), then finishes it through the
/// store with `stdout`, as a worker would; its id.
async fn finish_queued(s: &Server, stdout: Vec<u8>) -> ExecutionId {
    let queued = tokio::time::timeout(GUARD, async {
        loop {
            let id: Option<String> =
                sqlx::query_scalar("SELECT id FROM executions WHERE status = 'QUEUED'")
                    .fetch_optional(s.store.pool())
                    .await
                    .unwrap();
            match id {
                Some(id) => break id.parse::<ExecutionId>().unwrap(),
                None => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    })
    .await
    .expect("the call queued an execution");
    finish(s, queued, stdout).await;
    queued
}

async fn get(s: &Server, path: &str, token: &str) -> Response {
    s.client
        .get(s.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// A client that asks for `path` and then reads nothing: its receive buffer is made small,
/// so the server's writes soon find the connection full.
async fn stalled_reader(s: &Server, path: &str, token: Option<&str>) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(s.addr).await.unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let head = format!("GET {path} HTTP/1.1\r\nHost: x\r\n{auth}\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    stream
}

/// Wait until `memory` holds bytes for which `done` is true (bounded by [`GUARD`]).
async fn until_held(memory: &ResponseMemory, what: &str, done: impl Fn(u64) -> bool) {
    let waited = tokio::time::timeout(GUARD, async {
        while !done(memory.held()) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(
        waited.is_ok(),
        "{what}: still {} bytes held after {GUARD:?}",
        memory.held()
    );
}

/// A 24 MiB answer is larger than the whole 8 MiB budget: sent all the same when nothing
/// else holds any, whole and correct, and its memory is released once it has been sent.
#[tokio::test]
async fn a_large_answer_is_sent_whole_and_its_memory_released() {
    let (config, memory) = config(8, Duration::from_secs(30));
    let s = start_with(config, SandboxHealth::Ok("cgroup v1".into())).await;
    let id = execution(&s, None, vec![1u8; OUTPUT]).await;
    let res = s.get(&format!("/executions/{id}")).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.headers()["content-type"],
        "application/json",
        "a JSON answer"
    );
    let length: usize = res.headers()["content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let body = res.bytes().await.unwrap();
    assert_eq!(body.len(), length);
    assert!(body.len() > 6 * OUTPUT, "{} bytes of JSON", body.len());
    let view: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(view["status"], "COMPLETED");
    assert_eq!(view["stdout"].as_str().unwrap(), "\u{1}".repeat(OUTPUT));
    until_held(&memory, "after the answer was read", |held| held == 0).await;
}

/// One reader stalls on alice's large answer: the answer's memory stays held. Meanwhile
/// alice's next large answer is a 429 (her share), bob's a 503 (the budget) natively and
/// in Judge0's shape, and small answers are served. When the stalled reader goes away, the
/// memory is released and bob's answer comes whole.
#[tokio::test]
async fn a_stalled_reader_holds_the_budget_others_get_503_and_its_caller_429() {
    let (config, memory) = config(8, Duration::from_secs(600));
    let s = start_with(config, SandboxHealth::Ok("cgroup v1".into())).await;
    let alice = key(&s, "alice").await;
    let bob = key(&s, "bob").await;
    let large = execution(&s, Some(&alice), vec![1u8; OUTPUT]).await;
    let other = execution(&s, Some(&alice), vec![1u8; 1 << 20]).await;
    let bobs = execution(&s, Some(&bob), vec![1u8; 1 << 20]).await;
    let small = execution(&s, Some(&bob), b"hello\n".to_vec()).await;

    let stalled = stalled_reader(&s, &format!("/executions/{large}"), Some(&alice)).await;
    until_held(&memory, "the stalled answer", |held| {
        held > 6 * OUTPUT as u64
    })
    .await;

    let res = get(&s, &format!("/executions/{other}"), &alice).await;
    assert_eq!(res.headers()["retry-after"], "1");
    let message = error_body(res, StatusCode::TOO_MANY_REQUESTS).await;
    assert!(message.as_str().unwrap().contains("share"), "{message}");

    let res = get(&s, &format!("/executions/{bobs}"), &bob).await;
    assert_eq!(res.headers()["retry-after"], "1");
    let message = error_body(res, StatusCode::SERVICE_UNAVAILABLE).await;
    assert!(
        message
            .as_str()
            .unwrap()
            .contains("LIVEXEC_RESPONSE_MEMORY_MB"),
        "{message}"
    );
    // Judge0's shape: `{"error"}`.
    let res = get(
        &s,
        &format!("/submissions/{bobs}?base64_encoded=true"),
        &bob,
    )
    .await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(res.headers()["retry-after"], "1");
    let body: Value = res.json().await.unwrap();
    assert!(body["error"].as_str().is_some(), "{body}");
    // An event stream's `result` (the execution) that does not fit becomes `interrupted`.
    let res = get(&s, &format!("/executions/{bobs}/events"), &bob).await;
    assert_eq!(res.status(), StatusCode::OK);
    let text = res.text().await.unwrap();
    assert!(text.starts_with("event: interrupted\n"), "{text}");
    assert!(text.contains("Last-Event-ID"), "{text}");
    assert!(!text.contains("event: result"), "{text}");
    // A batch of them is refused before it is built whole.
    let res = get(&s, &format!("/executions?ids={bobs},{bobs},{bobs}"), &bob).await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);

    // MCP's run_code: the run is kept, its result refused as a JSON-RPC error naming it.
    let session = mcp_session(&s, Some(&bob)).await;
    let call = mcp_call(
        2,
        "run_code",
        json!({"language": "python", "code": "print(1)"}),
    );
    let run = mcp(&s, Method::POST, Some(&bob), Some(&session), Some(call));
    let ((status, _, v), run_id) = tokio::join!(run, finish_queued(&s, vec![1u8; 1 << 20]));
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["error"]["code"], -32000, "{v:.300}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("too large to send now"),
        "{v:.300}"
    );
    assert_eq!(v["error"]["data"]["execution_id"], run_id.to_string());

    // Small answers are not held back.
    let res = get(&s, &format!("/executions/{small}"), &bob).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap()["stdout"], "hello\n");

    // The stalled reader leaves: its answer's memory is released, bob's answer comes.
    drop(stalled);
    until_held(&memory, "after the stalled reader left", |held| held == 0).await;
    let res = get(&s, &format!("/executions/{bobs}"), &bob).await;
    assert_eq!(res.status(), StatusCode::OK);
    let view: Value = res.json().await.unwrap();
    assert_eq!(view["stdout"].as_str().unwrap().len(), 1 << 20);
    let res = get(&s, &format!("/executions/{bobs}/events"), &bob).await;
    let text = res.text().await.unwrap();
    assert!(text.starts_with("event: result\n"), "{}", &text[..100]);
}

/// A client that asks for a large answer and reads nothing loses its connection at the
/// write-stall timeout, which releases the answer's memory; what it reads afterwards is
/// only what was already in flight, not the answer.
#[tokio::test]
async fn a_client_that_reads_nothing_loses_its_connection_at_the_write_stall_timeout() {
    let (config, memory) = config(512, Duration::from_millis(300));
    let s = start_with(config, SandboxHealth::Ok("cgroup v1".into())).await;
    let id = execution(&s, None, vec![1u8; OUTPUT]).await;
    let mut stalled = stalled_reader(&s, &format!("/executions/{id}"), None).await;
    until_held(&memory, "the stalled answer", |held| held > 0).await;
    // Released only when the server gives up on the connection: this client reads nothing
    // until then.
    until_held(&memory, "the stalled answer's connection", |held| held == 0).await;
    let mut got = Vec::new();
    let read = tokio::time::timeout(GUARD, stalled.read_to_end(&mut got)).await;
    assert!(read.is_ok(), "the server still holds the connection");
    assert!(
        got.len() < 6 * OUTPUT,
        "{} bytes arrived: the whole answer was sent",
        got.len()
    );
    // Served as usual meanwhile.
    let res = s.get(&format!("/executions/{id}")).await;
    assert_eq!(res.status(), StatusCode::OK);
    let view: Value = res.json().await.unwrap();
    assert_eq!(view["stdout"].as_str().unwrap().len(), OUTPUT);
}

/// Lists are held to the budget even when nothing else is sent: only a single execution may
/// pass it alone. A page of the history, `?ids=` and Judge0's batch of three executions of
/// 6 MiB of JSON each, against an 8 MiB budget, are 503; each execution alone is sent.
#[tokio::test]
async fn a_list_of_large_executions_cannot_pass_the_budget_alone() {
    let (config, memory) = config(8, Duration::from_secs(30));
    let s = start_with(config, SandboxHealth::Ok("cgroup v1".into())).await;
    let session = session(&s, None).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(execution_in(&s, None, &session, vec![1u8; 1 << 20]).await);
    }
    let list = ids
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",");
    for path in [
        format!("/executions/sessions/{session}"),
        format!("/executions?ids={list}"),
        format!("/submissions/batch?tokens={list}&base64_encoded=true"),
    ] {
        let res = s.get(&path).await;
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE, "{path}");
        assert_eq!(res.headers()["retry-after"], "1", "{path}");
    }
    for id in &ids {
        let res = s.get(&format!("/executions/{id}")).await;
        assert_eq!(res.status(), StatusCode::OK);
        let view: Value = res.json().await.unwrap();
        assert_eq!(view["stdout"].as_str().unwrap().len(), 1 << 20);
    }
    // A page of one is sent, with its link to the next.
    let res = s
        .get(&format!("/executions/sessions/{session}?limit=1"))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers().contains_key("link"));
    assert_eq!(
        res.json::<Value>().await.unwrap().as_array().unwrap().len(),
        1
    );
    until_held(&memory, "after the answers were read", |held| held == 0).await;
}

/// A client that reads a large answer steadily but far below the minimum rate loses the
/// connection once it has had `grace + len / rate`, which releases the answer's memory long
/// before it has read it. The answer is three times the largest send buffer the kernel gives
/// a socket, so without the cut its memory could only be released once the client had read
/// two thirds of it. A client reading at full speed gets it whole.
#[tokio::test]
async fn a_client_reading_below_the_minimum_rate_loses_its_connection() {
    // The third field of tcp_wmem: the largest send buffer.
    let wmem = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_wmem").unwrap();
    let send_buffer: usize = wmem.split_whitespace().nth(2).unwrap().parse().unwrap();
    let output = send_buffer / 2; // JSON: six bytes an output byte
    let memory = ResponseMemory::paced(1 << 30, 8 << 20, Duration::from_millis(200));
    let config = ApiConfig {
        response_memory: memory.clone(),
        ..ApiConfig::default()
    };
    let s = start_with(config, SandboxHealth::Ok("cgroup v1".into())).await;
    let id = execution(&s, None, vec![1u8; output]).await;
    let mut slow = stalled_reader(&s, &format!("/executions/{id}"), None).await;
    // 4 KiB every 20 ms: ~200 KB/s, a minute or more for the whole answer.
    let got = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = got.clone();
    let reader = tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        while let Ok(n @ 1..) = slow.read(&mut buf).await {
            counted.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    until_held(&memory, "the slow reader's answer", |held| held > 0).await;
    until_held(&memory, "after the slow reader was cut", |held| held == 0).await;
    let read = got.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        read < 6 * output - send_buffer,
        "{read} bytes read when the memory was released: not cut, sent"
    );
    reader.abort();
    let res = s.get(&format!("/executions/{id}")).await;
    assert_eq!(res.status(), StatusCode::OK);
    let view: Value = res.json().await.unwrap();
    assert_eq!(view["stdout"].as_str().unwrap().len(), output);
}
