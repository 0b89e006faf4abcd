//! [`RedisBus`]: the scaled [`EventBus`], one Redis Stream per execution.
//!
//! Key `<prefix>:ev:<execution_id>`; the entry id is `<seq>-0`, so Redis itself keeps the
//! entries ordered and unique. Publishing is one Lua script (atomic, one round trip): it drops
//! an event whose seq is not above the last entry's or that follows `Finished`, appends with
//! `MAXLEN ~`, records the previous entry's seq in field `p`, and sets the key's TTL (short
//! after `Finished`, long before it so a dead worker's stream still goes away).
//!
//! # Subscriptions: one shared reader per execution
//!
//! The subscriptions of one process to one execution share one *reader*: the first
//! subscription of an execution on a bus (clones share them) spawns a task with a dedicated
//! connection (a blocking `XREAD` would stall every other command of the shared multiplexed
//! connection), named `livexec-ev-reader:<prefix>` in `CLIENT LIST`, which loops on
//! `XREAD BLOCK ≤ 1 s COUNT n STREAMS key <last>` from the stream's last entry at its start and
//! fans the events out through a bounded `tokio::sync::broadcast` channel. Later subscriptions
//! attach to it. It stops after `Finished`, at a trimmed gap, after three failed reads in a
//! row, or as soon as its last subscription is dropped; [`RedisBus::readers`] counts them.
//!
//! A subscription takes its broadcast receiver first, then reads the backlog (`seq > after`)
//! with `XRANGE` on the shared connection, then listens to the reader, dropping every event
//! whose seq it already yielded: everything published after it attached is broadcast, and
//! everything before is in the backlog, so nothing is missed or repeated. One that lags (its
//! client reads slower than the program writes) is not waited for: the broadcast overwrites,
//! and the subscription re-reads what it missed with `XRANGE`; only when Redis no longer has
//! it (the `p` field shows the gap) does its stream end without `Finished`. A finished
//! execution needs no reader: its subscriptions read the backlog alone.
//!
//! Every call is bounded in time; a Redis that is down gives a [`PortError`] quickly, and
//! ends live subscriptions (their reader gives up), never a hang.

use crate::memory::lock;
use crate::redis_codec::{decode, encode, entry_seq, Decoded};
use crate::{EventsError, TimedOut};
use async_trait::async_trait;
use futures::StreamExt;
use livexec_core::ports::BoxError;
use livexec_core::{BoxStream, Event, EventBus, EventKind, ExecutionId, PortError};
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::streams::{StreamId, StreamRangeReply, StreamReadOptions, StreamReadReply};
use redis::{AsyncCommands, AsyncConnectionConfig, RedisResult};
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::broadcast;
use tokio::task::AbortHandle;

const PUBLISH_LUA: &str = r#"
local key = KEYS[1]
local seq = tonumber(ARGV[1])
local prev = '0'
local last = redis.call('XREVRANGE', key, '+', '-', 'COUNT', 1)
if #last > 0 then
  prev = string.match(last[1][1], '^(%d+)')
  if seq <= tonumber(prev) then return 0 end
  local fields = last[1][2]
  for i = 1, #fields, 2 do
    if fields[i] == 'k' and fields[i + 1] == 'f' then return 0 end
  end
end
redis.call('XADD', key, 'MAXLEN', '~', ARGV[4], ARGV[1] .. '-0', 'p', prev, 'k', ARGV[2], 'd', ARGV[3])
redis.call('EXPIRE', key, ARGV[5])
return 1
"#;

/// Tuning of a [`RedisBus`].
#[derive(Debug, Clone)]
pub struct RedisBusConfig {
    /// Approximate cap on entries per execution stream (`XADD MAXLEN ~`). The publisher
    /// coalesces chunks, so real programs stay far below; a subscriber that needs trimmed
    /// entries is interrupted rather than shown a gap.
    pub max_entries: usize,
    /// TTL of a stream after its `Finished` event.
    pub finished_ttl: Duration,
    /// TTL of a stream refreshed on every event before `Finished` (a dead worker's stream
    /// disappears after this).
    pub unfinished_ttl: Duration,
    /// Bound on every call and on connecting.
    pub op_timeout: Duration,
    /// How long one `XREAD` blocks waiting for new entries.
    pub block: Duration,
    /// Entries fetched per `XREAD` or `XRANGE`.
    pub read_batch: usize,
    /// Live events buffered per subscription of a shared reader before it counts as lagging
    /// (it then re-reads what it missed from Redis).
    pub broadcast_capacity: usize,
}

