//! The drop-in APIs over the real router, on the embedded store: what the native API refuses
//! about a run's files and arguments, Piston, MCP and Judge0 refuse too, each in its own
//! client's shape, before anything is queued (red-team pass 2: they queued it, the sandbox
//! refused it, and the worker retried it three times before `InternalError`); and an MCP
//! session belongs to the key that opened it.

mod common;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use common::{mcp, mcp_call, mcp_session, start, Server};
use livexec_api::auth::token::{hash_token, new_token};
use livexec_core::KeyStore;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::io::Write;

/// File names and file sets the sandbox cannot write, and what the answer must name.
fn bad_file_sets() -> Vec<(Value, &'static str)> {
    let long = "x".repeat(5000);
    let many: Vec<Value> = (0..1100)
        .map(|i| json!({"name": format!("f{i}"), "content": ""}))
        .collect();
    let file = |name: &str| json!({"name": name, "content": "x"});
    let deep: Vec<Value> = (0..1024)
        .map(|i| file(&format!("{i:04}/{}f", "d/".repeat(120))))
        .collect();
    vec![
        (json!([file("../x")]), "must not contain .."),
        (json!([file("/etc/passwd")]), "must be a relative path"),
        (json!([file("a\u{0}b")]), "NUL"),
        (json!([file(".")]), "without empty or . parts"),
        (json!([file("d/")]), "without empty or . parts"),
        (json!([file("a//b")]), "without empty or . parts"),
        (json!([file(&long)]), "at most 255 bytes"),
        (json!([file("a"), file("a/b")]), "cannot both be files"),
        (json!([file("a/b"), file("a")]), "cannot both be files"),
        (json!([file("same"), file("same")]), "duplicates"),
        (json!([file("main.py/x")]), "main file"),
        (Value::Array(many), "no more than 1024"),
        // 1024 files 120 directories deep: 123 000 directories made outside the run's limits.
        (Value::Array(deep), "directories; at most 1024"),
    ]
}

