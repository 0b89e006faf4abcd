//! The memory of large answers, held against a budget.
//!
//! An execution's answer can be far larger than what it stored: up to the output cap of
//! stdout and stderr, its test cases' outputs and its returned files, and in JSON every
//! control byte of the output becomes a six-byte `\u00XX` escape — a 16 MiB output of such
//! bytes is a ~100 MB body. A server that built such bodies for every request that asked
//! would run out of memory under a handful of concurrent reads of the same execution.
//!
//! So every answer that carries execution outputs (native, Judge0, Piston) is built through
//! [`ResponseMemory`]: its JSON size is counted first (serialized into a counter, nothing
//! allocated), then reserved, then the body is built, and the reservation travels with the
//! body's bytes until hyper has sent or dropped them. A request whose answer does not fit is
//! refused at once instead of waiting, holding what it loaded:
//! - **503** with `Retry-After` when the whole budget is in use
//!   (`LIVEXEC_RESPONSE_MEMORY_MB`);
//! - **429** with `Retry-After` when its caller's API key already holds its share, a quarter
//!   of the budget, so that one key reading many large answers at once cannot take the
//!   budget from the others.
//!
//! An event stream (`GET /executions/:id/events`) ends with the execution as its `result`
//! event, as large as the answer above: the stream reserves it before building it
//! ([`ResponseMemory::admit_result`]) and holds the reservation until it ends, [`pace_frames`]
//! paces it like an answer, and one that does not fit is not built: an `interrupted` event
//! ends the stream instead (the client resumes with `Last-Event-ID` in a moment, or reads the
//! execution).
//!
//! MCP's `run_code` reserves its result while it is built (the SDK sends it), and answers a
//! JSON-RPC error naming the kept execution when it does not fit.
//!
//! An answer below [`SMALL`] is never refused (it is counted all the same), and one answer
//! larger than the whole budget is sent when nothing else holds any of it — a list (`?ids=`,
//! a history page, a Judge0 batch) never passes it. An answer's memory counts twice its JSON
//! while it is built (the values and the body), the body alone once built. A client that
//! stops reading an answer loses its connection at the write-stall timeout (`crate::http`),
//! and one that reads a large answer slower than the minimum rate
//! (`LIVEXEC_MIN_READ_RATE_KIB`, after that timeout's grace) loses it too: either releases
//! the answer's memory.

use crate::compat::Surface;
use crate::error::ApiError;
use crate::ratelimit::Limited;
use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use livexec_core::{Caller, KeyId};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Answers below this many bytes are never refused (1 MiB).
pub const SMALL: u64 = 1 << 20;

/// The default budget: 512 MiB.
pub const DEFAULT_BUDGET: u64 = 512 << 20;

/// How fast a large answer must be read on average, by default: 1 MiB/s (after the grace of
/// the write-stall timeout). A client reading a 192 MiB answer at 20 KB/s would otherwise
/// hold its memory for hours.
pub const MIN_RATE: u64 = 1 << 20;

/// The slices a large body is handed to hyper in (bytes): its deadline is checked at each.
const SLICE: usize = 256 << 10;

/// Who holds a reservation: an API key, or the open callers of a service without keys
/// (trusted, see `LIVEXEC_AUTH`: only the whole budget applies to them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Holder {
    /// A key's answers, held against its share.
    Key(KeyId),
    /// Answers to open callers.
    Open,
}

impl Holder {
    /// Whose answers `caller`'s are.
    pub fn of(caller: &Caller) -> Holder {
        match caller {
            Caller::Key(key) => Holder::Key(key.id),
            Caller::Open => Holder::Open,
        }
    }
}

/// The budget of large answers of this process (shared by clones).
#[derive(Clone, Debug)]
pub struct ResponseMemory {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Bytes in all.
    budget: u64,
    /// Bytes one holder may hold.
    share: u64,
    /// How fast a large answer must be read on average, bytes per second, after `grace`.
    min_rate: u64,
    /// What a large answer's reader is given besides `len / min_rate`.
    grace: Duration,
    held: Mutex<Held>,
}

#[derive(Debug, Default)]
struct Held {
    total: u64,
    by: HashMap<Holder, u64>,
}

impl Default for ResponseMemory {
    fn default() -> Self {
        ResponseMemory::new(DEFAULT_BUDGET)
    }
}