impl Default for RedisBusConfig {
    fn default() -> Self {
        RedisBusConfig {
            max_entries: 100_000,
            finished_ttl: Duration::from_secs(3600),
            unfinished_ttl: Duration::from_secs(24 * 3600),
            op_timeout: Duration::from_secs(2),
            block: Duration::from_secs(1),
            read_batch: 512,
            broadcast_capacity: 1024,
        }
    }
}

/// The Redis Streams event bus of the scaled mode. Cheap to clone.
#[derive(Clone)]
pub struct RedisBus {
    shared: Arc<Shared>,
}

struct Shared {
    client: redis::Client,
    conn: ConnectionManager,
    prefix: String,
    config: RedisBusConfig,
    script: redis::Script,
    readers: Mutex<Readers>,
}

fn port_error(op: &'static str, source: impl Into<BoxError>) -> PortError {
    PortError {
        backend: "redis",
        op,
        source: source.into(),
    }
}

/// Runs a Redis call bounded by `after`.
async fn bounded<T>(
    op: &'static str,
    after: Duration,
    call: impl Future<Output = RedisResult<T>>,
) -> Result<T, PortError> {
    match tokio::time::timeout(after, call).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(port_error(op, e)),
        Err(_) => Err(port_error(op, TimedOut { op, after })),
    }
}

impl RedisBus {
    /// Connects with the default tuning; keys start with `<prefix>:ev:`.
    pub async fn connect(url: &str, prefix: &str) -> Result<RedisBus, EventsError> {
        RedisBus::connect_with(url, prefix, RedisBusConfig::default()).await
    }

    /// Connects with this tuning and checks Redis answers (`PING`), all within
    /// `2 × op_timeout`.
    pub async fn connect_with(
        url: &str,
        prefix: &str,
        config: RedisBusConfig,
    ) -> Result<RedisBus, EventsError> {
        let client = redis::Client::open(url).map_err(|source| EventsError::RedisUrl { source })?;
        let addr = client.get_connection_info().addr.to_string();
        let op = config.op_timeout;
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(op)
            .set_response_timeout(op)
            .set_number_of_retries(2)
            .set_max_delay(200);
        let connect = async {
            let mut conn =
                ConnectionManager::new_with_config(client.clone(), manager_config).await?;
            redis::cmd("PING").query_async::<()>(&mut conn).await?;
            Ok::<_, redis::RedisError>(conn)
        };
        let conn = match tokio::time::timeout(op * 2, connect).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => {
                return Err(EventsError::RedisConnect {
                    addr,
                    source: Box::new(e),
                })
            }
            Err(_) => {
                let source = TimedOut {
                    op: "connect",
                    after: op * 2,
                };
                return Err(EventsError::RedisConnect {
                    addr,
                    source: Box::new(source),
                });
            }
        };
        Ok(RedisBus {
            shared: Arc::new(Shared {
                client,
                conn,
                prefix: prefix.to_owned(),
                config,
                script: redis::Script::new(PUBLISH_LUA),
                readers: Mutex::new(Readers::default()),
            }),
        })
    }

    /// The stream key of an execution: `<prefix>:ev:<execution_id>`.
    pub fn key(&self, execution_id: ExecutionId) -> String {
        format!("{}:ev:{}", self.shared.prefix, execution_id)
    }

    /// A round trip to Redis (for health checks).
    pub async fn ping(&self) -> Result<(), PortError> {
        let mut conn = self.shared.conn.clone();
        let op = self.shared.config.op_timeout;
        bounded("PING", op, redis::cmd("PING").query_async::<()>(&mut conn)).await
    }

    /// Deletes an execution's stream (tests and administrative clean-up).
    pub async fn purge(&self, execution_id: ExecutionId) -> Result<(), PortError> {
        let mut conn = self.shared.conn.clone();
        let op = self.shared.config.op_timeout;
        bounded("DEL", op, conn.del::<_, ()>(self.key(execution_id))).await
    }
}

impl Shared {
    /// A dedicated connection for one execution's blocking reads, named
    /// [`RedisBus::reader_client_name`].
    async fn reader_connection(&self) -> Result<MultiplexedConnection, PortError> {
        let op = self.config.op_timeout;
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(op)
            .set_response_timeout(self.config.block + op);
        let mut conn = bounded(
            "connect reader",
            op * 2,
            self.client
                .get_multiplexed_async_connection_with_config(&config),
        )
        .await?;
        let name = reader_client_name(&self.prefix);
        let mut setname = redis::cmd("CLIENT");
        setname.arg("SETNAME").arg(name);
        bounded("CLIENT SETNAME", op, setname.query_async::<()>(&mut conn)).await?;
        Ok(conn)
    }

