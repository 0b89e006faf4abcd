//! An MCP server for agents at `/mcp` (Streamable HTTP, through the official Rust SDK
//! `rmcp`): `list_runtimes`, and `run_code` — an ordinary native one-shot run (an
//! execution, visible in history) that the call waits for, answered with its output and
//! verdict. A malformed call is a JSON-RPC error; a program that fails is a result. A run
//! belongs to the key of the HTTP request that carried the call (issue 13); no tool reads
//! executions by id, so nothing of another key can be reached through it.

use super::native;
use crate::maxima::FLOORS;
use crate::response_memory::{json_len, Holder, Refused};
use crate::{AppState, Stopping};
use axum::body::Body;
use axum::extract::Request;
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use livexec_core::{Caller, Owner, RunOptions, SourceFile};
use livexec_runtimes::Availability;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, Implementation, ListToolsResult,
    PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::{RequestContext, RoleServer};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::session::SessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, ServerHandler};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// `/mcp`: the SDK's Streamable HTTP service behind [`parse_error`]. When the server starts
/// shutting down ([`crate::launch`]), the SDK's sessions are cancelled, so an agent's open
/// event stream does not hold the graceful shutdown up.
pub fn router(state: &AppState) -> Router<AppState> {
    let limit = state.config.max_body_bytes;
    // The service answers on whatever host name it is deployed under, as the rest of the API
    // does (the SDK's DNS-rebinding guard is meant for servers on a desktop).
    let config = StreamableHttpServerConfig::default()
        .disable_allowed_hosts()
        .with_max_request_body_bytes(limit);
    let sessions_end = config.cancellation_token.clone();
    let armed = Arc::new(AtomicBool::new(false));
    let agent_state = state.clone();
    let manager = Arc::new(LocalSessionManager::default());
    let owners = Arc::new(SessionOwners {
        manager: Arc::clone(&manager),
        owners: Mutex::new(Owners::default()),
    });
    let service = StreamableHttpService::new(
        move || {
            Ok(Agent {
                state: agent_state.clone(),
                local: false,
            })
        },
        manager,
        config,
    );
    let watching = Arc::new(AtomicBool::new(false));
    let keys = state.keys.clone();
    let guard = axum::middleware::from_fn(move |request: Request, next: Next| {
        // Started with the first request (a runtime is certain then): revoked keys lose
        // their sessions, open event streams included.
        if !watching.swap(true, Ordering::SeqCst) {
            let (owners, keys, end) = (Arc::clone(&owners), keys.clone(), sessions_end.clone());
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        () = end.cancelled() => return,
                        () = crate::auth::ending::next_check() => {}
                    }
                    owners.close_revoked(keys.as_ref()).await;
                }
            });
        }
        if let Some(stopping) = request.extensions().get::<Stopping>() {
            if !armed.swap(true, Ordering::SeqCst) {
                let (stopping, sessions_end) = (stopping.clone(), sessions_end.clone());
                tokio::spawn(async move {
                    stopping.wait().await;
                    sessions_end.cancel();
                });
            }
        }
        owned_session(Arc::clone(&owners), limit, request, next)
    });
    let service = tower::ServiceBuilder::new().layer(guard).service(service);
    Router::new().nest_service("/mcp", service)
}

/// The most MCP sessions one API key holds open at once (each holds memory and a task until
/// it is closed or idle for the SDK's keep-alive, 5 minutes).
pub const MAX_MCP_SESSIONS_PER_KEY: usize = 32;

/// Which key opened each MCP session: a session is its key's alone (issue 13), so another
/// key that learns its `mcp-session-id` can neither resume its event stream, call tools in
/// it, nor close it.
struct SessionOwners {
    /// The SDK's sessions, to forget the owners of sessions that ended.
    manager: Arc<LocalSessionManager>,
    owners: Mutex<Owners>,
}

/// What [`SessionOwners`] guards.
#[derive(Default)]
struct Owners {
    /// Session id → the key that opened it (`None`: an open service's caller), and when.
    sessions: HashMap<String, (Owner, std::time::Instant)>,
    /// `initialize` calls under way per key: counted with its sessions, so that concurrent
    /// calls cannot together pass the cap.
    opening: HashMap<Owner, usize>,
}

