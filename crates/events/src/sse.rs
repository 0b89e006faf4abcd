//! The SSE glue: an execution's event stream as an axum `text/event-stream` response.
//!
//! Wire format (every `data:` is one JSON line):
//!
//! | event | id | data |
//! |---|---|---|
//! | `status` | seq | `{"status":"RUNNING","execution_id":"…","seq":n}` |
//! | `stdout` / `stderr` | seq | `{"data":"<chunk>","seq":n}` |
//! | `compile_stdout` / `compile_stderr` | seq | the same, of a compiled runtime's compiler (before the program's) |
//! | `result` | seq of `Finished` | the execution object of API.md §4 |
//! | `interrupted` | last seq | `{"message":"…","last_event_id":n}` |
//!
//! - `<chunk>` is the chunk decoded with `String::from_utf8_lossy`. The [`crate::Publisher`]
//!   never splits a UTF-8 character across chunks, so concatenating the `data` of all `stdout`
//!   events gives exactly the `stdout` of the final execution object (invalid bytes become
//!   U+FFFD in both, NUL is kept), and of all `compile_stdout` events its `compile.stdout`.
//! - A connection with no `Last-Event-ID` to a `QUEUED` execution first gets a `status` event
//!   `QUEUED` without an id. The terminal transition arrives as a `status` event, followed by
//!   `result`; then the stream ends. A client should close on `result` (a browser
//!   `EventSource` would otherwise reconnect, and get the `result` again at once).
//! - An execution that is already terminal answers with its `result` at once.
//! - If the event stream ends without `Finished` (the client fell behind past what the bus
//!   retains, or the bus failed), the store is consulted: a terminal execution still gets its
//!   `result`; otherwise an `interrupted` event tells the client to reconnect with
//!   `Last-Event-ID` (an `EventSource` does so by itself), and the stream ends.
//! - With no event for [`IDLE_RECHECK`], the store is consulted too, so a lost `Finished`
//!   never leaves a client hanging. Keep-alive comments go out every [`KEEP_ALIVE`].
//! - When the server shuts down (the `stop` future of [`execution_sse_until`] resolves), the
//!   stream ends with an `interrupted` event too, so a graceful shutdown never waits for open
//!   streams and clients resume on another node.
//!
//! `Last-Event-ID`: absent or blank means 0 (from the start); a decimal `u64` resumes after
//! that seq; anything else is [`EventsError::BadLastEventId`] (answer 400).

use crate::EventsError;
use axum::http::HeaderMap;
use axum::response::sse::{self, KeepAlive, Sse};
use futures::StreamExt;
use livexec_core::{BoxStream, Event, EventKind, ExecutionId, ExecutionView, Status};
use serde_json::json;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// Interval of keep-alive comments.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// With no event for this long, the store is asked whether the execution is over.
pub const IDLE_RECHECK: Duration = Duration::from_secs(10);

/// The body stream of an SSE response.
pub type SseStream = BoxStream<Result<sse::Event, Infallible>>;

/// The SSE response type (implements `IntoResponse`).
pub type SseResponse = Sse<sse::KeepAliveStream<SseStream>>;

/// A future that resolves when the server ends the stream: it starts shutting down, or the
/// caller's API key was revoked.
pub type StopSignal = Pin<Box<dyn Future<Output = ()> + Send>>;

/// What the `interrupted` event says when the event stream broke.
const BROKEN: &str = "the live stream was interrupted (the client fell behind or the event bus \
                      failed); reconnect with Last-Event-ID to resume";
/// What the `interrupted` event says when the server shuts down.
const SHUTTING_DOWN: &str = "the server ended this stream (it is shutting down, or the API key was revoked); reconnect with Last-Event-ID to resume";

/// Parses a `Last-Event-ID` value: absent or blank → 0, a decimal `u64` → itself.
pub fn parse_last_event_id(value: Option<&str>) -> Result<u64, EventsError> {
    let Some(raw) = value else { return Ok(0) };
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Ok(0);
    }
    trimmed
        .parse::<u64>()
        .map_err(|_| EventsError::BadLastEventId {
            value: raw.chars().take(64).collect(),
        })
}

/// Reads and parses the `Last-Event-ID` header (see [`parse_last_event_id`]).
pub fn last_event_id(headers: &HeaderMap) -> Result<u64, EventsError> {
    match headers.get("last-event-id") {
        None => Ok(0),
        Some(v) => match v.to_str() {
            Ok(s) => parse_last_event_id(Some(s)),
            Err(_) => Err(EventsError::BadLastEventId {
                value: String::from_utf8_lossy(v.as_bytes())
                    .chars()
                    .take(64)
                    .collect(),
            }),
        },
    }
}

