//! Issue 12: the drop-in Piston v2 API and the MCP server, driven by the REAL clients (npm
//! `piston-client`, the official MCP TypeScript SDK) and by raw HTTP, against the real binary
//! over loopback; and the settings that switch each drop-in API off. The clients come from
//! scripts/install-clients.sh.

mod common;

use common::{clients, Server};
use serde_json::{json, Value};
use std::collections::BTreeSet;

async fn server(dir: &std::path::Path) -> Server {
    Server::start(dir, &[("LIVEXEC_WORKERS", "4")]).await
}

fn keys(v: &Value) -> BTreeSet<&str> {
    v.as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .map(String::as_str)
        .collect()
}

fn set<'a>(names: &[&'a str]) -> BTreeSet<&'a str> {
    names.iter().copied().collect()
}

#[tokio::test]
async fn piston_client_lists_runtimes_and_executes() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let runtimes = clients::piston(&s.base, "runtimes").await;
    let python = runtimes
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["language"] == "python")
        .unwrap();
    assert!(
        python["aliases"].as_array().unwrap().contains(&json!("py")),
        "{python}"
    );
    let r = clients::piston(&s.base, "hello").await;
    assert_eq!(r["language"], "python");
    assert_eq!(r["version"], python["version"]);
    assert_eq!(r["run"]["stdout"], "hello from piston\n", "{r}");
    assert_eq!(r["run"]["output"], "hello from piston\n");
    assert_eq!(
        (r["run"]["code"].clone(), r["run"]["signal"].clone()),
        (json!(0), Value::Null)
    );
    assert!(r.get("compile").is_none(), "{r}");
    let r = clients::piston(&s.base, "compiled").await;
    assert_eq!(r["language"], "c++");
    assert_eq!(r["run"]["stdout"], "42\n", "{r}");
    assert_eq!(r["compile"]["code"], 0, "{r}");
    let r = clients::piston(&s.base, "unknown").await;
    assert_eq!(r, json!({"message": "cobol-1.0.0 runtime is unknown"}));
}

/// Needs the engine to run `stdin` and `args`.
#[tokio::test]
async fn piston_client_passes_stdin_and_args() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let r = clients::piston(&s.base, "stdin_args").await;
    assert_eq!(r["run"]["stdout"], "from stdin a b\n", "{r}");
}

#[tokio::test]
async fn piston_raw_http_leniency_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    // text/plain body, trailing slash, alias, "*" version.
    let r = s
        .http
        .post(s.url("/api/v2/execute/"))
        .header("content-type", "text/plain;charset=UTF-8")
        .body(
            r#"{"language":"js","version":"*","files":[{"name":"","content":"console.log(6*7)"}]}"#,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["language"], "javascript");
    assert_eq!(v["run"]["stdout"], "42\n", "{v}");
    assert_eq!(
        set(&keys(&v["run"]).into_iter().collect::<Vec<_>>()),
        set(&[
            "stdout",
            "stderr",
            "output",
            "code",
            "signal",
            "message",
            "status",
            "cpu_time",
            "wall_time",
            "memory"
        ])
    );
    // A failing program: a non-zero code and Piston's status.
    let (code, v) = s
        .post_raw("/api/v2/execute", json!({"language": "python", "version": "3.x", "files": [{"content": "import sys; sys.exit(4)"}]}))
        .await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(
        (v["run"]["code"].clone(), v["run"]["status"].clone()),
        (json!(4), json!("RE"))
    );
    // Piston's 400s.
    for (body, message) in [
        (
            json!({"version": "*", "files": []}),
            "language is required as a string",
        ),
        (
            json!({"language": "python", "version": "*"}),
            "files is required as an array",
        ),
        (
            json!({"language": "python", "version": "2.7", "files": [{"content": "1"}]}),
            "python-2.7 runtime is unknown",
        ),
        (
            json!({"language": "python", "version": "*", "files": [{"content": "1"}], "run_timeout": 99_999_999}),
            "run_timeout cannot exceed the configured limit of 60000",
        ),
        (
            json!({"language": "python", "files": [{"content": "1"}], "run_memory_limit": -5}),
            "run_memory_limit must be non-negative",
        ),
    ] {
        let (code, v) = s.post_raw("/api/v2/execute", body.clone()).await;
        assert_eq!((code, v), (400, json!({ "message": message })), "{body}");
    }
}

