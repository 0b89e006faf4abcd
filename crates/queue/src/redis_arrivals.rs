//! [`RedisQueue::arrivals`](crate::RedisQueue): jobs as they become runnable, from any
//! process, so idle workers in other processes wake at once instead of at their next poll.
//!
//! One task per feed loops on a blocking `XREAD` of the arrivals stream (`P:arrivals`, capped,
//! one entry per `enqueue` and `release`; the reconciler enqueues too) from its last entry. It
//! is a plain read: it claims nothing and changes nothing. (The job stream itself is not
//! watched: every claim adds its job there, which would wake every idle worker.) Retries
//! coming due are found by the workers' polls, as before. It runs on a
//! dedicated connection, because a blocking command would hold up every other command of the
//! shared multiplexed one. A failed read drops the connection and is tried again after a
//! pause; workers poll meanwhile, as they always do, so a feed that is down delays jobs by at
//! most the poll interval, never loses one.

use futures::StreamExt;
use livexec_core::BoxStream;
use redis::aio::MultiplexedConnection;
use redis::streams::{StreamRangeReply, StreamReadOptions, StreamReadReply};
use redis::{AsyncCommands, AsyncConnectionConfig, RedisError};
use std::time::Duration;

/// How long one read blocks before it is issued again.
const BLOCK: Duration = Duration::from_secs(5);
/// Bound on connecting, and on a reply beyond the block time.
const OP_TIMEOUT: Duration = Duration::from_secs(2);
/// Pause after a failed read or connection.
const RETRY_PAUSE: Duration = Duration::from_millis(500);
/// Entries taken per read (they are only counted).
const BATCH: usize = 64;

/// The state of one feed.
struct Feed {
    client: redis::Client,
    stream: String,
    conn: Option<MultiplexedConnection>,
    /// The last entry seen; `None` until the first read, which starts from the stream's end.
    cursor: Option<String>,
    /// Failures in a row (only the first of a streak is logged).
    failures: u32,
}

/// Every item is how many entries were added to `stream` since the previous one (at least 1),
/// counted from its end when this returns (when Redis answers by then; else from its end
/// when it first does).
pub(crate) async fn arrivals(client: redis::Client, stream: String) -> BoxStream<usize> {
    let mut feed = Feed {
        client,
        stream,
        conn: None,
        cursor: None,
        failures: 0,
    };
    match feed.start().await {
        Ok((conn, _)) => feed.conn = Some(conn),
        Err(e) => feed.failed(&e),
    }
    futures::stream::unfold(feed, Feed::next).boxed()
}

impl Feed {
    async fn next(mut self) -> Option<(usize, Feed)> {
        loop {
            match self.read().await {
                Ok(0) => self.failures = 0,
                Ok(added) => {
                    self.failures = 0;
                    return Some((added, self));
                }
                Err(e) => {
                    self.failed(&e);
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
            }
        }
    }

    /// Count a failure (its connection is already dropped); the first of a streak is logged.
    fn failed(&mut self, e: &RedisError) {
        if self.failures == 0 {
            tracing::warn!(stream = %self.stream, error = %e,
                "cannot watch the job stream; idle workers poll until it is back");
        }
        self.failures = self.failures.saturating_add(1);
    }

    /// The feed's connection (a new one after a failure) and its cursor: the stream's last
    /// entry when there is none yet. The connection is put back after a successful read only.
    async fn start(&mut self) -> Result<(MultiplexedConnection, String), RedisError> {
        let mut conn = match self.conn.take() {
            Some(conn) => conn,
            None => {
                let config = AsyncConnectionConfig::new()
                    .set_connection_timeout(OP_TIMEOUT)
                    .set_response_timeout(BLOCK + OP_TIMEOUT);
                self.client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await?
            }
        };
        if self.cursor.is_none() {
            // From the stream's end: entries already there were claimable before.
            let tail: StreamRangeReply = conn.xrevrange_count(&self.stream, "+", "-", 1).await?;
            let end = tail
                .ids
                .first()
                .map_or_else(|| "0-0".to_owned(), |e| e.id.clone());
            self.cursor = Some(end);
        }
        let cursor = self.cursor.clone().unwrap_or_else(|| "0-0".to_owned());
        Ok((conn, cursor))
    }

    /// One blocking read: how many entries were added (0 when the block time passed).
    async fn read(&mut self) -> Result<usize, RedisError> {
        let (mut conn, cursor) = self.start().await?;
        let block_ms = usize::try_from(BLOCK.as_millis()).unwrap_or(5000);
        let options = StreamReadOptions::default().block(block_ms).count(BATCH);
        let reply: Option<StreamReadReply> = conn
            .xread_options(&[&self.stream], &[&cursor], &options)
            .await?;
        self.conn = Some(conn);
        let mut added = 0;
        for entry in reply.into_iter().flat_map(|r| r.keys).flat_map(|k| k.ids) {
            self.cursor = Some(entry.id);
            added += 1;
        }
        Ok(added)
    }
}
