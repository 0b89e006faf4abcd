//! `JobQueue::arrivals`: the Redis queue tells about jobs added by any process (so idle
//! workers wake at once); the SQL queues have no such feed.
//!
//! `cargo test -p livexec-queue --test arrivals` (the Redis cases need `REDIS_URL`).

mod support;

use futures::StreamExt;
use livexec_core::{BoxStream, JobQueue};
use livexec_queue::RedisQueue;
use livexec_testkit::{delete_keys, unique_name};
use std::time::Duration;
use support::{Harness, PrefixGuard};
use uuid::Uuid;

const LEASE: Duration = Duration::from_secs(60);

/// Far beyond any wait here: reaching it means the feed missed the job.
const PATIENCE: Duration = Duration::from_secs(30);

/// The next item of the feed, failing the test if none comes.
async fn next(feed: &mut BoxStream<usize>, what: &str) -> usize {
    tokio::time::timeout(PATIENCE, feed.next())
        .await
        .unwrap_or_else(|_| panic!("no arrival for {what} within {PATIENCE:?}"))
        .expect("the feed never ends")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Redis (REDIS_URL, default 127.0.0.1:6379)"]
async fn redis_arrivals_count_jobs_added_by_other_processes_after_it_starts() {
    let url = livexec_testkit::redis_url();
    let h = Harness::redis().await;
    let (_, prefix) = h.redis_prefix().unwrap();
    // Already there when the feed starts: claimable by polling, not an arrival.
    let before = h.new_job().await;
    let mut feed = h
        .queue
        .arrivals()
        .await
        .expect("the Redis queue has arrivals");

    // Another process on another prefix: not ours. Then one on ours: exactly one arrival.
    let separate_prefix = unique_name();
    let _guard = PrefixGuard::new(&url, &separate_prefix);
    let separate = RedisQueue::connect(&url, &separate_prefix).await.unwrap();
    separate.enqueue(Uuid::now_v7(), None).await.unwrap();
    let other = RedisQueue::connect(&url, prefix).await.unwrap();
    let id = Uuid::now_v7();
    other.enqueue(id, None).await.unwrap();
    assert_eq!(next(&mut feed, "an enqueue").await, 1);

    // Enqueueing it again adds nothing; a job handed back unrun is an arrival.
    other.enqueue(id, None).await.unwrap();
    let lease = other.claim("w1", LEASE).await.unwrap().expect("a job");
    assert_eq!(lease.job.execution_id, before);
    other.release(&lease).await.unwrap();
    assert_eq!(next(&mut feed, "a release").await, 1);

    // Three at once: counted, in one or more items.
    for _ in 0..3 {
        other.enqueue(Uuid::now_v7(), None).await.unwrap();
    }
    let mut seen = 0;
    while seen < 3 {
        seen += next(&mut feed, "three enqueues").await;
    }
    assert_eq!(seen, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Redis (REDIS_URL, default 127.0.0.1:6379)"]
async fn redis_arrivals_go_on_after_the_keys_are_flushed() {
    let h = Harness::redis().await;
    let (url, prefix) = h.redis_prefix().unwrap();
    h.new_job().await;
    let mut feed = h
        .queue
        .arrivals()
        .await
        .expect("the Redis queue has arrivals");
    delete_keys(url, prefix).await;
    // The stream is made anew; its entries still come after the feed's cursor.
    h.new_job().await;
    assert_eq!(next(&mut feed, "an enqueue after the flush").await, 1);
}

#[tokio::test]
async fn sql_queues_have_no_arrivals() {
    let h = Harness::sqlite().await;
    assert!(h.queue.arrivals().await.is_none());
}
