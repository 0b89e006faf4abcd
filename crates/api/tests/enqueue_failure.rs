//! The run endpoint with a separate queue (a real `RedisQueue`): it hands the job over when
//! Redis is there, and still answers 200 — promptly, with the execution durable and QUEUED in
//! the database for the reconciler — when Redis refuses connections or stops answering.
//!
//! Redis is reached through a small TCP relay owned by the test, so the test can take "Redis"
//! away from this one queue without touching the shared Redis server. Needs `REDIS_URL`.

mod common;

use common::{sqlite_store, start_on};
use livexec_api::{ApiConfig, SandboxHealth};
use livexec_core::{JobQueue, Status, Store};
use livexec_queue::RedisQueue;
use reqwest::StatusCode;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use uuid::Uuid;

/// What the relay does with traffic.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    /// Pass bytes both ways.
    Forward,
    /// Close every connection and refuse new ones.
    Refuse,
    /// Keep connections open but never answer.
    Blackhole,
}

/// A TCP relay to Redis whose behaviour the test switches.
struct Relay {
    port: u16,
    mode: watch::Sender<Mode>,
}

impl Relay {
    async fn start(target: String) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (mode, watcher) = watch::channel(Mode::Forward);
        tokio::spawn(async move {
            let mut accept_watch = watcher.clone();
            loop {
                let accepted = tokio::select! {
                    a = listener.accept() => a,
                    _ = accept_watch.wait_for(|m| *m == Mode::Refuse) => return, // drops the listener
                };
                let Ok((client, _)) = accepted else { return };
                let target = target.clone();
                let mut conn_watch = watcher.clone();
                tokio::spawn(async move {
                    let mut client = client;
                    if *conn_watch.borrow() == Mode::Forward {
                        let Ok(mut upstream) = TcpStream::connect(&target).await else {
                            return;
                        };
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut client, &mut upstream) => return,
                            _ = conn_watch.wait_for(|m| *m != Mode::Forward) => {}
                        }
                    }
                    if *conn_watch.borrow() == Mode::Blackhole {
                        // Hold the client's socket open, say nothing, until the relay refuses.
                        let _ = conn_watch.wait_for(|m| *m == Mode::Refuse).await;
                    }
                    drop(client);
                });
            }
        });
        Relay { port, mode }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn set(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }
}

/// `host:port` of a `redis://host:port[/db]` URL.
fn host_port(url: &str) -> String {
    let rest = url.trim_start_matches("redis://");
    let rest = rest.rsplit('@').next().unwrap_or(rest);
    rest.split('/').next().unwrap_or(rest).to_owned()
}

/// A server on a fresh SQLite store with a RedisQueue reached through a relay.
async fn server_with_relay(url: &str, prefix: &str) -> (common::Server, Relay, Arc<RedisQueue>) {
    let relay = Relay::start(host_port(url)).await;
    let queue = Arc::new(RedisQueue::connect(&relay.url(), prefix).await.unwrap());
    assert!(!queue.enqueued_by_store());
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite_store(&dir).await;
    let config = ApiConfig {
        enqueue_timeout: Duration::from_millis(300),
        ..ApiConfig::default()
    };
    let server = start_on(
        dir,
        store,
        queue.clone(),
        config,
        SandboxHealth::Ok("cgroup v1".into()),
    )
    .await;
    (server, relay, queue)
}

/// Run once with a hang guard far above every internal timeout; check the durable execution.
async fn run_and_check_queued(s: &common::Server, session: &str) -> Uuid {
    let res = tokio::time::timeout(Duration::from_secs(30), s.run(session, None))
        .await
        .expect("the run endpoint must answer even when the queue is down");
    let (status, v) = res;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "QUEUED");
    let id = Uuid::parse_str(v["execution_id"].as_str().unwrap()).unwrap();
    let exec = s.store.get_execution(id).await.unwrap().expect("durable");
    assert_eq!(exec.status, Status::Queued);
    id
}

#[tokio::test]
#[ignore = "needs Redis (REDIS_URL, default 127.0.0.1:6379)"]
async fn reachable_redis_gets_the_job() {
    let url = livexec_testkit::redis_url();
    let prefix = livexec_testkit::unique_name();
    let (s, _relay, queue) = server_with_relay(&url, &prefix).await;
    let session = s.create_session("python", None).await;
    let id = run_and_check_queued(&s, &session).await;
    assert!(queue.contains(id).await.unwrap(), "job not in Redis");
    livexec_testkit::delete_keys(&url, &prefix).await;
}

#[tokio::test]
#[ignore = "needs Redis (REDIS_URL, default 127.0.0.1:6379)"]
async fn refused_redis_still_answers_200() {
    let url = livexec_testkit::redis_url();
    let prefix = livexec_testkit::unique_name();
    let (s, relay, queue) = server_with_relay(&url, &prefix).await;
    let session = s.create_session("python", None).await;
    relay.set(Mode::Refuse);
    let id = run_and_check_queued(&s, &session).await;
    assert!(
        queue.contains(id).await.is_err(),
        "Redis should be unreachable"
    );
    // Health names the queue.
    let res = s.get("/health").await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    let v: serde_json::Value = res.json().await.unwrap();
    assert_ne!(v["checks"]["queue"], "ok");
    assert_eq!(v["checks"]["database"], "ok");
    livexec_testkit::delete_keys(&url, &prefix).await;
}

#[tokio::test]
#[ignore = "needs Redis (REDIS_URL, default 127.0.0.1:6379)"]
async fn silent_redis_still_answers_200() {
    let url = livexec_testkit::redis_url();
    let prefix = livexec_testkit::unique_name();
    let (s, relay, _queue) = server_with_relay(&url, &prefix).await;
    let session = s.create_session("python", None).await;
    relay.set(Mode::Blackhole);
    run_and_check_queued(&s, &session).await;
    let res = tokio::time::timeout(Duration::from_secs(30), s.get("/health"))
        .await
        .expect("/health must answer when the queue hangs");
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    relay.set(Mode::Refuse);
    livexec_testkit::delete_keys(&url, &prefix).await;
}
