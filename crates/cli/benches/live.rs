//! Live-output benchmark (prints figures; asserts nothing about speed):
//!
//! 1. write → client latency: a Python program prints its wall-clock time (`time.time_ns()`)
//!    every 20 ms, 200 times; a client of `GET /executions/:id/events` subtracts it from the
//!    wall clock when the chunk arrives. Beside it, in the same run, the same program under the
//!    bare interpreter with its stdout on a pipe read by this process (the floor: the pipe and
//!    the interpreter's own write), then, with `DATABASE_URL=postgres://…` and `REDIS_URL`
//!    set, the same through Redis with the API and the worker in separate processes;
//! 2. `POST …/run?wait=true` latency for a Python hello world (100 sequential runs), beside
//!    the bare interpreter and beside `POST …/run` + polling `GET /executions/:id` every 1 ms.
//!
//! Run (as root): `cargo bench -p livexec --bench live`, with
//! `DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379`
//! in front for the Redis figures.

#[path = "../tests/common/mod.rs"]
mod common;
mod support;

use common::sse;
use common::Server;
use livexec_runtimes::{Registry, Resolved};
use std::io::BufRead;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use support::{bare_command, summary};

const PY_HELLO: &str = "print('Hello World')";
const TICKS: usize = 200;

fn ticker() -> String {
    format!("import time\nfor _ in range({TICKS}):\n    print(time.time_ns(), flush=True)\n    time.sleep(0.02)")
}

fn now_ns(t: SystemTime) -> i128 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128)
}

/// Latencies in ms of every timestamp line in `text`, received at `wall`.
fn lags(text: &str, wall: SystemTime) -> Vec<f64> {
    text.lines()
        .filter_map(|l| l.trim().parse::<i128>().ok())
        .map(|sent| (now_ns(wall) - sent) as f64 / 1e6)
        .collect()
}

/// The ticker under the bare interpreter, stdout on a pipe read line by line here.
fn bare_ticker(rt: &Resolved, dir: &std::path::Path) -> Vec<f64> {
    let mut child = bare_command(rt, dir, "bare-ticker", &ticker())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut all = Vec::new();
    for line in out.lines() {
        all.extend(lags(&line.unwrap(), SystemTime::now()));
    }
    assert!(child.wait().unwrap().success());
    all
}

/// The ticker through the service; the latency of every line as the SSE client saw it.
async fn service_ticker(api: &Server) -> Vec<f64> {
    let id = api.submit("python", &ticker()).await;
    let url = api.url(&format!("/executions/{id}/events"));
    let events = sse::connect(&api.http, &url, None).await.all().await;
    assert_eq!(
        sse::result(&events)["status"],
        "COMPLETED",
        "{:?}",
        events.last()
    );
    let mut all = Vec::new();
    for e in events.iter().filter(|e| e.event == "stdout") {
        all.extend(lags(&e.chunk(), e.wall));
    }
    // The first lines may be replayed from before the client connected: drop them.
    all.split_off(all.len().min(10))
}

fn bare(rt: &Resolved, dir: &std::path::Path) -> f64 {
    let mut cmd = bare_command(rt, dir, "bare-hello", PY_HELLO);
    let start = Instant::now();
    let out = cmd.output().unwrap();
    assert!(out.status.success());
    start.elapsed().as_secs_f64() * 1e3
}

/// `POST …/run?wait=true`, n sequential runs (after 5 warm-ups): ms each, and the same minus
/// the program's own `execution_time_ms` (what the platform adds).
async fn wait_latency(server: &Server, n: usize) -> (Vec<f64>, Vec<f64>) {
    let session = server.session("python", PY_HELLO).await;
    let url = server.url(&format!("/code-sessions/{session}/run?wait=true"));
    let (mut total, mut beyond) = (Vec::new(), Vec::new());
    for _ in 0..n + 5 {
        let start = Instant::now();
        let res = server.http.post(&url).send().await.unwrap();
        assert_eq!(res.status(), 200);
        let v: serde_json::Value = res.json().await.unwrap();
        let took = start.elapsed().as_secs_f64() * 1e3;
        assert_eq!(v["stdout"], "Hello World\n", "{v}");
        total.push(took);
        beyond.push(took - v["execution_time_ms"].as_f64().unwrap_or(0.0));
    }
    (total.split_off(5), beyond.split_off(5))
}