async fn count_executions(s: &Server) -> i64 {
    sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM executions")
        .fetch_one(s.store.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn piston_refuses_files_and_args_the_sandbox_cannot_take() {
    let s = start().await;
    for (files, wanted) in bad_file_sets() {
        // Piston's files[0] is the program; the others are files beside it.
        let mut all = vec![json!({"content": "print(1)"})];
        all.extend(files.as_array().unwrap().iter().cloned());
        let body = json!({"language": "python", "version": "*", "files": all});
        let res = s.post_json("/api/v2/execute", &body).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{files:.200}");
        let v: Value = res.json().await.unwrap();
        let message = v["message"].as_str().unwrap_or_default();
        assert!(message.contains(wanted), "{message:.300} for {files:.200}");
        if !wanted.contains("1024") {
            assert!(
                message.contains("files[") && !message.contains("files[0]"),
                "Piston's own index (files[0] is the program): {message:.300}"
            );
        }
    }
    let body =
        json!({"language": "python", "files": [{"content": "1"}], "args": ["ok", "a\u{0}b"]});
    let res = s.post_json("/api/v2/execute", &body).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let v: Value = res.json().await.unwrap();
    assert_eq!(
        v,
        json!({"message": "args[1] must not contain NUL characters"})
    );
    assert_eq!(count_executions(&s).await, 0, "nothing was queued");
}

#[tokio::test]
async fn judge0_refuses_a_zip_and_arguments_the_sandbox_cannot_take() {
    let s = start().await;
    let zip = |entries: &[&str]| {
        let mut out = std::io::Cursor::new(Vec::new());
        let mut w = zip::ZipWriter::new(&mut out);
        for name in entries {
            w.start_file(*name, zip::write::SimpleFileOptions::default())
                .unwrap();
            w.write_all(b"x").unwrap();
        }
        w.finish().unwrap();
        STANDARD.encode(out.into_inner())
    };
    for (entries, wanted) in [
        (&["a", "a/b"][..], "both a file and"),
        (&["a/b", "a"], "both a file and"),
        (&["main.py/x"], "both a file and"),
    ] {
        let body =
            json!({"language_id": 71, "source_code": "print(1)", "additional_files": zip(entries)});
        let res = s.post_json("/submissions", &body).await;
        assert_eq!(
            res.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{entries:?}"
        );
        let v: Value = res.json().await.unwrap();
        let message = v["additional_files"][0].as_str().unwrap_or_default();
        assert!(message.contains(wanted), "{v} for {entries:?}");
    }
    let body =
        json!({"language_id": 71, "source_code": "print(1)", "command_line_arguments": "a\u{0}b"});
    let res = s.post_json("/submissions", &body).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let v: Value = res.json().await.unwrap();
    assert!(
        v["command_line_arguments"][0]
            .as_str()
            .is_some_and(|m| m.contains("NUL")),
        "{v}"
    );
    assert_eq!(count_executions(&s).await, 0, "nothing was queued");
}

#[tokio::test]
async fn mcp_refuses_files_and_args_the_sandbox_cannot_take() {
    let s = start().await;
    let session = mcp_session(&s, None).await;
    for (n, (files, wanted)) in bad_file_sets().into_iter().enumerate() {
        let args = json!({"language": "python", "code": "print(1)", "files": files});
        let (status, _, v) = mcp(
            &s,
            Method::POST,
            None,
            Some(&session),
            Some(mcp_call(n as u64 + 2, "run_code", args)),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(v["error"]["code"], -32602, "invalid params: {v:.300}");
        let message = v["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(wanted), "{message:.300} for {files:.200}");
    }
    assert_eq!(count_executions(&s).await, 0, "nothing was queued");
}

/// A new key of the `unlimited` tier (no request rate to run into).
async fn key(s: &Server, name: &str) -> String {
    key_with_id(s, name, false).await.0
}

/// A new `unlimited` key, an admin one when `admin`: its token and id.
async fn key_with_id(s: &Server, name: &str, admin: bool) -> (String, livexec_core::KeyId) {
    let token = new_token().unwrap();
    let key = s
        .store
        .create_key(name, "unlimited", admin, &hash_token(&token))
        .await
        .unwrap();
    (token, key.id)
}

#[tokio::test]
async fn an_mcp_session_is_its_keys_alone() {
    let s = start().await;
    let alice = key(&s, "alice").await;
    let bob = key(&s, "bob").await;
    let session = mcp_session(&s, Some(&alice)).await;
    let list = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/list"});

    // Bob holds Alice's session id: each use answers as an unknown session does.
    let (status, _, v) = mcp(
        &s,
        Method::POST,
        Some(&bob),
        Some(&session),
        Some(list.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{v}");
    assert_eq!(v["error"]["message"], "Session not found");
    let run = mcp_call(
        8,
        "run_code",
        json!({"language": "python", "code": "print(1)"}),
    );
    let (status, _, _) = mcp(&s, Method::POST, Some(&bob), Some(&session), Some(run)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let stream = s
        .client
        .get(s.url("/mcp"))
        .bearer_auth(&bob)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &session)
        .header("last-event-id", "1/0")
        .send()
        .await
        .unwrap();
    assert_eq!(
        stream.status(),
        StatusCode::NOT_FOUND,
        "no resuming another key's stream"
    );
    let (status, _, _) = mcp(&s, Method::DELETE, Some(&bob), Some(&session), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // So does the same id without a key (the service has keys: 401 before anything).
    let (status, _, _) = mcp(&s, Method::POST, None, Some(&session), Some(list.clone())).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        count_executions(&s).await,
        0,
        "bob ran nothing in alice's session"
    );

    // Alice's session is untouched, and hers to close.
    let (status, _, v) = mcp(
        &s,
        Method::POST,
        Some(&alice),
        Some(&session),
        Some(list.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(v["result"]["tools"].is_array(), "{v}");
    let (status, _, _) = mcp(&s, Method::DELETE, Some(&alice), Some(&session), None).await;
    assert!(status.is_success(), "{status}");
    let (status, _, _) = mcp(&s, Method::POST, Some(&alice), Some(&session), Some(list)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "closed");
}

#[tokio::test]
async fn one_key_holds_a_bounded_number_of_mcp_sessions() {
    let s = start().await;
    let alice = key(&s, "alice").await;
    let bob = key(&s, "bob").await;
    let max = livexec_api::compat::MAX_MCP_SESSIONS_PER_KEY;
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "test", "version": "1"}}});
    // Concurrent opens cannot pass the cap together: exactly `max` of `max + 13` succeed.
    let opens =
        (0..max + 13).map(|_| mcp(&s, Method::POST, Some(&alice), None, Some(init.clone())));
    let answers = futures::future::join_all(opens).await;
    let sessions: Vec<String> = answers.iter().filter_map(|(_, id, _)| id.clone()).collect();
    assert_eq!(sessions.len(), max, "sessions opened at once");
    let refused = answers
        .iter()
        .filter(|(status, _, _)| *status == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!(refused, 13);
    let res = s
        .client
        .post(s.url("/mcp"))
        .bearer_auth(&alice)
        .header("accept", "application/json, text/event-stream")
        .json(&init)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(res.headers()["retry-after"], "60");
    let v: Value = res.json().await.unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("open MCP sessions")),
        "{v}"
    );
    // Another key is not held back; closing one of Alice's makes room for her.
    mcp_session(&s, Some(&bob)).await;
    let (status, _, _) = mcp(&s, Method::DELETE, Some(&alice), Some(&sessions[0]), None).await;
    assert!(status.is_success(), "{status}");
    mcp_session(&s, Some(&alice)).await;
}

/// A method a drop-in API's route does not take is a 405 in that API's shape, not an empty
/// body.
#[tokio::test]
async fn wrong_methods_on_drop_in_routes_answer_in_their_shapes() {
    let s = start().await;
    for (method, path, field) in [
        (Method::DELETE, "/languages", "error"),
        (Method::PUT, "/submissions", "error"),
        (Method::GET, "/api/v2/execute", "message"),
        (Method::DELETE, "/api/v2/runtimes", "message"),
    ] {
        let res = s
            .client
            .request(method.clone(), s.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
        let v: Value = res.json().await.unwrap();
        assert_eq!(
            v,
            json!({ field: format!("{method} is not allowed on {path}") }),
            "{method} {path}"
        );
    }
}

/// What the MCP SDK refuses by itself (no session, a wrong `Accept`, a method it does not
/// take) is a JSON-RPC error too, not plain text.
#[tokio::test]
async fn mcp_refusals_are_json_rpc_errors() {
    let s = start().await;
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "test", "version": "1"}}});
    let cases = [
        // No session id on a stream request.
        s.client
            .get(s.url("/mcp"))
            .header("accept", "text/event-stream"),
        // An Accept header without what Streamable HTTP needs.
        s.client
            .post(s.url("/mcp"))
            .header("accept", "text/plain")
            .json(&init),
        s.client.put(s.url("/mcp")),
        // JSON that is not one JSON-RPC 2.0 message.
        s.client
            .post(s.url("/mcp"))
            .header("accept", "application/json, text/event-stream")
            .json(&json!([init.clone()])),
        s.client
            .post(s.url("/mcp"))
            .header("accept", "application/json, text/event-stream")
            .json(&json!({"jsonrpc": "1.0", "id": 1, "method": "initialize"})),
        // Over the body limit (1 MiB by default).
        s.client
            .post(s.url("/mcp"))
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .body(format!("{{\"x\": \"{}\"}}", "a".repeat(2 << 20))),
    ];
    let mut too_large = 0;
    for req in cases {
        let res = req.send().await.unwrap();
        let status = res.status();
        assert!(status.is_client_error(), "{status}");
        let ct = res.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(ct.starts_with("application/json"), "{status}: {ct}");
        let v: Value = res.json().await.unwrap();
        assert_eq!(v["jsonrpc"], "2.0", "{v}");
        let message = v["error"]["message"].as_str().unwrap_or_default();
        assert!(!message.is_empty(), "{v}");
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            assert!(message.contains("within 1048576 bytes"), "{v}");
            too_large += 1;
        }
    }
    assert_eq!(too_large, 1, "the oversized body is a 413");
}

