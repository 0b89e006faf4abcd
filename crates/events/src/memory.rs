//! [`MemoryBus`]: the embedded, in-process [`EventBus`].
//!
//! Per execution: a replay log capped in bytes and a `tokio::sync::broadcast` channel for live
//! events. A subscription takes its replay snapshot and its broadcast receiver under the log's
//! lock, then drops every event whose seq it already yielded, so an event published while a
//! client subscribes is seen exactly once. A receiver that lags (its client reads slower than
//! the program writes) is not waited for: the broadcast overwrites, and the subscription
//! re-reads what it missed from the log; only if the log no longer holds it does the stream
//! end without `Finished` (interrupted).
//!
//! A finished execution's log is kept for [`MemoryBusConfig::finished_grace`], then replaced by
//! a tombstone (subscribing to it yields an empty stream at once, so the caller answers from the
//! store) kept for [`MemoryBusConfig::tombstone_ttl`]. Sweeps run lazily on publish/subscribe
//! (at most once a second) or when [`MemoryBus::sweep`] is called.

use async_trait::async_trait;
use futures::StreamExt;
use livexec_core::{BoxStream, Event, EventBus, EventKind, ExecutionId, PortError};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::broadcast;

/// Bookkeeping bytes charged per event on top of its payload.
const EVENT_OVERHEAD: usize = 64;

/// Tuning of a [`MemoryBus`].
#[derive(Debug, Clone)]
pub struct MemoryBusConfig {
    /// Cap on one execution's replay log (payload + 64 bytes per event). Output is capped
    /// upstream (1 MiB per stream by default), so the default 8 MiB is never reached in
    /// practice; past it the oldest events are dropped and a subscriber that needs them is
    /// interrupted.
    pub max_log_bytes: usize,
    /// Live events buffered per receiver before it counts as lagging.
    pub broadcast_capacity: usize,
    /// How long a finished execution's log stays for late subscribers.
    pub finished_grace: Duration,
    /// How long a dropped log leaves a tombstone.
    pub tombstone_ttl: Duration,
    /// An unfinished log with no subscriber and no event for this long is dropped (its worker
    /// died with the process it shared with the bus).
    pub idle_ttl: Duration,
}

impl Default for MemoryBusConfig {
    fn default() -> Self {
        MemoryBusConfig {
            max_log_bytes: 8 << 20,
            broadcast_capacity: 1024,
            finished_grace: Duration::from_secs(60),
            tombstone_ttl: Duration::from_secs(600),
            idle_ttl: Duration::from_secs(3600),
        }
    }
}

/// Counts of what a [`MemoryBus`] holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryBusStats {
    /// Executions with a replay log.
    pub logs: usize,
    /// Executions dropped recently (tombstones).
    pub tombstones: usize,
    /// Bytes charged to all logs.
    pub bytes: usize,
}

/// The in-process event bus of the embedded mode. Cheap to clone (shared state).
#[derive(Clone)]
pub struct MemoryBus {
    inner: Arc<Inner>,
}

struct Inner {
    config: MemoryBusConfig,
    slots: Mutex<HashMap<ExecutionId, Slot>>,
    last_sweep: Mutex<Instant>,
}

enum Slot {
    Live(Arc<Mutex<Log>>),
    Gone { since: Instant },
}

struct Log {
    events: VecDeque<Event>,
    bytes: usize,
    last_seq: u64,
    /// Highest seq dropped from the front of `events` (0 = nothing dropped).
    trimmed_upto: u64,
    finished_at: Option<Instant>,
    touched: Instant,
    tx: broadcast::Sender<Event>,
}

/// Locks a mutex, ignoring poisoning: every critical section (here and in the Redis bus's
/// reader map) leaves the data consistent.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn cost(event: &Event) -> usize {
    EVENT_OVERHEAD + event.kind.output().map_or(0, |(_, b)| b.len())
}

impl Default for MemoryBus {
    fn default() -> Self {
        MemoryBus::new(MemoryBusConfig::default())
    }
}

impl MemoryBus {
    /// A bus with this tuning.
    pub fn new(config: MemoryBusConfig) -> Self {
        MemoryBus {
            inner: Arc::new(Inner {
                config,
                slots: Mutex::new(HashMap::new()),
                last_sweep: Mutex::new(Instant::now()),
            }),
        }
    }

    /// Drops finished logs past their grace, old tombstones and idle orphan logs.
    pub fn sweep(&self) {
        let cfg = &self.inner.config;
        let now = Instant::now();
        let mut slots = lock(&self.inner.slots);
        slots.retain(|_, slot| match slot {
            Slot::Gone { since } => now.duration_since(*since) < cfg.tombstone_ttl,
            Slot::Live(log) => {
                let log = lock(log);
                match log.finished_at {
                    Some(at) if now.duration_since(at) >= cfg.finished_grace => {
                        drop(log);
                        *slot = Slot::Gone { since: now };
                        true
                    }
                    Some(_) => true,
                    None => {
                        now.duration_since(log.touched) < cfg.idle_ttl
                            || log.tx.receiver_count() > 0
                    }
                }
            }
        });
        *lock(&self.inner.last_sweep) = now;
    }