/// `POST …/run` then `GET /executions/:id` every 1 ms until terminal.
async fn poll_latency(server: &Server, n: usize) -> Vec<f64> {
    let session = server.session("python", PY_HELLO).await;
    let mut out = Vec::new();
    for _ in 0..n + 5 {
        let start = Instant::now();
        let id = server.run(&session).await;
        loop {
            if common::is_terminal(&server.execution(&id).await) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        out.push(start.elapsed().as_secs_f64() * 1e3);
    }
    out.split_off(5)
}

fn line(label: &str, v: Vec<f64>) -> f64 {
    let n = v.len();
    let (p50, p95, p99) = summary(v);
    println!("{label:<46} p50 {p50:8.2}  p95 {p95:8.2}  p99 {p99:8.2}  (n={n})");
    p50
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::builtin().unwrap();
    let py = registry.get("python").unwrap().resolve().unwrap();
    let server = Server::start(dir.path(), &[("RUST_LOG", "warn")]).await;

    println!("== write → client latency, {TICKS} lines 20 ms apart (ms)");
    line(
        "bare python3 -u, stdout on a pipe",
        bare_ticker(&py, dir.path()),
    );
    line(
        "embedded: sandbox → in-process bus → SSE",
        service_ticker(&server).await,
    );
    let scaled = if livexec_testkit::bench_wants("DATABASE_URL")
        && livexec_testkit::bench_wants("REDIS_URL")
    {
        Some(common::scaled::scaled().await)
    } else {
        None
    };
    let mut redis_api = None;
    if let Some(sc) = &scaled {
        let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
        let mut api_env = sc.env();
        api_env.push(("LIVEXEC_ROLE".into(), "api".into()));
        api_env.push(("RUST_LOG".into(), "warn".into()));
        let mut worker_env = sc.env();
        worker_env.push(("LIVEXEC_ROLE".into(), "worker".into()));
        worker_env.push(("LIVEXEC_IDLE_POLL_MS".into(), "10".into()));
        worker_env.push(("RUST_LOG".into(), "warn".into()));
        let refs = common::scaled::refs;
        let api = Server::start(dirs[0].path(), &refs(&api_env)).await;
        let worker = Server::start(dirs[1].path(), &refs(&worker_env)).await;
        line(
            "scaled: worker → Redis stream → API node → SSE",
            service_ticker(&api).await,
        );
        redis_api = Some((api, worker, dirs));
    } else {
        println!("(Redis path skipped: set DATABASE_URL=postgres://… and REDIS_URL)");
    }

    println!("== python hello world, 100 sequential runs (ms; each run has a 0.5-core CPU quota, with its burst unless LIVEXEC_CPU_BURST=false)");
    let bare_ms: Vec<f64> = (0..100).map(|_| bare(&py, dir.path())).collect();
    let b50 = line("bare interpreter start → exit", bare_ms);
    let (total, beyond) = wait_latency(&server, 100).await;
    let w50 = line("embedded: POST …/run?wait=true → 200", total);
    line("  minus the program's own execution_time_ms", beyond);
    line(
        "embedded: POST …/run, poll GET every 1 ms",
        poll_latency(&server, 100).await,
    );
    println!("wait=true p50 over bare p50: +{:.1} ms", w50 - b50);
    if let Some((api, _, _)) = &redis_api {
        let (total, beyond) = wait_latency(api, 100).await;
        line("scaled: POST …/run?wait=true → 200", total);
        line("  minus the program's own execution_time_ms", beyond);
    }
    drop(redis_api);
    if let Some(sc) = scaled {
        sc.cleanup().await;
    }
}
