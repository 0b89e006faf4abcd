//! Publish → subscriber receipt latency (p50/p99/max), one event in flight at a time, for:
//! a bare tokio mpsc (the floor), `MemoryBus` directly, `Publisher` → `MemoryBus`,
//! `Publisher` → `MemoryBus` → SSE over HTTP on 127.0.0.1 (reqwest client), and the same
//! three through `RedisBus` when `REDIS_URL` is set.
//!
//! `cargo bench -p livexec-events --bench latency` (`REDIS_URL=redis://127.0.0.1:6379` for
//! the Redis rows; `LIVEXEC_BENCH_N` events per row, default 2000).

use axum::extract::{Path, State};
use axum::response::IntoResponse;
use axum::routing::get;
use futures::StreamExt;
use livexec_core::{Event, EventBus, EventKind, Status};
use livexec_events::{sse_events, MemoryBus, Publisher, RedisBus};
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "{name:<44} n={:<5} p50={:>8.1} µs  p99={:>8.1} µs  max={:>8.1} µs",
        samples.len(),
        us(at(0.5)),
        us(at(0.99)),
        us(*samples.last().unwrap_or(&Duration::ZERO)),
    );
}

fn chunk(i: usize) -> Vec<u8> {
    format!("line {i} of the program's output\n").into_bytes()
}

async fn mpsc_floor(n: usize) -> Vec<Duration> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        tx.send(chunk(i)).unwrap();
        rx.recv().await.unwrap();
        samples.push(t.elapsed());
    }
    samples
}

async fn bus_direct(bus: Arc<dyn EventBus>, n: usize) -> Vec<Duration> {
    let id = Uuid::now_v7();
    let mut stream = bus.subscribe(id, 0).await.unwrap();
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        let event = Event {
            execution_id: id,
            seq: i as u64 + 1,
            kind: EventKind::Stdout(chunk(i)),
        };
        let t = Instant::now();
        bus.publish(event).await.unwrap();
        stream.next().await.unwrap();
        samples.push(t.elapsed());
    }
    samples
}

async fn through_publisher(bus: Arc<dyn EventBus>, n: usize) -> Vec<Duration> {
    let id = Uuid::now_v7();
    let mut stream = bus.subscribe(id, 0).await.unwrap();
    let publisher = Publisher::start(Arc::clone(&bus), id);
    let handle = publisher.handle();
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        handle.stdout(&chunk(i));
        stream.next().await.unwrap();
        samples.push(t.elapsed());
    }
    publisher.finish(Status::Completed).await;
    samples
}

async fn serve_events(
    State(bus): State<Arc<dyn EventBus>>,
    Path(id): Path<Uuid>,
) -> axum::response::Response {
    let events = bus.subscribe(id, 0).await.unwrap();
    sse_events(id, Status::Running, 0, events, || async { None }).into_response()
}

async fn through_sse(bus: Arc<dyn EventBus>, n: usize) -> Vec<Duration> {
    let app = axum::Router::new()
        .route("/events/{id}", get(serve_events))
        .with_state(Arc::clone(&bus));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let id = Uuid::now_v7();
    // Subscribe through HTTP first, then measure each chunk's trip.
    let response = reqwest::get(format!("http://{addr}/events/{id}"))
        .await
        .unwrap();
    let mut body = response.bytes_stream();
    let publisher = Publisher::start(Arc::clone(&bus), id);
    let handle = publisher.handle();
    let mut samples = Vec::with_capacity(n);
    let mut buffer = Vec::new();
    for i in 0..n {
        let t = Instant::now();
        handle.stdout(&chunk(i));
        // Wait for one whole `stdout` frame.
        loop {
            if let Some(end) = buffer.windows(2).position(|w| w == b"\n\n") {
                let frame: Vec<u8> = buffer.drain(..end + 2).collect();
                if frame.windows(13).any(|w| w == b"event: stdout") {
                    break;
                }
                continue;
            }
            buffer.extend_from_slice(&body.next().await.unwrap().unwrap());
        }
        samples.push(t.elapsed());
    }
    publisher.finish(Status::Completed).await;
    samples
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = std::env::var("LIVEXEC_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    println!("publish → receipt latency, one event in flight, {n} events per row");
    report("baseline: tokio mpsc send → recv", mpsc_floor(n).await);
    let memory: Arc<dyn EventBus> = Arc::new(MemoryBus::default());
    report(
        "MemoryBus publish → subscriber",
        bus_direct(Arc::clone(&memory), n).await,
    );
    report(
        "Publisher → MemoryBus → subscriber",
        through_publisher(Arc::clone(&memory), n).await,
    );
    report(
        "Publisher → MemoryBus → SSE/HTTP client",
        through_sse(memory, n).await,
    );
    match std::env::var("REDIS_URL") {
        Ok(url) if !url.is_empty() => {
            let prefix = livexec_testkit::unique_name();
            let redis = RedisBus::connect(&url, &prefix).await.unwrap();
            let bus: Arc<dyn EventBus> = Arc::new(redis.clone());
            report(
                "RedisBus publish → subscriber",
                bus_direct(Arc::clone(&bus), n).await,
            );
            report(
                "Publisher → RedisBus → subscriber",
                through_publisher(Arc::clone(&bus), n).await,
            );
            report(
                "Publisher → RedisBus → SSE/HTTP client",
                through_sse(bus, n).await,
            );
            // Clean up this run's keys.
            livexec_testkit::delete_keys(&url, &prefix).await;
        }
        _ => println!("RedisBus rows skipped (set REDIS_URL=redis://… to measure them)"),
    }
}
