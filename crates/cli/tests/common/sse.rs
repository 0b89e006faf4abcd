//! A small Server-Sent Events client for the tests: connects to
//! `GET /executions/:id/events`, parses the `text/event-stream` body as it arrives, and stamps
//! each event with the instant it was received.

use super::PATIENCE;
use futures::StreamExt;
use serde_json::Value;
use std::time::{Duration, Instant};

/// One received event.
#[derive(Debug, Clone)]
pub struct SseEvent {
    /// `event:` (`message` when absent).
    pub event: String,
    /// `id:`, when present.
    pub id: Option<u64>,
    /// `data:` lines joined with `\n`.
    pub data: String,
    /// When the client had the whole event.
    pub at: Instant,
    /// The same moment on the wall clock (to compare with a program's own timestamps).
    pub wall: std::time::SystemTime,
}

impl SseEvent {
    /// `data` as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data)
            .unwrap_or_else(|e| panic!("event data is not JSON ({e}): {:?}", self.data))
    }

    /// The chunk of a `stdout`/`stderr` event.
    pub fn chunk(&self) -> String {
        self.json()["data"]
            .as_str()
            .unwrap_or_else(|| panic!("chunk event without data: {:?}", self.data))
            .to_owned()
    }

    /// What must be identical for every subscriber: name, id and data.
    pub fn key(&self) -> (String, Option<u64>, String) {
        (self.event.clone(), self.id, self.data.clone())
    }
}

/// An open event stream.
pub struct SseReader {
    body: futures::stream::BoxStream<'static, reqwest::Result<axum::body::Bytes>>,
    buf: Vec<u8>,
    /// Keep-alive comments seen.
    pub comments: usize,
}

/// Connect; the response must be 200 `text/event-stream`.
pub async fn connect(http: &reqwest::Client, url: &str, last_event_id: Option<u64>) -> SseReader {
    let mut req = http.get(url);
    if let Some(id) = last_event_id {
        req = req.header("last-event-id", id.to_string());
    }
    let res = tokio::time::timeout(PATIENCE, req.send())
        .await
        .unwrap_or_else(|_| panic!("no answer from {url}"))
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert_eq!(res.status(), 200, "GET {url}");
    let ct = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(ct.starts_with("text/event-stream"), "content-type {ct}");
    SseReader {
        body: res.bytes_stream().boxed(),
        buf: Vec::new(),
        comments: 0,
    }
}

impl SseReader {
    /// The next event, or `None` when the server ended the stream.
    pub async fn next(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(event) = self.parse_one() {
                return Some(event);
            }
            let chunk = tokio::time::timeout(PATIENCE, self.body.next())
                .await
                .expect("the event stream went silent");
            match chunk {
                Some(Ok(bytes)) => self.buf.extend_from_slice(&bytes),
                Some(Err(e)) => panic!("reading the event stream: {e}"),
                None => {
                    assert!(
                        self.buf.iter().all(u8::is_ascii_whitespace),
                        "stream ended inside an event: {:?}",
                        String::from_utf8_lossy(&self.buf)
                    );
                    return None;
                }
            }
        }
    }

    /// Every event until the server ends the stream.
    pub async fn all(mut self) -> Vec<SseEvent> {
        let mut out = Vec::new();
        while let Some(e) = self.next().await {
            out.push(e);
        }
        out
    }

    /// Events until (and including) the first one for which `stop` holds.
    pub async fn until(&mut self, stop: impl Fn(&SseEvent) -> bool) -> Vec<SseEvent> {
        let mut out = Vec::new();
        while let Some(e) = self.next().await {
            let done = stop(&e);
            out.push(e);
            if done {
                return out;
            }
        }
        panic!("stream ended before the awaited event; got {out:#?}");
    }

    /// Parses one complete event from the buffer (comments are counted and skipped).
    fn parse_one(&mut self) -> Option<SseEvent> {
        loop {
            let end = self.buf.windows(2).position(|w| w == b"\n\n")?;
            let block: Vec<u8> = self.buf.drain(..end + 2).collect();
            let text = String::from_utf8(block).expect("event stream is UTF-8");
            let (mut event, mut id, mut data) = (None, None, Vec::new());
            let mut fields = 0;
            for line in text.lines().filter(|l| !l.is_empty()) {
                if line.starts_with(':') {
                    self.comments += 1;
                    continue;
                }
                let (name, value) = line.split_once(':').unwrap_or((line, ""));
                let value = value.strip_prefix(' ').unwrap_or(value);
                fields += 1;
                match name {
                    "event" => event = Some(value.to_owned()),
                    "id" => id = Some(value.parse::<u64>().expect("numeric event id")),
                    "data" => data.push(value.to_owned()),
                    "retry" => {}
                    other => panic!("unknown SSE field {other:?} in {text:?}"),
                }
            }
            if fields == 0 {
                continue;
            }
            return Some(SseEvent {
                event: event.unwrap_or_else(|| "message".to_owned()),
                id,
                data: data.join("\n"),
                at: Instant::now(),
                wall: std::time::SystemTime::now(),
            });
        }
    }
}

/// The concatenated chunks of all `name` (`stdout`/`stderr`) events.
pub fn output(events: &[SseEvent], name: &str) -> String {
    events
        .iter()
        .filter(|e| e.event == name)
        .map(SseEvent::chunk)
        .collect()
}

/// The `result` event's execution object; it must be the last event, and the only `result`.
pub fn result(events: &[SseEvent]) -> Value {
    let last = events.last().expect("no events");
    assert_eq!(last.event, "result", "last event: {events:#?}");
    assert_eq!(
        events.iter().filter(|e| e.event == "result").count(),
        1,
        "{events:#?}"
    );
    last.json()
}

/// Ids must strictly increase (events without an id are skipped).
pub fn assert_ids_increase(events: &[SseEvent]) {
    let ids: Vec<u64> = events
        .iter()
        .filter(|e| e.event != "result")
        .filter_map(|e| e.id)
        .collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "ids not strictly increasing: {ids:?}"
    );
}

/// Milliseconds between two events.
pub fn gap(a: &SseEvent, b: &SseEvent) -> Duration {
    b.at.saturating_duration_since(a.at)
}
