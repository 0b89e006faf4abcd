//! Service benchmark (prints figures; asserts nothing about speed):
//!
//! 1. latency `POST …/run` → COMPLETED for a Python hello world, p50/p95 of 100 sequential
//!    runs, beside the bare interpreter's start time and the sandbox engine's own cost, all
//!    measured in this run;
//! 2. throughput of a burst of 200 mixed Python/JavaScript hello worlds (runs/s), beside the
//!    bare interpreters at the same parallelism;
//! 3. `GET /executions/:id` requests/s and p50/p99 under 64 concurrent connections;
//! 4. the server's idle RSS;
//! 5. with `REDIS_URL` set: the latency of (1) with the Redis queue;
//! 6. with `DATABASE_URL=postgres://…` and `REDIS_URL` set: burst throughput with one and
//!    with two worker processes (`--role worker`) behind one `--role api`.
//!
//! Run (as root): `cargo bench -p livexec --bench service`, or with
//! `DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379`
//! in front for (5) and (6).

#[path = "../tests/common/mod.rs"]
mod common;
mod support;

use common::Server;
use livexec_runtimes::{Registry, Resolved};
use livexec_sandbox::{Limits, Sandbox, SandboxConfig};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{bare_command, summary};

const PY_HELLO: &str = "print('Hello World')";
const JS_HELLO: &str = "console.log('Hello World')";

/// The bare interpreter, same file and clean environment as the sandbox gives it.
fn bare(rt: &Resolved, dir: &std::path::Path, code: &str) -> Duration {
    let mut cmd = bare_command(rt, dir, &format!("bare-{}", rt.id), code);
    let start = Instant::now();
    let out = cmd.output().unwrap();
    let took = start.elapsed();
    assert!(out.status.success());
    took
}

fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

