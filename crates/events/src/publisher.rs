//! [`Publisher`]: the worker's side of live output, one per execution attempt.
//!
//! [`PublisherHandle::send`] is synchronous and never blocks: it puts the event on an
//! unbounded channel (bounded in bytes by [`PublisherConfig::max_queued_bytes`]; past it events
//! are dropped with a warning) that one Tokio task drains in order. The task
//!
//! - coalesces consecutive chunks of the same stream that queued up while it was busy (up to
//!   [`PublisherConfig::max_chunk_bytes`]), so a slow bus means fewer, larger events instead of
//!   a growing backlog;
//! - after the first chunk of a batch, waits [`PublisherConfig::linger`] (5 ms) for more, and
//!   up to [`PublisherConfig::line_linger`] (25 ms) while the last chunk ends inside a line,
//!   so what a program writes in a burst (`print("tick", 0)` is four writes under Python,
//!   possibly stalled by its CPU quota in between) is one event; output is never held back
//!   longer than that;
//! - holds back an incomplete UTF-8 character at the end of a chunk until the next chunk of the
//!   same stream (see [`crate::utf8`]), so every published chunk decodes on its own and the
//!   concatenation of all decoded chunks equals the stored output's lossy decoding;
//! - numbers events (seq) as it publishes them, from [`first_seq`] of its attempt;
//! - if the bus fails, drops events for a second with a warning (the worker still records the
//!   whole output in the store, and the program is never slowed), then tries again.
//!
//! [`Publisher::finish`] flushes everything and publishes `Finished`; [`Publisher::close`]
//! flushes without it (an abandoned attempt).

use crate::utf8::complete_prefix_len;
use livexec_core::{Event, EventBus, EventKind, ExecutionId, OutputStream, Status};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// The first seq of attempt `attempt` (1-based): `(attempt - 1) << 32` + 1.
pub fn first_seq(attempt: i32) -> u64 {
    let index = u64::try_from(attempt.max(1) - 1).unwrap_or(0);
    (index << 32) + 1
}

/// Tuning of a [`Publisher`].
#[derive(Debug, Clone)]
pub struct PublisherConfig {
    /// Largest chunk made by coalescing queued chunks.
    pub max_chunk_bytes: usize,
    /// Bytes that may wait in the queue; past it new events are dropped.
    pub max_queued_bytes: usize,
    /// After a failed publish, events are dropped for this long before the bus is tried again.
    pub backoff: Duration,
    /// How long the first chunk of a batch waits for more output to merge with; zero
    /// publishes at once.
    pub linger: Duration,
    /// How long, at most, it waits while the output so far ends inside a line (no `\n`).
    pub line_linger: Duration,
}

impl Default for PublisherConfig {
    fn default() -> Self {
        PublisherConfig {
            max_chunk_bytes: 64 << 10,
            max_queued_bytes: 16 << 20,
            backoff: Duration::from_secs(1),
            linger: Duration::from_millis(5),
            line_linger: Duration::from_millis(25),
        }
    }
}

/// What a publisher did, returned by [`Publisher::finish`] and [`Publisher::close`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PublishStats {
    /// Events the bus accepted.
    pub published: u64,
    /// Events dropped (bus down or queue full).
    pub dropped: u64,
    /// The last seq assigned (0 when none).
    pub last_seq: u64,
}

enum Msg {
    Event(EventKind),
    /// Flush and stop; publish `Finished(status)` when given.
    End(Option<Status>),
}

/// A cloneable, `Send` sender for one execution's events: move it into the blocking output
/// callback.
#[derive(Clone)]
pub struct PublisherHandle {
    tx: mpsc::UnboundedSender<Msg>,
    queued: Arc<AtomicUsize>,
    dropped: Arc<AtomicU64>,
    max_queued: usize,
    execution_id: ExecutionId,
}