/// The SSE response for one execution.
///
/// `current` is the execution's status as read from the store *before* subscribing; when it is
/// terminal `events` is not polled (pass `futures::stream::empty().boxed()`). `after` is the
/// parsed `Last-Event-ID`. `lookup` reads the execution from the store (`None` if it vanished);
/// it is called after `Finished`, when the stream is interrupted, and when it is idle.
pub fn sse_events<L, Fut>(
    execution_id: ExecutionId,
    current: Status,
    after: u64,
    events: BoxStream<Event>,
    lookup: L,
) -> SseResponse
where
    L: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Option<ExecutionView>> + Send + 'static,
{
    sse_events_until(
        execution_id,
        current,
        after,
        events,
        lookup,
        Box::pin(std::future::pending()),
    )
}

/// [`sse_events`] that ends with an `interrupted` event once `stop` resolves.
pub fn sse_events_until<L, Fut>(
    execution_id: ExecutionId,
    current: Status,
    after: u64,
    events: BoxStream<Event>,
    lookup: L,
    stop: StopSignal,
) -> SseResponse
where
    L: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Option<ExecutionView>> + Send + 'static,
{
    sse_events_admitted(execution_id, current, after, events, lookup, stop, None)
}

/// [`sse_events_until`] whose `result` is built only if `admit` allows.
fn sse_events_admitted<L, Fut>(
    execution_id: ExecutionId,
    current: Status,
    after: u64,
    events: BoxStream<Event>,
    lookup: L,
    stop: StopSignal,
    admit: Option<Admit>,
) -> SseResponse
where
    L: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Option<ExecutionView>> + Send + 'static,
{
    let mut out = VecDeque::new();
    if after == 0 && current == Status::Queued {
        out.push_back(status_event(execution_id, Status::Queued, None));
    }
    let state = Glue {
        execution_id,
        events: (!current.is_terminal()).then_some(events),
        lookup,
        admit,
        _admitted: None,
        last: after,
        out,
        done: false,
        stop,
    };
    let stream: SseStream = futures::stream::unfold(state, Glue::next).boxed();
    Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
}

fn status_event(execution_id: ExecutionId, status: Status, seq: Option<u64>) -> sse::Event {
    let mut data = json!({ "status": status, "execution_id": execution_id });
    let event = sse::Event::default().event("status");
    match seq {
        Some(seq) => {
            data["seq"] = json!(seq);
            event.id(seq.to_string()).data(data.to_string())
        }
        None => event.data(data.to_string()),
    }
}

fn chunk_event(name: &'static str, bytes: &[u8], seq: u64) -> sse::Event {
    let data = json!({ "data": String::from_utf8_lossy(bytes), "seq": seq });
    sse::Event::default()
        .event(name)
        .id(seq.to_string())
        .data(data.to_string())
}

fn with_id(event: sse::Event, seq: u64) -> sse::Event {
    if seq > 0 {
        event.id(seq.to_string())
    } else {
        event
    }
}

/// Asked before the `result` event is built from the execution: `Ok` with what the stream
/// holds until it ends (the memory reserved for the event, while it is built and sent), or
/// `Err(message)` when it must not be built (it would not fit the server's memory for answers
/// now); the stream then ends with an `interrupted` event carrying the message.
pub type Admit = std::sync::Arc<
    dyn Fn(&ExecutionView) -> Result<Box<dyn std::any::Any + Send + Sync>, String> + Send + Sync,
>;

struct Glue<L> {
    execution_id: ExecutionId,
    /// `None` once the execution is known to be over or the stream was interrupted.
    events: Option<BoxStream<Event>>,
    lookup: L,
    /// Whether the `result` may be built; `None`: always.
    admit: Option<Admit>,
    /// What [`Glue::admit`] gave for the `result`, held until the stream ends.
    _admitted: Option<Box<dyn std::any::Any + Send + Sync>>,
    last: u64,
    out: VecDeque<sse::Event>,
    done: bool,
    /// Resolves when the server shuts down.
    stop: StopSignal,
}

/// What woke the stream up.
enum Wake {
    Event(Option<Event>),
    Idle,
    Stop,
}

