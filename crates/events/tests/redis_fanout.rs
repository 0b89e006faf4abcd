//! `RedisBus` fan-out: the subscriptions of one process to one execution share one reader (one
//! dedicated Redis connection), which goes away after `Finished` or with its last subscriber.
//! Reader connections are counted in Redis itself (`CLIENT LIST`, by the bus's client name).

mod common;

use common::{collect, new_id, number, publish_all, run_kinds, stdout_lines, take, RedisHarness};
use livexec_core::EventBus;
use livexec_events::{RedisBus, RedisBusConfig};
use std::sync::Arc;
use std::time::Duration;

/// A Redis harness with this tuning, and its bus as an `EventBus`.
async fn setup(config: RedisBusConfig) -> (RedisHarness, Arc<dyn EventBus>) {
    let h = RedisHarness::with_config(config).await;
    let bus: Arc<dyn EventBus> = Arc::new(h.bus.clone());
    (h, bus)
}

/// Tuning under which a subscription lags after 4 unread live events, changed by `tweak`.
fn lagging_after_4(tweak: impl FnOnce(&mut RedisBusConfig)) -> RedisBusConfig {
    let mut config = RedisBusConfig {
        broadcast_capacity: 4,
        ..RedisBusConfig::default()
    };
    tweak(&mut config);
    config
}

/// Reader connections of `bus` open in Redis now.
async fn reader_connections(url: &str, bus: &RedisBus) -> usize {
    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(&mut conn)
        .await
        .unwrap();
    let name = format!("name={}", bus.reader_client_name());
    list.lines()
        .filter(|line| line.split(' ').any(|field| field == name))
        .count()
}

/// Polls `probe` until it answers `want` (10 s), then returns what it answered last.
async fn settles<F, Fut>(want: usize, mut probe: F) -> usize
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = usize>,
{
    let mut got = probe().await;
    for _ in 0..200 {
        if got == want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        got = probe().await;
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Redis (REDIS_URL, default 127.0.0.1:6379)"]
async fn fifty_subscribers_of_one_execution_share_one_reader_until_finished() {
    let (h, bus) = setup(RedisBusConfig::default()).await;
    let id = new_id();
    let events = number(id, &run_kinds(200));
    publish_all(&bus, &events[..50]).await;
    let mut readers = Vec::new();
    for i in 0..50u64 {
        // Half through a clone of the bus, from several resume points.
        let stream = if i % 2 == 0 {
            bus.subscribe(id, i).await.unwrap()
        } else {
            h.bus.clone().subscribe(id, i).await.unwrap()
        };
        readers.push((i, tokio::spawn(collect(stream))));
    }
    assert_eq!(h.bus.readers(), 1);
    let open = settles(1, || reader_connections(&h.url, &h.bus)).await;
    assert_eq!(open, 1, "reader connections for 50 subscribers");
    publish_all(&bus, &events[50..]).await;
    for (after, reader) in readers {
        assert_eq!(
            reader.await.unwrap(),
            events[after as usize..],
            "after {after}"
        );
    }
    assert_eq!(settles(0, || async { h.bus.readers() }).await, 0);
    let open = settles(0, || reader_connections(&h.url, &h.bus)).await;
    assert_eq!(open, 0, "reader connections after Finished");
    h.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Redis (REDIS_URL, default 127.0.0.1:6379)"]
async fn the_reader_stops_when_its_last_subscriber_goes_away() {
    let (h, bus) = setup(RedisBusConfig::default()).await;
    let id = new_id();
    let events = number(id, &run_kinds(10));
    publish_all(&bus, &events[..3]).await;
    let mut streams = Vec::new();
    for _ in 0..10 {
        streams.push(bus.subscribe(id, 0).await.unwrap());
    }
    assert_eq!(take(&mut streams[0], 3).await, events[..3]);
    assert_eq!(settles(1, || reader_connections(&h.url, &h.bus)).await, 1);
    let last = streams.pop().unwrap();
    drop(streams);
    assert_eq!(h.bus.readers(), 1, "one subscriber is left");
    drop(last);
    assert_eq!(h.bus.readers(), 0);
    let open = settles(0, || reader_connections(&h.url, &h.bus)).await;
    assert_eq!(open, 0, "reader connections after every subscriber left");
    // A new subscriber starts a new reader and still gets everything.
    let again = tokio::spawn(collect(bus.subscribe(id, 0).await.unwrap()));
    assert_eq!(h.bus.readers(), 1);
    publish_all(&bus, &events[3..]).await;
    assert_eq!(again.await.unwrap(), events);
    h.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Redis (REDIS_URL, default 127.0.0.1:6379)"]
async fn each_execution_has_one_reader_and_a_finished_one_needs_none() {
    let (h, bus) = setup(RedisBusConfig::default()).await;
    let (a, b, done) = (new_id(), new_id(), new_id());
    let finished = number(done, &run_kinds(5));
    publish_all(&bus, &finished).await;
    let streams = [
        bus.subscribe(a, 0).await.unwrap(),
        bus.subscribe(a, 0).await.unwrap(),
        bus.subscribe(b, 0).await.unwrap(),
        h.bus.clone().subscribe(b, 0).await.unwrap(),
    ];
    assert_eq!(h.bus.readers(), 2);
    // The finished execution is read from its backlog alone.
    let late = bus.subscribe(done, 2).await.unwrap();
    assert_eq!(h.bus.readers(), 2);
    assert_eq!(collect(late).await, finished[2..]);
    assert_eq!(settles(2, || reader_connections(&h.url, &h.bus)).await, 2);
    drop(streams);
    assert_eq!(h.bus.readers(), 0);
    h.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Redis (REDIS_URL, default 127.0.0.1:6379)"]
async fn lagging_subscribers_catch_up_from_redis() {
    let (h, bus) = setup(lagging_after_4(|c| c.read_batch = 7)).await;
    let id = new_id();
    let events = number(id, &run_kinds(500));
    let stalled = bus.subscribe(id, 0).await.unwrap();
    let mut slow = bus.subscribe(id, 0).await.unwrap();
    let polled = tokio::spawn(collect(bus.subscribe(id, 0).await.unwrap()));
    let slow = tokio::spawn(async move {
        let mut got = Vec::new();
        while let Some(event) = futures::StreamExt::next(&mut slow).await {
            got.push(event);
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        got
    });
    publish_all(&bus, &events).await;
    assert_eq!(polled.await.unwrap(), events);
    assert_eq!(slow.await.unwrap(), events);
    assert_eq!(collect(stalled).await, events);
    h.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Redis (REDIS_URL, default 127.0.0.1:6379)"]
async fn a_subscriber_lagging_past_trimmed_entries_is_interrupted() {
    let (h, bus) = setup(lagging_after_4(|c| c.max_entries = 10)).await;
    let id = new_id();
    let events = number(id, &stdout_lines(1000));
    let stalled = bus.subscribe(id, 0).await.unwrap();
    publish_all(&bus, &events).await;
    // What it missed is trimmed: no gap, just an early end (its reader may have broadcast a
    // few events before the trimming, kept in its buffer).
    let got = collect(stalled).await;
    assert!(got.len() < 5, "got {} events", got.len());
    assert_eq!(got, events[..got.len()]);
    assert_eq!(h.bus.readers(), 0);
    h.cleanup().await;
}
