//! The scaled setup (issue 4) on the real binary: PostgreSQL for state, Redis for jobs, API
//! and worker roles in separate processes. Each test has its own database and key prefix.

mod common;

use common::cases::{check, CASES, LIMITS};
use common::scaled::{refs, scaled};
use common::{is_terminal, Server};
use serde_json::Value;

#[tokio::test]
#[ignore = "needs PostgreSQL and Redis (DATABASE_URL, REDIS_URL; default on 127.0.0.1)"]
async fn every_status_and_error_type_on_postgres_and_redis() {
    let sc = scaled().await;
    let dir = tempfile::tempdir().unwrap();
    let mut env = sc.env();
    env.extend(LIMITS.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    env.push(("LIVEXEC_WORKERS".into(), "4".into()));
    let server = Server::start(dir.path(), &refs(&env)).await;
    let mut ids = Vec::new();
    for c in CASES {
        ids.push(server.submit(c.language, c.code).await);
    }
    let mut problems = Vec::new();
    for (c, id) in CASES.iter().zip(&ids) {
        problems.extend(check(c, &server.wait(id).await));
    }
    drop(server);
    sc.cleanup().await;
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

fn program(i: usize) -> String {
    if i.is_multiple_of(10) {
        format!("import time\ntime.sleep(0.5)\nprint({i})")
    } else {
        format!("print({i})")
    }
}

#[tokio::test]
#[ignore = "needs PostgreSQL and Redis (DATABASE_URL, REDIS_URL; default on 127.0.0.1)"]
async fn two_apis_two_workers_survive_a_worker_sigkill() {
    let sc = scaled().await;
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let with = |extra: &[(&str, &str)]| {
        let mut env = sc.env();
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        env
    };
    let api_env = with(&[("LIVEXEC_ROLE", "api")]);
    let worker_env = with(&[
        ("LIVEXEC_ROLE", "worker"),
        ("LIVEXEC_WORKERS", "2"),
        ("LIVEXEC_LEASE_MS", "1000"),
        ("LIVEXEC_IDLE_POLL_MS", "10"),
    ]);
    let api1 = Server::start(dirs[0].path(), &refs(&api_env)).await;
    let api2 = Server::start(dirs[1].path(), &refs(&api_env)).await;
    let mut w1 = Server::start(dirs[2].path(), &refs(&worker_env)).await;
    let w2 = Server::start(dirs[3].path(), &refs(&worker_env)).await;

    let mut ids = Vec::new();
    for i in 0..200 {
        let api = if i % 2 == 0 { &api1 } else { &api2 };
        ids.push(api.submit("python", &program(i)).await);
    }
    api2.wait(&ids[40]).await;
    w1.kill9().await;

    for (i, id) in ids.iter().enumerate() {
        let v = api2.wait(id).await;
        assert_eq!(v["status"], "COMPLETED", "{i}: {v}");
        assert_eq!(v["stdout"], format!("{i}\n"), "{i}: {v}");
        assert!(v["attempts"].as_i64().unwrap() <= 3, "{v}");
        // Both API nodes tell the same story.
        if i % 20 == 0 {
            let session = v["session_id"].as_str().unwrap();
            let (h1, h2) = (api1.history(session).await, api2.history(session).await);
            assert_eq!(h1, h2);
            assert_eq!(h1.as_array().unwrap().len(), 1, "ran once: {h1}");
        }
    }
    drop((api1, api2, w2));
    sc.cleanup().await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL and Redis (DATABASE_URL, REDIS_URL; default on 127.0.0.1)"]
async fn redis_losing_its_keys_loses_no_execution() {
    let sc = scaled().await;
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut api_env = sc.env();
    api_env.push(("LIVEXEC_ROLE".into(), "api".into()));
    let api = Server::start(d1.path(), &refs(&api_env)).await;
    let mut ids = Vec::new();
    for i in 0..10 {
        ids.push(api.submit("python", &format!("print('kept {i}')")).await);
    }
    assert!(sc.wipe_redis().await > 0, "the jobs were in Redis");

    let mut worker_env = sc.env();
    worker_env.extend(
        [
            ("LIVEXEC_ROLE", "worker"),
            ("LIVEXEC_RECONCILE_INTERVAL_MS", "200"),
            ("LIVEXEC_ENQUEUE_TIMEOUT_MS", "100"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    let worker = Server::start(d2.path(), &refs(&worker_env)).await;
    for (i, id) in ids.iter().enumerate() {
        let v = api.wait(id).await;
        assert!(is_terminal(&v));
        assert_eq!(v["status"], "COMPLETED", "{v}");
        assert_eq!(v["stdout"], format!("kept {i}\n"));
        assert_eq!(v["attempts"], 1, "{v}");
    }
    drop((api, worker));
    sc.cleanup().await;
}

/// A `redis-server` of this test's own on a free port (never the shared one), killed on drop.
struct OwnRedis {
    child: Option<std::process::Child>,
    port: u16,
}

impl OwnRedis {
    fn start(port: u16) -> OwnRedis {
        let child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server must be installed (it is what CI runs)");
        let deadline = std::time::Instant::now() + common::PATIENCE;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "own redis never came up"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        OwnRedis {
            child: Some(child),
            port,
        }
    }
    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

#[tokio::test]
#[ignore = "needs PostgreSQL and Redis (DATABASE_URL, REDIS_URL; default on 127.0.0.1)"]
async fn redis_down_never_hangs_a_run_and_loses_nothing() {
    let sc = scaled().await;
    let port = common::free_port();
    let mut redis = OwnRedis::start(port);
    let dir = tempfile::tempdir().unwrap();
    let mut env = sc.env();
    env.retain(|(k, _)| k != "REDIS_URL");
    env.extend(
        [
            ("REDIS_URL", redis.url().as_str()),
            ("LIVEXEC_RECONCILE_INTERVAL_MS", "200"),
            ("LIVEXEC_ENQUEUE_TIMEOUT_MS", "500"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    let server = Server::start(dir.path(), &refs(&env)).await;
    let before = server.submit("python", "print('before')").await;
    assert_eq!(server.wait(&before).await["status"], "COMPLETED");

    redis.kill();
    let health = server.http.get(server.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), 503);
    let body: Value = health.json().await.unwrap();
    assert_ne!(body["checks"]["queue"], "ok", "{body}");
    assert_eq!(body["checks"]["database"], "ok", "{body}");

    // Runs while Redis is down: every answer comes back (the client's own bound is generous);
    // accepted ones must run once Redis is back.
    let session = server.session("python", "print('while down')").await;
    let mut accepted = Vec::new();
    for _ in 0..3 {
        let r = server
            .http
            .post(server.url(&format!("/code-sessions/{session}/run")))
            .timeout(std::time::Duration::from_secs(20))
            .send()
            .await
            .expect("POST …/run must answer while Redis is down");
        match r.status().as_u16() {
            200 => {
                let v: Value = r.json().await.unwrap();
                accepted.push(v["execution_id"].as_str().unwrap().to_owned());
            }
            503 => {}
            other => panic!("unexpected {other}: {}", r.text().await.unwrap()),
        }
    }
    eprintln!(
        "while Redis was down: {} of 3 runs accepted",
        accepted.len()
    );
    // Reads keep working from PostgreSQL.
    assert_eq!(server.execution(&before).await["stdout"], "before\n");

    let _redis = OwnRedis::start(port); // back, and empty
    for id in &accepted {
        let v = server.wait(id).await;
        assert_eq!(v["status"], "COMPLETED", "{v}");
        assert_eq!(v["stdout"], "while down\n");
    }
    let after = server.submit("python", "print('after')").await;
    assert_eq!(server.wait(&after).await["stdout"], "after\n");
    drop(server);
    sc.cleanup().await;
}
