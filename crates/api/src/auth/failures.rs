//! A token bucket per client address for refused authentication attempts, so that a flood of
//! bad keys costs the service little and tells the sender to slow down: past the bucket, a
//! refusal is 429 with `Retry-After` instead of 401. Only refusals take from the bucket; a
//! request with a good key never does (per-key request limits are another layer's job).
//!
//! The address is the TCP peer's (axum's `ConnectInfo`); behind a reverse proxy every client
//! shares the proxy's bucket. Without `ConnectInfo` (the router served without
//! [`crate::launch`]) every client shares one bucket.

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::{IpAddr, Ipv4Addr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Refused attempts one address may make: `burst` at once, then `per_second` (defaults 100 and
/// 10; `LIVEXEC_AUTH_FAILURE_BURST`, `LIVEXEC_AUTH_FAILURES_PER_SECOND`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureLimit {
    /// Refusals per second an address earns back.
    pub per_second: u32,
    /// Refusals an address may make at once.
    pub burst: u32,
}

impl Default for FailureLimit {
    fn default() -> Self {
        FailureLimit {
            per_second: 10,
            burst: 100,
        }
    }
}

/// Every this many refusals, addresses whose bucket is full again are forgotten.
const SWEEP_EVERY: u64 = 4096;

/// The buckets of one router.
pub struct FailureLimiter {
    buckets: DefaultKeyedRateLimiter<IpAddr>,
    clock: DefaultClock,
    refusals: AtomicU64,
}

impl FailureLimiter {
    /// Buckets of `limit` (zeros count as one).
    pub fn new(limit: FailureLimit) -> Self {
        let one = NonZeroU32::MIN;
        let quota = Quota::per_second(NonZeroU32::new(limit.per_second).unwrap_or(one))
            .allow_burst(NonZeroU32::new(limit.burst).unwrap_or(one));
        FailureLimiter {
            buckets: RateLimiter::keyed(quota),
            clock: DefaultClock::default(),
            refusals: AtomicU64::new(0),
        }
    }

    /// Count one refusal from `addr` (`None`: unknown, one shared bucket). `Err(wait)` when
    /// the address is over its limit: answer 429, retry after `wait`.
    pub fn refused(&self, addr: Option<IpAddr>) -> Result<(), Duration> {
        if self.refusals.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.buckets.retain_recent();
        }
        let addr = addr.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        self.buckets
            .check_key(&addr)
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_address_has_its_own_bucket() {
        let limiter = FailureLimiter::new(FailureLimit {
            per_second: 1,
            burst: 3,
        });
        let a = Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
        let b = Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)));
        for _ in 0..3 {
            assert!(limiter.refused(a).is_ok());
        }
        let wait = limiter.refused(a).unwrap_err();
        assert!(wait <= Duration::from_secs(1));
        assert!(limiter.refused(b).is_ok());
    }
}
