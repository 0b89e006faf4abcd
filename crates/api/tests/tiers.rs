//! Tiers over HTTP (issue 13): the request rate per key (429 with its headers, in each
//! surface's shape), the daily and concurrent quotas on executions, the tier's per-run maxima
//! and defaults, an open service without limits, and two API nodes on one PostgreSQL and one
//! Redis sharing the limits. No worker runs, so executions stay QUEUED.

mod common;

use common::{error_body, start_on, start_with, Server};
use livexec_api::auth::token::{hash_token, new_token};
use livexec_api::{ApiConfig, RateStore, SandboxHealth, Tiers};
use livexec_core::{JobQueue, KeyStore, Store};
use livexec_queue::PgQueue;
use livexec_store::PgStore;
use livexec_testkit::TestDatabase;
use reqwest::{RequestBuilder, Response, StatusCode};
use serde_json::{json, Value};
use std::sync::Arc;

fn config(tiers: &str) -> ApiConfig {
    ApiConfig {
        tiers: Tiers::from_toml(tiers).expect("tiers"),
        ..ApiConfig::default()
    }
}

async fn start_tiers(tiers: &str) -> Server {
    start_with(config(tiers), SandboxHealth::Ok("cgroup v1".into())).await
}

/// A new key of `tier` on `store`; its token.
async fn key(store: &impl KeyStore, tier: &str) -> String {
    let token = new_token().unwrap();
    store
        .create_key("t", tier, false, &hash_token(&token))
        .await
        .unwrap();
    token
}

fn header(res: &Response, name: &str) -> Option<u64> {
    res.headers().get(name)?.to_str().ok()?.parse().ok()
}

/// Send `req` (built again each time) until it answers 429, at most `tries` times; the 429
/// and how many answered 2xx before it.
async fn until_429<S>(
    s: &Server<S>,
    tries: usize,
    req: impl Fn(&Server<S>) -> RequestBuilder,
) -> (Response, usize) {
    for ok in 0..tries {
        let res = req(s).send().await.unwrap();
        if res.status() == StatusCode::TOO_MANY_REQUESTS {
            return (res, ok);
        }
        assert!(res.status().is_success(), "{}", res.status());
    }
    panic!("no 429 in {tries} requests");
}

/// `GET path` as the key `token`, its JSON body.
async fn get_as<S>(s: &Server<S>, path: &str, token: &str) -> Value {
    let res = s
        .client
        .get(s.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.unwrap()
}

/// The element of a `GET /runtimes` answer with this id.
fn runtime<'a>(runtimes: &'a Value, id: &str) -> &'a Value {
    let found = runtimes
        .as_array()
        .and_then(|a| a.iter().find(|r| r["id"] == id));
    found.unwrap_or_else(|| panic!("no runtime {id} in {runtimes}"))
}

fn one_shot() -> Value {
    json!({ "language": "python", "source_code": "print(1)" })
}

#[tokio::test]
async fn the_rate_limit_answers_429_with_its_headers_in_each_surfaces_shape() {
    let s = start_tiers("[tiers.free]\nrequests_per_second = 1\nburst = 3\n").await;
    let token = key(s.store.as_ref(), "free").await;
    // A fresh bucket: the burst, counted down in the headers.
    let res = s
        .client
        .get(s.url("/limits"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(header(&res, "ratelimit-limit"), Some(3));
    assert_eq!(header(&res, "ratelimit-remaining"), Some(2));
    assert!(header(&res, "ratelimit-reset").is_some());
    let (res, ok) = until_429(&s, 20, |s| {
        s.client.get(s.url("/limits")).bearer_auth(&token)
    })
    .await;
    assert!(ok >= 2, "the burst of 3 is let through first");
    assert!(header(&res, "retry-after").is_some_and(|s| s >= 1));
    assert_eq!(header(&res, "ratelimit-limit"), Some(3));
    assert_eq!(header(&res, "ratelimit-remaining"), Some(0));
    assert!(header(&res, "ratelimit-reset").is_some_and(|s| s >= 1));
    let message = error_body(res, StatusCode::TOO_MANY_REQUESTS).await;
    assert_eq!(
        message,
        json!("rate limit of tier free: 1 requests per second")
    );

    // The compat surfaces refuse in their own shapes.
    let (res, _) = until_429(&s, 20, |s| {
        s.client
            .get(s.url("/languages"))
            .header("x-auth-token", &token)
    })
    .await;
    assert!(header(&res, "retry-after").is_some());
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body,
        json!({ "error": "rate limit of tier free: 1 requests per second" })
    );
    let (res, _) = until_429(&s, 20, |s| {
        s.client.get(s.url("/api/v2/runtimes")).bearer_auth(&token)
    })
    .await;
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body,
        json!({ "message": "rate limit of tier free: 1 requests per second" })
    );

    // Another key has its own bucket; an unlimited key none (and no headers).
    let other = key(s.store.as_ref(), "free").await;
    let res = s
        .client
        .get(s.url("/limits"))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let unlimited = key(s.store.as_ref(), "unlimited").await;
    for _ in 0..30 {
        let res = s
            .client
            .get(s.url("/limits"))
            .bearer_auth(&unlimited)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert!(res.headers().get("ratelimit-limit").is_none());
    }
}

