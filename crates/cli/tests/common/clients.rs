//! The real client libraries of issue 12 (installed by scripts/install-clients.sh into
//! `.clients/`, or `$LIVEXEC_CLIENTS_DIR`), run as subprocesses against a test server.

use super::Server;
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

/// Where scripts/install-clients.sh put the clients.
pub fn dir() -> PathBuf {
    let dir = std::env::var_os("LIVEXEC_CLIENTS_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.clients"),
        PathBuf::from,
    );
    assert!(
        dir.join("venv/bin/python").exists() && dir.join("npm/node_modules").exists(),
        "the real clients are not installed in {}: run scripts/install-clients.sh",
        dir.display()
    );
    dir
}

/// This test file's client scripts.
fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/clients")
        .join(name)
}

/// Run a client script; its last stdout line parsed as JSON. The Judge0 SDK polls forever,
/// so a client that has not answered in 120 s fails the test (a safety net, not a timing).
async fn run(mut cmd: tokio::process::Command) -> Value {
    cmd.kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .expect("the client did not finish within 120 s")
        .expect("start the client");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "client failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("client printed {stdout:?}: {e}"))
}

/// `judge0_sdk.py BASE CASE` with the venv's Python.
pub async fn judge0(base: &str, case: &str) -> Value {
    let mut cmd = tokio::process::Command::new(dir().join("venv/bin/python"));
    cmd.arg(script("judge0_sdk.py")).arg(base).arg(case);
    run(cmd).await
}

/// `piston_client.cjs BASE CASE` with node.
pub async fn piston(base: &str, case: &str) -> Value {
    let mut cmd = tokio::process::Command::new("node");
    cmd.arg(script("piston_client.cjs"))
        .arg(base)
        .arg(case)
        .env("CLIENTS_NODE_MODULES", dir().join("npm/node_modules"));
    run(cmd).await
}

/// `mcp_client.cjs URL CASE` with node.
pub async fn mcp(url: &str, case: &str) -> Value {
    let mut cmd = tokio::process::Command::new("node");
    cmd.arg(script("mcp_client.cjs"))
        .arg(url)
        .arg(case)
        .env("CLIENTS_NODE_MODULES", dir().join("npm/node_modules"));
    run(cmd).await
}

/// `mcp_client.cjs stdio:BIN CASE`: the SDK starts `livexec mcp` itself, on a SQLite file in
/// `dir` (no Redis, smoke tests off, like the test servers).
pub async fn mcp_stdio(dir: &std::path::Path, case: &str) -> Value {
    let mut cmd = tokio::process::Command::new("node");
    cmd.arg(script("mcp_client.cjs"))
        .arg(format!("stdio:{}", super::BIN))
        .arg(case)
        .current_dir(dir)
        .env("CLIENTS_NODE_MODULES", self::dir().join("npm/node_modules"))
        .env_remove("REDIS_URL")
        .env(
            "DATABASE_URL",
            format!("sqlite://{}/db.sqlite", dir.display()),
        )
        .env("LIVEXEC_SMOKE_TESTS", "false")
        .env("LIVEXEC_WORKERS", "2");
    run(cmd).await
}

impl Server {
    /// POST a JSON body; the status and the JSON answer.
    pub async fn post_raw(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    /// GET; the status and the JSON answer.
    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        let r = self.http.get(self.url(path)).send().await.unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }
}
