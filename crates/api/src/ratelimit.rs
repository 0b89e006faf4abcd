//! Request rate limits per API key (issue 13, tiers) and the 429 answer that every limit of a
//! tier shares (rate, daily quota, concurrent executions).
//!
//! Each key has a token bucket of its tier's size (`burst`), refilled at
//! `requests_per_second` ([`crate::tiers::Tier::rate`]), kept as GCRA state (one theoretical
//! arrival time per key):
//! - embedded ([`RateStore::in_process`]): in this process, with the `governor` crate;
//! - scaled ([`RateStore::redis`]): in Redis, one atomic Lua script per request, so that the
//!   limit holds across any number of API nodes. When Redis fails the request is let through
//!   (fail open) with a warning in the log: an outage of the rate store must not take the API
//!   down, and the quotas on executions, which are what costs, are enforced by the database
//!   either way.
//!
//! [`limit_requests`] runs after authentication: open callers (no key) are never limited.
//! Every answer to a keyed caller of a limited tier carries `RateLimit-Limit`,
//! `RateLimit-Remaining` and `RateLimit-Reset` (IETF draft names, seconds); a 429 also
//! `Retry-After` (seconds), in the shape of the surface asked (native, Judge0, Piston, MCP).

use crate::compat::{CompatConfig, Surface};
use crate::error::ApiError;
use crate::AppState;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::{DefaultKeyedRateLimiter, Quota};
use livexec_core::{Caller, KeyId};
use serde_json::json;
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A refusal by one limit of a tier: what the 429 says and its headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limited {
    /// Which limit, for people (`"rate limit of tier free: 10 requests per second"`).
    pub message: String,
    /// `RateLimit-Limit`: the limit's size (the burst, the quota).
    pub limit: u32,
    /// `RateLimit-Remaining`: what is left of it (0 when refused).
    pub remaining: u32,
    /// `RateLimit-Reset`: seconds until it is whole again (at least 1 when refused).
    pub reset_secs: u64,
    /// `Retry-After`: seconds until a retry can succeed (at least 1).
    pub retry_after_secs: u64,
}

impl From<livexec_core::QuotaExceeded> for Limited {
    fn from(q: livexec_core::QuotaExceeded) -> Self {
        Limited {
            message: q.message(),
            limit: q.limit,
            remaining: 0,
            reset_secs: q.retry_after_secs.max(1),
            retry_after_secs: q.retry_after_secs.max(1),
        }
    }
}

impl Limited {
    /// Add `Retry-After` and the `RateLimit-*` headers to `headers`.
    pub fn add_headers(&self, headers: &mut HeaderMap) {
        add_rate_headers(headers, self.limit, self.remaining, self.reset_secs);
        headers.insert("retry-after", HeaderValue::from(self.retry_after_secs));
    }

    /// The 429 in the shape of the API `path` belongs to under `compat`.
    pub(crate) fn response_for(self, path: &str, compat: &CompatConfig) -> Response {
        self.response_in(Surface::of(path, compat))
    }

    /// The 429 in `surface`'s shape: Judge0's `{"error"}`, Piston's `{"message"}`, MCP's
    /// JSON-RPC error, else the native error shape.
    pub(crate) fn response_in(self, surface: Surface) -> Response {
        let body = match surface {
            Surface::Judge0 => json!({ "error": self.message }),
            Surface::Piston => json!({ "message": self.message }),
            Surface::Mcp => json!({
                "jsonrpc": "2.0", "id": null,
                "error": { "code": -32000, "message": self.message },
            }),
            Surface::Native => return ApiError::TooManyRequests(self).into_response(),
        };
        let mut response = (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response();
        self.add_headers(response.headers_mut());
        response
    }
}

/// `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` (seconds).
fn add_rate_headers(headers: &mut HeaderMap, limit: u32, remaining: u32, reset_secs: u64) {
    headers.insert("ratelimit-limit", HeaderValue::from(limit));
    headers.insert("ratelimit-remaining", HeaderValue::from(remaining));
    headers.insert("ratelimit-reset", HeaderValue::from(reset_secs));
}

/// One key's request decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Let through; the bucket's state for the headers.
    Allowed {
        /// The bucket's size.
        limit: u32,
        /// Requests left in it now.
        remaining: u32,
        /// Seconds until it is full again.
        reset_secs: u64,
    },
    /// Refused.
    Denied(Limited),
}