impl SessionOwners {
    fn lock(&self) -> std::sync::MutexGuard<'_, Owners> {
        self.owners
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Forget the owners of sessions the SDK no longer has (closed, or idle past keep-alive);
    /// a session recorded after the SDK's list was read is kept.
    async fn prune(&self) {
        let read_at = std::time::Instant::now();
        let live: std::collections::HashSet<String> = {
            let sessions = self.manager.sessions.read().await;
            sessions.keys().map(|id| id.to_string()).collect()
        };
        self.lock()
            .sessions
            .retain(|id, (_, at)| *at >= read_at || live.contains(id));
    }

    fn owner_of(&self, id: &str) -> Option<Owner> {
        self.lock().sessions.get(id).map(|(owner, _)| *owner)
    }

    /// Reserve one more session for `owner`, if it holds (or is opening) fewer than
    /// [`MAX_MCP_SESSIONS_PER_KEY`]; `Err(held)` when it does not. The reservation ends when
    /// the [`Reservation`] is settled or dropped (the client went away mid-request).
    fn reserve(self: &Arc<Self>, owner: Owner) -> Result<Reservation, usize> {
        let mut o = self.lock();
        let held = o.sessions.values().filter(|(k, _)| *k == owner).count()
            + o.opening.get(&owner).copied().unwrap_or(0);
        if held >= MAX_MCP_SESSIONS_PER_KEY {
            return Err(held);
        }
        *o.opening.entry(owner).or_insert(0) += 1;
        Ok(Reservation {
            owners: Arc::clone(self),
            owner,
        })
    }

    /// Close the sessions of keys that are revoked (or gone): their event streams end and
    /// their ids answer 404 from then on. A failed lookup keeps the key's sessions.
    async fn close_revoked(&self, keys: &dyn livexec_core::KeyStore) {
        let held: std::collections::BTreeSet<livexec_core::KeyId> = self
            .lock()
            .sessions
            .values()
            .filter_map(|(o, _)| *o)
            .collect();
        for key in held {
            match keys.get_key(key).await {
                Ok(Some(k)) if k.revoked_at.is_none() => continue,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(%key, error = %e, "checking the key of MCP sessions failed");
                    continue;
                }
            }
            let ids: Vec<String> = {
                let mut o = self.lock();
                let ids: Vec<String> = o
                    .sessions
                    .iter()
                    .filter(|(_, (owner, _))| *owner == Some(key))
                    .map(|(id, _)| id.clone())
                    .collect();
                for id in &ids {
                    o.sessions.remove(id);
                }
                ids
            };
            for id in ids {
                let id: rmcp::transport::common::server_side_http::SessionId = id.into();
                if let Err(e) = self.manager.close_session(&id).await {
                    tracing::warn!(%key, error = %e, "closing an MCP session of a revoked key failed");
                }
            }
            tracing::info!(%key, "API key revoked: its MCP sessions are closed");
        }
    }

    /// Record that `owner` opened session `id`.
    fn record(&self, owner: Owner, id: String) {
        self.lock()
            .sessions
            .insert(id, (owner, std::time::Instant::now()));
    }
}

/// A session being opened, counted against its key's cap until dropped.
struct Reservation {
    owners: Arc<SessionOwners>,
    owner: Owner,
}

impl Reservation {
    /// The reservation became session `id` (when the SDK opened one): recorded before the
    /// reservation ends, so the count never dips in between.
    fn settle(self, id: Option<String>) {
        if let Some(id) = id {
            self.owners.record(self.owner, id);
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let mut o = self.owners.lock();
        if let Some(n) = o.opening.get_mut(&self.owner) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                o.opening.remove(&self.owner);
            }
        }
    }
}

/// How long a key at its session cap is told to wait (`Retry-After`): sessions free when
/// closed, or after 5 minutes idle.
const SESSION_CAP_RETRY_SECS: u64 = 60;

