//! Store latency and throughput, SQLite and PostgreSQL side by side, with the bare round trip
//! (`SELECT 1` on the same pool) as the baseline in the same run.
//!
//! `cargo bench -p livexec-store --bench store` (set `DATABASE_URL=postgres://…` to include
//! PostgreSQL; it benchmarks in a throw-away database `livexec_t_<uuid>`). `BENCH_N` sets the
//! number of sequential operations per figure (default 300).

use livexec_core::{NewExecution, RunReport, RunResult, Status, Store};
use livexec_store::{PgStore, SqliteStore};
use sqlx::Executor;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Latencies of `n` sequential calls of `op`.
async fn measure<F, Fut>(n: usize, mut op: F) -> Vec<Duration>
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        op(i).await;
        out.push(t.elapsed());
    }
    out
}

fn report(backend: &str, what: &str, mut lat: Vec<Duration>) {
    lat.sort();
    let pct = |p: f64| {
        let idx = ((lat.len() as f64 - 1.0) * p).round() as usize;
        lat[idx].as_secs_f64() * 1e3
    };
    let total: Duration = lat.iter().sum();
    println!(
        "{backend:<9} {what:<34} p50 {:>7.3} ms  p95 {:>7.3} ms  {:>8.0} ops/s (sequential)",
        pct(0.5),
        pct(0.95),
        lat.len() as f64 / total.as_secs_f64()
    );
}

fn done() -> RunResult {
    RunResult {
        status: Status::Completed,
        report: RunReport {
            stdout: b"Hello, World!\n".to_vec(),
            execution_time_ms: 20,
            exit_code: Some(0),
            cpu_time_ms: Some(15),
            memory_kb: Some(9000),
            ..RunReport::default()
        },
    }
}

/// Every figure for one backend; `ping` is the bare round trip baseline.
async fn bench_store<P, PF>(backend: &str, store: Arc<dyn Store>, n: usize, ping: P)
where
    P: Fn() -> PF,
    PF: Future<Output = ()>,
{
    report(backend, "baseline: SELECT 1", measure(n, |_| ping()).await);
    let s = store
        .create_session("python", "print('Hello, World!')")
        .await
        .unwrap();
    let new = |key: Option<String>| NewExecution {
        owner: None,
        session_id: s.id,
        idempotency_key: key,
        enqueue_job: true,
        options: Default::default(),
    };
    let lat = measure(n, |_| async {
        store.create_execution(new(None)).await.unwrap();
    })
    .await;
    report(backend, "create_execution (+job)", lat);
    let lat = measure(n, |i| {
        let store = &store;
        let new = &new;
        async move {
            store
                .create_execution(new(Some(format!("k{i}"))))
                .await
                .unwrap();
        }
    })
    .await;
    report(backend, "create_execution with key (new)", lat);
    let lat = measure(n, |i| {
        let store = &store;
        let new = &new;
        async move {
            let again = store
                .create_execution(new(Some(format!("k{i}"))))
                .await
                .unwrap();
            assert!(!again.created);
        }
    })
    .await;
    report(backend, "create_execution with key (repeat)", lat);
    let ids: Vec<_> = store
        .list_executions(s.id, n as u32, None)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    let lat = measure(ids.len(), |i| {
        let store = &store;
        let id = ids[i];
        async move {
            store.get_execution(id).await.unwrap().unwrap();
        }
    })
    .await;
    report(backend, "get_execution", lat);
    let result = done();
    let lat = measure(ids.len(), |i| {
        let store = &store;
        let id = ids[i];
        let result = &result;
        async move {
            assert!(store.start_execution(id, 1).await.unwrap().is_some());
            assert!(store.finish_execution(id, 1, result).await.unwrap());
        }
    })
    .await;
    report(backend, "start + finish", lat);

    // Throughput of create_execution from 8 concurrent callers.
    let per_task = n / 8 + 1;
    let t = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        let sid = s.id;
        tasks.push(tokio::spawn(async move {
            for _ in 0..per_task {
                let new = NewExecution {
                    owner: None,
                    session_id: sid,
                    idempotency_key: None,
                    enqueue_job: true,
                    options: Default::default(),
                };
                store.create_execution(new).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    println!(
        "{backend:<9} {:<34} {:>8.0} ops/s (8 concurrent callers)",
        "create_execution (+job)",
        (per_task * 8) as f64 / t.elapsed().as_secs_f64()
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = std::env::var("BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let sqlite = SqliteStore::connect(&url).await.unwrap();
    let pool = sqlite.pool().clone();
    bench_store("sqlite", Arc::new(sqlite), n, || {
        let pool = pool.clone();
        async move {
            pool.execute("SELECT 1").await.unwrap();
        }
    })
    .await;

    let Some(admin_url) = std::env::var("DATABASE_URL")
        .ok()
        .filter(|u| livexec_testkit::is_postgres_url(u))
    else {
        println!("postgres  SKIPPED (set DATABASE_URL=postgres://… to include it)");
        return;
    };
    let db = livexec_testkit::TestDatabase::create(&admin_url).await;
    let pg = PgStore::connect(db.url()).await.unwrap();
    let pool = pg.pool().clone();
    bench_store("postgres", Arc::new(pg), n, || {
        let pool = pool.clone();
        async move {
            pool.execute("SELECT 1").await.unwrap();
        }
    })
    .await;
    pool.close().await;
    db.cleanup().await;
}