    /// Attaches to the reader of `execution_id`, starting one (reading after entry `cursor`,
    /// whose seq is `last`) when there is none. Also answers whether this call started it.
    fn attach(
        self: &Arc<Shared>,
        execution_id: ExecutionId,
        key: &str,
        cursor: String,
        last: u64,
    ) -> (Lease, bool) {
        let mut readers = lock(&self.readers);
        if let Some(slot) = readers.slots.get(&execution_id) {
            // A reader that already ended cannot be upgraded: it is replaced below.
            if let Some(tx) = slot.tx.upgrade() {
                let lease = Lease {
                    shared: Arc::clone(self),
                    execution_id,
                    generation: slot.generation,
                    rx: Some(tx.subscribe()),
                };
                return (lease, false);
            }
        }
        readers.generations += 1;
        let generation = readers.generations;
        let (tx, rx) = broadcast::channel(self.config.broadcast_capacity.max(1));
        let slot = ReaderSlot {
            generation,
            tx: tx.downgrade(),
            task: tokio::spawn(
                LiveReader {
                    shared: Arc::clone(self),
                    execution_id,
                    generation,
                    key: key.to_owned(),
                    cursor,
                    last,
                    tx,
                }
                .run(),
            )
            .abort_handle(),
        };
        readers.slots.insert(execution_id, slot);
        let lease = Lease {
            shared: Arc::clone(self),
            execution_id,
            generation,
            rx: Some(rx),
        };
        (lease, true)
    }
}

/// The client name of reader connections of a bus whose keys start with `prefix`
/// (bytes Redis refuses in a name become `_`).
fn reader_client_name(prefix: &str) -> String {
    let prefix: String = prefix
        .chars()
        .map(|c| if ('!'..='~').contains(&c) { c } else { '_' })
        .collect();
    format!("livexec-ev-reader:{prefix}")
}

impl RedisBus {
    /// Executions this bus (and its clones) reads live right now: each holds one dedicated
    /// Redis connection, however many subscriptions it serves.
    pub fn readers(&self) -> usize {
        lock(&self.shared.readers).slots.len()
    }

    /// The `CLIENT SETNAME` of this bus's reader connections, to find them in `CLIENT LIST`:
    /// `livexec-ev-reader:<prefix>`.
    pub fn reader_client_name(&self) -> String {
        reader_client_name(&self.shared.prefix)
    }
}

#[async_trait]
impl EventBus for RedisBus {
    async fn publish(&self, event: Event) -> Result<(), PortError> {
        let cfg = &self.shared.config;
        let (kind, data) = encode(&event.kind);
        let ttl = match event.kind {
            EventKind::Finished(_) => cfg.finished_ttl,
            _ => cfg.unfinished_ttl,
        };
        let mut conn = self.shared.conn.clone();
        let mut invocation = self.shared.script.key(self.key(event.execution_id));
        invocation
            .arg(event.seq)
            .arg(kind)
            .arg(data)
            .arg(cfg.max_entries)
            .arg(ttl.as_secs().max(1));
        bounded(
            "publish (XADD)",
            cfg.op_timeout,
            invocation.invoke_async::<i64>(&mut conn),
        )
        .await
        .map(|_| ())
    }

    async fn subscribe(
        &self,
        execution_id: ExecutionId,
        after: u64,
    ) -> Result<BoxStream<Event>, PortError> {
        let key = self.key(execution_id);
        let mut conn = self.shared.conn.clone();
        let op = self.shared.config.op_timeout;
        let tail: StreamRangeReply = bounded(
            "subscribe (XREVRANGE)",
            op,
            conn.xrevrange_count(&key, "+", "-", 1),
        )
        .await?;
        let (cursor, tail_seq, finished) = match tail.ids.first() {
            None => ("0-0".to_owned(), 0, false),
            Some(entry) => {
                let finished = decode(execution_id, entry)
                    .is_ok_and(|d| matches!(d.event.kind, EventKind::Finished(_)));
                (
                    entry.id.clone(),
                    entry_seq(&entry.id).unwrap_or(0),
                    finished,
                )
            }
        };
        // A stream that already ended at or before `after` has nothing more to give.
        if finished && tail_seq <= after {
            return Ok(futures::stream::empty().boxed());
        }
        // A finished stream is all backlog: no live reader needed.
        let (lease, started) = if finished {
            (None, false)
        } else {
            let (lease, started) = self.shared.attach(execution_id, &key, cursor, tail_seq);
            (Some(lease), started)
        };
        let subscription = Subscription {
            shared: Arc::clone(&self.shared),
            key,
            execution_id,
            last: after,
            range_from: format!("{after}-0"),
            pending: VecDeque::new(),
            // The reader this call started broadcasts everything after the tail it saw.
            catch_up: !(started && tail_seq <= after),
            lease,
            done: false,
            failures: 0,
        };
        Ok(futures::stream::unfold(subscription, Subscription::next).boxed())
    }
}

