//! What the HTTP layer costs: each endpoint over real HTTP (keep-alive, sequential) beside the
//! store call it wraps, on the same SQLite file with the embedded queue, in the same run.
//!
//! Run: `cargo bench -p livexec-api --bench api` (prints figures; asserts nothing).

use livexec_api::{launch, ApiConfig, AppState, SandboxHealth};
use livexec_core::{JobQueue, NewExecution, Store};
use livexec_queue::SqliteQueue;
use livexec_runtimes::Registry;
use livexec_store::SqliteStore;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

const N: usize = 2000;

fn summary(mut samples: Vec<Duration>) -> String {
    samples.sort();
    let pick = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e6;
    format!("p50 {:>7.0} µs  p99 {:>7.0} µs", pick(0.5), pick(0.99))
}

async fn measure<F, Fut>(mut f: F) -> Vec<Duration>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    for _ in 0..50 {
        f().await; // warm-up
    }
    let mut out = Vec::with_capacity(N);
    for _ in 0..N {
        let t = Instant::now();
        f().await;
        out.push(t.elapsed());
    }
    out
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let store = Arc::new(SqliteStore::connect(&url).await.expect("store"));
    let queue: Arc<dyn JobQueue> = Arc::new(SqliteQueue::new(store.pool().clone()));
    let state = AppState {
        store: store.clone() as Arc<dyn Store>,
        keys: store.clone() as Arc<dyn livexec_core::KeyStore>,
        queue,
        runtimes: Arc::new(Registry::builtin().expect("runtimes")),
        events: Arc::new(livexec_events::MemoryBus::new(Default::default())),
        config: ApiConfig::default(),
        sandbox: SandboxHealth::Ok("bench".into()),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(launch(listener, state, std::future::pending()));
    let client = reqwest::Client::new();

    let session = store
        .create_session("python", "print(1)")
        .await
        .expect("session");
    let sid = session.id;
    let exec = store
        .create_execution(NewExecution {
            owner: None,
            session_id: sid,
            idempotency_key: None,
            enqueue_job: true,
            options: Default::default(),
        })
        .await
        .expect("execution")
        .execution
        .id;

    println!("== livexec-api: {N} sequential requests each, SQLite file, keep-alive HTTP/1.1");
    let http = measure(|| {
        let req = client.get(format!("{base}/executions/{exec}"));
        async move {
            let body = req.send().await.expect("get").bytes().await.expect("body");
            assert!(!body.is_empty());
        }
    })
    .await;
    let direct = measure(|| {
        let store = store.clone();
        async move {
            let e = store.get_execution(exec).await.expect("get");
            let _ = serde_json::to_vec(&e.expect("exists").into_view());
        }
    })
    .await;
    println!("GET /executions/:id        http {}", summary(http));
    println!("  store.get_execution+JSON      {}", summary(direct));

    let http = measure(|| {
        let req = client.post(format!("{base}/code-sessions/{sid}/run"));
        async move {
            let res = req.send().await.expect("run");
            assert!(res.status().is_success());
        }
    })
    .await;
    let direct = measure(|| {
        let store = store.clone();
        async move {
            store
                .create_execution(NewExecution {
                    owner: None,
                    session_id: sid,
                    idempotency_key: None,
                    enqueue_job: true,
                    options: Default::default(),
                })
                .await
                .expect("create");
        }
    })
    .await;
    println!("POST /code-sessions/:id/run http {}", summary(http));
    println!("  store.create_execution        {}", summary(direct));

    // A judge's run: stdin, one extra file and 10 test cases (API.md §10).
    let tests: Vec<serde_json::Value> = (0..10)
        .map(|i| serde_json::json!({"stdin": format!("{i}\n"), "expected_stdout": format!("{}\n", 2 * i)}))
        .collect();
    let judge = serde_json::json!({
        "stdin": "1 2\n",
        "files": [{"name": "helper.py", "content": "def f(x):\n    return 2 * x\n"}],
        "limits": {"time_ms": 2000, "memory_mb": 64},
        "tests": tests
    });
    let http = measure(|| {
        let req = client
            .post(format!("{base}/code-sessions/{sid}/run"))
            .json(&judge);
        async move {
            let res = req.send().await.expect("run");
            assert!(res.status().is_success());
        }
    })
    .await;
    println!("POST …/run with 10 tests   http {}", summary(http));
    let mut one_shot = judge.clone();
    one_shot["language"] = "python".into();
    one_shot["source_code"] = "from helper import f\nprint(f(int(input())))".into();
    let http = measure(|| {
        let req = client.post(format!("{base}/executions")).json(&one_shot);
        async move {
            let res = req.send().await.expect("one-shot");
            assert!(res.status().is_success());
        }
    })
    .await;
    println!("POST /executions (one-shot) http {}", summary(http));

    let http = measure(|| {
        let req = client.get(format!("{base}/health"));
        async move {
            req.send().await.expect("health");
        }
    })
    .await;
    println!("GET /health                http {}", summary(http));
}