/// A file whose top directory is named like what the compile stage makes (C's `main`, Java's
/// `*.class`) would leave the compiler a directory where its output goes: refused up front.
#[tokio::test]
async fn files_in_a_directory_named_like_an_artifact_are_refused() {
    let s = start().await;
    for (language, program, name) in [
        ("c", "int main(){return 0;}", "main/x"),
        (
            "java",
            "class Main{public static void main(String[] a){}}",
            "Main.class/x",
        ),
    ] {
        let body = json!({"language": language, "version": "*", "files": [
            {"content": program}, {"name": name, "content": "1"}]});
        let res = s.post_json("/api/v2/execute", &body).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{language}");
        let v: Value = res.json().await.unwrap();
        let message = v["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("taken by what the compile stage makes"),
            "{v}"
        );
    }
    assert_eq!(count_executions(&s).await, 0, "nothing was queued");
}

/// Revoking a key closes its MCP sessions: the open event stream ends and the session id is
/// unknown from then on; another key's session goes on.
#[tokio::test]
async fn revoking_a_key_closes_its_mcp_sessions() {
    let s = start().await;
    let (alice, alice_id) = key_with_id(&s, "alice", false).await;
    let bob = key(&s, "bob").await;
    let (token, _) = key_with_id(&s, "admin", true).await;
    let session = mcp_session(&s, Some(&alice)).await;
    let bobs = mcp_session(&s, Some(&bob)).await;
    let mut stream = s
        .client
        .get(s.url("/mcp"))
        .bearer_auth(&alice)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-06-18")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    // Open until then (it may carry a priming event).
    let early = ends_within(&mut stream, std::time::Duration::from_millis(300)).await;
    assert!(!early, "the stream ended before the revocation");
    let res = s
        .client
        .delete(s.url(&format!("/admin/keys/{alice_id}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // A guard, not a timing assertion: without the revocation the stream never ends.
    let ended = ends_within(&mut stream, std::time::Duration::from_secs(60)).await;
    assert!(ended, "alice's MCP stream still open after 60 s");
    let list = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/list"});
    let (status, _, v) = mcp(&s, Method::POST, Some(&bob), Some(&bobs), Some(list)).await;
    assert_eq!(status, StatusCode::OK, "bob's session goes on: {v}");
    assert!(v["result"]["tools"].is_array(), "{v}");
}

/// Reads `stream` until it ends (or fails); whether that happened within `limit`.
async fn ends_within(stream: &mut reqwest::Response, limit: std::time::Duration) -> bool {
    tokio::time::timeout(limit, async {
        while let Ok(Some(_)) = stream.chunk().await {}
    })
    .await
    .is_ok()
}
