//! `MemoryBus` specifics: the byte cap of the replay log, the grace period and tombstones,
//! and the sweep of orphaned logs.

mod common;

use common::{collect, new_id, number, publish_all, run_kinds, take};
use livexec_core::{EventBus, EventKind, Status};
use livexec_events::{MemoryBus, MemoryBusConfig};
use std::sync::Arc;
use std::time::Duration;

fn bus_with(config: MemoryBusConfig) -> (MemoryBus, Arc<dyn EventBus>) {
    let bus = MemoryBus::new(config);
    let dyn_bus: Arc<dyn EventBus> = Arc::new(bus.clone());
    (bus, dyn_bus)
}

#[tokio::test]
async fn awatcher_needing_trimmed_events_is_interrupted_not_shown_a_gap() {
    let (bus, dyn_bus) = bus_with(MemoryBusConfig {
        max_log_bytes: 10_000,
        ..MemoryBusConfig::default()
    });
    let id = new_id();
    let kinds: Vec<_> = (0..1000)
        .map(|i| EventKind::Stdout(format!("{i:>99}\n").into_bytes()))
        .collect();
    let events = number(id, &kinds);
    publish_all(&dyn_bus, &events).await;
    assert!(bus.stats().bytes <= 10_000, "{:?}", bus.stats());
    // From the start: history is gone, the stream ends without Finished at once.
    assert!(collect(dyn_bus.subscribe(id, 0).await.unwrap())
        .await
        .is_empty());
    // From near the end: the retained tail, then live events.
    let mut stream = dyn_bus.subscribe(id, 995).await.unwrap();
    assert_eq!(take(&mut stream, 5).await, events[995..]);
}

#[tokio::test]
async fn a_laggingwatcher_whose_events_were_trimmed_is_interrupted() {
    let (_bus, dyn_bus) = bus_with(MemoryBusConfig {
        max_log_bytes: 10_000,
        broadcast_capacity: 8,
        ..MemoryBusConfig::default()
    });
    let id = new_id();
    let kinds: Vec<_> = (0..1000)
        .map(|i| EventKind::Stdout(format!("{i:>99}\n").into_bytes()))
        .collect();
    let events = number(id, &kinds);
    let stalled = dyn_bus.subscribe(id, 0).await.unwrap();
    publish_all(&dyn_bus, &events).await;
    let got = collect(stalled).await;
    // It lagged past the log: whatever it got is a prefix without a gap, then it ended.
    assert!(got.len() < events.len());
    assert_eq!(got, events[..got.len()]);
}

#[tokio::test]
async fn finished_logs_become_tombstones_after_the_grace_period() {
    let (bus, dyn_bus) = bus_with(MemoryBusConfig {
        finished_grace: Duration::ZERO,
        ..MemoryBusConfig::default()
    });
    let id = new_id();
    let events = number(id, &run_kinds(3));
    publish_all(&dyn_bus, &events).await;
    assert_eq!(bus.stats().logs, 1);
    bus.sweep();
    let stats = bus.stats();
    assert_eq!((stats.logs, stats.tombstones, stats.bytes), (0, 1, 0));
    // A late subscriber gets an empty stream at once: the caller answers from the store.
    assert!(collect(dyn_bus.subscribe(id, 0).await.unwrap())
        .await
        .is_empty());
    // Stray events for it are not kept.
    dyn_bus.publish(events[1].clone()).await.unwrap();
    assert_eq!(bus.stats().logs, 0);
}

#[tokio::test]
async fn tombstones_and_idle_orphans_are_swept() {
    let (bus, dyn_bus) = bus_with(MemoryBusConfig {
        finished_grace: Duration::ZERO,
        tombstone_ttl: Duration::ZERO,
        idle_ttl: Duration::ZERO,
        ..MemoryBusConfig::default()
    });
    let finished = new_id();
    publish_all(&dyn_bus, &number(finished, &run_kinds(2))).await;
    let orphan = new_id();
    publish_all(&dyn_bus, &number(orphan, &run_kinds(2)[..2])).await;
    let watched = new_id();
    let watcher = dyn_bus.subscribe(watched, 0).await.unwrap();
    bus.sweep(); // finished → tombstone; orphan (no subscriber) dropped; watched kept
    let stats = bus.stats();
    assert_eq!((stats.logs, stats.tombstones), (1, 1));
    bus.sweep(); // tombstone expired
    let stats = bus.stats();
    assert_eq!((stats.logs, stats.tombstones), (1, 0));
    // A watched execution still gets its events.
    let events = number(watched, &[EventKind::Finished(Status::Failed)]);
    publish_all(&dyn_bus, &events).await;
    assert_eq!(collect(watcher).await, events);
}