/// Why an answer was refused; [`Refused::response_in`] makes the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// The budget is in use by other answers: 503.
    Full {
        /// The budget, bytes.
        budget: u64,
    },
    /// The caller holds its share: 429.
    Share {
        /// The share, bytes.
        share: u64,
    },
}

impl ResponseMemory {
    /// A budget of `budget` bytes (at least [`SMALL`]); a holder's share is a quarter of it.
    pub fn new(budget: u64) -> Self {
        ResponseMemory::paced(budget, MIN_RATE, crate::http::DEFAULT_WRITE_STALL_TIMEOUT)
    }

    /// A budget of `budget` bytes whose large answers must be read at `min_rate` bytes per
    /// second on average, after `grace` (a reader given `grace + len / min_rate` to take an
    /// answer of `len` bytes loses the connection past it, which releases the memory).
    pub fn paced(budget: u64, min_rate: u64, grace: Duration) -> Self {
        let budget = budget.max(SMALL);
        ResponseMemory {
            inner: Arc::new(Inner {
                budget,
                share: budget / 4,
                min_rate: min_rate.max(1),
                grace,
                held: Mutex::default(),
            }),
        }
    }

    /// Bytes held now.
    pub fn held(&self) -> u64 {
        self.inner.lock().total
    }

    /// An empty reservation of `holder`, to [`Reservation::grow`] as an answer is built.
    pub fn start(&self, holder: Holder) -> Reservation {
        Reservation {
            of: self.inner.clone(),
            holder,
            bytes: 0,
            body: 0,
        }
    }

    /// `value` as a JSON answer with `status`, within the budget ([`ResponseMemory::reserve`],
    /// [`json_answer`]), or why not.
    pub fn answer<T: Serialize + ?Sized>(
        &self,
        holder: Holder,
        status: StatusCode,
        value: &T,
    ) -> Result<Response, Refused> {
        let reservation = self.reserve(holder, value)?;
        Ok(json_answer(status, value, reservation))
    }

    /// Whether an answer of `bytes` (counted as [`Reservation::grow`] counts them) would be
    /// admitted for `holder` now, reserving nothing: asked before something expensive is built
    /// only to be refused. The answer is reserved for real once built.
    pub fn would_fit(&self, holder: Holder, bytes: u64) -> Result<(), Refused> {
        self.start(holder).grow(bytes)
    }

    /// The reservation of an event stream's `result` (`view`), held by the stream from before
    /// the event is built until the stream ends: twice its JSON (the view and the event). Or
    /// what the stream's `interrupted` event says instead, when it does not fit now.
    pub fn admit_result(
        &self,
        holder: Holder,
        view: &impl Serialize,
    ) -> Result<Box<dyn std::any::Any + Send + Sync>, String> {
        match self.reserve(holder, view) {
            Ok(reservation) => Ok(Box::new(reservation)),
            Err(refused) => Err(stream_refusal(&refused)),
        }
    }

    /// A reservation for `value`'s JSON body, or why not (see the module doc).
    pub fn reserve<T: Serialize + ?Sized>(
        &self,
        holder: Holder,
        value: &T,
    ) -> Result<Reservation, Refused> {
        let mut reservation = self.start(holder);
        reservation.grow_for(value)?;
        Ok(reservation)
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn publish(&self, held: &Held) {
        livexec_telemetry::response_memory(held.total);
    }
}

/// Bytes of the budget held for one answer, released when dropped (with the body's bytes,
/// once hyper is done with them).
#[derive(Debug)]
pub struct Reservation {
    of: Arc<Inner>,
    holder: Holder,
    bytes: u64,
    /// The JSON body's length so far, for its buffer.
    body: u64,
}

impl Reservation {
    /// Bytes reserved.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Reserve `more` bytes besides those held, or refuse: never while the answer stays
    /// below [`SMALL`]; else when the caller's answers (a key's) would pass its share, or
    /// everyone's would pass the budget. Only a reservation's first bytes may pass either
    /// alone (one execution larger than the budget, sent while nothing else is): a list
    /// grown item by item stays within them.
    pub fn grow(&mut self, more: u64) -> Result<(), Refused> {
        let inner = &*self.of;
        let mut held = inner.lock();
        let mine = held.by.get(&self.holder).copied().unwrap_or(0);
        let after = self.bytes + more;
        if after >= SMALL {
            let first = self.bytes == 0;
            let others_of_holder = mine - self.bytes.min(mine);
            let keyed = matches!(self.holder, Holder::Key(_));
            let alone = first && others_of_holder == 0;
            if keyed && !alone && others_of_holder + after > inner.share {
                livexec_telemetry::response_refused("share");
                return Err(Refused::Share { share: inner.share });
            }
            let others = held.total - self.bytes.min(held.total);
            let alone = first && others == 0;
            if !alone && others + after > inner.budget {
                livexec_telemetry::response_refused("full");
                return Err(Refused::Full {
                    budget: inner.budget,
                });
            }
        }
        held.total += more;
        *held.by.entry(self.holder).or_insert(0) += more;
        self.bytes = after;
        inner.publish(&held);
        Ok(())
    }

