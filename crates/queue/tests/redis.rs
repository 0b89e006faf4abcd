//! Redis-only behaviour of `RedisQueue`: losing its keys, losing its group, and a Redis that is
//! unreachable or stops answering.
//!
//! `cargo test -p livexec-queue --test redis` (needs `REDIS_URL`).

mod support;

use livexec_core::JobQueue;
use livexec_queue::RedisQueue;
use livexec_testkit::{delete_keys, unique_name};
use std::future::Future;
use std::time::{Duration, Instant};
use support::proxy::{host_port, Proxy};
use support::{Harness, PrefixGuard};
use uuid::Uuid;

const LEASE: Duration = Duration::from_secs(60);
const SHORT: Duration = Duration::from_millis(300);

/// Far beyond the queue's own bound (about 2 s): reaching it means the call hung.
const HANG: Duration = Duration::from_secs(15);

/// Await `call`, failing the test if it hangs; prints how long it took.
async fn no_hang<T>(what: &str, call: impl Future<Output = T>) -> T {
    let start = Instant::now();
    let out = tokio::time::timeout(HANG, call)
        .await
        .unwrap_or_else(|_| panic!("{what} hung for {HANG:?}"));
    eprintln!("{what} returned after {:?}", start.elapsed());
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Redis (REDIS_URL, default 127.0.0.1:6379)"]
async fn keeps_working_after_its_keys_are_flushed() {
    let h = Harness::redis().await;
    let (url, prefix) = h.redis_prefix().unwrap();
    let lost = h.new_job().await;
    let lease = h.queue.claim("w1", LEASE).await.unwrap().expect("a job");
    let delayed = h.new_job().await;
    delete_keys(url, prefix).await;

    assert!(!h.queue.contains(lost).await.unwrap());
    assert!(!h.queue.contains(delayed).await.unwrap());
    assert!(
        !h.queue.extend(&lease, LEASE).await.unwrap(),
        "the lease went with the keys"
    );
    h.queue.ack(&lease).await.unwrap();
    assert_eq!(h.queue.claim("w1", LEASE).await.unwrap(), None);

    // A reconciler re-enqueues what the store still has as QUEUED: it runs again.
    h.queue.enqueue(lost, None).await.unwrap();
    let again = h
        .queue
        .claim("w2", LEASE)
        .await
        .unwrap()
        .expect("the re-enqueued job");
    assert_eq!((again.job.execution_id, again.job.attempt), (lost, 1));
    h.queue.ack(&again).await.unwrap();
    assert!(!h.queue.contains(lost).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Redis (REDIS_URL, default 127.0.0.1:6379)"]
async fn recreates_a_destroyed_consumer_group() {
    let h = Harness::redis().await;
    let (url, prefix) = h.redis_prefix().unwrap();
    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let destroyed: i64 = redis::cmd("XGROUP")
        .arg("DESTROY")
        .arg(format!("{prefix}:jobs"))
        .arg(format!("{prefix}:workers"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(destroyed, 1);

    // The stream exists without its group: enqueue adds to it, claim recreates the group.
    let id = h.new_job().await;
    let lease = h.queue.claim("w1", LEASE).await.unwrap().expect("a job");
    assert_eq!(lease.job.execution_id, id);
    h.queue.ack(&lease).await.unwrap();
    assert!(!h.queue.contains(id).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Redis (REDIS_URL, default 127.0.0.1:6379)"]
async fn two_queues_on_one_prefix_share_the_jobs() {
    let url = livexec_testkit::redis_url();
    let h = Harness::redis().await;
    let (_, prefix) = h.redis_prefix().unwrap();
    let other = RedisQueue::connect(&url, prefix).await.unwrap();
    let separate_prefix = unique_name();
    let _guard = PrefixGuard::new(&url, &separate_prefix);
    let separate = RedisQueue::connect(&url, &separate_prefix).await.unwrap();
    let id = h.new_job().await;
    assert!(other.contains(id).await.unwrap());
    assert!(!separate.contains(id).await.unwrap());
    assert_eq!(separate.claim("w1", LEASE).await.unwrap(), None);
    let lease = other.claim("w1", LEASE).await.unwrap().expect("the job");
    assert_eq!(lease.job.execution_id, id);
    assert_eq!(h.queue.claim("w2", LEASE).await.unwrap(), None);
    h.queue.ack(&lease).await.unwrap();
    assert!(!other.contains(id).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Redis (REDIS_URL, default 127.0.0.1:6379)"]
async fn skips_deleted_and_foreign_stream_entries() {
    let h = Harness::redis().await;
    let (url, prefix) = h.redis_prefix().unwrap();
    let stream = format!("{prefix}:jobs");
    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    // A leased entry deleted behind the queue's back, after its lease ran out.
    h.new_job().await;
    let gone = h.queue.claim("w1", SHORT).await.unwrap().expect("a job");
    let entry = gone.token.split('/').next().unwrap().to_string();
    let _: i64 = redis::cmd("XDEL")
        .arg(&stream)
        .arg(&entry)
        .query_async(&mut conn)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    // An entry some other program added, without the `eid` field.
    let _: String = redis::cmd("XADD")
        .arg(&stream)
        .arg("*")
        .arg("other")
        .arg("x")
        .query_async(&mut conn)
        .await
        .unwrap();
    let id = h.new_job().await;
    let lease = h
        .queue
        .claim("w2", LEASE)
        .await
        .unwrap()
        .expect("the real job");
    assert_eq!(lease.job.execution_id, id);
    h.queue.ack(&lease).await.unwrap();
    assert_eq!(h.queue.claim("w2", LEASE).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Redis (REDIS_URL, default 127.0.0.1:6379)"]
async fn serves_entries_written_before_the_owner_lists() {
    let h = Harness::redis().await;
    let (url, prefix) = h.redis_prefix().unwrap();
    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    // What an older version left: a job straight in the stream, and a delayed retry, neither
    // with an owner.
    let (legacy, delayed) = (Uuid::now_v7(), Uuid::now_v7());
    for id in [legacy, delayed] {
        let _: i64 = redis::cmd("SADD")
            .arg(format!("{prefix}:queued"))
            .arg(id.to_string())
            .query_async(&mut conn)
            .await
            .unwrap();
    }
    let _: String = redis::cmd("XADD")
        .arg(format!("{prefix}:jobs"))
        .arg("*")
        .arg("eid")
        .arg(legacy.to_string())
        .query_async(&mut conn)
        .await
        .unwrap();
    let _: i64 = redis::cmd("ZADD")
        .arg(format!("{prefix}:delayed"))
        .arg(0)
        .arg(delayed.to_string())
        .query_async(&mut conn)
        .await
        .unwrap();
    let owned = h.new_job_for(Some(Uuid::new_v4())).await;

    let first = h.queue.claim("w1", LEASE).await.unwrap().expect("a job");
    assert_eq!(
        first.job.execution_id, legacy,
        "the stream's entry goes first"
    );
    // Handed back, it joins the jobs without owner, behind the delayed one come due.
    h.queue.release(&first).await.unwrap();
    let mut order = Vec::new();
    while let Some(lease) = h.queue.claim("w1", LEASE).await.unwrap() {
        order.push(lease.job.execution_id);
        h.queue.ack(&lease).await.unwrap();
    }
    assert_eq!(order.len(), 3, "{order:?}");
    let pos = |id| order.iter().position(|x| *x == id).unwrap();
    assert!(pos(delayed) < pos(legacy), "{order:?}");
    for id in [legacy, delayed, owned] {
        assert!(!h.queue.contains(id).await.unwrap());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Redis (REDIS_URL, default 127.0.0.1:6379)"]
async fn malformed_token_is_an_error_not_a_panic() {
    let h = Harness::redis().await;
    let id = h.new_job().await;
    let mut lease = h.queue.claim("w1", LEASE).await.unwrap().expect("a job");
    lease.token = "no-slashes".into();
    let err = h.queue.ack(&lease).await.unwrap_err();
    assert!(err.to_string().contains("malformed lease token"), "{err}");
    assert!(h.queue.extend(&lease, LEASE).await.is_err());
    assert!(h.queue.contains(id).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_to_a_closed_port_fails_without_hanging() {
    let result = no_hang(
        "connect to 127.0.0.1:1",
        RedisQueue::connect("redis://127.0.0.1:1", "livexec_t_unreachable"),
    )
    .await;
    let err = result.err().expect("connect to a closed port succeeded");
    assert_eq!(err.op, "connect");
    assert!(err.to_string().contains("redis queue"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_to_a_silent_server_fails_without_hanging() {
    // Accepts connections and never answers: what a hung Redis looks like.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let url = format!("redis://{addr}");
    let result = no_hang("connect to a silent server", RedisQueue::connect(&url, "p")).await;
    assert!(result.is_err(), "connect to a silent server succeeded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs Redis (REDIS_URL, default 127.0.0.1:6379)"]
async fn calls_fail_while_redis_is_silent_and_recover_after() {
    let url = livexec_testkit::redis_url();
    let upstream = host_port(&url);
    let proxy = Proxy::start(upstream.clone()).await;
    let proxied = url.replacen(&upstream, &proxy.addr, 1);
    assert_ne!(proxied, url, "could not point {url} at the proxy");
    let prefix = unique_name();
    let _guard = PrefixGuard::new(&url, &prefix);
    let queue = RedisQueue::connect(&proxied, &prefix).await.unwrap();
    let id = Uuid::now_v7();
    queue.enqueue(id, None).await.unwrap();

    proxy.set_silent(true);
    // The server runs this claim after the outage, for a client that gave up: its short lease
    // runs out and the job is claimed again.
    let claim = no_hang("claim while silent", queue.claim("w1", SHORT)).await;
    assert!(claim.is_err(), "claim answered while Redis was silent");
    let contains = no_hang("contains while silent", queue.contains(id)).await;
    assert!(contains.is_err());
    let enqueue = no_hang("enqueue while silent", queue.enqueue(Uuid::now_v7(), None)).await;
    assert!(enqueue.is_err());
    assert!(no_hang("ping while silent", queue.ping()).await.is_err());

    proxy.set_silent(false);
    // The connection may need a moment to be re-established; nothing was lost meanwhile (the
    // enqueue that timed out also reached the server in the end: its job shows up too).
    let mut seen = Vec::new();
    for _ in 0..100 {
        match queue.claim("w1", LEASE).await {
            Ok(Some(lease)) => {
                seen.push(lease.job.execution_id);
                queue.ack(&lease).await.unwrap();
                if seen.contains(&id) {
                    break;
                }
            }
            Ok(None) | Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    assert!(
        seen.contains(&id),
        "the job enqueued before the outage was lost: {seen:?}"
    );
    assert!(!queue.contains(id).await.unwrap());
}