/// Middleware before the SDK: a request naming a session (`mcp-session-id`) passes only for
/// the key that opened it; anyone else gets the answer of an unknown session (404). A key
/// holding [`MAX_MCP_SESSIONS_PER_KEY`] sessions cannot open another (429). Then
/// [`parse_error`].
async fn owned_session(
    owners: Arc<SessionOwners>,
    limit: usize,
    request: Request,
    next: Next,
) -> Response {
    let owner = request.extensions().get::<Caller>().and_then(Caller::owner);
    let session = request
        .headers()
        .get("mcp-session-id")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let closing = request.method() == Method::DELETE;
    // A request that may open a session holds a reservation until it is answered.
    let mut reserved = None;
    match &session {
        Some(id) if owners.owner_of(id) != Some(owner) => {
            return rpc_error(StatusCode::NOT_FOUND, -32600, "Session not found");
        }
        Some(_) => {}
        None if request.method() == Method::POST && owner.is_some() => {
            owners.prune().await;
            match owners.reserve(owner) {
                Ok(r) => reserved = Some(r),
                Err(held) => {
                    let message = format!(
                    "this key holds {held} open MCP sessions, the most it may; close one (DELETE /mcp) or let one idle out"
                );
                    let mut answer = rpc_error(StatusCode::TOO_MANY_REQUESTS, -32600, &message);
                    answer.headers_mut().insert(
                        axum::http::header::RETRY_AFTER,
                        axum::http::HeaderValue::from(SESSION_CAP_RETRY_SECS),
                    );
                    return answer;
                }
            }
        }
        None => {}
    }
    let response = as_json_rpc(parse_error(limit, request, next).await).await;
    let opened = response
        .headers()
        .get("mcp-session-id")
        .map(|id| String::from_utf8_lossy(id.as_bytes()).into_owned());
    match (session, reserved) {
        (None, Some(reservation)) => reservation.settle(opened),
        (None, None) => {
            if let Some(id) = opened {
                owners.prune().await;
                owners.record(owner, id);
            }
        }
        (Some(id), _) if closing && response.status().is_success() => {
            owners.lock().sessions.remove(&id);
        }
        (Some(_), _) => {}
    }
    response
}

/// The SDK answers its own refusals (no session id, an unknown session, a wrong `Accept`, an
/// unsupported method) in plain text: those become JSON-RPC errors with the same status and
/// message, as every other refusal on `/mcp` is. Other answers pass untouched.
async fn as_json_rpc(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    // The SDK's messages are one short line; anything longer is cut.
    let text = match axum::body::to_bytes(body, 4096).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_owned(),
        Err(_) => String::new(),
    };
    let message = if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("Bad Request")
            .to_owned()
    } else {
        text
    };
    let mut answer = rpc_error(status, -32600, &message);
    for (name, value) in parts.headers.iter() {
        if name != axum::http::header::CONTENT_TYPE && name != axum::http::header::CONTENT_LENGTH {
            answer.headers_mut().append(name.clone(), value.clone());
        }
    }
    answer
}

/// Middleware before the SDK: a POST body that is not JSON gets JSON-RPC's parse error
/// (-32700), and JSON that is not one JSON-RPC 2.0 message (an array, a number,
/// `"jsonrpc": "1.0"`) its invalid request (-32600, 400), as JSON answers where the SDK would
/// answer 415 in plain text. Bodies over `limit`
/// bytes are refused (413).
pub async fn parse_error(limit: usize, request: Request, next: Next) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(e) if e.to_string().contains("length limit") => {
            let message = format!("the request body could not be read within {limit} bytes");
            return rpc_error(StatusCode::PAYLOAD_TOO_LARGE, -32600, &message);
        }
        Err(e) => {
            let message = format!("the request body could not be read: {e}");
            return rpc_error(StatusCode::BAD_REQUEST, -32600, &message);
        }
    };
    match serde_json::from_slice::<Value>(&bytes) {
        Err(_) => {
            return rpc_error(
                StatusCode::BAD_REQUEST,
                -32700,
                "Parse error: the body is not JSON",
            )
        }
        Ok(Value::Object(m)) if m.get("jsonrpc").and_then(Value::as_str) == Some("2.0") => {}
        Ok(_) => {
            return rpc_error(
                StatusCode::BAD_REQUEST,
                -32600,
                "Invalid Request: the body must be one JSON-RPC 2.0 message (an object with \"jsonrpc\": \"2.0\")",
            )
        }
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

fn rpc_error(status: StatusCode, code: i64, message: &str) -> Response {
    let body =
        json!({ "jsonrpc": "2.0", "id": null, "error": { "code": code, "message": message } });
    (status, axum::Json(body)).into_response()
}

/// `livexec mcp`: the same two tools for one agent over this process's stdin and stdout (the
/// stdio transport desktop agents launch servers with), until the client closes stdin. Runs
/// act as an open service's caller: whoever can start the binary can run code anyway.
pub async fn serve_stdio(state: AppState) -> Result<(), McpStdioError> {
    use rmcp::ServiceExt;
    let running = Agent { state, local: true }
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| McpStdioError::Start(e.to_string()))?;
    let reason = running
        .waiting()
        .await
        .map_err(|e| McpStdioError::Stopped(e.to_string()))?;
    tracing::info!(?reason, "MCP client disconnected");
    Ok(())
}

