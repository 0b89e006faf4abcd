//! [`RedisQueue`]: the job queue on Redis Streams, for deployments that scale out.
//!
//! Keys, all under a configurable prefix `P` (use a hash tag such as `{livexec}` on a cluster):
//!
//! | key | type | holds |
//! |---|---|---|
//! | `P:pending:<owner>` | list | one owner's runnable job ids, oldest first (`P:pending:` for no owner) |
//! | `P:ring` | sorted set | the owners with runnable jobs, scored by their last service |
//! | `P:served` | hash | owner → the sequence number of its last service |
//! | `P:seq` | counter | the sequence of services (and of first arrivals) |
//! | `P:owners` | hash | execution id → owner, for jobs that have one |
//! | `P:jobs` | stream, group `P:workers` | one entry (`eid` = execution id) per leased job |
//! | `P:delayed` | sorted set | execution ids waiting for a retry, scored by due time (ms) |
//! | `P:attempts` | hash | execution id → claims so far |
//! | `P:queued` | set | every execution id with a job (pending, leased or delayed): O(1) `contains` |
//! | `P:leases` | hash | stream entry id → nonce of its current lease |
//! | `P:arrivals` | stream, capped | one entry per job made runnable, for the arrivals feeds |
//!
//! **Fairness.** A job waits in its owner's (API key's) list, and the ring holds the owners
//! that have some. A claim serves the ring's first owner: the one served longest ago, an owner
//! never served before all others (in the order they came). It pops that owner's oldest job,
//! adds it to the stream and reads it at once for this consumer, so leases, takeovers and
//! retries work on stream entries as they always did; the owner goes to the ring's end. A
//! burst of one key therefore delays another key's job by at most one claim per other owner
//! with work. Retries and releases go back to the end of the job's owner's list (the owner is
//! kept in `P:owners`). Entries that are in the stream but were never delivered (written by an
//! older version, before an upgrade) are served first, as before. Unlike the SQL queues, the
//! ring does not look at how many jobs an owner has running; it is strict round-robin.
//!
//! Every operation is one Lua script (`src/lua/*.lua`), so each is atomic. A lease of `L` ms is
//! recorded as an idle time of `HORIZON - L` on the pending entry, so `XAUTOCLAIM` with a min idle
//! time of `HORIZON` takes over exactly the entries whose lease ran out (on the Redis server's
//! clock), whatever lease each worker asked for. The lease token is `entry id/nonce/consumer`;
//! the nonce changes at each claim, so a worker whose lease was taken over (even by a worker of
//! the same name) can no longer extend, ack, retry or release the job.
//!
//! Every call is bounded in time (connection and response timeouts, and an overall bound), so
//! the service never hangs when Redis is down: calls fail with a [`PortError`] instead.

use crate::{millis, new_token, parse_execution_id, port_err, QueueError};
use async_trait::async_trait;
use livexec_core::{BoxStream, ExecutionId, Job, JobQueue, Lease, Owner, PortError};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{RedisError, Script};
use std::future::Future;
use std::time::Duration;

const BACKEND: &str = "redis queue";

/// The longest lease a claim or extension can ask for; longer ones are cut to it.
const HORIZON: Duration = Duration::from_secs(24 * 60 * 60);

/// Bound on establishing a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(1000);
/// Bound on waiting for one reply.
const RESPONSE_TIMEOUT: Duration = Duration::from_millis(1000);
/// Bound on a whole call, reconnection included.
const CALL_TIMEOUT: Duration = Duration::from_millis(2000);

const PRELUDE: &str = include_str!("lua/common.lua");

/// The scripts, each prefixed with the shared prelude.
struct Scripts {
    enqueue: Script,
    claim: Script,
    extend: Script,
    ack: Script,
    retry: Script,
    release: Script,
}

impl Scripts {
    fn new() -> Self {
        let make = |body: &str| Script::new(&format!("{PRELUDE}\n{body}"));
        Scripts {
            enqueue: make(include_str!("lua/enqueue.lua")),
            claim: make(include_str!("lua/claim.lua")),
            extend: make(include_str!("lua/extend.lua")),
            ack: make(include_str!("lua/ack.lua")),
            retry: make(include_str!("lua/retry.lua")),
            release: make(include_str!("lua/release.lua")),
        }
    }
}

/// A Redis Streams job queue. Cheap to share: wrap it in an `Arc`.
pub struct RedisQueue {
    /// For the dedicated connections of arrivals feeds.
    client: redis::Client,
    conn: ConnectionManager,
    /// `[stream, delayed, attempts, queued, leases, ring, served, owners, seq, arrivals,
    /// pending]`, the `KEYS` of every script (`pending` is the prefix of the per-owner lists).
    keys: [String; 11],
    group: String,
    scripts: Scripts,
}

