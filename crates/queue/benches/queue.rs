//! Queue benchmark: how fast each backend hands out and retires jobs.
//!
//! For each backend (SQLite always; PostgreSQL with `DATABASE_URL`, Redis with `REDIS_URL`) it
//! fills a fresh queue with jobs, then drains it with 1 and with 8 concurrent claimers
//! (claim + ack per job), and prints jobs/s and the latency of claim and ack beside the
//! backend's bare round trip (`ping`) measured in the same run, the floor any operation pays.
//!
//! `cargo bench -p livexec-queue --bench queue` (`QUEUE_BENCH_JOBS`, default 2000).

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};
use support::Harness;

const LEASE: Duration = Duration::from_secs(60);

/// Median and 99th percentile of a set of samples.
fn percentiles(mut samples: Vec<Duration>) -> (Duration, Duration) {
    if samples.is_empty() {
        return (Duration::ZERO, Duration::ZERO);
    }
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    (at(0.5), at(0.99))
}

fn fmt(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

/// Drain the queue with `claimers` tasks; returns (wall time, claim samples, ack samples).
async fn drain(h: &Harness, claimers: usize) -> (Duration, Vec<Duration>, Vec<Duration>) {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..claimers {
        let queue = Arc::clone(&h.queue);
        tasks.push(tokio::spawn(async move {
            let (mut claims, mut acks) = (Vec::new(), Vec::new());
            let worker = format!("bench-{c}");
            loop {
                let t = Instant::now();
                let Some(lease) = queue.claim(&worker, LEASE).await.unwrap() else {
                    break;
                };
                claims.push(t.elapsed());
                let t = Instant::now();
                queue.ack(&lease).await.unwrap();
                acks.push(t.elapsed());
            }
            (claims, acks)
        }));
    }
    let (mut claims, mut acks) = (Vec::new(), Vec::new());
    for task in tasks {
        let (c, a) = task.await.unwrap();
        claims.extend(c);
        acks.extend(a);
    }
    (start.elapsed(), claims, acks)
}

async fn bench(name: &str, h: Harness, jobs: usize) {
    let mut pings = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        h.queue.ping().await.unwrap();
        pings.push(t.elapsed());
    }
    let (ping50, ping99) = percentiles(pings);
    println!(
        "{name}: ping (bare round trip) p50 {} p99 {}",
        fmt(ping50),
        fmt(ping99)
    );
    for claimers in [1, 8] {
        for _ in 0..jobs {
            h.new_job().await;
        }
        let (wall, claims, acks) = drain(&h, claimers).await;
        let done = claims.len();
        let (c50, c99) = percentiles(claims);
        let (a50, a99) = percentiles(acks);
        println!(
            "{name}: {claimers} claimer(s): {done} jobs in {:.2} s = {:.0} jobs/s; \
             claim p50 {} p99 {}; ack p50 {} p99 {}",
            wall.as_secs_f64(),
            done as f64 / wall.as_secs_f64(),
            fmt(c50),
            fmt(c99),
            fmt(a50),
            fmt(a99),
        );
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let jobs: usize = std::env::var("QUEUE_BENCH_JOBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    println!("queue benchmark: {jobs} jobs per drain");
    bench("sqlite", Harness::sqlite().await, jobs).await;
    if livexec_testkit::bench_wants("DATABASE_URL") {
        bench("postgres", Harness::postgres().await, jobs).await;
    }
    if livexec_testkit::bench_wants("REDIS_URL") {
        bench("redis", Harness::redis().await, jobs).await;
    }
}
