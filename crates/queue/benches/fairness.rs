//! Fairness benchmark (issue 13): while key A has 1000 queued runs, how soon is a single run of
//! key B claimed?
//!
//! For each backend (SQLite always; PostgreSQL with `DATABASE_URL`, Redis with `REDIS_URL`) it
//! queues A's 1000 jobs and then B's one, and drains the queue with one worker (claim + ack,
//! so a claim stands for "a worker became free"), counting the claims and the time until B's
//! job is claimed. The baseline, in the same run, is the same burst where the last job belongs
//! to A too: first come, first served, the order every queue had before (claim 1001). It also
//! prints the median cost of one claim with about 1000 jobs queued, with two owners and with one.
//!
//! `cargo bench -p livexec-queue --bench fairness` (`FAIRNESS_BURST`, default 1000).

#[path = "../tests/support/mod.rs"]
mod support;

use livexec_core::Owner;
use std::time::{Duration, Instant};
use support::Harness;
use uuid::Uuid;

const LEASE: Duration = Duration::from_secs(60);
/// Claims timed for the claim cost (the queue stays near its full length meanwhile).
const TIMED_CLAIMS: usize = 100;

/// What one drain measured.
struct Run {
    /// Claims up to and including the one that took the lone job.
    claims: usize,
    /// Time from the first claim until the lone job was claimed.
    until: Duration,
    /// Median duration of one of the first [`TIMED_CLAIMS`] claims.
    claim_p50: Duration,
}

/// Queue `burst` jobs of A then one of `lone`, and drain with one worker.
async fn run(h: &Harness, burst: usize, a: Owner, lone: Owner) -> Run {
    for _ in 0..burst {
        h.new_job_for(a).await;
    }
    let target = h.new_job_for(lone).await;
    let (mut claims, mut found, mut samples) = (0, None, Vec::new());
    let start = Instant::now();
    loop {
        let t = Instant::now();
        let Some(lease) = h.queue.claim("bench", LEASE).await.unwrap() else {
            break;
        };
        if samples.len() < TIMED_CLAIMS {
            samples.push(t.elapsed());
        }
        claims += 1;
        if lease.job.execution_id == target {
            found = Some((claims, start.elapsed()));
        }
        h.queue.ack(&lease).await.unwrap();
    }
    let (claims, until) = found.expect("the lone job was never claimed");
    samples.sort();
    Run {
        claims,
        until,
        claim_p50: samples[samples.len() / 2],
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn us(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

async fn bench(name: &str, h: Harness, burst: usize) {
    let (a, b) = (Some(Uuid::new_v4()), Some(Uuid::new_v4()));
    let fifo = run(&h, burst, a, a).await;
    let fair = run(&h, burst, a, b).await;
    for (order, r) in [("A's own (FIFO)", &fifo), ("B's (fair)", &fair)] {
        println!(
            "| {name} | {order} | {} | {} | {} |",
            r.claims,
            ms(r.until),
            us(r.claim_p50)
        );
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let burst: usize = std::env::var("FAIRNESS_BURST")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    println!("fairness: key A queues {burst} runs, then one more run is queued; one worker");
    println!(
        "| backend | the last run is | claimed at claim | after | claim p50 ({burst} queued) |"
    );
    println!("|---|---|---|---|---|");
    bench("sqlite", Harness::sqlite().await, burst).await;
    if livexec_testkit::bench_wants("DATABASE_URL") {
        bench("postgres", Harness::postgres().await, burst).await;
    }
    if livexec_testkit::bench_wants("REDIS_URL") {
        bench("redis", Harness::redis().await, burst).await;
    }
}
