//! Shared fixtures of the API tests: a real server on `127.0.0.1:0` (via `launch`) over a real
//! SQLite file in a temp dir with the real embedded queue on the same pool, and small helpers
//! for requests and error bodies.
#![allow(dead_code)] // each test binary uses a different subset

use livexec_api::{launch, ApiConfig, AppState, SandboxHealth};
use livexec_core::{EventBus, JobQueue, KeyStore, Store};
use livexec_events::{MemoryBus, MemoryBusConfig};
use livexec_queue::SqliteQueue;
use livexec_runtimes::Registry;
use livexec_store::SqliteStore;
use reqwest::{Client, Method, Response, StatusCode};
use serde_json::{json, Value};
use std::sync::Arc;
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A running server and what the test may inspect behind it (`S`: the store's concrete type).
pub struct Server<S = SqliteStore> {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The address, for raw TCP requests.
    pub addr: std::net::SocketAddr,
    /// A client without redirects.
    pub client: Client,
    /// The very store the server uses.
    pub store: Arc<S>,
    /// The very event bus the server uses (an in-process one, as in embedded mode).
    pub events: MemoryBus,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
    _dir: TempDir,
}

/// A fresh SQLite store in `dir`.
pub async fn sqlite_store(dir: &TempDir) -> Arc<SqliteStore> {
    let url = format!("sqlite://{}", dir.path().join("livexec.db").display());
    Arc::new(SqliteStore::connect(&url).await.expect("open sqlite store"))
}

/// Server with default config and a healthy sandbox.
pub async fn start() -> Server {
    start_with(ApiConfig::default(), SandboxHealth::Ok("cgroup v1".into())).await
}

/// Server with this config and sandbox state, embedded queue.
pub async fn start_with(config: ApiConfig, sandbox: SandboxHealth) -> Server {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = sqlite_store(&dir).await;
    let queue: Arc<dyn JobQueue> = Arc::new(SqliteQueue::new(store.pool().clone()));
    start_on(dir, store, queue, config, sandbox).await
}

/// Server on an existing store and any queue; `dir` lives as long as the server.
pub async fn start_on<S: Store + KeyStore>(
    dir: TempDir,
    store: Arc<S>,
    queue: Arc<dyn JobQueue>,
    config: ApiConfig,
    sandbox: SandboxHealth,
) -> Server<S> {
    let events = MemoryBus::new(MemoryBusConfig::default());
    start_with_bus(
        dir,
        store,
        queue,
        config,
        sandbox,
        events.clone(),
        Arc::new(events),
    )
    .await
}

/// Server on an existing store, any queue and any event bus (`events` is what the test keeps;
/// `bus` what the server uses).
pub async fn start_with_bus<S: Store + KeyStore>(
    dir: TempDir,
    store: Arc<S>,
    queue: Arc<dyn JobQueue>,
    config: ApiConfig,
    sandbox: SandboxHealth,
    events: MemoryBus,
    bus: Arc<dyn EventBus>,
) -> Server<S> {
    let state = AppState {
        store: store.clone() as Arc<dyn Store>,
        keys: store.clone() as Arc<dyn KeyStore>,
        queue,
        runtimes: Arc::new(Registry::builtin().expect("builtin runtimes")),
        events: bus,
        config,
        sandbox,
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(launch(listener, state, async move {
        let _ = stopped.await;
    }));
    Server {
        base: format!("http://{addr}"),
        addr,
        client: Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client"),
        store,
        events,
        stop: Some(stop),
        task: Some(task),
        _dir: dir,
    }
}

impl<S> Server<S> {
    /// Absolute URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// POST a JSON value.
    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request")
    }

    /// POST raw bytes as `application/json`.
    pub async fn post_raw(&self, path: &str, body: impl Into<reqwest::Body>) -> Response {
        self.client
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("request")
    }

    /// PATCH a JSON value.
    pub async fn patch_json(&self, path: &str, body: &Value) -> Response {
        self.client
            .patch(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request")
    }

    /// GET.
    pub async fn get(&self, path: &str) -> Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
    }

    /// Create a session and return its id.
    pub async fn create_session(&self, language: &str, code: Option<&str>) -> String {
        let mut body = serde_json::json!({ "language": language });
        if let Some(code) = code {
            body["templateCode"] = code.into();
        }
        let res = self.post_json("/code-sessions", &body).await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let v: Value = res.json().await.expect("json");
        v["session_id"].as_str().expect("session_id").to_owned()
    }

    /// Run a session (optionally with an idempotency key); returns status and body.
    pub async fn run(&self, session: &str, key: Option<&str>) -> (StatusCode, Value) {
        let mut req = self
            .client
            .post(self.url(&format!("/code-sessions/{session}/run")));
        if let Some(key) = key {
            req = req.header("idempotency-key", key);
        }
        let res = req.send().await.expect("request");
        let status = res.status();
        (status, res.json().await.expect("json"))
    }

    /// Send raw bytes over TCP and return the raw response text (the connection is closed by
    /// the request's `connection: close`, or by the server after an error). The write side
    /// stays open: a half-close lets the server drop the connection before it answers (hyper
    /// treats the client's EOF as the end of the connection), which made answers race.
    pub async fn raw(&self, request: &[u8]) -> String {
        let mut stream = TcpStream::connect(self.addr).await.expect("connect");
        stream.write_all(request).await.expect("write");
        let mut out = Vec::new();
        let read = stream.read_to_end(&mut out);
        // A safety net, not a timing: the server closes after its answer.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(30), read).await;
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Stop the server gracefully and wait for `launch` to return.
    pub async fn stop(mut self) -> std::io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task.await.expect("server task"),
            None => Ok(()),
        }
    }
}

