//! An in-process cache of validated keys in front of the [`KeyStore`], so that a request with a
//! good key costs no database query (issue 13's speed goal), while a revocation still stops the
//! key at once.
//!
//! - Only successes are cached: a key found and unrevoked, by the SHA-256 of its token, for
//!   [`CachedKeys::ttl`]. A refusal (missing, malformed, unknown or revoked key) never is, so
//!   every refusal does the same work (a cache miss, then one database lookup) and a refused
//!   token cannot become distinguishable by having been seen before.
//! - "How many active keys" (auto mode: open while none) is cached too, for at most 1 s.
//! - Revoking through this wrapper drops the key from this process's cache at once and, with a
//!   [`RevocationFeed`], tells every other node (Redis pub/sub); creating a key forgets the
//!   cached count (here and, through the feed, everywhere), so the first key closes an
//!   auto-mode service at once.
//! - While the feed is down (another node could revoke unseen), nothing is cached: every
//!   request goes to the database, as without the cache. When it comes back the cache starts
//!   empty.
//! - A lookup that started before a revocation never caches its (stale) answer after it: every
//!   forget bumps a generation number that a fill must still see.

use super::revocations::{Notice, RevocationFeed};
use livexec_core::{ApiKey, KeyId, KeyStore, StoreError};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// The longest the count of active keys is trusted (it opens or closes an auto-mode service).
const COUNT_TTL: Duration = Duration::from_secs(1);

/// Entries past which expired ones are swept on insert (a bound on memory).
const SWEEP_AT: usize = 10_000;

/// The cached state, shared with the revocation subscriber.
#[derive(Debug)]
pub struct KeyCache {
    ttl: Duration,
    keys: RwLock<HashMap<[u8; 32], (ApiKey, Instant)>>,
    count: Mutex<Option<(u64, Instant)>>,
    /// Bumped by every forget; a fill only lands when it has not moved.
    generation: AtomicU64,
    /// False while the revocation feed is down: then nothing is cached.
    enabled: AtomicBool,
}

impl KeyCache {
    /// A cache whose entries live `ttl` (zero: no caching), enabled from the start.
    pub fn new(ttl: Duration) -> Self {
        KeyCache {
            ttl,
            keys: RwLock::new(HashMap::new()),
            count: Mutex::new(None),
            generation: AtomicU64::new(0),
            enabled: AtomicBool::new(true),
        }
    }

    fn caching(&self) -> bool {
        !self.ttl.is_zero() && self.enabled.load(Ordering::Acquire)
    }

    fn get(&self, hash: &[u8; 32]) -> Option<ApiKey> {
        if !self.caching() {
            return None;
        }
        let keys = self.keys.read().unwrap_or_else(|e| e.into_inner());
        match keys.get(hash) {
            Some((key, at)) if at.elapsed() < self.ttl => Some(key.clone()),
            _ => None,
        }
    }

    fn put(&self, hash: [u8; 32], key: ApiKey, generation: u64) {
        if !self.caching() {
            return;
        }
        let mut keys = self.keys.write().unwrap_or_else(|e| e.into_inner());
        // Checked under the write lock: a forget takes it too, so none slips between.
        if self.generation.load(Ordering::Acquire) != generation {
            return;
        }
        if keys.len() >= SWEEP_AT {
            let ttl = self.ttl;
            keys.retain(|_, (_, at)| at.elapsed() < ttl);
        }
        keys.insert(hash, (key, Instant::now()));
    }

    fn count(&self) -> Option<u64> {
        if !self.caching() {
            return None;
        }
        let count = self.count.lock().unwrap_or_else(|e| e.into_inner());
        match *count {
            Some((n, at)) if at.elapsed() < COUNT_TTL.min(self.ttl) => Some(n),
            _ => None,
        }
    }

    fn put_count(&self, n: u64, generation: u64) {
        if !self.caching() {
            return;
        }
        let mut count = self.count.lock().unwrap_or_else(|e| e.into_inner());
        if self.generation.load(Ordering::Acquire) == generation {
            *count = Some((n, Instant::now()));
        }
    }

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Forget key `id` (revoked) and the count of active keys, at once.
    /// Open event streams hear of it ([`super::ending`]).
    pub fn forget_key(&self, id: KeyId) {
        let mut keys = self.keys.write().unwrap_or_else(|e| e.into_inner());
        self.generation.fetch_add(1, Ordering::AcqRel);
        keys.retain(|_, (key, _)| key.id != id);
        drop(keys);
        self.forget_count();
        super::ending::heard();
    }

    /// Forget the count of active keys (a key was created).
    pub fn forget_count(&self) {
        let mut count = self.count.lock().unwrap_or_else(|e| e.into_inner());
        self.generation.fetch_add(1, Ordering::AcqRel);
        *count = None;
    }

    /// Forget everything (the revocation feed reconnected: notices may have been missed).
    pub fn forget_all(&self) {
        let mut keys = self.keys.write().unwrap_or_else(|e| e.into_inner());
        self.generation.fetch_add(1, Ordering::AcqRel);
        keys.clear();
        drop(keys);
        self.forget_count();
        super::ending::heard();
    }