/// Failed reads in a row after which a reader or a catching-up subscription gives up.
const MAX_READ_FAILURES: u32 = 3;

/// Pause after a failed read before the next attempt.
const RETRY_PAUSE: Duration = Duration::from_millis(250);

/// Live readers of one bus (shared by its clones), by execution.
#[derive(Default)]
struct Readers {
    slots: HashMap<ExecutionId, ReaderSlot>,
    /// Last generation handed out: tells a reader started later for the same execution
    /// apart from an ended one.
    generations: u64,
}

struct ReaderSlot {
    generation: u64,
    /// Weak, so the channel closes when the reader task ends (it owns the only `Sender`).
    tx: broadcast::WeakSender<Event>,
    task: AbortHandle,
}

/// A subscription's hold on its execution's reader: the last one dropped stops the reader.
struct Lease {
    shared: Arc<Shared>,
    execution_id: ExecutionId,
    generation: u64,
    /// `None` only while dropping.
    rx: Option<broadcast::Receiver<Event>>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        // Receivers are counted under the map's lock, where every attach happens too.
        drop(self.rx.take());
        let mut readers = lock(&self.shared.readers);
        let Some(slot) = readers.slots.get(&self.execution_id) else {
            return;
        };
        if slot.generation != self.generation {
            return;
        }
        let watched = slot.tx.upgrade().is_some_and(|tx| tx.receiver_count() > 0);
        if !watched {
            slot.task.abort();
            readers.slots.remove(&self.execution_id);
        }
    }
}

/// The task that reads one execution's stream live and broadcasts it to the subscriptions of
/// this process.
struct LiveReader {
    shared: Arc<Shared>,
    execution_id: ExecutionId,
    generation: u64,
    key: String,
    /// Entry id to read after.
    cursor: String,
    /// Seq of the last entry broadcast or skipped (or of `cursor`).
    last: u64,
    tx: broadcast::Sender<Event>,
}

