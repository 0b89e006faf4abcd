//! API keys over real HTTP on the embedded store, with the cache of validated keys in front
//! (a TTL of ten minutes, so that only the revocation path can explain a key stopping):
//! `/admin/keys`, 403 for normal keys, the same 401 for every bad key, 429 for a flood of
//! bad keys from one address, and the drop-in APIs' own refusal shapes.

mod common;

use common::{error_body, sqlite_store};
use livexec_api::auth::cache::CachedKeys;
use livexec_api::auth::failures::FailureLimit;
use livexec_api::{launch, ApiConfig, AppState, SandboxHealth};
use livexec_core::{JobQueue, KeyStore, Store};
use livexec_queue::SqliteQueue;
use livexec_runtimes::Registry;
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

struct Node {
    base: String,
    client: Client,
    _dir: tempfile::TempDir,
}

impl Node {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// A server whose key store is cached for 10 minutes.
async fn start(config: ApiConfig) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite_store(&dir).await;
    let queue: Arc<dyn JobQueue> = Arc::new(SqliteQueue::new(store.pool().clone()));
    let keys = CachedKeys::new(store.clone() as Arc<dyn KeyStore>, Duration::from_secs(600));
    let state = AppState {
        store: store.clone() as Arc<dyn Store>,
        keys: Arc::new(keys),
        queue,
        runtimes: Arc::new(Registry::builtin().unwrap()),
        events: Arc::new(livexec_events::MemoryBus::new(Default::default())),
        config,
        sandbox: SandboxHealth::Ok("test".into()),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(launch(listener, state, std::future::pending()));
    Node {
        base,
        client: Client::new(),
        _dir: dir,
    }
}

async fn create_key(n: &Node, admin_token: Option<&str>, body: Value) -> Value {
    let mut req = n.client.post(n.url("/admin/keys")).json(&body);
    if let Some(t) = admin_token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    res.json().await.unwrap()
}

async fn get_as(n: &Node, path: &str, token: &str) -> reqwest::Response {
    n.client
        .get(n.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn admin_routes_manage_keys_and_normal_keys_get_403() {
    let n = start(ApiConfig::default()).await;
    // Open (no key): the count of keys is now cached as zero.
    let open = n.client.get(n.url("/runtimes")).send().await.unwrap();
    assert_eq!(open.status(), StatusCode::OK);

    let root = create_key(&n, None, json!({"name": "root", "admin": true})).await;
    assert_eq!(root["admin"], true);
    assert_eq!(root["tier"], "free");
    assert!(root["revoked_at"].is_null());
    let root_token = root["token"].as_str().unwrap().to_owned();
    assert!(root_token.starts_with("lx_"));

    // The first key closes the service at once, cache or not.
    let closed = n.client.get(n.url("/runtimes")).send().await.unwrap();
    error_body(closed, StatusCode::UNAUTHORIZED).await;

    let alice = create_key(
        &n,
        Some(&root_token),
        json!({"name": "alice", "tier": "pro"}),
    )
    .await;
    let alice_token = alice["token"].as_str().unwrap().to_owned();
    let alice_id = alice["id"].as_str().unwrap().to_owned();
    assert_eq!(alice["admin"], false);
    assert_eq!(alice["tier"], "pro");

    // Listing shows both, never a token.
    let list: Value = get_as(&n, "/admin/keys", &root_token)
        .await
        .json()
        .await
        .unwrap();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert!(list.iter().all(|k| k.get("token").is_none()), "{list:?}");
    let one: Value = get_as(&n, &format!("/admin/keys/{alice_id}"), &root_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(one["name"], "alice");

    // A normal key: its own routes work, admin routes are 403 in the error shape.
    assert_eq!(
        get_as(&n, "/runtimes", &alice_token).await.status(),
        StatusCode::OK
    );
    let forbidden = error_body(
        get_as(&n, "/admin/keys", &alice_token).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(forbidden, "This route needs an admin API key");
    let res = n
        .client
        .delete(n.url(&format!("/admin/keys/{alice_id}")))
        .bearer_auth(&alice_token)
        .send()
        .await
        .unwrap();
    error_body(res, StatusCode::FORBIDDEN).await;

    // Bad bodies and unknown ids, in the error shape.
    let res = n
        .client
        .post(n.url("/admin/keys"))
        .bearer_auth(&root_token)
        .json(&json!({"admin": "yes", "tier": "no spaces"}))
        .send()
        .await
        .unwrap();
    let bad = error_body(res, StatusCode::BAD_REQUEST).await;
    assert_eq!(bad.as_array().unwrap().len(), 3, "{bad}");
    // A tier the service does not have is refused, not silently the free one.
    let res = n
        .client
        .post(n.url("/admin/keys"))
        .bearer_auth(&root_token)
        .json(&json!({"name": "carol", "tier": "gold"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_body(res, StatusCode::BAD_REQUEST).await,
        json!(["tier gold is not a tier of this service; one of: free, pro, unlimited"])
    );
    let missing = uuid::Uuid::now_v7();
    let res = get_as(&n, &format!("/admin/keys/{missing}"), &root_token).await;
    assert_eq!(
        error_body(res, StatusCode::NOT_FOUND).await,
        "API key not found"
    );
    let res = n
        .client
        .delete(n.url(&format!("/admin/keys/{missing}")))
        .bearer_auth(&root_token)
        .send()
        .await
        .unwrap();
    error_body(res, StatusCode::NOT_FOUND).await;

    // Revoked through the API: refused at once although it sits in a 10-minute cache.
    let res = n
        .client
        .delete(n.url(&format!("/admin/keys/{alice_id}")))
        .bearer_auth(&root_token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let revoked: Value = res.json().await.unwrap();
    assert!(revoked["revoked_at"].is_string(), "{revoked}");
    error_body(
        get_as(&n, "/runtimes", &alice_token).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(
        get_as(&n, "/runtimes", &root_token).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn every_bad_key_gets_the_same_401_and_a_flood_gets_429() {
    let n = start(ApiConfig {
        auth_failures: FailureLimit {
            per_second: 1,
            burst: 6,
        },
        ..ApiConfig::default()
    })
    .await;
    let root = create_key(&n, None, json!({"name": "root", "admin": true})).await;
    let root_token = root["token"].as_str().unwrap().to_owned();
    let victim = create_key(&n, Some(&root_token), json!({"name": "v"})).await;
    let victim_token = victim["token"].as_str().unwrap().to_owned();
    let res = n
        .client
        .delete(n.url(&format!("/admin/keys/{}", victim["id"].as_str().unwrap())))
        .bearer_auth(&root_token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    let kinds: [(&str, Option<(&str, String)>); 6] = [
        ("missing", None),
        (
            "malformed",
            Some(("authorization", "Basic Zm9vOmJhcg==".into())),
        ),
        ("empty bearer", Some(("authorization", "Bearer ".into()))),
        (
            "unknown",
            Some(("authorization", format!("Bearer lx_{}", "A".repeat(43)))),
        ),
        (
            "revoked",
            Some(("authorization", format!("Bearer {victim_token}"))),
        ),
        (
            "unknown x-auth-token",
            Some(("x-auth-token", "lx_nope".into())),
        ),
    ];
    let mut first: Option<(Value, String)> = None;
    for (kind, header) in kinds {
        let mut req = n.client.get(n.url("/runtimes"));
        if let Some((name, value)) = header {
            req = req.header(name, value);
        }
        let res = req.send().await.unwrap();
        let www = res
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let body = error_body(res, StatusCode::UNAUTHORIZED).await;
        match &first {
            None => first = Some((body, www)),
            Some(f) => assert_eq!(f, &(body, www), "{kind} answers differently"),
        }
    }
    // The bucket of this address is empty now: 429 with Retry-After, in the error shape.
    let res = n
        .client
        .get(n.url("/runtimes"))
        .bearer_auth("lx_guess")
        .send()
        .await
        .unwrap();
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
    let body = error_body(res, StatusCode::TOO_MANY_REQUESTS).await;
    assert!(body.as_str().unwrap().contains("retry after"), "{body}");
    // A good key from the same address is not held back; health needs no key.
    assert_eq!(
        get_as(&n, "/runtimes", &root_token).await.status(),
        StatusCode::OK
    );
    let health = n.client.get(n.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
}

#[tokio::test]
async fn drop_in_apis_refuse_in_their_own_shapes() {
    let n = start(ApiConfig::default()).await;
    let root = create_key(&n, None, json!({"name": "root", "admin": true})).await;
    let token = root["token"].as_str().unwrap().to_owned();

    // Judge0: {"error"}.
    let res = n
        .client
        .get(n.url("/languages"))
        .header("x-auth-token", "lx_wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let body: Value = res.json().await.unwrap();
    assert!(body["error"].is_string(), "{body}");
    let ok = n
        .client
        .get(n.url("/languages"))
        .header("x-auth-token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);

    // Piston: {"message"}; its clients send the bare key in Authorization.
    let res = n
        .client
        .get(n.url("/api/v2/runtimes"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let body: Value = res.json().await.unwrap();
    assert!(body["message"].is_string(), "{body}");
    assert!(body.get("statusCode").is_none(), "{body}");
    let ok = n
        .client
        .get(n.url("/api/v2/runtimes"))
        .header("authorization", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);

    // MCP: 401 with WWW-Authenticate and a JSON-RPC error.
    let res = n
        .client
        .post(n.url("/mcp"))
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(res.headers()["www-authenticate"], "Bearer");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["jsonrpc"], "2.0");
    assert!(body["error"]["message"].is_string(), "{body}");
}