    /// Turn caching on (the feed is live) or off (it is down: every lookup goes to the
    /// database). Either way the cache starts over.
    pub fn set_enabled(&self, on: bool) {
        self.forget_all();
        self.enabled.store(on, Ordering::Release);
        self.forget_all();
    }

    /// Whether entries are cached now.
    pub fn is_enabled(&self) -> bool {
        self.caching()
    }
}

/// A [`KeyStore`] with the cache in front, as the API uses it (`AppState.keys`).
pub struct CachedKeys {
    inner: Arc<dyn KeyStore>,
    cache: Arc<KeyCache>,
    feed: Option<RevocationFeed>,
}

impl CachedKeys {
    /// `inner` with a cache of `ttl` (embedded mode: one process, nothing to tell).
    pub fn new(inner: Arc<dyn KeyStore>, ttl: Duration) -> Self {
        CachedKeys {
            inner,
            cache: Arc::new(KeyCache::new(ttl)),
            feed: None,
        }
    }

    /// `inner` with a cache of `ttl`, kept right across nodes by Redis pub/sub on
    /// `redis_url`, channel `PREFIX:keys:changes`: this node publishes its revocations and
    /// creations and drops what the others publish. Caching stays off until the subscription
    /// is live, and whenever it drops.
    pub async fn with_redis(
        inner: Arc<dyn KeyStore>,
        ttl: Duration,
        redis_url: &str,
        prefix: &str,
    ) -> Result<Self, redis::RedisError> {
        let cache = Arc::new(KeyCache::new(ttl));
        let mut feed = RevocationFeed::connect(redis_url, prefix).await?;
        feed.subscribe(cache.clone());
        Ok(CachedKeys {
            inner,
            cache,
            feed: Some(feed),
        })
    }

    /// The cache (tests and the subscriber use it).
    pub fn cache(&self) -> &Arc<KeyCache> {
        &self.cache
    }

    /// How long a validated key is trusted without asking the database.
    pub fn ttl(&self) -> Duration {
        self.cache.ttl
    }

    async fn tell(&self, notice: Notice) {
        if let Some(feed) = &self.feed {
            feed.publish(notice).await;
        }
    }
}

#[async_trait::async_trait]
impl KeyStore for CachedKeys {
    async fn create_key(
        &self,
        name: &str,
        tier: &str,
        admin: bool,
        token_hash: &[u8; 32],
    ) -> Result<ApiKey, StoreError> {
        let key = self.inner.create_key(name, tier, admin, token_hash).await?;
        self.cache.forget_count();
        self.tell(Notice::Created).await;
        Ok(key)
    }

    async fn key_by_hash(&self, token_hash: &[u8; 32]) -> Result<Option<ApiKey>, StoreError> {
        if let Some(key) = self.cache.get(token_hash) {
            return Ok(Some(key));
        }
        let generation = self.cache.generation();
        let found = self.inner.key_by_hash(token_hash).await?;
        if let Some(key) = &found {
            if key.revoked_at.is_none() {
                self.cache.put(*token_hash, key.clone(), generation);
            }
        }
        Ok(found)
    }

    async fn get_key(&self, id: KeyId) -> Result<Option<ApiKey>, StoreError> {
        self.inner.get_key(id).await
    }

    async fn list_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        self.inner.list_keys().await
    }

    async fn revoke_key(&self, id: KeyId) -> Result<Option<ApiKey>, StoreError> {
        let revoked = self.inner.revoke_key(id).await?;
        if revoked.is_some() {
            self.cache.forget_key(id);
            self.tell(Notice::Revoked(id)).await;
        }
        Ok(revoked)
    }

    async fn active_keys(&self) -> Result<u64, StoreError> {
        if let Some(n) = self.cache.count() {
            return Ok(n);
        }
        let generation = self.cache.generation();
        let n = self.inner.active_keys().await?;
        self.cache.put_count(n, generation);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use uuid::Uuid;

    fn key() -> ApiKey {
        ApiKey {
            id: Uuid::now_v7(),
            name: "k".into(),
            tier: "free".into(),
            admin: false,
            created_at: Utc::now(),
            revoked_at: None,
        }
    }

    #[test]
    fn forgets_keys_and_refuses_stale_fills() {
        let cache = KeyCache::new(Duration::from_secs(60));
        let k = key();
        let g = cache.generation();
        cache.put([1; 32], k.clone(), g);
        assert_eq!(cache.get(&[1; 32]), Some(k.clone()));
        // A lookup that began before the revocation must not land after it.
        let before = cache.generation();
        cache.forget_key(k.id);
        assert_eq!(cache.get(&[1; 32]), None);
        cache.put([1; 32], k.clone(), before);
        assert_eq!(cache.get(&[1; 32]), None);
    }

    #[test]
    fn nothing_is_cached_while_disabled_or_with_zero_ttl() {
        let cache = KeyCache::new(Duration::from_secs(60));
        cache.set_enabled(false);
        cache.put([2; 32], key(), cache.generation());
        assert_eq!(cache.get(&[2; 32]), None);
        cache.put_count(3, cache.generation());
        assert_eq!(cache.count(), None);
        let none = KeyCache::new(Duration::ZERO);
        none.put([2; 32], key(), none.generation());
        assert_eq!(none.get(&[2; 32]), None);
    }
}