#[tokio::test]
async fn an_open_service_has_no_tier_limits() {
    let s = start_tiers("[tiers.free]\nrequests_per_second = 1\nburst = 1\nexecutions_per_day = 1\nmemory_mb = 64\n").await;
    for _ in 0..5 {
        let res = s.post_json("/executions", &one_shot()).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert!(res.headers().get("ratelimit-limit").is_none());
    }
    let v: Value = s.get("/limits").await.json().await.unwrap();
    assert_eq!(v["memory_mb"]["max"], 512, "the server's maximum");
    assert_eq!(v["tier"], Value::Null);
}

#[tokio::test]
async fn the_daily_quota_refuses_the_run_past_it_on_every_surface() {
    let s = start_tiers("[tiers.free]\nexecutions_per_day = 3\n").await;
    let token = key(s.store.as_ref(), "free").await;
    let post = |body: Value, key: Option<&str>| {
        let mut req = s
            .client
            .post(s.url("/executions"))
            .bearer_auth(&token)
            .json(&body);
        if let Some(k) = key {
            req = req.header("idempotency-key", k);
        }
        req.send()
    };
    for i in 0..3 {
        let res = post(one_shot(), Some(&format!("k{i}"))).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "run {i}");
    }
    let res = post(one_shot(), None).await.unwrap();
    let retry = header(&res, "retry-after").expect("retry-after");
    assert!(
        (1..=86_400).contains(&retry),
        "to the next UTC midnight: {retry}"
    );
    assert_eq!(header(&res, "ratelimit-limit"), Some(3));
    assert_eq!(header(&res, "ratelimit-remaining"), Some(0));
    let message = error_body(res, StatusCode::TOO_MANY_REQUESTS).await;
    assert_eq!(
        message,
        json!("daily quota of tier free: 3 executions per UTC day")
    );
    // A replay of a key is the original's answer, not a new run.
    let res = post(one_shot(), Some("k1")).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    // A session run, a batch item, Judge0 and Piston: the same quota.
    let session = {
        let res = s
            .client
            .post(s.url("/code-sessions"))
            .bearer_auth(&token)
            .json(&json!({"language": "python"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        res.json::<Value>().await.unwrap()["session_id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let res = s
        .client
        .post(s.url(&format!("/code-sessions/{session}/run")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    error_body(res, StatusCode::TOO_MANY_REQUESTS).await;
    let res = s
        .client
        .post(s.url("/executions/batch"))
        .bearer_auth(&token)
        .json(&json!([one_shot()]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let items: Value = res.json().await.unwrap();
    assert_eq!(items[0]["error"]["statusCode"], 429, "{items}");
    let res = s
        .client
        .post(s.url("/submissions"))
        .header("x-auth-token", &token)
        .json(&json!({"language_id": 71, "source_code": "print(1)"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(header(&res, "retry-after").is_some());
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body,
        json!({ "error": "daily quota of tier free: 3 executions per UTC day" })
    );
    let res = s
        .client
        .post(s.url("/api/v2/execute"))
        .bearer_auth(&token)
        .json(&json!({"language": "python", "version": "*", "files": [{"content": "print(1)"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body,
        json!({ "message": "daily quota of tier free: 3 executions per UTC day" })
    );

    // Another key of the tier has its own day.
    let other = key(s.store.as_ref(), "free").await;
    let res = s
        .client
        .post(s.url("/executions"))
        .bearer_auth(&other)
        .json(&one_shot())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_concurrent_quota_frees_when_a_run_ends() {
    let s = start_tiers("[tiers.free]\nconcurrent_executions = 2\n").await;
    let token = key(s.store.as_ref(), "free").await;
    let run = || {
        s.client
            .post(s.url("/executions"))
            .bearer_auth(&token)
            .json(&one_shot())
            .send()
    };
    let first: Value = run().await.unwrap().json().await.unwrap();
    let res = run().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = run().await.unwrap();
    assert_eq!(header(&res, "ratelimit-limit"), Some(2));
    let message = error_body(res, StatusCode::TOO_MANY_REQUESTS).await;
    assert_eq!(message, json!("concurrent executions of tier free: 2"));
    // One ends (as a worker giving up would end it): room for one more.
    let id = first["execution_id"].as_str().unwrap().parse().unwrap();
    assert!(s
        .store
        .fail_execution(id, "ended by the test")
        .await
        .unwrap());
    let res = run().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = run().await.unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn a_tiers_maxima_and_defaults_bound_its_runs() {
    let s = start_tiers("").await;
    let token = key(s.store.as_ref(), "free").await;
    let mut body = one_shot();
    body["limits"] = json!({ "memory_mb": 256 });
    let res = s
        .client
        .post(s.url("/executions"))
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let message = error_body(res, StatusCode::BAD_REQUEST).await;
    assert_eq!(message, json!(["limits.memory_mb must not exceed 128"]));
    // The same on Judge0 (KB) and Piston (ms).
    let res = s
        .client
        .post(s.url("/submissions"))
        .header("x-auth-token", &token)
        .json(&json!({"language_id": 71, "source_code": "print(1)", "memory_limit": 262144}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let v: Value = res.json().await.unwrap();
    assert_eq!(
        v["memory_limit"],
        json!(["must be less than or equal to 131072"]),
        "{v}"
    );
    let res = s.client.post(s.url("/api/v2/execute")).bearer_auth(&token)
        .json(&json!({"language": "python", "version": "*", "files": [{"content": "print(1)"}], "run_timeout": 10000}))
        .send().await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);

    // GET /limits shows this caller's maxima and tier, and so does every runtime's
    // max_limits in GET /runtimes.
    let v = get_as(&s, "/limits", &token).await;
    assert_eq!(v["memory_mb"]["max"], 128);
    assert_eq!(v["time_ms"]["max"], 5000);
    assert_eq!(v["tier"]["name"], "free");
    assert_eq!(v["tier"]["concurrent_executions"], 2);
    let runtimes = get_as(&s, "/runtimes", &token).await;
    let python = runtime(&runtimes, "python");
    assert_eq!(python["max_limits"]["memory_mb"], 128, "{python}");
    assert_eq!(python["max_limits"]["time_ms"], 5000, "{python}");
    // ... and the limits a run that asks nothing gets: the tier's, below the defaults.
    assert_eq!(python["limits"]["run"]["memory_mb"], 128, "{python}");
    assert_eq!(python["limits"]["run"]["timeout_ms"], 5000, "{python}");
    let pro = key(s.store.as_ref(), "pro").await;
    let v = get_as(&s, "/limits", &pro).await;
    assert_eq!(v["memory_mb"]["max"], 512);
    assert_eq!(v["time_ms"]["max"], 30_000);
    let runtimes = get_as(&s, "/runtimes", &pro).await;
    assert!(runtimes
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["max_limits"]["memory_mb"] == 512));
    // The pro tier's caps lie above the defaults: those stay.
    let python = runtime(&runtimes, "python");
    assert_eq!(python["limits"]["run"]["timeout_ms"], 30_000, "{python}");

    // A run that asks nothing runs within the tier: the 30 s default becomes 5 s.
    let res = s
        .client
        .post(s.url("/executions"))
        .bearer_auth(&token)
        .json(&one_shot())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let id = res.json::<Value>().await.unwrap()["execution_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let stored = s.store.get_execution(id).await.unwrap().unwrap();
    assert_eq!(stored.options.limits.time_ms, Some(5_000));
    assert_eq!(
        stored.options.limits.memory_mb, None,
        "the 128 MiB default is within the tier"
    );
    // A session run too.
    let res = s
        .client
        .post(s.url("/code-sessions"))
        .bearer_auth(&token)
        .json(&json!({"language": "python"}))
        .send()
        .await
        .unwrap();
    let session = res.json::<Value>().await.unwrap()["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = s
        .client
        .post(s.url(&format!("/code-sessions/{session}/run")))
        .bearer_auth(&token)
        .json(&json!({"limits": {"time_ms": 2000}}))
        .send()
        .await
        .unwrap();
    let id = res.json::<Value>().await.unwrap()["execution_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let stored = s.store.get_execution(id).await.unwrap().unwrap();
    assert_eq!(
        stored.options.limits.time_ms,
        Some(2_000),
        "what was asked stays"
    );
    assert_eq!(stored.options.limits.cpu_time_ms, Some(5_000));
}

/// An API node on its own connection pool to `db`, its rate buckets in Redis under `prefix`.
async fn node(db: &TestDatabase, redis: &str, prefix: &str, tiers: &str) -> Server<PgStore> {
    let store = Arc::new(PgStore::connect(db.url()).await.unwrap());
    let queue: Arc<dyn JobQueue> = Arc::new(PgQueue::new(store.pool().clone()));
    let config = ApiConfig {
        rate_store: RateStore::connect_redis(redis, prefix).await.unwrap(),
        ..config(tiers)
    };
    start_on(
        tempfile::tempdir().unwrap(),
        store,
        queue,
        config,
        SandboxHealth::NotUsed,
    )
    .await
}

/// Two API nodes on one fresh PostgreSQL database and the Redis of the tests, under a prefix
/// of their own.
struct TwoNodes {
    a: Server<PgStore>,
    b: Server<PgStore>,
    db: TestDatabase,
    redis: String,
    prefix: String,
}

impl TwoNodes {
    /// Both nodes with `tiers`.
    async fn start(tiers: &str) -> TwoNodes {
        let db = TestDatabase::create(&livexec_testkit::postgres_url()).await;
        let redis = livexec_testkit::redis_url();
        let prefix = livexec_testkit::unique_name();
        let a = node(&db, &redis, &prefix, tiers).await;
        let b = node(&db, &redis, &prefix, tiers).await;
        TwoNodes {
            a,
            b,
            db,
            redis,
            prefix,
        }
    }

    /// Stop both and remove their database and Redis keys.
    async fn cleanup(self) {
        for s in [self.a, self.b] {
            s.store.pool().close().await;
            s.stop().await.unwrap();
        }
        livexec_testkit::delete_keys(&self.redis, &self.prefix).await;
        self.db.cleanup().await;
    }
}

#[tokio::test]
#[ignore = "needs PostgreSQL and Redis (DATABASE_URL, REDIS_URL; default on 127.0.0.1)"]
async fn two_api_nodes_share_one_rate_limit_and_one_quota() {
    let tiers = "[tiers.free]\nrequests_per_second = 1\nburst = 5\nconcurrent_executions = 2\n";
    let nodes = TwoNodes::start(tiers).await;
    let (a, b) = (&nodes.a, &nodes.b);
    let token = key(a.store.as_ref(), "free").await;

    // The quota: one run on each node, the third (on either) is over.
    let run = |s: &Server<PgStore>| {
        s.client
            .post(s.url("/executions"))
            .bearer_auth(&token)
            .json(&one_shot())
            .send()
    };
    assert_eq!(run(a).await.unwrap().status(), StatusCode::OK);
    assert_eq!(run(b).await.unwrap().status(), StatusCode::OK);
    let message = error_body(run(a).await.unwrap(), StatusCode::TOO_MANY_REQUESTS).await;
    assert_eq!(message, json!("concurrent executions of tier free: 2"));

    // The burst spent on node A: node B refuses too.
    let (res, _) = until_429(a, 20, |s| {
        s.client.get(s.url("/limits")).bearer_auth(&token)
    })
    .await;
    error_body(res, StatusCode::TOO_MANY_REQUESTS).await;
    let res = b
        .client
        .get(b.url("/limits"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert!(header(&res, "retry-after").is_some());
    let message = error_body(res, StatusCode::TOO_MANY_REQUESTS).await;
    assert_eq!(
        message,
        json!("rate limit of tier free: 1 requests per second")
    );

    nodes.cleanup().await;
}

/// One key holds at most its tier's `event_streams` open at once (429 past it, with the
/// headers); a closed stream gives its slot back, and another key has slots of its own.
#[tokio::test]
async fn a_key_holds_at_most_its_tiers_event_streams() {
    let s = start_tiers("[tiers.free]\nevent_streams = 2\n").await;
    let token = key(s.store.as_ref(), "free").await;
    let other = key(s.store.as_ref(), "free").await;
    let created: Value = s
        .client
        .post(s.url("/executions"))
        .bearer_auth(&token)
        .json(&one_shot())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // No worker here: the execution stays queued, its streams open.
    let path = format!(
        "/executions/{}/events",
        created["execution_id"].as_str().unwrap()
    );
    let open = |t: &str| s.client.get(s.url(&path)).bearer_auth(t).send();
    let first = open(&token).await.unwrap();
    let second = open(&token).await.unwrap();
    assert_eq!(
        (first.status(), second.status()),
        (StatusCode::OK, StatusCode::OK)
    );
    let res = open(&token).await.unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&res, "retry-after"), Some(1));
    assert_eq!(header(&res, "ratelimit-limit"), Some(2));
    assert_eq!(
        error_body(res, StatusCode::TOO_MANY_REQUESTS).await,
        json!("open event streams of tier free: 2")
    );
    // The other key (the execution is not its own: 404, after its slot was free to take).
    let res = open(&other).await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    // Closing a stream gives its slot back (once the server notices the hang-up).
    drop(first);
    let mut reopened = None;
    for _ in 0..200 {
        let res = open(&token).await.unwrap();
        if res.status() == StatusCode::OK {
            reopened = Some(res);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        reopened.is_some(),
        "the closed stream's slot never came back"
    );
    drop(second);
}

/// The sessions quota on `s` (whose tier `free` allows 2 sessions) for a new key: two
/// sessions, the third refused with its headers, room again after a delete; another key has
/// its own count.
async fn sessions_quota<S: Store + KeyStore>(s: &Server<S>, nodes: &[&Server<S>]) {
    let token = key(s.store.as_ref(), "free").await;
    let other = key(s.store.as_ref(), "free").await;
    let create = |s: &Server<S>, t: &str| {
        s.client
            .post(s.url("/code-sessions"))
            .bearer_auth(t)
            .json(&json!({"language": "python"}))
            .send()
    };
    let mut ids = Vec::new();
    // One on each node when there are two: the count is the database's.
    for n in nodes.iter().cycle().take(2) {
        let res = create(n, &token).await.unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        let v: Value = res.json().await.unwrap();
        ids.push(v["session_id"].as_str().unwrap().to_owned());
    }
    let res = create(s, &token).await.unwrap();
    assert_eq!(header(&res, "retry-after"), Some(60));
    assert_eq!(header(&res, "ratelimit-limit"), Some(2));
    assert_eq!(
        error_body(res, StatusCode::TOO_MANY_REQUESTS).await,
        json!(
            "sessions of tier free: 2 at once; delete one (DELETE /code-sessions/:id) to make room"
        )
    );
    let res = create(s, &other).await.unwrap();
    assert_eq!(res.status(), StatusCode::CREATED, "another key's count");
    let res = s
        .client
        .delete(s.url(&format!("/code-sessions/{}", ids[0])))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = create(s, &token).await.unwrap();
    assert_eq!(
        res.status(),
        StatusCode::CREATED,
        "room again after a delete"
    );
}

#[tokio::test]
async fn a_key_holds_at_most_its_tiers_sessions() {
    let s = start_tiers("[tiers.free]\nsessions = 2\n").await;
    sessions_quota(&s, &[&s]).await;
}

/// The same on two API nodes sharing one PostgreSQL.
#[tokio::test]
#[ignore = "needs PostgreSQL and Redis (DATABASE_URL, REDIS_URL; default on 127.0.0.1)"]
async fn the_sessions_quota_holds_across_api_nodes_on_postgres() {
    let nodes = TwoNodes::start("[tiers.free]\nsessions = 2\n").await;
    sessions_quota(&nodes.a, &[&nodes.a, &nodes.b]).await;
    nodes.cleanup().await;
}
