//! Test harness: the real `livexec` binary as a server in its own temp dir, on its own SQLite
//! file and free port, driven over HTTP.
#![allow(dead_code)]

/// The built-in runtime ids (one file each in `runtimes/`).
pub const RUNTIME_IDS: &[&str] = &[
    "bash",
    "c",
    "cpp",
    "go",
    "java",
    "javascript",
    "lua",
    "perl",
    "php",
    "python",
    "ruby",
    "rust",
    "sql",
    "typescript",
];

pub mod cases;
pub mod clients;
pub mod scaled;
pub mod sse;

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Path of the binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_livexec");

/// How long anything may take before the test gives up (generous: CI machines are slow).
pub const PATIENCE: Duration = Duration::from_secs(90);

/// A free TCP port on 127.0.0.1 (bound, then released for the server to take).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A `livexec serve` process.
pub struct Server {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The server's log file.
    pub log: PathBuf,
    dir: PathBuf,
    env: Vec<(String, String)>,
    port: u16,
    /// HTTP client.
    pub http: reqwest::Client,
}

impl Server {
    /// Start a server with its database in `dir` and these extra settings; wait until it
    /// answers `/health`.
    pub async fn start(dir: &Path, env: &[(&str, &str)]) -> Server {
        let mut s = Server {
            child: None,
            base: String::new(),
            log: dir.join("server.log"),
            dir: dir.to_path_buf(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            port: free_port(),
            http: reqwest::Client::new(),
        };
        s.base = format!("http://127.0.0.1:{}", s.port);
        s.spawn().await;
        s
    }

    async fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let mut cmd = Command::new(BIN);
        cmd.arg("serve")
            .current_dir(&self.dir)
            .env_remove("REDIS_URL")
            .env_remove("PORT")
            .env(
                "DATABASE_URL",
                format!("sqlite://{}/db.sqlite", self.dir.display()),
            )
            .env("LIVEXEC_BIND", format!("127.0.0.1:{}", self.port))
            .env("LIVEXEC_HEALTH_BIND", format!("127.0.0.1:{}", self.port))
            .env("RUST_LOG", "info")
            // Most tests use python and javascript only: 14 smoke tests (compilers among
            // them) per server would cost the suite minutes. languages.rs turns them on.
            .env("LIVEXEC_SMOKE_TESTS", "false")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        self.child = Some(cmd.spawn().expect("start livexec serve"));
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Ok(r) = self.http.get(self.url("/health")).send().await {
                assert!(
                    r.status().is_success(),
                    "health: {} {}",
                    r.status(),
                    r.text().await.unwrap_or_default()
                );
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("server exited at start ({status}):\n{}", self.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "server did not start:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Start the same server again (same directory, database, port and settings).
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "stop the server before restarting it");
        self.spawn().await;
    }

    /// Everything the server logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `base + path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Send a signal to the server process (only ever the one this test started).
    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        let pid = self.child.as_ref().expect("server running").id();
        let pid = nix::unistd::Pid::from_raw(i32::try_from(pid).unwrap());
        nix::sys::signal::kill(pid, sig).unwrap();
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("server running").id()
    }

    /// Wait for the server to exit.
    pub async fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let child = self.child.as_mut().expect("server running");
            if let Some(st) = child.try_wait().unwrap() {
                self.child = None;
                return st;
            }
            assert!(
                Instant::now() < deadline,
                "server did not exit:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILL the server and reap it.
    pub async fn kill9(&mut self) {
        self.signal(nix::sys::signal::Signal::SIGKILL);
        self.wait_exit().await;
    }

    /// `POST /code-sessions`; the session id.
    pub async fn session(&self, language: &str, code: &str) -> String {
        let r = self
            .http
            .post(self.url("/code-sessions"))
            .json(&json!({ "language": language, "templateCode": code }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "create session");
        let v: Value = r.json().await.unwrap();
        v["session_id"].as_str().unwrap().to_owned()
    }

    /// `POST /code-sessions/:id/run`; the execution id.
    pub async fn run(&self, session: &str) -> String {
        let r = self
            .http
            .post(self.url(&format!("/code-sessions/{session}/run")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "run");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["status"], "QUEUED");
        v["execution_id"].as_str().unwrap().to_owned()
    }

    /// A new session with this code, run once; the execution id.
    pub async fn submit(&self, language: &str, code: &str) -> String {
        let s = self.session(language, code).await;
        self.run(&s).await
    }

    /// `GET /executions/:id`.
    pub async fn execution(&self, id: &str) -> Value {
        let r = self
            .http
            .get(self.url(&format!("/executions/{id}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "get execution {id}");
        r.json().await.unwrap()
    }

    /// `GET /executions/sessions/:id`: the session's executions, newest first.
    pub async fn history(&self, session: &str) -> Value {
        let r = self
            .http
            .get(self.url(&format!("/executions/sessions/{session}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "history of {session}");
        r.json().await.unwrap()
    }

    /// Poll `GET /executions/:id` until it is terminal.
    pub async fn wait(&self, id: &str) -> Value {
        self.wait_for(id, is_terminal).await
    }

    /// Poll `GET /executions/:id` until `done` holds.
    pub async fn wait_for(&self, id: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let v = self.execution(id).await;
            if done(&v) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "execution {id} stuck at {v}:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

/// Whether an execution JSON is in a terminal status.
pub fn is_terminal(v: &Value) -> bool {
    matches!(
        v["status"].as_str(),
        Some("COMPLETED" | "FAILED" | "TIMEOUT")
    )
}

impl Drop for Server {
    /// Stop gracefully (SIGTERM: running programs finish, the sandbox cleans up after them),
    /// then SIGKILL if it does not exit in time.
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Ok(pid) = i32::try_from(child.id()) {
                let pid = nix::unistd::Pid::from_raw(pid);
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            }
            let deadline = Instant::now() + Duration::from_secs(30);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("---- server log ----\n{}", self.log_text());
        }
    }
}