impl PublisherHandle {
    /// Queues an event; never blocks. `Finished` is refused here (use [`Publisher::finish`]).
    pub fn send(&self, kind: EventKind) {
        if let EventKind::Finished(_) = kind {
            tracing::warn!(execution_id = %self.execution_id,
                "Finished must be sent through Publisher::finish; ignored");
            return;
        }
        let size = payload_len(&kind);
        let before = self.queued.fetch_add(size, Ordering::Relaxed);
        if before + size > self.max_queued {
            self.queued.fetch_sub(size, Ordering::Relaxed);
            if self.dropped.fetch_add(1, Ordering::Relaxed) == 0 {
                tracing::warn!(execution_id = %self.execution_id,
                    "live event queue full; dropping events (the stored result is complete)");
            }
            return;
        }
        if self.tx.send(Msg::Event(kind)).is_err() {
            self.queued.fetch_sub(size, Ordering::Relaxed);
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Queues a stdout chunk.
    pub fn stdout(&self, bytes: &[u8]) {
        self.output(OutputStream::Stdout, bytes);
    }

    /// Queues a stderr chunk.
    pub fn stderr(&self, bytes: &[u8]) {
        self.output(OutputStream::Stderr, bytes);
    }

    /// Queues a chunk of `stream` (the program's or the compile stage's output).
    pub fn output(&self, stream: OutputStream, bytes: &[u8]) {
        if !bytes.is_empty() {
            self.send(stream.event(bytes.to_vec()));
        }
    }

    /// Queues a status change.
    pub fn status(&self, status: Status) {
        self.send(EventKind::Status(status));
    }
}

fn payload_len(kind: &EventKind) -> usize {
    kind.output().map_or(0, |(_, b)| b.len())
}

/// Publishes one execution attempt's events in order without ever blocking the caller.
pub struct Publisher {
    handle: PublisherHandle,
    task: JoinHandle<PublishStats>,
}

impl Publisher {
    /// Starts the publisher of attempt 1. Must be called within a Tokio runtime.
    pub fn start(bus: Arc<dyn EventBus>, execution_id: ExecutionId) -> Publisher {
        Publisher::start_attempt(bus, execution_id, 1)
    }

    /// Starts the publisher of attempt `attempt` (seqs from [`first_seq`]`(attempt)`).
    pub fn start_attempt(
        bus: Arc<dyn EventBus>,
        execution_id: ExecutionId,
        attempt: i32,
    ) -> Publisher {
        Publisher::with_config(bus, execution_id, attempt, PublisherConfig::default())
    }

    /// Starts a publisher with this tuning.
    pub fn with_config(
        bus: Arc<dyn EventBus>,
        execution_id: ExecutionId,
        attempt: i32,
        config: PublisherConfig,
    ) -> Publisher {
        let (tx, rx) = mpsc::unbounded_channel();
        let handle = PublisherHandle {
            tx,
            queued: Arc::new(AtomicUsize::new(0)),
            dropped: Arc::new(AtomicU64::new(0)),
            max_queued: config.max_queued_bytes,
            execution_id,
        };
        let pump = Pump {
            bus,
            execution_id,
            next_seq: first_seq(attempt),
            carry: Default::default(),
            config,
            queued: Arc::clone(&handle.queued),
            dropped: Arc::clone(&handle.dropped),
            down_until: None,
            stats: PublishStats::default(),
        };
        let task = tokio::spawn(pump.run(rx));
        Publisher { handle, task }
    }

    /// A cloneable sender to move into the output callback.
    pub fn handle(&self) -> PublisherHandle {
        self.handle.clone()
    }

    /// Queues an event (see [`PublisherHandle::send`]).
    pub fn send(&self, kind: EventKind) {
        self.handle.send(kind);
    }

    /// Flushes everything queued, then publishes `Finished(status)`. Call it after the final
    /// result is in the store: subscribers read the store when they see `Finished`.
    pub async fn finish(self, status: Status) -> PublishStats {
        self.end(Some(status)).await
    }

    /// Flushes everything queued without publishing `Finished` (the attempt was abandoned and
    /// the execution goes back to the queue; publish `Status(Queued)` before if wanted).
    pub async fn close(self) -> PublishStats {
        self.end(None).await
    }

    async fn end(self, finished: Option<Status>) -> PublishStats {
        let execution_id = self.handle.execution_id;
        let _ = self.handle.tx.send(Msg::End(finished));
        drop(self.handle);
        match self.task.await {
            Ok(stats) => stats,
            Err(e) => {
                tracing::error!(%execution_id, error = %e, "event publisher task failed");
                PublishStats::default()
            }
        }
    }
}

/// The task that drains the queue into the bus.
struct Pump {
    bus: Arc<dyn EventBus>,
    execution_id: ExecutionId,
    next_seq: u64,
    /// Held-back incomplete UTF-8 tails, by [`OutputStream::index`].
    carry: [Vec<u8>; 4],
    config: PublisherConfig,
    queued: Arc<AtomicUsize>,
    dropped: Arc<AtomicU64>,
    down_until: Option<Instant>,
    stats: PublishStats,
}

/// Messages taken from the queue at once before publishing.
const BATCH: usize = 256;

impl Pump {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Msg>) -> PublishStats {
        let mut end = None;
        'outer: while let Some(first) = rx.recv().await {
            let mut batch = vec![first];
            self.gather(&mut rx, &mut batch).await;
            let mut out: Vec<EventKind> = Vec::with_capacity(batch.len());
            for msg in batch {
                match msg {
                    Msg::Event(kind) => {
                        self.queued.fetch_sub(payload_len(&kind), Ordering::Relaxed);
                        self.coalesce(&mut out, kind);
                    }
                    Msg::End(status) => {
                        end = Some(status);
                        break;
                    }
                }
            }
            for kind in out {
                self.publish_chunk(kind).await;
            }
            if end.is_some() {
                break 'outer;
            }
        }
        // Flush held-back bytes (incomplete characters at the very end of the output).
        for stream in OutputStream::ALL {
            let tail = std::mem::take(&mut self.carry[stream.index()]);
            if !tail.is_empty() {
                self.publish(stream.event(tail)).await;
            }
        }
        if let Some(Some(status)) = end {
            self.publish_finished(status).await;
        }
        self.stats.dropped += self.dropped.load(Ordering::Relaxed);
        self.stats
    }