/// Why [`serve_stdio`] ended early.
#[derive(Debug, thiserror::Error)]
pub enum McpStdioError {
    /// The MCP handshake failed (the client sent no valid `initialize`).
    #[error("MCP handshake over stdio failed: {0}")]
    Start(String),
    /// The session's task ended abnormally.
    #[error("MCP session over stdio ended abnormally: {0}")]
    Stopped(String),
}

/// One MCP session's handler.
#[derive(Clone)]
pub struct Agent {
    state: AppState,
    /// Served over stdio by `livexec mcp` (no HTTP request, so no key): the caller is open.
    local: bool,
}

impl Agent {
    /// Who this call acts as: over HTTP, the caller the authentication layer put into the
    /// request (rmcp hands the request's parts to the handler); over stdio, an open caller.
    fn caller_of(&self, context: &RequestContext<RoleServer>) -> Result<Caller, ErrorData> {
        match context.extensions.get::<axum::http::request::Parts>() {
            Some(parts) => parts.extensions.get::<Caller>().cloned().ok_or_else(|| {
                tracing::error!("MCP call without a caller: /mcp is served without authentication");
                ErrorData::internal_error("no caller for this request", None)
            }),
            None if self.local => Ok(Caller::Open),
            None => Err(ErrorData::internal_error(
                "no HTTP request for this call",
                None,
            )),
        }
    }
}

fn schema(v: Value) -> Arc<Map<String, Value>> {
    match v {
        Value::Object(m) => Arc::new(m),
        _ => Arc::new(Map::new()),
    }
}

/// The tools.
fn tools() -> Vec<Tool> {
    vec![
        Tool::new(
            "list_runtimes",
            "List the languages this server runs: id (what run_code takes as language), language, toolchain version, aliases, whether it compiles.",
            schema(json!({ "type": "object", "properties": {} })),
        ),
        Tool::new(
            "run_code",
            "Run a program in a fresh sandbox and return its stdout, stderr, exit code, status and time. Each call is isolated: no state persists between calls.",
            schema(json!({
                "type": "object",
                "properties": {
                    "language": { "type": "string", "description": "Runtime id or alias, e.g. python, javascript, cpp (see list_runtimes)" },
                    "code": { "type": "string", "description": "The program's source" },
                    "stdin": { "type": "string", "description": "Text fed to the program's standard input" },
                    "files": {
                        "type": "array",
                        "description": "Extra files beside the program",
                        "items": {
                            "type": "object",
                            "properties": { "name": { "type": "string" }, "content": { "type": "string" } },
                            "required": ["name", "content"]
                        }
                    },
                    "timeout_ms": { "type": "integer", "minimum": FLOORS.time_ms, "description": "Wall-clock limit of the run, ms" }
                },
                "required": ["language", "code"]
            })),
        ),
    ]
}

fn bad(message: impl Into<String>) -> ErrorData {
    ErrorData::invalid_params(message.into(), None)
}

fn text_arg(args: &Map<String, Value>, key: &str) -> Result<Option<String>, ErrorData> {
    match args.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(bad(format!("{key} must be a string"))),
    }
}

impl Agent {
    fn list_runtimes(&self) -> CallToolResult {
        let runtimes: Vec<Value> = self
            .state
            .runtimes
            .iter()
            .filter(|rt| self.state.runtimes.availability(&rt.id).usable())
            .map(|rt| {
                let version = match self.state.runtimes.availability(&rt.id) {
                    Availability::Available { version } => Some(version.clone()),
                    _ => None,
                };
                json!({ "id": rt.id, "language": rt.language, "name": rt.name, "version": version, "aliases": rt.aliases, "compiled": rt.compiled() })
            })
            .collect();
        CallToolResult::structured(json!({ "runtimes": runtimes }))
    }