impl LiveReader {
    /// Reads until `Finished`, a trimmed gap, or Redis failing `MAX_READ_FAILURES` times in a
    /// row; then leaves the map, and dropping `tx` ends the subscriptions' live part.
    async fn run(mut self) {
        let mut conn = None;
        let mut failures = 0;
        loop {
            let read = match conn.as_mut() {
                Some(conn) => self.read(conn).await,
                None => match self.shared.reader_connection().await {
                    Ok(fresh) => {
                        conn = Some(fresh);
                        continue;
                    }
                    Err(e) => Err(e),
                },
            };
            match read {
                Ok(reply) => {
                    failures = 0;
                    if !self.forward(reply) {
                        break;
                    }
                }
                Err(e) => {
                    failures += 1;
                    tracing::warn!(execution_id = %self.execution_id, error = %e, failures,
                        "reading execution events from Redis failed");
                    if failures >= MAX_READ_FAILURES {
                        break;
                    }
                    conn = None;
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
            }
        }
        let mut readers = lock(&self.shared.readers);
        if readers
            .slots
            .get(&self.execution_id)
            .is_some_and(|slot| slot.generation == self.generation)
        {
            readers.slots.remove(&self.execution_id);
        }
    }

    async fn read(
        &self,
        conn: &mut MultiplexedConnection,
    ) -> Result<Option<StreamReadReply>, PortError> {
        let cfg = &self.shared.config;
        let block_ms = usize::try_from(cfg.block.as_millis())
            .unwrap_or(1000)
            .max(1);
        let options = StreamReadOptions::default()
            .block(block_ms)
            .count(cfg.read_batch.max(1));
        let keys = [&self.key];
        let ids = [&self.cursor];
        let call = conn.xread_options(&keys, &ids, &options);
        bounded("subscribe (XREAD)", cfg.block + cfg.op_timeout, call).await
    }

    /// Broadcasts the events of one `XREAD` reply; `false` once there is nothing more to read
    /// (`Finished`, or a trimmed gap: subscriptions then end, interrupted).
    fn forward(&mut self, reply: Option<StreamReadReply>) -> bool {
        let entries = reply.into_iter().flat_map(|r| r.keys).flat_map(|k| k.ids);
        for entry in entries {
            self.cursor.clone_from(&entry.id);
            let Some(decoded) = decode_or_skip(self.execution_id, &entry) else {
                continue;
            };
            if decoded.prev > self.last {
                warn_trimmed(self.execution_id, self.last, decoded.prev);
                return false;
            }
            self.last = decoded.event.seq;
            let finished = matches!(decoded.event.kind, EventKind::Finished(_));
            // No receiver is not an error: the last subscription is being dropped.
            let _ = self.tx.send(decoded.event);
            if finished {
                return false;
            }
        }
        true
    }
}

fn decode_or_skip(execution_id: ExecutionId, entry: &StreamId) -> Option<Decoded> {
    decode(execution_id, entry)
        .map_err(|e| tracing::warn!(error = %e, "skipping a malformed event entry"))
        .ok()
}

fn warn_trimmed(execution_id: ExecutionId, last_seq: u64, next_prev: u64) {
    tracing::warn!(%execution_id, last_seq, next_prev,
        "events were trimmed from the Redis stream; interrupting the subscriber");
}

/// One subscriber's stream: the backlog from Redis, then the live part from its reader.
struct Subscription {
    shared: Arc<Shared>,
    key: String,
    execution_id: ExecutionId,
    /// Seq of the last event yielded.
    last: u64,
    /// Entry id the next `XRANGE` reads after.
    range_from: String,
    pending: VecDeque<Event>,
    /// Read from Redis (`XRANGE`) before listening to the reader again.
    catch_up: bool,
    /// `None` for a finished stream (all backlog), and once done.
    lease: Option<Lease>,
    /// `Finished` yielded, or the rest is gone (trimmed, or Redis failing).
    done: bool,
    failures: u32,
}

impl Subscription {
    async fn next(mut self) -> Option<(Event, Subscription)> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                // The live part repeats what the backlog already gave.
                if event.seq <= self.last {
                    continue;
                }
                self.last = event.seq;
                if matches!(event.kind, EventKind::Finished(_)) {
                    self.done = true;
                    self.lease = None;
                }
                return Some((event, self));
            }
            if self.done {
                return None;
            }
            if self.catch_up {
                match self.read_range().await {
                    Ok(()) => self.failures = 0,
                    Err(e) => {
                        self.failures += 1;
                        tracing::warn!(execution_id = %self.execution_id, error = %e,
                            failures = self.failures, "reading execution events from Redis failed");
                        if self.failures >= MAX_READ_FAILURES {
                            return None;
                        }
                        tokio::time::sleep(RETRY_PAUSE).await;
                    }
                }
                continue;
            }
            let rx = self.lease.as_mut()?.rx.as_mut()?;
            match rx.recv().await {
                Ok(event) => self.pending.push_back(event),
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::debug!(execution_id = %self.execution_id, missed,
                        "subscriber lagged behind its reader; re-reading from Redis");
                    self.range_from = format!("{}-0", self.last);
                    self.catch_up = true;
                }
                // The reader ended without `Finished` for us: trimmed, or Redis failing.
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    /// Queues one `XRANGE` batch after `range_from`, stopping at `Finished` or at a trimmed
    /// gap; a short batch ends the catch-up.
    async fn read_range(&mut self) -> Result<(), PortError> {
        let cfg = &self.shared.config;
        let batch = cfg.read_batch.max(1);
        let mut conn = self.shared.conn.clone();
        let start = format!("({}", self.range_from);
        let reply: StreamRangeReply = bounded(
            "subscribe (XRANGE)",
            cfg.op_timeout,
            conn.xrange_count(&self.key, start, "+", batch),
        )
        .await?;
        self.catch_up = reply.ids.len() >= batch;
        let mut last = self.last;
        for entry in &reply.ids {
            self.range_from.clone_from(&entry.id);
            let Some(decoded) = decode_or_skip(self.execution_id, entry) else {
                continue;
            };
            if decoded.prev > last {
                warn_trimmed(self.execution_id, last, decoded.prev);
                self.done = true;
                return Ok(());
            }
            last = decoded.event.seq;
            let finished = matches!(decoded.event.kind, EventKind::Finished(_));
            self.pending.push_back(decoded.event);
            if finished {
                self.catch_up = false;
                return Ok(());
            }
        }
        Ok(())
    }
}
