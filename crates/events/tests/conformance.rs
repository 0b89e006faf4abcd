//! One conformance suite for every `EventBus`: the same tests against `MemoryBus` and, when
//! `REDIS_URL` is set, `RedisBus` (each test on its own key prefix).

mod common;

use common::{collect, new_id, number, publish_all, run_kinds, take};
use livexec_core::{Event, EventBus, EventKind, Status};
use livexec_events::Publisher;
use std::sync::Arc;

async fn ordered_delivery(bus: Arc<dyn EventBus>) {
    let id = new_id();
    let events = number(id, &run_kinds(100));
    let stream = bus.subscribe(id, 0).await.unwrap();
    let reader = tokio::spawn(collect(stream));
    publish_all(&bus, &events).await;
    assert_eq!(reader.await.unwrap(), events);
}

async fn late_subscriber_gets_history_once_then_live(bus: Arc<dyn EventBus>) {
    let id = new_id();
    let events = number(id, &run_kinds(60));
    publish_all(&bus, &events[..40]).await;
    let mut stream = bus.subscribe(id, 0).await.unwrap();
    let history = take(&mut stream, 40).await;
    assert_eq!(history, events[..40]);
    publish_all(&bus, &events[40..]).await;
    let live = collect(stream).await;
    assert_eq!(live, events[40..]);
}

async fn resume_after_k_is_lossless(bus: Arc<dyn EventBus>) {
    let id = new_id();
    let events = number(id, &run_kinds(30));
    let last = events.len() as u64;
    publish_all(&bus, &events[..20]).await;
    // Resume mid-run: backlog after k, then the live rest.
    let stream = bus.subscribe(id, 7).await.unwrap();
    let reader = tokio::spawn(collect(stream));
    publish_all(&bus, &events[20..]).await;
    assert_eq!(reader.await.unwrap(), events[7..]);
    // Resume after the run, from several points.
    for k in [0, 1, 13, last - 1, last] {
        let got = collect(bus.subscribe(id, k).await.unwrap()).await;
        assert_eq!(got, events[k as usize..], "after {k}");
    }
}

async fn fifty_concurrent_subscribers_see_one_sequence(bus: Arc<dyn EventBus>) {
    let id = new_id();
    let events = number(id, &run_kinds(400));
    let mut readers = Vec::new();
    for _ in 0..25 {
        readers.push(tokio::spawn(collect(bus.subscribe(id, 0).await.unwrap())));
    }
    let publisher = {
        let bus = Arc::clone(&bus);
        let events = events.clone();
        tokio::spawn(async move {
            for e in events {
                bus.publish(e).await.unwrap();
                tokio::task::yield_now().await;
            }
        })
    };
    // The other half joins while events are flowing.
    for _ in 0..25 {
        readers.push(tokio::spawn(collect(bus.subscribe(id, 0).await.unwrap())));
        tokio::task::yield_now().await;
    }
    publisher.await.unwrap();
    for reader in readers {
        assert_eq!(reader.await.unwrap(), events);
    }
}

async fn publish_racing_subscribe_has_no_gap_or_duplicate(bus: Arc<dyn EventBus>) {
    for round in 0..300usize {
        let id = new_id();
        let events = number(id, &run_kinds(12));
        let publisher = {
            let bus = Arc::clone(&bus);
            let events = events.clone();
            tokio::spawn(async move {
                for e in events {
                    bus.publish(e).await.unwrap();
                }
            })
        };
        // Vary where the subscription lands relative to the publishes.
        for _ in 0..(round % 7) {
            tokio::task::yield_now().await;
        }
        let got = collect(bus.subscribe(id, 0).await.unwrap()).await;
        publisher.await.unwrap();
        assert_eq!(got, events, "round {round}");
    }
}

