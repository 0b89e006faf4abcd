//! [`RedisBus`]: the scaled [`EventBus`], one Redis Stream per execution.
//!
//! Key `<prefix>:ev:<execution_id>`; the entry id is `<seq>-0`, so Redis itself keeps the
//! entries ordered and unique. Publishing is one Lua script (atomic, one round trip): it drops
//! an event whose seq is not above the last entry's or that follows `Finished`, appends with
//! `MAXLEN ~`, records the previous entry's seq in field `p`, and sets the key's TTL (short
//! after `Finished`, long before it so a dead worker's stream still goes away).
//!
//! A subscription reads on its own connection (a blocking `XREAD` would stall every other
//! command of a shared multiplexed connection): `XREAD BLOCK ≤ 1 s COUNT n STREAMS key <last>`
//! in a loop. `XREAD` after an explicit id returns the backlog at once and then blocks for new
//! entries, so backlog and live part are one code path with no gap and no duplicate. Every call
//! is bounded in time; a Redis that is down gives a [`PortError`] quickly, never a hang.

use crate::redis_codec::{decode, encode};
use crate::{EventsError, TimedOut};
use async_trait::async_trait;
use futures::StreamExt;
use livexec_core::ports::BoxError;
use livexec_core::{BoxStream, Event, EventBus, EventKind, ExecutionId, PortError};
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::streams::{StreamRangeReply, StreamReadOptions, StreamReadReply};
use redis::{AsyncCommands, AsyncConnectionConfig, RedisResult};
use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

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
    /// Entries fetched per `XREAD`.
    pub read_batch: usize,
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
    /// A dedicated connection for one subscriber's blocking reads.
    async fn reader(&self) -> Result<MultiplexedConnection, PortError> {
        let op = self.config.op_timeout;
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(op)
            .set_response_timeout(self.config.block + op);
        bounded(
            "connect reader",
            op * 2,
            self.client
                .get_multiplexed_async_connection_with_config(&config),
        )
        .await
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
        let mut conn = self.shared.reader().await?;
        let key = self.key(execution_id);
        // A stream that already ended at or before `after` has nothing more to give.
        let op = self.shared.config.op_timeout;
        let tail: StreamRangeReply = bounded(
            "subscribe (XREVRANGE)",
            op,
            conn.xrevrange_count(&key, "+", "-", 1),
        )
        .await?;
        let ended = tail.ids.first().is_some_and(|entry| {
            decode(execution_id, entry).is_ok_and(|d| {
                matches!(d.event.kind, EventKind::Finished(_)) && d.event.seq <= after
            })
        });
        if ended {
            return Ok(futures::stream::empty().boxed());
        }
        let reader = Reader {
            shared: Arc::clone(&self.shared),
            conn,
            key,
            execution_id,
            cursor: format!("{after}-0"),
            last: after,
            pending: VecDeque::new(),
            ended: false,
            failures: 0,
        };
        Ok(futures::stream::unfold(reader, Reader::next).boxed())
    }
}

/// Failed reads in a row after which a subscription is interrupted.
const MAX_READ_FAILURES: u32 = 3;

struct Reader {
    shared: Arc<Shared>,
    conn: MultiplexedConnection,
    key: String,
    execution_id: ExecutionId,
    /// Entry id to read after.
    cursor: String,
    /// Seq of the last event yielded or skipped.
    last: u64,
    pending: VecDeque<Event>,
    /// No more reads: `Finished` seen, entries trimmed, or Redis unreachable.
    ended: bool,
    failures: u32,
}

impl Reader {
    async fn next(mut self) -> Option<(Event, Reader)> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some((event, self));
            }
            if self.ended {
                return None;
            }
            match self.read().await {
                Ok(reply) => {
                    self.failures = 0;
                    self.absorb(reply);
                }
                Err(e) => {
                    self.failures += 1;
                    tracing::warn!(execution_id = %self.execution_id, error = %e,
                        failures = self.failures, "reading execution events from Redis failed");
                    if self.failures >= MAX_READ_FAILURES {
                        return None;
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    if let Ok(conn) = self.shared.reader().await {
                        self.conn = conn;
                    }
                }
            }
        }
    }

    async fn read(&mut self) -> Result<Option<StreamReadReply>, PortError> {
        let cfg = &self.shared.config;
        let block_ms = usize::try_from(cfg.block.as_millis())
            .unwrap_or(1000)
            .max(1);
        let options = StreamReadOptions::default()
            .block(block_ms)
            .count(cfg.read_batch.max(1));
        let keys = [&self.key];
        let ids = [&self.cursor];
        let call = self.conn.xread_options(&keys, &ids, &options);
        bounded("subscribe (XREAD)", cfg.block + cfg.op_timeout, call).await
    }

    /// Queues the events of one `XREAD` reply, stopping at `Finished` or at a trimmed gap.
    fn absorb(&mut self, reply: Option<StreamReadReply>) {
        let entries = reply.into_iter().flat_map(|r| r.keys).flat_map(|k| k.ids);
        for entry in entries {
            self.cursor.clone_from(&entry.id);
            let decoded = match decode(self.execution_id, &entry) {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(error = %e, "skipping a malformed event entry");
                    continue;
                }
            };
            if decoded.prev > self.last {
                tracing::warn!(execution_id = %self.execution_id, last_seq = self.last,
                    next_prev = decoded.prev,
                    "events were trimmed from the Redis stream; interrupting the subscriber");
                self.ended = true;
                return;
            }
            self.last = decoded.event.seq;
            let finished = matches!(decoded.event.kind, EventKind::Finished(_));
            self.pending.push_back(decoded.event);
            if finished {
                self.ended = true;
                return;
            }
        }
    }
}