/// The parts of a lease token.
struct Token<'a> {
    entry: &'a str,
    nonce: &'a str,
    consumer: &'a str,
}

impl<'a> Token<'a> {
    fn parse(token: &'a str) -> Result<Self, QueueError> {
        let mut parts = token.splitn(3, '/');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(entry), Some(nonce), Some(consumer))
                if !entry.is_empty() && !nonce.is_empty() =>
            {
                Ok(Token {
                    entry,
                    nonce,
                    consumer,
                })
            }
            _ => Err(QueueError::BadToken {
                backend: BACKEND,
                token: token.to_owned(),
            }),
        }
    }
}

impl RedisQueue {
    /// Connect to `url` (`redis://host:port/db`) and use keys under `prefix`; creates the
    /// stream and its consumer group when they are missing. Fails within a bounded time when
    /// Redis cannot be reached.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, PortError> {
        let client = redis::Client::open(url).map_err(|e| port_err(BACKEND, "connect", e))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(CONNECT_TIMEOUT)
            .set_response_timeout(RESPONSE_TIMEOUT)
            // One attempt per (re)connection: every later call tries again by itself.
            .set_number_of_retries(0);
        let conn = bounded(
            "connect",
            ConnectionManager::new_with_config(client.clone(), config),
        )
        .await?;
        let queue = RedisQueue {
            client,
            conn,
            keys: [
                "jobs", "delayed", "attempts", "queued", "leases", "ring", "served", "owners",
                "seq", "arrivals", "pending",
            ]
            .map(|name| format!("{prefix}:{name}")),
            group: format!("{prefix}:workers"),
            scripts: Scripts::new(),
        };
        queue.ensure_group("connect").await?;
        Ok(queue)
    }

    /// Create the stream and its consumer group unless the group exists.
    async fn ensure_group(&self, op: &'static str) -> Result<(), PortError> {
        let mut conn = self.conn.clone();
        let created: Result<(), RedisError> = bounded(op, async {
            Ok(redis::cmd("XGROUP")
                .arg("CREATE")
                .arg(&self.keys[0])
                .arg(&self.group)
                .arg("0")
                .arg("MKSTREAM")
                .query_async(&mut conn)
                .await)
        })
        .await?;
        match created {
            Err(e) if e.code() != Some("BUSYGROUP") => Err(port_err(BACKEND, op, e)),
            _ => Ok(()),
        }
    }

    /// Run a script with the queue's keys, the group as `ARGV[1]` and then `args`; recreate
    /// the group and run it once more if Redis lost it (`NOGROUP`).
    async fn run<T: redis::FromRedisValue>(
        &self,
        op: &'static str,
        script: &Script,
        args: &[&str],
    ) -> Result<T, PortError> {
        let mut invocation = script.prepare_invoke();
        for key in &self.keys {
            invocation.key(key);
        }
        invocation.arg(&self.group);
        for arg in args {
            invocation.arg(*arg);
        }
        let mut conn = self.conn.clone();
        let first: Result<T, RedisError> =
            bounded(op, async { Ok(invocation.invoke_async(&mut conn).await) }).await?;
        match first {
            Ok(value) => Ok(value),
            Err(e) if is_nogroup(&e) => {
                tracing::warn!(group = %self.group, "redis consumer group missing; recreating it");
                self.ensure_group(op).await?;
                bounded(op, invocation.invoke_async(&mut conn)).await
            }
            Err(e) => Err(port_err(BACKEND, op, e)),
        }
    }

    /// Run one of the token-guarded scripts; true when the token was still current.
    async fn guarded(
        &self,
        op: &'static str,
        script: &Script,
        lease: &Lease,
        extra: Option<&str>,
    ) -> Result<bool, PortError> {
        let token = Token::parse(&lease.token).map_err(|e| port_err(BACKEND, op, e))?;
        let eid = lease.job.execution_id.to_string();
        let mut args = vec![token.entry, token.nonce, eid.as_str()];
        args.extend(extra);
        let done: i64 = self.run(op, script, &args).await?;
        Ok(done == 1)
    }
}

/// Whether Redis answered that the stream or its group does not exist.
fn is_nogroup(e: &RedisError) -> bool {
    e.code() == Some("NOGROUP") || e.to_string().contains("NOGROUP")
}

/// Run a Redis call under [`CALL_TIMEOUT`], mapping both failures to a [`PortError`].
async fn bounded<T>(
    op: &'static str,
    call: impl Future<Output = Result<T, RedisError>>,
) -> Result<T, PortError> {
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(port_err(BACKEND, op, e)),
        Err(_) => Err(port_err(
            BACKEND,
            op,
            QueueError::Timeout {
                backend: BACKEND,
                after: CALL_TIMEOUT,
            },
        )),
    }
}