type Limiter = DefaultKeyedRateLimiter<KeyId, StateInformationMiddleware>;

/// The in-process buckets: one keyed limiter per (rate, burst).
#[derive(Default)]
pub struct InProcess {
    limiters: Mutex<HashMap<(u32, u32), Arc<Limiter>>>,
}

impl InProcess {
    fn limiter(&self, rps: NonZeroU32, burst: NonZeroU32) -> Arc<Limiter> {
        let mut map = match self.limiters.lock() {
            Ok(map) => map,
            Err(poisoned) => poisoned.into_inner(),
        };
        map.entry((rps.get(), burst.get()))
            .or_insert_with(|| {
                Arc::new(
                    governor::RateLimiter::dashmap(Quota::per_second(rps).allow_burst(burst))
                        .with_middleware::<StateInformationMiddleware>(),
                )
            })
            .clone()
    }
}

/// Where the request buckets live.
#[derive(Clone)]
pub enum RateStore {
    /// In this process (embedded mode; each process counts alone).
    InProcess(Arc<InProcess>),
    /// In Redis (scaled mode; every API node shares the counts).
    Redis(Arc<RedisBuckets>),
}

/// The buckets in Redis.
pub struct RedisBuckets {
    /// The connection (reconnects by itself).
    conn: redis::aio::ConnectionManager,
    /// Prefix of this deployment's keys (`LIVEXEC_REDIS_PREFIX`).
    prefix: String,
    /// The GCRA script.
    script: redis::Script,
    /// When a failure was last logged (unix s), so an outage logs once per 10 s.
    last_warned: AtomicU64,
}

impl std::fmt::Debug for RateStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RateStore::InProcess(_) => f.write_str("RateStore::InProcess"),
            RateStore::Redis(r) => write!(f, "RateStore::Redis({})", r.prefix),
        }
    }
}

impl Default for RateStore {
    fn default() -> Self {
        RateStore::in_process()
    }
}

/// GCRA in one atomic step. KEYS[1]: the key's bucket; ARGV[1]: the emission interval (µs per
/// request), ARGV[2]: the burst. The clock is Redis's own (`TIME`), so API nodes' clocks do
/// not matter. Returns {allowed (0/1), remaining, retry after µs, reset µs}.
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - burst * interval
if now < allow_at then
  return {0, 0, allow_at - now, tat - now}
end
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1000)
return {1, math.floor((now - allow_at) / interval), 0, new_tat - now}
";

impl RateStore {
    /// Buckets in this process.
    pub fn in_process() -> RateStore {
        RateStore::InProcess(Arc::default())
    }

    /// Connect to Redis at `url` for buckets under `prefix`. A call waits for Redis at most
    /// 250 ms (then the request goes through: fail open), so a slow Redis never holds requests.
    pub async fn connect_redis(url: &str, prefix: &str) -> Result<RateStore, redis::RedisError> {
        let client = redis::Client::open(url)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Duration::from_secs(2))
            .set_response_timeout(Duration::from_millis(250))
            .set_number_of_retries(0);
        let conn = redis::aio::ConnectionManager::new_with_config(client, config).await?;
        Ok(RateStore::redis(conn, prefix))
    }

    /// Buckets in Redis under `prefix` (shared by every API node of the deployment).
    pub fn redis(conn: redis::aio::ConnectionManager, prefix: &str) -> RateStore {
        RateStore::Redis(Arc::new(RedisBuckets {
            conn,
            prefix: prefix.to_owned(),
            script: redis::Script::new(GCRA),
            last_warned: AtomicU64::new(0),
        }))
    }

    /// Take one request from `key`'s bucket of `rps` per second, `burst` at most.
    pub async fn check(&self, key: KeyId, tier: &str, rps: u32, burst: u32) -> Decision {
        let (Some(rps_nz), Some(burst_nz)) = (NonZeroU32::new(rps), NonZeroU32::new(burst)) else {
            return Decision::Allowed {
                limit: burst,
                remaining: burst,
                reset_secs: 0,
            };
        };
        let message = format!("rate limit of tier {tier}: {rps} requests per second");
        match self {
            RateStore::InProcess(p) => {
                let limiter = p.limiter(rps_nz, burst_nz);
                match limiter.check_key(&key) {
                    Ok(snapshot) => {
                        let remaining = snapshot.remaining_burst_capacity();
                        let used = u64::from(burst - remaining.min(burst));
                        Decision::Allowed {
                            limit: burst,
                            remaining,
                            reset_secs: used.div_ceil(u64::from(rps)),
                        }
                    }
                    Err(not_until) => {
                        let wait = not_until.wait_time_from(DefaultClock::default().now());
                        let secs = whole_secs(wait);
                        Decision::Denied(Limited {
                            message,
                            limit: burst,
                            remaining: 0,
                            reset_secs: secs,
                            retry_after_secs: secs,
                        })
                    }
                }
            }
            RateStore::Redis(r) => {
                let interval_us = 1_000_000 / u64::from(rps);
                let mut conn = r.conn.clone();
                let answer: Result<Vec<i64>, _> = r
                    .script
                    .key(format!("{}:rate:{key}", r.prefix))
                    .arg(interval_us)
                    .arg(burst)
                    .invoke_async(&mut conn)
                    .await;
                match answer.as_deref() {
                    Ok([allowed, remaining, retry_us, reset_us]) => {
                        let us = |v: i64| Duration::from_micros(v.max(0) as u64);
                        if *allowed == 1 {
                            Decision::Allowed {
                                limit: burst,
                                remaining: u32::try_from(*remaining).unwrap_or(0).min(burst),
                                reset_secs: whole_secs(us(*reset_us)),
                            }
                        } else {
                            let secs = whole_secs(us(*retry_us));
                            Decision::Denied(Limited {
                                message,
                                limit: burst,
                                remaining: 0,
                                reset_secs: secs,
                                retry_after_secs: secs,
                            })
                        }
                    }
                    other => {
                        warn_open(&r.last_warned, &key, other.err().map(|e| e.to_string()));
                        Decision::Allowed {
                            limit: burst,
                            remaining: burst,
                            reset_secs: 0,
                        }
                    }
                }
            }
        }
    }
}

