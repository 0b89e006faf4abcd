//! [`LimitedBus`]: a cap on the concurrent subscriptions one process holds.
//!
//! Every open event stream and every `?wait=true` request holds a subscription. On the Redis
//! bus the subscriptions to one execution share one Redis connection, but each execution
//! watched is one, and each subscription reads its backlog (and what it missed when it lags)
//! from Redis itself. Without a cap, a client opening thousands of streams could exhaust
//! Redis's connection limit or load it with reads, and stall the job queue that shares it.
//! [`LimitedBus`] wraps any [`EventBus`]: publishing passes through, a subscription
//! takes a permit that its stream releases when dropped, and past the cap `subscribe` fails at
//! once with [`TooManySubscriptions`] (the API answers 503 for a stream; a wait falls back to
//! polling the store).

use async_trait::async_trait;
use futures::StreamExt;
use livexec_core::{BoxStream, Event, EventBus, ExecutionId, PortError};
use std::sync::Arc;
use tokio::sync::Semaphore;

/// The error of a subscription refused because the cap is reached.
#[derive(Debug, thiserror::Error)]
#[error("{max} live subscriptions are open on this server, its limit (LIVEXEC_MAX_SUBSCRIPTIONS)")]
pub struct TooManySubscriptions {
    /// The cap.
    pub max: usize,
}

/// An [`EventBus`] that allows at most `max` concurrent subscriptions. Cheap to clone.
#[derive(Clone)]
pub struct LimitedBus {
    inner: Arc<dyn EventBus>,
    permits: Arc<Semaphore>,
    max: usize,
}

impl LimitedBus {
    /// Wraps `inner`, allowing `max` concurrent subscriptions (at least one).
    pub fn new(inner: Arc<dyn EventBus>, max: usize) -> LimitedBus {
        let max = max.clamp(1, Semaphore::MAX_PERMITS);
        LimitedBus {
            inner,
            permits: Arc::new(Semaphore::new(max)),
            max,
        }
    }

    /// Subscriptions open now.
    pub fn open(&self) -> usize {
        self.max - self.permits.available_permits()
    }
}

#[async_trait]
impl EventBus for LimitedBus {
    async fn publish(&self, event: Event) -> Result<(), PortError> {
        self.inner.publish(event).await
    }

    async fn subscribe(
        &self,
        execution_id: ExecutionId,
        after: u64,
    ) -> Result<BoxStream<Event>, PortError> {
        let permit = Arc::clone(&self.permits)
            .try_acquire_owned()
            .map_err(|_| PortError {
                backend: "subscription limit",
                op: "subscribe",
                source: Box::new(TooManySubscriptions { max: self.max }),
            })?;
        let events = self.inner.subscribe(execution_id, after).await?;
        Ok(holding(events, permit))
    }
}

/// `events` with `guard` kept alive as long as the stream is (dropped with it): a permit, a
/// slot, anything whose drop gives something back.
pub fn holding<G: Send + 'static>(events: BoxStream<Event>, guard: G) -> BoxStream<Event> {
    events
        .map(move |event| {
            let _held = &guard;
            event
        })
        .boxed()
}