async fn finished_ends_every_stream(bus: Arc<dyn EventBus>) {
    let id = new_id();
    let events = number(id, &run_kinds(5));
    let readers: Vec<_> = futures::future::join_all((0..5).map(|_| bus.subscribe(id, 0)))
        .await
        .into_iter()
        .map(|s| tokio::spawn(collect(s.unwrap())))
        .collect();
    publish_all(&bus, &events).await;
    // Anything after Finished is not part of the execution's events.
    let late = Event {
        execution_id: id,
        seq: events.len() as u64 + 1,
        kind: EventKind::Stdout(b"after the end".to_vec()),
    };
    bus.publish(late).await.unwrap();
    for reader in readers {
        let got = reader.await.unwrap();
        assert_eq!(got, events);
        assert!(matches!(got.last().unwrap().kind, EventKind::Finished(_)));
    }
    assert_eq!(collect(bus.subscribe(id, 0).await.unwrap()).await, events);
}

async fn slow_subscriber_does_not_block_publisher(bus: Arc<dyn EventBus>) {
    let id = new_id();
    let mut kinds = vec![EventKind::Status(Status::Running)];
    kinds.extend((0..10_000).map(|i| EventKind::Stdout(format!("{i:>99}\n").into_bytes())));
    kinds.push(EventKind::Finished(Status::Completed));
    let events = number(id, &kinds);
    // Subscribed, never polled while 10 002 events go out.
    let stalled = bus.subscribe(id, 0).await.unwrap();
    let polled = tokio::spawn(collect(bus.subscribe(id, 0).await.unwrap()));
    publish_all(&bus, &events).await;
    assert_eq!(polled.await.unwrap(), events);
    // The stalled one, read only now, still gets everything exactly once.
    assert_eq!(collect(stalled).await, events);
}

async fn stale_and_duplicate_seqs_are_dropped(bus: Arc<dyn EventBus>) {
    let id = new_id();
    // RUNNING, two compiler chunks, one output chunk, COMPLETED.
    let events = number(id, &run_kinds(1));
    for i in [0usize, 1, 1, 0, 2, 3, 2, 4] {
        bus.publish(events[i].clone()).await.unwrap();
    }
    assert_eq!(collect(bus.subscribe(id, 0).await.unwrap()).await, events);
}

async fn publisher_attempts_continue_the_sequence(bus: Arc<dyn EventBus>) {
    let id = new_id();
    let reader = tokio::spawn(collect(bus.subscribe(id, 0).await.unwrap()));
    let first = Publisher::start(Arc::clone(&bus), id);
    first.handle().status(Status::Running);
    first.handle().stdout(b"attempt one\n");
    first.handle().status(Status::Queued);
    let stats = first.close().await;
    assert_eq!((stats.published, stats.last_seq), (3, 3));
    let second = Publisher::start_attempt(Arc::clone(&bus), id, 2);
    second.handle().status(Status::Running);
    second.handle().stdout(b"attempt two\n");
    let stats = second.finish(Status::Completed).await;
    assert_eq!(stats.published, 3);
    let got = reader.await.unwrap();
    let seqs: Vec<u64> = got.iter().map(|e| e.seq).collect();
    let base = 1u64 << 32;
    assert_eq!(seqs, vec![1, 2, 3, base + 1, base + 2, base + 3]);
    assert_eq!(got[4].kind, EventKind::Stdout(b"attempt two\n".to_vec()));
    assert_eq!(got[5].kind, EventKind::Finished(Status::Completed));
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod memory {
            use livexec_events::MemoryBus;
            use std::sync::Arc;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(Arc::new(MemoryBus::default())).await;
                }
            )*
        }
        mod redis {
            use super::common::RedisHarness;
            use std::sync::Arc;
            $(
                #[ignore = "needs Redis (REDIS_URL, default 127.0.0.1:6379)"]
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let harness = RedisHarness::new().await;
                    super::$name(Arc::new(harness.bus.clone())).await;
                    harness.cleanup().await;
                }
            )*
        }
    };
}

conformance!(
    ordered_delivery,
    late_subscriber_gets_history_once_then_live,
    resume_after_k_is_lossless,
    fifty_concurrent_subscribers_see_one_sequence,
    publish_racing_subscribe_has_no_gap_or_duplicate,
    finished_ends_every_stream,
    slow_subscriber_does_not_block_publisher,
    stale_and_duplicate_seqs_are_dropped,
    publisher_attempts_continue_the_sequence,
);
