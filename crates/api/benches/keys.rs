//! What a key check costs: `GET /executions/:id` requests per second with no authentication
//! (`LIVEXEC_AUTH=off`), with a key checked through the cache of validated keys (the default,
//! TTL 1 s), and with a key checked against the database on every request (no cache), in the
//! same run, on the same SQLite file, over real HTTP with keep-alive and 8 concurrent clients.
//! The rounds alternate so that drift hits every variant alike.
//!
//! Run: `cargo bench -p livexec-api --bench keys` (prints figures; asserts nothing).

use livexec_api::auth::cache::CachedKeys;
use livexec_api::auth::token::{hash_token, new_token};
use livexec_api::auth::AuthMode;
use livexec_api::{launch, ApiConfig, AppState, SandboxHealth};
use livexec_core::{JobQueue, KeyStore, NewExecution, Store};
use livexec_queue::SqliteQueue;
use livexec_runtimes::Registry;
use livexec_store::SqliteStore;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CLIENTS: usize = 8;
const ROUND: Duration = Duration::from_secs(2);
const ROUNDS: usize = 3;

async fn serve(store: &Arc<SqliteStore>, keys: Arc<dyn KeyStore>, auth: AuthMode) -> String {
    let state = AppState {
        store: store.clone() as Arc<dyn Store>,
        keys,
        queue: Arc::new(SqliteQueue::new(store.pool().clone())) as Arc<dyn JobQueue>,
        runtimes: Arc::new(Registry::builtin().expect("runtimes")),
        events: Arc::new(livexec_events::MemoryBus::new(Default::default())),
        config: ApiConfig {
            auth,
            ..ApiConfig::default()
        },
        sandbox: SandboxHealth::Ok("bench".into()),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(launch(listener, state, std::future::pending()));
    base
}

/// Requests answered 200 in one round of `CLIENTS` concurrent loops.
async fn round(url: &str, token: Option<&str>) -> u64 {
    let done = Arc::new(AtomicU64::new(0));
    let end = Instant::now() + ROUND;
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let (url, token, done) = (url.to_owned(), token.map(str::to_owned), done.clone());
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            while Instant::now() < end {
                let mut req = client.get(&url);
                if let Some(t) = &token {
                    req = req.bearer_auth(t);
                }
                let res = req.send().await.expect("get");
                assert!(res.status().is_success(), "{}", res.status());
                res.bytes().await.expect("body");
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        t.await.expect("client");
    }
    done.load(Ordering::Relaxed)
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let store = Arc::new(SqliteStore::connect(&url).await.expect("store"));
    let token = new_token().expect("token");
    store
        .create_key("bench", "free", true, &hash_token(&token))
        .await
        .expect("key");
    let session = store
        .create_session("python", "print(1)")
        .await
        .expect("session");
    let exec = store
        .create_execution(NewExecution {
            owner: None,
            session_id: session.id,
            idempotency_key: None,
            enqueue_job: false,
            options: Default::default(),
        })
        .await
        .expect("execution")
        .execution
        .id;

    let raw = store.clone() as Arc<dyn KeyStore>;
    let cached = Arc::new(CachedKeys::new(raw.clone(), Duration::from_secs(1)));
    let open = serve(&store, raw.clone(), AuthMode::Off).await;
    let keyed = serve(&store, cached, AuthMode::Required).await;
    let uncached = serve(&store, raw, AuthMode::Required).await;
    let path = format!("/executions/{exec}");

    let variants: [(&str, &str, Option<&str>); 3] = [
        ("no auth (LIVEXEC_AUTH=off)", open.as_str(), None),
        (
            "key, cached (default)",
            keyed.as_str(),
            Some(token.as_str()),
        ),
        ("key, no cache", uncached.as_str(), Some(token.as_str())),
    ];
    for (_, base, token) in &variants {
        round(&format!("{base}{path}"), *token).await; // warm-up
    }
    let mut totals = [0u64; 3];
    for _ in 0..ROUNDS {
        for (i, (_, base, token)) in variants.iter().enumerate() {
            totals[i] += round(&format!("{base}{path}"), *token).await;
        }
    }
    let secs = (ROUND * ROUNDS as u32).as_secs_f64();
    println!(
        "== GET /executions/:id, {CLIENTS} concurrent keep-alive clients, {ROUNDS} rounds of {} s each, SQLite",
        ROUND.as_secs()
    );
    let base_rps = totals[0] as f64 / secs;
    for (i, (name, _, _)) in variants.iter().enumerate() {
        let rps = totals[i] as f64 / secs;
        println!(
            "{name:<28} {rps:>8.0} req/s  ({:+.1}% beside no auth)",
            (rps / base_rps - 1.0) * 100.0
        );
    }
}
