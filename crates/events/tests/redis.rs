//! `RedisBus` specifics: bounded failure when Redis is down or goes away, trimming, TTLs.
//! The "goes away" tests start their own `redis-server` on a free port and kill it.

mod common;

use common::{collect, new_id, number, publish_all, run_kinds, RedisHarness};
use livexec_core::{EventBus, EventKind, Status};
use livexec_events::{EventsError, Publisher, RedisBus, RedisBusConfig};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

/// Hang guard: the operation must return (its own bounds are a few seconds).
async fn guard<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), fut)
        .await
        .unwrap_or_else(|_| panic!("{what} hung"))
}

#[tokio::test]
async fn connecting_to_a_closed_port_fails_instead_of_hanging() {
    let result = guard(
        "connect",
        RedisBus::connect("redis://127.0.0.1:1", "livexec_t_down"),
    )
    .await;
    match result {
        Err(EventsError::RedisConnect { addr, .. }) => assert!(addr.contains("127.0.0.1:1")),
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("connected to a closed port"),
    }
}

#[tokio::test]
async fn a_malformed_url_is_refused() {
    let result = RedisBus::connect("not a url", "p").await;
    assert!(matches!(result, Err(EventsError::RedisUrl { .. })));
}

#[tokio::test]
#[ignore = "needs Redis (REDIS_URL, default 127.0.0.1:6379)"]
async fn a_subscriber_needing_trimmed_entries_is_interrupted() {
    let config = RedisBusConfig {
        max_entries: 10,
        ..RedisBusConfig::default()
    };
    let h = RedisHarness::with_config(config).await;
    let bus: Arc<dyn EventBus> = Arc::new(h.bus.clone());
    let id = new_id();
    let kinds: Vec<_> = (0..1000)
        .map(|i| EventKind::Stdout(format!("{i}\n").into_bytes()))
        .collect();
    let events = number(id, &kinds);
    publish_all(&bus, &events).await;
    // MAXLEN ~ trims whole nodes, so the oldest entries are gone: no gap, just an end.
    let got = guard("subscribe", async {
        let mut stream = bus.subscribe(id, 0).await.unwrap();
        futures::StreamExt::next(&mut stream).await
    })
    .await;
    assert_eq!(got, None);
    h.cleanup().await;
}

#[tokio::test]
#[ignore = "needs Redis (REDIS_URL, default 127.0.0.1:6379)"]
async fn streams_expire_after_finished() {
    let h = RedisHarness::new().await;
    let bus: Arc<dyn EventBus> = Arc::new(h.bus.clone());
    let id = new_id();
    let events = number(id, &run_kinds(2));
    let client = redis::Client::open(h.url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    publish_all(&bus, &events[..2]).await;
    let ttl: i64 = redis::cmd("TTL")
        .arg(h.bus.key(id))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(ttl > 3600 && ttl <= 24 * 3600, "ttl before Finished: {ttl}");
    publish_all(&bus, &events[2..]).await;
    let ttl: i64 = redis::cmd("TTL")
        .arg(h.bus.key(id))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(ttl > 0 && ttl <= 3600, "ttl after Finished: {ttl}");
    h.bus.purge(id).await.unwrap();
    h.cleanup().await;
}

/// A `redis-server` of our own, killed on drop.
struct OwnRedis {
    child: Child,
    url: String,
}

impl OwnRedis {
    fn start() -> OwnRedis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let spawned = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = spawned.unwrap_or_else(|e| {
            panic!("this test needs redis-server on PATH to start its own: {e}")
        });
        OwnRedis {
            child,
            url: format!("redis://127.0.0.1:{port}"),
        }
    }

    async fn bus(&self) -> RedisBus {
        for _ in 0..100 {
            if let Ok(bus) = RedisBus::connect(&self.url, "livexec_t_own").await {
                return bus;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("own redis-server at {} never answered", self.url);
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server on PATH (starts its own)"]
async fn redis_going_away_interrupts_subscribers_and_fails_publishes() {
    let mut redis = OwnRedis::start();
    let bus: Arc<dyn EventBus> = Arc::new(redis.bus().await);
    let id = new_id();
    let events = number(id, &run_kinds(5));
    let mut stream = bus.subscribe(id, 0).await.unwrap();
    publish_all(&bus, &events[..3]).await;
    let first = common::take(&mut stream, 3).await;
    assert_eq!(first, events[..3]);
    redis.kill();
    // The subscriber ends (interrupted, no Finished); publishing errs; neither hangs.
    let rest = guard("interrupted subscriber", collect(stream)).await;
    assert!(rest.is_empty());
    let published = guard("publish", bus.publish(events[3].clone())).await;
    assert!(published.is_err());
    assert!(guard("subscribe", bus.subscribe(id, 0)).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server on PATH (starts its own)"]
async fn a_publisher_on_a_dead_bus_drops_events_and_still_finishes() {
    let mut redis = OwnRedis::start();
    let bus: Arc<dyn EventBus> = Arc::new(redis.bus().await);
    redis.kill();
    let id = new_id();
    let publisher = Publisher::start(bus, id);
    let handle = publisher.handle();
    // The blocking output callback of a worker, on its own thread: never blocks.
    tokio::task::spawn_blocking(move || {
        handle.status(Status::Running);
        for i in 0..10_000 {
            handle.stdout(format!("{i}\n").as_bytes());
        }
    })
    .await
    .unwrap();
    let stats = guard("finish", publisher.finish(Status::Completed)).await;
    assert_eq!(stats.published, 0);
    assert!(stats.dropped >= 2, "{stats:?}");
}