    /// [`Reservation::grow`] for `value`, one item of an answer (or all of it): twice its
    /// JSON length (and a separator) — the value in memory, whose text is never longer than
    /// its JSON, and its part of the body. [`json_answer`] settles to the body alone once it
    /// is built.
    pub fn grow_for<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Refused> {
        let json = json_len(value) + 1;
        self.grow(2 * json)?;
        self.body += json;
        Ok(())
    }

    /// Set the reservation to `bytes` (what the body turned out to be), without refusing.
    fn settle(&mut self, bytes: u64) {
        let inner = &*self.of;
        let mut held = inner.lock();
        held.total = held.total - self.bytes.min(held.total) + bytes;
        let mine = held.by.entry(self.holder).or_insert(0);
        *mine = *mine - self.bytes.min(*mine) + bytes;
        self.bytes = bytes;
        inner.publish(&held);
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let mut held = self.of.lock();
        held.total -= self.bytes.min(held.total);
        if let Some(mine) = held.by.get_mut(&self.holder) {
            *mine -= self.bytes.min(*mine);
            if *mine == 0 {
                held.by.remove(&self.holder);
            }
        }
        self.of.publish(&held);
    }
}

impl Refused {
    fn limited(share: u64) -> Limited {
        Limited {
            message: format!(
                "your large answers in flight hold {} MiB, this caller's share of the server's \
                 memory for answers; retry when they have been read",
                share >> 20
            ),
            limit: u32::try_from(share >> 20).unwrap_or(u32::MAX),
            remaining: 0,
            reset_secs: 1,
            retry_after_secs: 1,
        }
    }

    fn full_message(budget: u64) -> String {
        format!(
            "the server is sending as many large answers as its memory for them allows \
             ({} MiB, LIVEXEC_RESPONSE_MEMORY_MB); retry in a moment",
            budget >> 20
        )
    }