/// A lease duration in ms as the scripts take it: at least 1, at most the horizon.
fn lease_ms(d: Duration) -> String {
    millis(d).clamp(1, millis(HORIZON)).to_string()
}

#[async_trait]
impl JobQueue for RedisQueue {
    fn enqueued_by_store(&self) -> bool {
        false
    }

    async fn enqueue(&self, execution_id: ExecutionId, owner: Owner) -> Result<(), PortError> {
        let eid = execution_id.to_string();
        let owner = owner.map(|o| o.to_string()).unwrap_or_default();
        let _added: i64 = self
            .run("enqueue", &self.scripts.enqueue, &[&eid, &owner])
            .await?;
        Ok(())
    }

    async fn claim(&self, worker: &str, lease_for: Duration) -> Result<Option<Lease>, PortError> {
        let nonce = new_token();
        let horizon = millis(HORIZON).to_string();
        let claimed: Option<(String, String, i64)> = self
            .run(
                "claim",
                &self.scripts.claim,
                &[worker, &lease_ms(lease_for), &nonce, &horizon],
            )
            .await?;
        let Some((entry, eid, attempt)) = claimed else {
            return Ok(None);
        };
        let execution_id = parse_execution_id(&eid).map_err(|e| port_err(BACKEND, "claim", e))?;
        let attempt = i32::try_from(attempt).map_err(|_| {
            port_err(
                BACKEND,
                "claim",
                QueueError::BadReply {
                    backend: BACKEND,
                    detail: format!("attempt counter {attempt} out of range"),
                },
            )
        })?;
        Ok(Some(Lease {
            job: Job {
                execution_id,
                attempt,
            },
            token: format!("{entry}/{nonce}/{worker}"),
        }))
    }

    async fn extend(&self, lease: &Lease, lease_for: Duration) -> Result<bool, PortError> {
        let token = Token::parse(&lease.token).map_err(|e| port_err(BACKEND, "extend", e))?;
        let horizon = millis(HORIZON).to_string();
        let args = [
            token.consumer,
            token.entry,
            token.nonce,
            &lease_ms(lease_for),
            &horizon,
        ];
        let extended: i64 = self.run("extend", &self.scripts.extend, &args).await?;
        Ok(extended == 1)
    }

    async fn ack(&self, lease: &Lease) -> Result<(), PortError> {
        self.guarded("ack", &self.scripts.ack, lease, None).await?;
        Ok(())
    }

    async fn retry(&self, lease: &Lease, delay: Duration) -> Result<(), PortError> {
        let delay = millis(delay).to_string();
        self.guarded("retry", &self.scripts.retry, lease, Some(&delay))
            .await?;
        Ok(())
    }

    async fn release(&self, lease: &Lease) -> Result<(), PortError> {
        self.guarded("release", &self.scripts.release, lease, None)
            .await?;
        Ok(())
    }

    async fn contains(&self, execution_id: ExecutionId) -> Result<bool, PortError> {
        let mut conn = self.conn.clone();
        let eid = execution_id.to_string();
        bounded(
            "contains",
            redis::cmd("SISMEMBER")
                .arg(&self.keys[3])
                .arg(eid)
                .query_async(&mut conn),
        )
        .await
    }

    async fn ping(&self) -> Result<(), PortError> {
        let mut conn = self.conn.clone();
        let _pong: String = bounded("ping", redis::cmd("PING").query_async(&mut conn)).await?;
        Ok(())
    }

    /// A blocking `XREAD` of the arrivals stream on a connection of its own
    /// ([`crate::redis_arrivals`]).
    async fn arrivals(&self) -> Option<BoxStream<usize>> {
        Some(crate::redis_arrivals::arrivals(self.client.clone(), self.keys[9].clone()).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_splits_into_entry_nonce_and_consumer() {
        let token = Token::parse("1700000000000-0/abc/host/pid-7").unwrap();
        assert_eq!(token.entry, "1700000000000-0");
        assert_eq!(token.nonce, "abc");
        assert_eq!(
            token.consumer, "host/pid-7",
            "a consumer name may hold slashes"
        );
        assert_eq!(Token::parse("1-0/abc/").unwrap().consumer, "");
    }

    #[test]
    fn malformed_tokens_are_rejected() {
        for bad in ["", "1-0", "1-0/abc", "/abc/w", "1-0//w"] {
            let err = Token::parse(bad).err().expect(bad);
            assert!(err.to_string().contains("malformed lease token"), "{err}");
        }
    }

    #[test]
    fn lease_is_clamped_to_the_horizon() {
        assert_eq!(lease_ms(Duration::ZERO), "1");
        assert_eq!(lease_ms(Duration::from_millis(300)), "300");
        assert_eq!(lease_ms(Duration::MAX), millis(HORIZON).to_string());
    }
}