impl<L, Fut> Glue<L>
where
    L: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Option<ExecutionView>> + Send + 'static,
{
    async fn next(mut self) -> Option<(Result<sse::Event, Infallible>, Glue<L>)> {
        loop {
            if let Some(event) = self.out.pop_front() {
                return Some((Ok(event), self));
            }
            if self.done {
                return None;
            }
            let Some(events) = self.events.as_mut() else {
                // Terminal before we started: the result at once.
                self.conclude(false).await;
                continue;
            };
            let wake = tokio::select! {
                next = tokio::time::timeout(IDLE_RECHECK, events.next()) => match next {
                    Ok(event) => Wake::Event(event),
                    Err(_idle) => Wake::Idle,
                },
                () = self.stop.as_mut() => Wake::Stop,
            };
            match wake {
                Wake::Event(Some(event)) => self.on_event(event).await,
                Wake::Event(None) => self.conclude(false).await,
                Wake::Stop => {
                    self.events = None;
                    self.done = true;
                    self.interrupt(SHUTTING_DOWN);
                }
                Wake::Idle => {
                    if let Some(view) = (self.lookup)().await {
                        if view.status.is_terminal() {
                            self.push_result(&view);
                        }
                    }
                }
            }
        }
    }

    async fn on_event(&mut self, event: Event) {
        self.last = event.seq;
        let seq = event.seq;
        match event.kind.into_output() {
            Ok((stream, b)) => self.out.push_back(chunk_event(stream.name(), &b, seq)),
            Err(EventKind::Finished(s)) => {
                self.out
                    .push_back(status_event(self.execution_id, s, Some(seq)));
                self.conclude(true).await;
            }
            Err(EventKind::Status(s)) => {
                self.out
                    .push_back(status_event(self.execution_id, s, Some(seq)))
            }
            // Every chunk is an output above.
            Err(_) => {}
        }
    }

    /// Ends the stream with the stored result, or with `interrupted` when the execution is
    /// not over. After `Finished` the store is retried briefly (it is written first).
    async fn conclude(&mut self, finished: bool) {
        self.events = None;
        self.done = true;
        let tries = if finished { 5 } else { 1 };
        let mut view = None;
        for attempt in 1..=tries {
            view = (self.lookup)().await;
            if view.as_ref().is_some_and(|v| v.status.is_terminal()) || attempt == tries {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        match view {
            Some(v) if v.status.is_terminal() || finished => self.push_result(&v),
            _ => self.interrupt(BROKEN),
        }
    }

    /// Ends the stream with an `interrupted` event telling the client where to resume.
    fn interrupt(&mut self, message: &str) {
        let data = json!({ "message": message, "last_event_id": self.last });
        let event = sse::Event::default()
            .event("interrupted")
            .data(data.to_string());
        self.out.push_back(with_id(event, self.last));
    }

    fn push_result(&mut self, view: &ExecutionView) {
        self.done = true;
        self.events = None;
        if let Some(admit) = &self.admit {
            match admit(view) {
                Ok(held) => self._admitted = Some(held),
                Err(refused) => {
                    self.interrupt(&refused);
                    return;
                }
            }
        }
        // Written straight into the event (no JSON string besides it: it may be large).
        match sse::Event::default().event("result").json_data(view) {
            Ok(event) => self.out.push_back(with_id(event, self.last)),
            Err(e) => tracing::error!(execution_id = %self.execution_id, error = %e,
                "serialising the execution for the result event failed"),
        }
    }
}

/// Everything `GET /executions/:executionId/events` does, given the parsed `Last-Event-ID`:
/// read the execution (404 when absent), subscribe unless it is already terminal, and build the
/// response with a store lookup for the `result` event.
pub async fn execution_sse(
    store: std::sync::Arc<dyn livexec_core::Store>,
    bus: std::sync::Arc<dyn livexec_core::EventBus>,
    id: ExecutionId,
    after: u64,
) -> Result<SseResponse, EventsError> {
    execution_sse_until(store, bus, id, after, Box::pin(std::future::pending())).await
}

/// [`execution_sse`] whose stream ends with an `interrupted` event once `stop` resolves (the
/// server is shutting down).
pub async fn execution_sse_until(
    store: std::sync::Arc<dyn livexec_core::Store>,
    bus: std::sync::Arc<dyn livexec_core::EventBus>,
    id: ExecutionId,
    after: u64,
    stop: StopSignal,
) -> Result<SseResponse, EventsError> {
    execution_sse_admitted(store, bus, id, after, stop, |_| true, None).await
}

/// [`execution_sse_until`] for a caller who may see only some executions, whose `result` is
/// built only if `admit` allows (see [`Admit`]; `None`: always). `visible` is asked about the
/// execution's owner as read, before anything is subscribed, and an execution it refuses is
/// [`EventsError::ExecutionNotFound`], exactly as an unknown one (issue 13).
pub async fn execution_sse_admitted(
    store: std::sync::Arc<dyn livexec_core::Store>,
    bus: std::sync::Arc<dyn livexec_core::EventBus>,
    id: ExecutionId,
    after: u64,
    stop: StopSignal,
    visible: impl FnOnce(livexec_core::Owner) -> bool,
    admit: Option<Admit>,
) -> Result<SseResponse, EventsError> {
    let execution = crate::wait::get_execution(store.as_ref(), id).await?;
    if !visible(execution.owner) {
        return Err(EventsError::ExecutionNotFound { id });
    }
    let events = if execution.status.is_terminal() {
        futures::stream::empty().boxed()
    } else {
        bus.subscribe(id, after)
            .await
            .map_err(|source| EventsError::Bus { id, source })?
    };
    let lookup = move || {
        let store = std::sync::Arc::clone(&store);
        async move {
            match store.get_execution(id).await {
                Ok(found) => found.map(|e| e.into_view()),
                Err(e) => {
                    tracing::warn!(execution_id = %id, error = %e,
                        "reading the execution for its event stream failed");
                    None
                }
            }
        }
    };
    Ok(sse_events_admitted(
        id,
        execution.status,
        after,
        events,
        lookup,
        stop,
        admit,
    ))
}
