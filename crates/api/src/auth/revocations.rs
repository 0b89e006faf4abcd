//! Key changes across nodes (scaled mode): every API node subscribes to the Redis pub/sub
//! channel `PREFIX:keys:changes`; a node that revokes a key (admin API) or creates one, and
//! `livexec keys revoke|create` when `REDIS_URL` is set, publish there, and every node drops
//! the key (or the cached count of keys) from its [`KeyCache`] at once.
//!
//! Pub/sub delivers only to live subscribers, so while this node's subscription is down its
//! cache is off (every request asks the database): a missed notice can never leave a revoked
//! key usable. Messages: `revoked:<key id>` and `created`; nothing secret travels.

use super::cache::KeyCache;
use futures::StreamExt;
use livexec_core::KeyId;
use redis::AsyncCommands;
use std::sync::Arc;
use std::time::Duration;

/// How long a publish may take before it is given up (the revocation itself is already in
/// the database; only other nodes' caches wait for their TTL then).
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(2);

/// A change every node must hear about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// This key was revoked: drop it.
    Revoked(KeyId),
    /// A key was created: the count of active keys changed (an auto-mode service closes).
    Created,
}

impl Notice {
    fn encode(self) -> String {
        match self {
            Notice::Revoked(id) => format!("revoked:{id}"),
            Notice::Created => "created".to_owned(),
        }
    }

    fn decode(text: &str) -> Option<Notice> {
        match text.split_once(':') {
            Some(("revoked", id)) => id.parse().ok().map(Notice::Revoked),
            _ if text == "created" => Some(Notice::Created),
            _ => None,
        }
    }
}

/// The channel of a deployment's key changes.
pub fn channel(prefix: &str) -> String {
    format!("{prefix}:keys:changes")
}

/// One node's connection to the channel: publishes, and (after [`RevocationFeed::subscribe`])
/// applies what others publish.
pub struct RevocationFeed {
    client: redis::Client,
    channel: String,
    publisher: redis::aio::ConnectionManager,
    subscriber: Option<tokio::task::JoinHandle<()>>,
}

impl RevocationFeed {
    /// Connect to `redis_url` for deployment `prefix`.
    pub async fn connect(redis_url: &str, prefix: &str) -> Result<Self, redis::RedisError> {
        let client = redis::Client::open(redis_url)?;
        let publisher = client.get_connection_manager().await?;
        Ok(RevocationFeed {
            client,
            channel: channel(prefix),
            publisher,
            subscriber: None,
        })
    }

    /// Tell every node. A failure is logged (with no secret in it), not returned: the change
    /// is already in the database and other nodes' caches expire within their TTL.
    pub async fn publish(&self, notice: Notice) {
        let mut conn = self.publisher.clone();
        let sent = tokio::time::timeout(
            PUBLISH_TIMEOUT,
            conn.publish::<_, _, ()>(&self.channel, notice.encode()),
        )
        .await;
        match sent {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, ?notice, "could not publish a key change"),
            Err(_) => tracing::warn!(?notice, "publishing a key change timed out"),
        }
    }

    /// Apply every node's notices to `cache` from now on, in a background task that
    /// reconnects after failures; `cache` is off until the subscription is live and while it
    /// is down.
    pub fn subscribe(&mut self, cache: Arc<KeyCache>) {
        cache.set_enabled(false);
        let (client, channel) = (self.client.clone(), self.channel.clone());
        self.subscriber = Some(tokio::spawn(listen(client, channel, cache)));
    }
}

impl Drop for RevocationFeed {
    fn drop(&mut self) {
        if let Some(task) = self.subscriber.take() {
            task.abort();
        }
    }
}

/// Subscribe, apply notices, and on any failure turn the cache off and try again.
async fn listen(client: redis::Client, channel: String, cache: Arc<KeyCache>) {
    let mut pause = Duration::from_millis(200);
    loop {
        match client.get_async_pubsub().await {
            Ok(mut pubsub) => match pubsub.subscribe(&channel).await {
                Ok(()) => {
                    cache.set_enabled(true);
                    pause = Duration::from_millis(200);
                    tracing::info!(%channel, "key revocation feed subscribed; key cache on");
                    let mut messages = pubsub.on_message();
                    while let Some(msg) = messages.next().await {
                        let text: String = msg.get_payload().unwrap_or_default();
                        match Notice::decode(&text) {
                            Some(Notice::Revoked(id)) => cache.forget_key(id),
                            Some(Notice::Created) => cache.forget_count(),
                            None => tracing::warn!("ignoring an unknown key-change message"),
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "subscribing to key changes failed"),
            },
            Err(e) => tracing::warn!(error = %e, "connecting for key changes failed"),
        }
        cache.set_enabled(false);
        tracing::warn!(
            "key revocation feed down: the key cache is off (every request asks the database) \
             until it is back"
        );
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(5));
    }
}

/// Publish one notice and disconnect (`livexec keys revoke|create` with `REDIS_URL`).
pub async fn publish_once(
    redis_url: &str,
    prefix: &str,
    notice: Notice,
) -> Result<(), redis::RedisError> {
    let client = redis::Client::open(redis_url)?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    conn.publish::<_, _, ()>(channel(prefix), notice.encode())
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_round_trip() {
        let id = uuid::Uuid::now_v7();
        for n in [Notice::Revoked(id), Notice::Created] {
            assert_eq!(Notice::decode(&n.encode()), Some(n));
        }
        assert_eq!(Notice::decode("revoked:nope"), None);
        assert_eq!(Notice::decode("other"), None);
    }
}