async fn latency(server: &Server, n: usize) -> (Vec<f64>, Vec<f64>) {
    let session = server.session("python", PY_HELLO).await;
    let (mut total, mut program) = (Vec::new(), Vec::new());
    for _ in 0..n + 5 {
        let start = Instant::now();
        let id = server.run(&session).await;
        let v = loop {
            let v = server.execution(&id).await;
            if common::is_terminal(&v) {
                break v;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        };
        let took = start.elapsed().as_secs_f64() * 1e3;
        assert_eq!(v["status"], "COMPLETED", "{v}");
        total.push(took);
        program.push(v["execution_time_ms"].as_f64().unwrap());
    }
    // The first runs warm caches; drop them.
    (total.split_off(5), program.split_off(5))
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let registry = Registry::builtin().unwrap();
    let py = registry.get("python").unwrap().resolve().unwrap();
    let js = registry.get("javascript").unwrap().resolve().unwrap();
    let workers_s = workers.to_string();
    let server = Server::start(
        dir.path(),
        &[("LIVEXEC_WORKERS", &workers_s), ("RUST_LOG", "warn")],
    )
    .await;
    let pid = server.pid();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_rss = rss_kb(pid);

    // 1. Latency, beside the bare interpreter and the sandbox engine alone.
    let bare_py: Vec<f64> = (0..100)
        .map(|_| bare(&py, dir.path(), PY_HELLO).as_secs_f64() * 1e3)
        .collect();
    let sandbox = Sandbox::new(SandboxConfig::default()).unwrap();
    let mut setup = Vec::new();
    let engine: Vec<f64> = (0..100)
        .map(|_| {
            let cmd = livexec_engine::command_for(&py, PY_HELLO, &[], b"", Limits::default());
            let start = Instant::now();
            let o = sandbox.run(&cmd, &mut |_, _| {}).unwrap();
            assert_eq!(o.exit_code, Some(0));
            let took = start.elapsed().as_secs_f64() * 1e3;
            setup.push(took - o.wall_ms as f64);
            took
        })
        .collect();
    let (s50, _, _) = summary(setup);
    let (total, program) = latency(&server, 100).await;
    let beyond: Vec<f64> = total.iter().zip(&program).map(|(t, p)| t - p).collect();
    let (b50, b95, _) = summary(bare_py);
    let (e50, e95, _) = summary(engine);
    let (t50, t95, _) = summary(total);
    let (p50, _, _) = summary(program);
    let (o50, o95, _) = summary(beyond);
    println!("== latency: python hello world, 100 sequential runs (ms)");
    println!("bare interpreter start→exit      p50 {b50:7.1}  p95 {b95:7.1}");
    println!("sandbox engine alone (run())     p50 {e50:7.1}  p95 {e95:7.1}");
    println!("HTTP POST run → COMPLETED        p50 {t50:7.1}  p95 {t95:7.1}   (client polls GET every 1 ms)");
    println!("  of which the program's own execution_time_ms p50 {p50:.1}");
    println!("engine alone minus the program's own time (jail setup + teardown) p50 {s50:.1}");
    println!("HTTP total minus the program's own time (platform + jail setup, per run) p50 {o50:.1}  p95 {o95:.1}");
    println!(
        "HTTP p50 minus engine p50 (noisy: separate samples)  {:7.1}",
        t50 - e50
    );

    // 2. Throughput of a burst of 200 mixed hello worlds, beside bare interpreters.
    let bare_start = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    std::thread::scope(|s| {
        for _ in 0..workers {
            let next = next.clone();
            let (py, js, d) = (&py, &js, dir.path());
            s.spawn(move || loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if i >= 200 {
                    break;
                }
                if i.is_multiple_of(2) {
                    bare(py, d, PY_HELLO);
                } else {
                    bare(js, d, JS_HELLO);
                }
            });
        }
    });
    let bare_rate = 200.0 / bare_start.elapsed().as_secs_f64();
    let (py_s, js_s) = (
        server.session("python", PY_HELLO).await,
        server.session("javascript", JS_HELLO).await,
    );
    let burst_start = Instant::now();
    let mut ids = Vec::new();
    for i in 0..200usize {
        ids.push(
            server
                .run(if i.is_multiple_of(2) { &py_s } else { &js_s })
                .await,
        );
    }
    for id in &ids {
        let v = server.wait(id).await;
        assert_eq!(v["status"], "COMPLETED", "{v}");
    }
    let rate = 200.0 / burst_start.elapsed().as_secs_f64();
    println!(
        "== throughput: burst of 200 mixed python/javascript hello worlds, parallelism {workers}"
    );
    println!("bare interpreters                {bare_rate:7.1} runs/s");
    println!(
        "service (HTTP, queue, sandbox)   {rate:7.1} runs/s   ({:.0}% of bare)",
        rate / bare_rate * 100.0
    );

    // The same burst when each run's 0.5-core quota is taken into account: 2 runs per core.
    let double = (workers * 2).to_string();
    let ddir = tempfile::tempdir().unwrap();
    let dserver = Server::start(
        ddir.path(),
        &[("LIVEXEC_WORKERS", &double), ("RUST_LOG", "warn")],
    )
    .await;
    let (dpy, djs) = (
        dserver.session("python", PY_HELLO).await,
        dserver.session("javascript", JS_HELLO).await,
    );
    let start = Instant::now();
    let mut dids = Vec::new();
    for i in 0..200usize {
        dids.push(
            dserver
                .run(if i.is_multiple_of(2) { &dpy } else { &djs })
                .await,
        );
    }
    for id in &dids {
        assert_eq!(dserver.wait(id).await["status"], "COMPLETED");
    }
    let drate = 200.0 / start.elapsed().as_secs_f64();
    println!(
        "service, LIVEXEC_WORKERS={double} (2 per core: each run is capped at 0.5 core) {drate:7.1} runs/s   ({:.0}% of bare)",
        drate / bare_rate * 100.0
    );
    drop(dserver);

    // 3. GET /executions/:id under 64 concurrent connections.
    let id = ids[0].clone();
    let url = server.url(&format!("/executions/{id}"));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();
    let run_for = Duration::from_secs(3);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let (client, url) = (client.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while start.elapsed() < run_for {
                let t = Instant::now();
                let r = client.get(&url).send().await.unwrap();
                assert!(r.status().is_success());
                let _ = r.bytes().await.unwrap();
                lat.push(t.elapsed().as_secs_f64() * 1e3);
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let secs = start.elapsed().as_secs_f64();
    let n = all.len();
    let (g50, _, g99) = summary(all);
    println!("== GET /executions/:id, 64 concurrent connections, {secs:.1} s (load generator in-process, same 2 cores)");
    println!(
        "{:.0} requests/s   p50 {g50:.2} ms   p99 {g99:.2} ms",
        n as f64 / secs
    );

    println!("== memory");
    println!(
        "server idle RSS {:.1} MiB; after the benchmark {:.1} MiB",
        idle_rss as f64 / 1024.0,
        rss_kb(pid) as f64 / 1024.0
    );

    // 5. The Redis path, when a Redis is at hand.
    if let Ok(redis) = std::env::var("REDIS_URL") {
        let rdir = tempfile::tempdir().unwrap();
        let prefix = format!("livexec-bench-{}", std::process::id());
        let rserver = Server::start(
            rdir.path(),
            &[
                ("LIVEXEC_WORKERS", &workers_s),
                ("RUST_LOG", "warn"),
                ("REDIS_URL", &redis),
                ("LIVEXEC_REDIS_PREFIX", &prefix),
            ],
        )
        .await;
        let (total, _) = latency(&rserver, 100).await;
        let (r50, r95, _) = summary(total);
        println!("== latency with the Redis queue (SQLite store)");
        println!("HTTP POST run → COMPLETED        p50 {r50:7.1}  p95 {r95:7.1}   (+{:.1} ms over embedded p50)", r50 - t50);
    } else {
        println!("== Redis path skipped (set REDIS_URL=redis://127.0.0.1:6379 to measure it)");
    }
    scaled_throughput(workers).await;
}

/// Submit a burst of 200 mixed hello worlds through `api`; runs/s until all are COMPLETED.
async fn burst(api: &Server) -> f64 {
    let (py, js) = (
        api.session("python", PY_HELLO).await,
        api.session("javascript", JS_HELLO).await,
    );
    let start = Instant::now();
    let mut ids = Vec::new();
    for i in 0..200usize {
        ids.push(api.run(if i.is_multiple_of(2) { &py } else { &js }).await);
    }
    for id in &ids {
        assert_eq!(api.wait(id).await["status"], "COMPLETED");
    }
    200.0 / start.elapsed().as_secs_f64()
}

/// (6): one `--role api`, then one and two `--role worker` processes.
async fn scaled_throughput(workers: usize) {
    if !(livexec_testkit::bench_wants("DATABASE_URL") && livexec_testkit::bench_wants("REDIS_URL"))
    {
        println!("== scaled throughput skipped (set DATABASE_URL=postgres://… and REDIS_URL)");
        return;
    }
    let sc = common::scaled::scaled().await;
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut api_env = sc.env();
    api_env.push(("LIVEXEC_ROLE".into(), "api".into()));
    api_env.push(("RUST_LOG".into(), "warn".into()));
    let mut worker_env = sc.env();
    worker_env.push(("LIVEXEC_ROLE".into(), "worker".into()));
    worker_env.push(("LIVEXEC_WORKERS".into(), workers.to_string()));
    worker_env.push(("LIVEXEC_IDLE_POLL_MS".into(), "10".into()));
    worker_env.push(("RUST_LOG".into(), "warn".into()));
    let refs = common::scaled::refs;
    let api = Server::start(dirs[0].path(), &refs(&api_env)).await;
    let w1 = Server::start(dirs[1].path(), &refs(&worker_env)).await;
    let one = burst(&api).await;
    let w2 = Server::start(dirs[2].path(), &refs(&worker_env)).await;
    let two = burst(&api).await;
    println!("== PostgreSQL + Redis, burst of 200 mixed hello worlds, LIVEXEC_WORKERS={workers} per worker process");
    println!("1 worker process   {one:7.1} runs/s");
    println!("2 worker processes {two:7.1} runs/s   (same {workers} cores)");
    drop((api, w1, w2));
    sc.cleanup().await;
}
