//! The open event streams of each key on this process, against its tier's `event_streams`
//! ([`crate::tiers::Tier::event_streams`]): a stream takes a [`StreamSlot`] before it
//! subscribes and gives it back when it ends ([`Holding`] ties the slot to the subscription).

use async_trait::async_trait;
use livexec_core::{BoxStream, Event, EventBus, ExecutionId, KeyId, PortError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Open streams per key (a key with none has no entry). Cheap to clone; clones share counts.
#[derive(Clone, Debug, Default)]
pub struct StreamSlots {
    held: Arc<Mutex<HashMap<KeyId, u32>>>,
}

impl StreamSlots {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<KeyId, u32>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One more stream of `key`, if it holds fewer than `max`.
    pub fn take(&self, key: KeyId, max: u32) -> Option<StreamSlot> {
        let mut held = self.lock();
        let n = held.entry(key).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(StreamSlot {
            slots: self.clone(),
            key,
        })
    }

    /// Streams `key` holds open now.
    pub fn held(&self, key: KeyId) -> u32 {
        self.lock().get(&key).copied().unwrap_or(0)
    }
}

/// One open stream of a key; dropping it gives the slot back.
#[derive(Debug)]
pub struct StreamSlot {
    slots: StreamSlots,
    key: KeyId,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut held = self.slots.lock();
        if let Some(n) = held.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                held.remove(&self.key);
            }
        }
    }
}

/// An event bus that hands `slot` to the one subscription made through it, so the slot is
/// held exactly as long as that stream; unused, the slot goes back when this is dropped.
pub(crate) struct Holding {
    inner: Arc<dyn EventBus>,
    slot: Mutex<Option<StreamSlot>>,
}

impl Holding {
    pub(crate) fn new(inner: Arc<dyn EventBus>, slot: Option<StreamSlot>) -> Holding {
        Holding {
            inner,
            slot: Mutex::new(slot),
        }
    }
}

#[async_trait]
impl EventBus for Holding {
    async fn publish(&self, event: Event) -> Result<(), PortError> {
        self.inner.publish(event).await
    }

    async fn subscribe(
        &self,
        execution_id: ExecutionId,
        after: u64,
    ) -> Result<BoxStream<Event>, PortError> {
        let slot = self.slot.lock().unwrap_or_else(|e| e.into_inner()).take();
        let events = self.inner.subscribe(execution_id, after).await?;
        Ok(livexec_events::holding(events, slot))
    }
}