/// Assert the API error shape and return the `message`.
pub async fn error_body(res: Response, status: StatusCode) -> Value {
    assert_eq!(res.status(), status);
    let ct = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(ct.starts_with("application/json"), "content-type {ct}");
    let v: Value = res.json().await.expect("json error body");
    assert_eq!(v["statusCode"], status.as_u16(), "{v}");
    assert_eq!(
        v["error"],
        status.canonical_reason().expect("reason"),
        "{v}"
    );
    assert_eq!(v.as_object().map(|o| o.len()), Some(3), "{v}");
    v["message"].clone()
}

/// The exact language message for the builtin runtimes.
pub const LANGUAGE_MESSAGE: &str = "language must be one of the following values: python, \
     javascript, bash, c, cpp, go, java, lua, perl, php, ruby, rust, sql, typescript";

/// One MCP exchange over raw HTTP: the status, the session id the answer carries, and the
/// JSON-RPC message (from a JSON body or the last `data:` of an event stream).
pub async fn mcp(
    s: &Server,
    method: Method,
    token: Option<&str>,
    session: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Option<String>, Value) {
    let mut req = s
        .client
        .request(method, s.url("/mcp"))
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18");
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(id) = session {
        req = req.header("mcp-session-id", id);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    let session = res
        .headers()
        .get("mcp-session-id")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = res.text().await.unwrap();
    let message = serde_json::from_str(&text).unwrap_or_else(|_| {
        text.lines()
            .rev()
            .filter_map(|l| l.strip_prefix("data:"))
            .find_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
            .unwrap_or(Value::Null)
    });
    (status, session, message)
}

/// A new, initialized MCP session of `token`.
pub async fn mcp_session(s: &Server, token: Option<&str>) -> String {
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "test", "version": "1"}}});
    let (status, session, v) = mcp(s, Method::POST, token, None, Some(init)).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let session = session.expect("initialize answers with a session id");
    let done = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let (status, _, _) = mcp(s, Method::POST, token, Some(&session), Some(done)).await;
    assert!(status.is_success(), "{status}");
    session
}

pub fn mcp_call(id: u64, tool: &str, arguments: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
           "params": {"name": tool, "arguments": arguments}})
}