#[tokio::test]
async fn each_drop_in_api_can_be_switched_off() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(
        dir.path(),
        &[
            ("LIVEXEC_JUDGE0_API", "false"),
            ("LIVEXEC_PISTON_API", "false"),
            ("LIVEXEC_MCP", "false"),
        ],
    )
    .await;
    for path in ["/languages", "/about", "/api/v2/runtimes", "/mcp"] {
        let (code, v) = s.get_json(path).await;
        assert_eq!(code, 404, "{path}: {v}");
        assert_eq!(v["error"], "Not Found", "{path}: our own 404, {v}");
    }
}

#[tokio::test]
async fn mcp_sdk_lists_tools_runs_code_and_the_run_is_in_history() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let url = s.url("/mcp");
    let tools = clients::mcp(&url, "tools").await;
    assert_eq!(tools, json!(["list_runtimes", "run_code"]));
    let r = clients::mcp(&url, "runtimes").await;
    let ids: Vec<&str> = r["structuredContent"]["runtimes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|rt| rt["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"python") && ids.contains(&"cpp"), "{r}");
    let r = clients::mcp(&url, "run").await;
    let out = &r["structuredContent"];
    assert_eq!(r["isError"], false, "{r}");
    assert_eq!(out["stdout"], "hello agent\n", "{r}");
    assert_eq!(
        (out["status"].clone(), out["exit_code"].clone()),
        (json!("COMPLETED"), json!(0))
    );
    // An ordinary execution: the native API shows it.
    let id = out["execution_id"].as_str().unwrap();
    let e = s.execution(id).await;
    assert_eq!(e["stdout"], "hello agent\n", "{e}");
    // A bad call is a JSON-RPC error, the connection intact.
    let r = clients::mcp(&url, "malformed").await;
    assert_eq!(r["error"], -32602, "{r}");
    // Raw: a body that is not JSON-RPC gets a JSON-RPC error, never a dropped connection.
    let resp = s
        .http
        .post(&url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body("{not json")
        .send()
        .await
        .unwrap();
    let code = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    assert!((400..500).contains(&code), "{code} {text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["error"]["code"], -32700, "{v}");
}

/// Needs the engine to run `stdin`.
#[tokio::test]
async fn mcp_run_code_feeds_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let r = clients::mcp(&s.url("/mcp"), "stdin").await;
    assert_eq!(r["structuredContent"]["stdout"], "hello\n", "{r}");
}

/// `livexec mcp`: the official SDK starts the binary over stdio, lists the tools and runs
/// code with stdin through the in-process workers; the run is an ordinary execution in the
/// database; closing the client ends the process (the SDK's `close` waits for it).
#[tokio::test]
async fn mcp_over_stdio_runs_code_for_a_desktop_agent() {
    let dir = tempfile::tempdir().unwrap();
    let tools = clients::mcp_stdio(dir.path(), "tools").await;
    assert_eq!(tools, json!(["list_runtimes", "run_code"]));
    let r = clients::mcp_stdio(dir.path(), "stdin").await;
    assert_eq!(r["isError"], false, "{r}");
    assert_eq!(r["structuredContent"]["stdout"], "hello\n", "{r}");
    assert_eq!(r["structuredContent"]["status"], "COMPLETED", "{r}");
    // The same database a `livexec serve` on it would show: the run is in it.
    let id = r["structuredContent"]["execution_id"].as_str().unwrap();
    let s = server(dir.path()).await;
    let e = s.execution(id).await;
    assert_eq!(e["stdout"], "hello\n", "{e}");
    let r = clients::mcp_stdio(dir.path(), "malformed").await;
    assert_eq!(r["error"], -32602, "{r}");
}

/// An agent's open MCP event stream does not hold a graceful shutdown up.
#[tokio::test]
async fn an_open_mcp_stream_does_not_block_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = server(dir.path()).await;
    let url = s.url("/mcp");
    let accept = "application/json, text/event-stream";
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "test", "version": "1"}}});
    let r = s
        .http
        .post(&url)
        .header("accept", accept)
        .json(&init)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let session = r.headers()["mcp-session-id"].to_str().unwrap().to_owned();
    let _ = r.text().await.unwrap();
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let r = s
        .http
        .post(&url)
        .header("accept", accept)
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-06-18")
        .json(&initialized)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let stream = s
        .http
        .get(&url)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-06-18")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    s.signal(nix::sys::signal::Signal::SIGTERM);
    let status = s.wait_exit().await;
    assert!(status.success(), "{status}");
    drop(stream);
}