    /// What the bus holds now.
    pub fn stats(&self) -> MemoryBusStats {
        let slots = lock(&self.inner.slots);
        let mut stats = MemoryBusStats {
            logs: 0,
            tombstones: 0,
            bytes: 0,
        };
        for slot in slots.values() {
            match slot {
                Slot::Live(log) => {
                    stats.logs += 1;
                    stats.bytes += lock(log).bytes;
                }
                Slot::Gone { .. } => stats.tombstones += 1,
            }
        }
        stats
    }

    fn maybe_sweep(&self) {
        let due = lock(&self.inner.last_sweep).elapsed() >= Duration::from_secs(1);
        if due {
            self.sweep();
        }
    }

    /// The live log of `id`, created when absent; `None` when the execution is a tombstone.
    fn log(&self, id: ExecutionId) -> Option<Arc<Mutex<Log>>> {
        let mut slots = lock(&self.inner.slots);
        let slot = slots.entry(id).or_insert_with(|| {
            let (tx, _) = broadcast::channel(self.inner.config.broadcast_capacity.max(1));
            Slot::Live(Arc::new(Mutex::new(Log {
                events: VecDeque::new(),
                bytes: 0,
                last_seq: 0,
                trimmed_upto: 0,
                finished_at: None,
                touched: Instant::now(),
                tx,
            })))
        });
        match slot {
            Slot::Live(log) => Some(Arc::clone(log)),
            Slot::Gone { .. } => None,
        }
    }
}

#[async_trait]
impl EventBus for MemoryBus {
    async fn publish(&self, event: Event) -> Result<(), PortError> {
        self.maybe_sweep();
        let Some(log) = self.log(event.execution_id) else {
            tracing::debug!(execution_id = %event.execution_id, seq = event.seq,
                "event for an execution whose log is gone; dropped");
            return Ok(());
        };
        let mut log = lock(&log);
        if event.seq <= log.last_seq || log.finished_at.is_some() {
            return Ok(());
        }
        log.last_seq = event.seq;
        log.touched = Instant::now();
        if matches!(event.kind, EventKind::Finished(_)) {
            log.finished_at = Some(log.touched);
        }
        log.bytes += cost(&event);
        log.events.push_back(event.clone());
        while log.bytes > self.inner.config.max_log_bytes && log.events.len() > 1 {
            if let Some(old) = log.events.pop_front() {
                log.bytes -= cost(&old);
                log.trimmed_upto = old.seq;
            }
        }
        // No receiver is not an error: nobody is watching.
        let _ = log.tx.send(event);
        Ok(())
    }

    async fn subscribe(
        &self,
        execution_id: ExecutionId,
        after: u64,
    ) -> Result<BoxStream<Event>, PortError> {
        self.maybe_sweep();
        let Some(log) = self.log(execution_id) else {
            return Ok(futures::stream::empty().boxed());
        };
        let Some((pending, rx, finished)) = snapshot(&log, after) else {
            return Ok(futures::stream::empty().boxed());
        };
        if finished {
            // The log is complete: the snapshot is all there is (possibly nothing).
            return Ok(futures::stream::iter(pending).boxed());
        }
        let state = Subscription {
            log,
            pending,
            rx,
            last: after,
            done: false,
        };
        Ok(futures::stream::unfold(state, Subscription::next).boxed())
    }
}

/// Under the log's lock: the retained events after `after`, a receiver of everything
/// published from now on, and whether the log is complete (`Finished` is in it). `None` when
/// events after `after` were already trimmed.
fn snapshot(
    log: &Mutex<Log>,
    after: u64,
) -> Option<(VecDeque<Event>, broadcast::Receiver<Event>, bool)> {
    let log = lock(log);
    if after < log.trimmed_upto {
        return None;
    }
    let pending = log
        .events
        .iter()
        .filter(|e| e.seq > after)
        .cloned()
        .collect();
    Some((pending, log.tx.subscribe(), log.finished_at.is_some()))
}

struct Subscription {
    log: Arc<Mutex<Log>>,
    pending: VecDeque<Event>,
    rx: broadcast::Receiver<Event>,
    last: u64,
    done: bool,
}

impl Subscription {
    async fn next(mut self) -> Option<(Event, Subscription)> {
        loop {
            if self.done {
                return None;
            }
            if let Some(event) = self.pending.pop_front() {
                if event.seq <= self.last {
                    continue;
                }
                self.last = event.seq;
                self.done = matches!(event.kind, EventKind::Finished(_));
                return Some((event, self));
            }
            match self.rx.recv().await {
                Ok(event) => self.pending.push_back(event),
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    let (pending, rx, _) = snapshot(&self.log, self.last).or_else(|| {
                        tracing::warn!(
                            missed,
                            last_seq = self.last,
                            "subscriber fell behind past the replay log; interrupting it"
                        );
                        None
                    })?;
                    self.pending = pending;
                    self.rx = rx;
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}