    async fn run_code(
        &self,
        caller: &Caller,
        args: &Map<String, Value>,
    ) -> Result<CallToolResult, ErrorData> {
        let language = text_arg(args, "language")?.ok_or_else(|| bad("language is required"))?;
        let code = text_arg(args, "code")?.ok_or_else(|| bad("code is required"))?;
        let Some(rt) = self.state.runtimes.lookup_usable(&language) else {
            let known = self.state.runtimes.usable_ids().join(", ");
            return Err(bad(format!(
                "unknown language {language:?}; one of: {known}"
            )));
        };
        let mut options = RunOptions {
            stdin: text_arg(args, "stdin")?,
            ..RunOptions::default()
        };
        if let Some(files) = args.get("files").filter(|f| !f.is_null()) {
            let files: Vec<Map<String, Value>> = serde_json::from_value(files.clone())
                .map_err(|_| bad("files must be an array of {name, content}"))?;
            for f in files {
                let (Some(Value::String(name)), Some(Value::String(content))) =
                    (f.get("name"), f.get("content"))
                else {
                    return Err(bad("each file needs a name and a content, both strings"));
                };
                options.files.push(SourceFile {
                    name: name.clone(),
                    content: content.clone().into_bytes(),
                });
            }
        }
        if let Some(t) = args.get("timeout_ms").filter(|t| !t.is_null()) {
            let (min, max) = (FLOORS.time_ms, self.state.maxima_for(caller).time_ms);
            match t.as_u64() {
                Some(ms) if ms >= min && ms <= max => options.limits.time_ms = Some(ms),
                _ => {
                    return Err(bad(format!(
                        "timeout_ms must be an integer from {min} to {max}"
                    )))
                }
            }
        }
        self.state.clamp_limits(caller, &rt.id, &mut options.limits);
        let run = async {
            let e = native::submit(&self.state, &rt.id, &code, options, caller, 0).await?;
            // On shutdown the SDK's sessions are cancelled, which drops this call.
            native::wait(&self.state, e, Box::pin(std::future::pending())).await
        };
        let e = run.await.map_err(|e| match e {
            // The SSE answer's headers left before the tool ran, so what a 429's headers
            // say is in the error's data.
            native::NativeError::Store(livexec_core::StoreError::QuotaExceeded(q)) => {
                let data = json!({
                    "retry_after": q.retry_after_secs,
                    "ratelimit_limit": q.limit,
                    "ratelimit_remaining": 0,
                    "ratelimit_reset": q.retry_after_secs,
                });
                ErrorData::invalid_request(q.message(), Some(data))
            }
            native::NativeError::Invalid { messages, .. } => bad(messages.join("; ")),
            e => ErrorData::internal_error(e.to_string(), None),
        })?;
        let case = e.report.tests.first();
        let result = json!({
            "execution_id": e.id,
            "status": e.status,
            "stdout": String::from_utf8_lossy(&e.report.stdout),
            "stderr": String::from_utf8_lossy(&e.report.stderr),
            "exit_code": e.report.exit_code,
            "signal": e.report.signal,
            "error_type": e.report.error_type,
            "error_message": e.report.error_message,
            "time_ms": e.report.execution_time_ms,
            "memory_kb": e.report.memory_kb,
            "compile_output": e.report.compile.as_ref().map(|c| format!("{}{}", c.stdout, c.stderr)),
            "verdict": case.map(|t| t.verdict),
        });
        drop(e);
        // The result is held four times while it goes out: this value, its text for older
        // clients, and the message the SDK serializes from both. A large one must fit the
        // memory of large answers that many times.
        let mut reservation = self.state.config.response_memory.start(Holder::of(caller));
        let size = 4 * json_len(&result);
        if let Err(refused) = reservation.grow(size) {
            let id = result["execution_id"].clone();
            let why = match refused {
                Refused::Full { .. } => "the server's memory for large answers is in use",
                Refused::Share { .. } => "this key's large answers in flight hold its share",
            };
            return Err(ErrorData::new(
                rmcp::model::ErrorCode(-32000),
                format!(
                    "the run's result is too large to send now ({why}); it is kept: read \
                     GET /executions/{} in a moment",
                    id.as_str().unwrap_or_default()
                ),
                Some(json!({ "execution_id": id, "retry_after": 1 })),
            ));
        }
        Ok(CallToolResult::structured(result))
    }
}

/// The caller of the HTTP request that carried this call: the SDK puts the request's
/// [`Parts`](axum::http::request::Parts) into the context, where the authentication layer had
/// put the [`Caller`]. Absent only if `/mcp` were served without that layer: refused, never
/// run as nobody's.
impl ServerHandler for Agent {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("livexec", env!("CARGO_PKG_VERSION")))
            .with_instructions("Runs untrusted code in a sandbox: list_runtimes, then run_code.")
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(tools()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let args = request.arguments.unwrap_or_default();
        let caller = self.caller_of(&context)?;
        let result = match request.name.as_ref() {
            "list_runtimes" => self.list_runtimes(),
            "run_code" => self.run_code(&caller, &args).await?,
            other => return Err(bad(format!("unknown tool {other:?}"))),
        };
        Ok(result.into())
    }
}