/// Seconds of `d`, rounded up, at least 1.
fn whole_secs(d: Duration) -> u64 {
    d.as_millis().div_ceil(1000).max(1) as u64
}

/// Log that the rate store failed and requests go through unlimited, at most once per 10 s.
fn warn_open(last: &AtomicU64, key: &KeyId, error: Option<String>) {
    let now = chrono::Utc::now().timestamp().max(0) as u64;
    let before = last.load(Ordering::Relaxed);
    if now >= before + 10
        && last
            .compare_exchange(before, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        let error = error.unwrap_or_else(|| "unexpected answer of the rate script".to_owned());
        tracing::warn!(key_id = %key, %error,
            "the rate limit store (Redis) failed: requests are let through without a rate \
             limit until it answers again (quotas on executions still hold)");
    }
}

/// The middleware (after authentication): take one request from the caller's bucket; a
/// refusal is a 429, an allowed request gets the bucket's `RateLimit-*` headers.
pub(crate) async fn limit_requests(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let Some(Caller::Key(key)) = req.extensions().get::<Caller>() else {
        return next.run(req).await;
    };
    let tier = state.config.tiers.of_key(key);
    let Some((rps, burst)) = tier.rate() else {
        return next.run(req).await;
    };
    let decision = state
        .config
        .rate_store
        .check(key.id, &tier.name, rps, burst)
        .await;
    match decision {
        Decision::Denied(limited) => limited.response_for(req.uri().path(), &state.config.compat),
        Decision::Allowed {
            limit,
            remaining,
            reset_secs,
        } => {
            let mut response = next.run(req).await;
            // A 429 of a quota already carries its own limit's headers.
            if response.status() != StatusCode::TOO_MANY_REQUESTS {
                add_rate_headers(response.headers_mut(), limit, remaining, reset_secs);
            }
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn in_process_buckets_refuse_past_the_burst_and_per_key() {
        let store = RateStore::in_process();
        let (a, b) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
        for left in (0..3).rev() {
            match store.check(a, "t", 1, 3).await {
                Decision::Allowed { remaining, .. } => assert_eq!(remaining, left),
                d => panic!("{d:?}"),
            }
        }
        let Decision::Denied(limited) = store.check(a, "t", 1, 3).await else {
            panic!("the 4th request of a burst of 3 is refused");
        };
        assert_eq!(
            limited.message,
            "rate limit of tier t: 1 requests per second"
        );
        assert_eq!((limited.limit, limited.retry_after_secs), (3, 1));
        assert!(matches!(
            store.check(b, "t", 1, 3).await,
            Decision::Allowed { .. }
        ));
    }
}
