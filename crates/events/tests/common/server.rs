//! A real axum server on 127.0.0.1:0 serving `GET /executions/{id}/events` the way the API
//! crate is meant to (through `execution_sse`), a real SQLite store, and an SSE client.
#![allow(dead_code)]

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures::StreamExt;
use livexec_core::{EventBus, Execution, NewExecution, RunReport, RunResult, Status, Store};
use livexec_events::{execution_sse, last_event_id, EventsError};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;
use uuid::Uuid;

#[derive(Clone)]
pub struct Ctx {
    pub store: Arc<dyn Store>,
    pub bus: Arc<dyn EventBus>,
}

async fn events(State(ctx): State<Ctx>, Path(id): Path<Uuid>, headers: HeaderMap) -> Response {
    let after = match last_event_id(&headers) {
        Ok(after) => after,
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    match execution_sse(ctx.store, ctx.bus, id, after).await {
        Ok(sse) => sse.into_response(),
        Err(e @ EventsError::ExecutionNotFound { .. }) => {
            (StatusCode::NOT_FOUND, e.to_string()).into_response()
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// A server, its store and its base URL. The temp dir lives as long as it does.
pub struct Server {
    pub base: String,
    pub store: Arc<dyn Store>,
    pub bus: Arc<dyn EventBus>,
    _dir: tempfile::TempDir,
}

impl Server {
    pub async fn start(bus: Arc<dyn EventBus>) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("events.db").display());
        let store = livexec_store::connect(&url).await.unwrap();
        let ctx = Ctx {
            store: Arc::clone(&store),
            bus: Arc::clone(&bus),
        };
        let app = Router::new()
            .route("/executions/{id}/events", get(events))
            .with_state(ctx);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Server {
            base,
            store,
            bus,
            _dir: dir,
        }
    }

    /// A QUEUED execution of a new session.
    pub async fn queued_execution(&self) -> Execution {
        let session = self
            .store
            .create_session("python", "print(1)")
            .await
            .unwrap();
        let new = NewExecution {
            owner: None,
            session_id: session.id,
            idempotency_key: None,
            enqueue_job: false,
            options: Default::default(),
        };
        self.store.create_execution(new).await.unwrap().execution
    }

    /// Records the final result the way a worker does (before publishing Finished).
    pub async fn record(&self, id: Uuid, status: Status, stdout: &[u8], stderr: &[u8]) {
        let result = RunResult {
            status,
            report: RunReport {
                stdout: stdout.to_vec(),
                stderr: stderr.to_vec(),
                execution_time_ms: 5,
                exit_code: Some(0),
                cpu_time_ms: Some(1),
                memory_kb: Some(1),
                ..RunReport::default()
            },
        };
        assert!(self.store.finish_execution(id, 1, &result).await.unwrap());
    }

    pub fn events_url(&self, id: Uuid) -> String {
        format!("{}/executions/{id}/events", self.base)
    }
}

/// One parsed SSE frame (comments are kept as `comment`).
#[derive(Debug, Clone, Default)]
pub struct Frame {
    pub event: Option<String>,
    pub id: Option<String>,
    pub data: String,
    pub comment: bool,
    pub at: Option<Instant>,
}

impl Frame {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.data).unwrap()
    }
    pub fn name(&self) -> &str {
        self.event.as_deref().unwrap_or("message")
    }
}

fn parse_frame(text: &str) -> Frame {
    let mut frame = Frame::default();
    let mut data = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix(':') {
            let _ = rest;
            frame.comment = true;
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => frame.event = Some(value.to_owned()),
            "id" => frame.id = Some(value.to_owned()),
            "data" => data.push(value.to_owned()),
            _ => {}
        }
    }
    frame.data = data.join("\n");
    frame
}

/// Opens the event stream; frames arrive on the channel as they are read, and the channel
/// closes when the server ends the stream. Returns the HTTP status too.
pub async fn open(
    url: &str,
    last_event_id: Option<&str>,
) -> (reqwest::StatusCode, mpsc::UnboundedReceiver<Frame>) {
    let mut request = reqwest::Client::new().get(url);
    if let Some(id) = last_event_id {
        request = request.header("Last-Event-ID", id);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let (tx, rx) = mpsc::unbounded_channel();
    if status.is_success() {
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            content_type.starts_with("text/event-stream"),
            "{content_type}"
        );
    }
    tokio::spawn(async move {
        let mut body = response.bytes_stream();
        let mut buffer: Vec<u8> = Vec::new();
        while let Some(Ok(bytes)) = body.next().await {
            buffer.extend_from_slice(&bytes);
            while let Some(end) = buffer.windows(2).position(|w| w == b"\n\n") {
                let raw: Vec<u8> = buffer.drain(..end + 2).collect();
                let mut frame = parse_frame(std::str::from_utf8(&raw).unwrap());
                frame.at = Some(Instant::now());
                if tx.send(frame).is_err() {
                    return;
                }
            }
        }
    });
    (status, rx)
}

/// The next non-comment frame (hang guard 60 s); `None` when the stream ended.
pub async fn next(rx: &mut mpsc::UnboundedReceiver<Frame>) -> Option<Frame> {
    // One deadline for the whole wait: keep-alive comments do not extend it.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let frame = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .expect("SSE stream stalled")?;
        if !frame.comment {
            return Some(frame);
        }
    }
}

/// Every remaining non-comment frame until the stream ends.
pub async fn rest(rx: &mut mpsc::UnboundedReceiver<Frame>) -> Vec<Frame> {
    let mut frames = Vec::new();
    while let Some(frame) = next(rx).await {
        frames.push(frame);
    }
    frames
}