    /// Adds what is queued to `batch`; when it holds a chunk, keeps adding what arrives within
    /// the linger (from now; the line linger while the last chunk ends inside a line),
    /// stopping early at the end of the attempt or a full batch.
    async fn gather(&self, rx: &mut mpsc::UnboundedReceiver<Msg>, batch: &mut Vec<Msg>) {
        let start = tokio::time::Instant::now();
        let chunk = |m: &Msg| match m {
            Msg::Event(kind) => kind.output().map(|(_, c)| c.last() != Some(&b'\n')),
            Msg::End(_) => None,
        };
        let in_line = |b: &[Msg]| b.iter().rev().find_map(chunk) == Some(true);
        let has_chunk = |b: &[Msg]| b.iter().any(|m| chunk(m).is_some());
        loop {
            while batch.len() < BATCH {
                match rx.try_recv() {
                    Ok(msg) => batch.push(msg),
                    Err(_) => break,
                }
            }
            let ended = matches!(batch.last(), Some(Msg::End(_)));
            if ended || batch.len() >= BATCH || self.config.linger.is_zero() || !has_chunk(batch) {
                return;
            }
            let linger = if in_line(batch) {
                self.config.line_linger.max(self.config.linger)
            } else {
                self.config.linger
            };
            match tokio::time::timeout_at(start + linger, rx.recv()).await {
                Ok(Some(msg)) => batch.push(msg),
                // Closed, or the linger is over.
                Ok(None) | Err(_) => return,
            }
        }
    }

    /// Appends `kind` to `out`, merging it into the last chunk when both are of one stream.
    fn coalesce(&self, out: &mut Vec<EventKind>, kind: EventKind) {
        let max = self.config.max_chunk_bytes;
        let Some(last) = out.pop() else {
            return out.push(kind);
        };
        let whole = |e: Result<(OutputStream, Vec<u8>), EventKind>| match e {
            Ok((stream, bytes)) => stream.event(bytes),
            Err(other) => other,
        };
        match (last.into_output(), kind.into_output()) {
            (Ok((s, mut a)), Ok((t, b))) if s == t && a.len() + b.len() <= max => {
                a.extend_from_slice(&b);
                out.push(s.event(a));
            }
            (last, kind) => out.extend([whole(last), whole(kind)]),
        }
    }

    /// Publishes a chunk with its stream's held-back bytes in front and its own incomplete
    /// tail held back; other events pass through.
    async fn publish_chunk(&mut self, kind: EventKind) {
        let (stream, bytes) = match kind.into_output() {
            Ok(chunk) => chunk,
            Err(other) => return self.publish(other).await,
        };
        let mut chunk = std::mem::take(&mut self.carry[stream.index()]);
        chunk.extend_from_slice(&bytes);
        let keep = complete_prefix_len(&chunk);
        self.carry[stream.index()] = chunk.split_off(keep);
        if !chunk.is_empty() {
            self.publish(stream.event(chunk)).await;
        }
    }

    fn event(&mut self, kind: EventKind) -> Event {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.stats.last_seq = seq;
        Event {
            execution_id: self.execution_id,
            seq,
            kind,
        }
    }

    async fn publish(&mut self, kind: EventKind) {
        let event = self.event(kind);
        if self.down_until.is_some_and(|t| Instant::now() < t) {
            self.stats.dropped += 1;
            return;
        }
        match self.bus.publish(event).await {
            Ok(()) => {
                self.stats.published += 1;
                self.down_until = None;
            }
            Err(e) => {
                self.stats.dropped += 1;
                self.down_until = Some(Instant::now() + self.config.backoff);
                tracing::warn!(execution_id = %self.execution_id, error = %e,
                    "publishing a live event failed; dropping live events for a while");
            }
        }
    }

    /// `Finished` is tried three times regardless of the back-off: subscribers wait for it.
    async fn publish_finished(&mut self, status: Status) {
        let event = self.event(EventKind::Finished(status));
        for attempt in 1..=3 {
            match self.bus.publish(event.clone()).await {
                Ok(()) => {
                    self.stats.published += 1;
                    return;
                }
                Err(e) => {
                    tracing::warn!(execution_id = %self.execution_id, error = %e, attempt,
                        "publishing Finished failed");
                    if attempt < 3 {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        }
        self.stats.dropped += 1;
    }
}