    /// The refusal in `surface`'s shape: 503 (budget) or 429 (share), both with
    /// `Retry-After: 1`; natively [`ApiError`]'s.
    pub(crate) fn response_in(self, surface: Surface) -> Response {
        let budget = match (self, surface) {
            (refused, Surface::Native) => return ApiError::from(refused).into_response(),
            (Refused::Share { share }, surface) => {
                return Refused::limited(share).response_in(surface)
            }
            (Refused::Full { budget }, _) => budget,
        };
        let message = Refused::full_message(budget);
        let body = match surface {
            Surface::Judge0 => serde_json::json!({ "error": message }),
            Surface::Mcp => serde_json::json!({
                "jsonrpc": "2.0", "id": null,
                "error": { "code": -32000, "message": message },
            }),
            Surface::Piston | Surface::Native => serde_json::json!({ "message": message }),
        };
        let mut response = (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(1u32));
        response
    }
}

impl From<Refused> for ApiError {
    fn from(refused: Refused) -> Self {
        match refused {
            Refused::Share { share } => ApiError::TooManyRequests(Refused::limited(share)),
            Refused::Full { budget } => ApiError::Unavailable {
                message: Refused::full_message(budget),
                retry_after_secs: 1,
            },
        }
    }
}

/// The exact length in bytes of `value` as `serde_json` writes it (compactly), counted
/// without building it.
pub fn json_len<T: Serialize + ?Sized>(value: &T) -> u64 {
    struct Count(u64);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len() as u64;
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing to a counter cannot fail; a value that cannot be serialized counts 0 and fails
    // again, visibly, when the body is built.
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

/// `value` as a JSON answer with `status`, its bytes carrying `reservation` until hyper has
/// sent or dropped them.
pub fn json_answer<T: Serialize + ?Sized>(
    status: StatusCode,
    value: &T,
    mut reservation: Reservation,
) -> Response {
    let mut buf = Vec::with_capacity(usize::try_from(reservation.body).unwrap_or(0));
    if let Err(e) = serde_json::to_writer(&mut buf, value) {
        tracing::error!(error = %e, "an answer could not be serialized");
        return ApiError::Panic {
            detail: format!("serializing an answer: {e}"),
        }
        .into_response();
    }
    reservation.settle(buf.len() as u64);
    let body = if (buf.len() as u64) < SMALL {
        Body::from(buf)
    } else {
        let inner = reservation.of.clone();
        let bytes = Bytes::from_owner(Owned {
            bytes: buf,
            reservation,
        });
        Body::new(Paced::new(bytes, &inner))
    };
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// A body's bytes and the reservation they are counted under.
struct Owned {
    bytes: Vec<u8>,
    #[allow(dead_code)] // held for its `Drop`
    reservation: Reservation,
}

impl AsRef<[u8]> for Owned {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

/// A large body under its reservation, handed to hyper in [`SLICE`]s (which share its
/// memory), each only if its reader is still within `grace + len / min_rate` of the first:
/// past it the body fails, hyper drops the connection and the memory is released.
struct Paced {
    bytes: Bytes,
    sent: usize,
    deadline: tokio::time::Instant,
}

/// The error of an answer read too slowly.
#[derive(Debug, thiserror::Error)]
#[error("the client read a large answer slower than the minimum rate")]
struct ReadTooSlowly;

impl Paced {
    /// `bytes` paced by `inner`'s minimum rate and grace.
    fn new(bytes: Bytes, inner: &Inner) -> Self {
        let reading = Duration::from_secs_f64(bytes.len() as f64 / inner.min_rate as f64);
        Paced {
            deadline: tokio::time::Instant::now() + inner.grace + reading,
            bytes,
            sent: 0,
        }
    }
}

impl http_body::Body for Paced {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        use std::task::Poll;
        let this = &mut *self;
        if this.sent >= this.bytes.len() {
            return Poll::Ready(None);
        }
        if tokio::time::Instant::now() > this.deadline {
            livexec_telemetry::write_stalled();
            return Poll::Ready(Some(Err(axum::Error::new(ReadTooSlowly))));
        }
        let end = (this.sent + SLICE).min(this.bytes.len());
        let slice = this.bytes.slice(this.sent..end);
        this.sent = end;
        Poll::Ready(Some(Ok(http_body::Frame::data(slice))))
    }

    fn is_end_stream(&self) -> bool {
        self.sent >= self.bytes.len()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact((self.bytes.len() - self.sent) as u64)
    }
}

/// `response` (an event stream) with each event of [`SMALL`] or more paced as a large answer
/// is (`memory`'s minimum rate): its memory is reserved by the stream itself
/// ([`ResponseMemory::admit_result`]) from before it is built until the stream ends.
pub fn pace_frames(response: Response, memory: ResponseMemory) -> Response {
    response.map(|inner| {
        Body::new(PacedFrames {
            inner,
            memory,
            pacing: None,
        })
    })
}

/// The body of [`pace_frames`].
struct PacedFrames {
    inner: Body,
    memory: ResponseMemory,
    /// A large event being sent.
    pacing: Option<Paced>,
}

impl http_body::Body for PacedFrames {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        use std::task::Poll;
        let this = &mut *self;
        if let Some(paced) = this.pacing.as_mut() {
            match std::pin::Pin::new(paced).poll_frame(cx) {
                Poll::Ready(None) => this.pacing = None,
                other => return other,
            }
        }
        let frame = match std::pin::Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => frame,
            other => return other,
        };
        match frame.into_data() {
            Ok(bytes) if bytes.len() as u64 >= SMALL => {
                let mut paced = Paced::new(bytes, &this.memory.inner);
                let first = std::pin::Pin::new(&mut paced).poll_frame(cx);
                this.pacing = Some(paced);
                first
            }
            Ok(bytes) => Poll::Ready(Some(Ok(http_body::Frame::data(bytes)))),
            Err(frame) => Poll::Ready(Some(Ok(frame))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.pacing.is_none() && self.inner.is_end_stream()
    }
}

/// The message of an `interrupted` event that stands for a large event refused for memory.
fn stream_refusal(refused: &Refused) -> String {
    let why = match refused {
        Refused::Full { .. } => "the server's memory for large answers is in use",
        Refused::Share { .. } => {
            "this key's large answers in flight hold its share of the server's memory for answers"
        }
    };
    format!(
        "the next event is too large to send now ({why}); reconnect with Last-Event-ID in a \
         moment, or read GET /executions/:id"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u128) -> Holder {
        Holder::Key(uuid::Uuid::from_u128(n))
    }

    #[test]
    fn json_len_counts_what_serde_json_writes() {
        let value = serde_json::json!({"out": "a\u{1}b\"\n", "n": [1, 2, 3]});
        assert_eq!(
            json_len(&value),
            serde_json::to_vec(&value).unwrap().len() as u64
        );
    }

    #[test]
    fn small_answers_pass_large_ones_fit_the_budget_and_the_share() {
        let memory = ResponseMemory::new(8 << 20);
        let mut a = memory.start(key(1));
        a.grow(3 << 20).unwrap();
        // A second large answer of the same caller would pass its share (2 MiB).
        assert_eq!(
            memory.start(key(1)).grow(1 << 20),
            Err(Refused::Share { share: 2 << 20 })
        );
        // Small ones always pass.
        let small = {
            let mut r = memory.start(key(1));
            r.grow(1000).unwrap();
            r
        };
        let mut b = memory.start(key(2));
        b.grow(2 << 20).unwrap();
        // 3 + 2 MiB held (and 1000 bytes): 4 more MiB pass the 8 MiB budget.
        assert_eq!(
            memory.start(key(3)).grow(4 << 20),
            Err(Refused::Full { budget: 8 << 20 })
        );
        assert_eq!(memory.held(), (5 << 20) + 1000);
        drop((a, b, small));
        assert_eq!(memory.held(), 0);
        // Alone, an answer larger than the budget is let through.
        let mut huge = memory.start(key(3));
        huge.grow(100 << 20).unwrap();
        assert!(memory.start(key(4)).grow(1 << 20).is_err());
        drop(huge);
        // Open callers (no keys) have no share of their own: only the budget applies.
        let mut open = memory.start(Holder::Open);
        open.grow(3 << 20).unwrap();
        memory.start(Holder::Open).grow(3 << 20).unwrap();
    }

    #[test]
    fn a_list_grown_item_by_item_stays_within_the_budget_and_the_share_even_alone() {
        let memory = ResponseMemory::new(8 << 20);
        // Its first item may pass the budget alone; nothing after it may.
        let mut list = memory.start(Holder::Open);
        list.grow(20 << 20).unwrap();
        assert_eq!(list.grow(1 << 20), Err(Refused::Full { budget: 8 << 20 }));
        drop(list);
        let mut list = memory.start(Holder::Open);
        list.grow(6 << 20).unwrap();
        assert_eq!(list.grow(3 << 20), Err(Refused::Full { budget: 8 << 20 }));
        drop(list);
        // A key's list stops at its share (2 MiB).
        let mut list = memory.start(key(5));
        list.grow(3 << 19).unwrap();
        assert_eq!(list.grow(1 << 20), Err(Refused::Share { share: 2 << 20 }));
        drop(list);
        assert_eq!(memory.held(), 0);
    }

    #[test]
    fn an_item_reserves_its_value_and_its_json_until_the_body_is_built() {
        let memory = ResponseMemory::new(64 << 20);
        let value = "x".repeat(2 << 20);
        let reservation = memory.reserve(Holder::Open, &value).unwrap();
        let json = json_len(&value) + 1;
        assert_eq!(reservation.bytes(), 2 * json);
        let answer = json_answer(StatusCode::OK, &value, reservation);
        // Settled to the body once built; released with it.
        assert_eq!(memory.held(), json - 1);
        drop(answer);
        assert_eq!(memory.held(), 0);
    }
}
