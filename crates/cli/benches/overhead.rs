//! What the platform adds around the sandbox on the request path (prints figures; asserts
//! nothing about speed). Every figure sits beside its baseline, measured in the same run:
//!
//! 1. latency, `POST …/run?wait=true` → 200, sequential: a Python hello world beside the bare
//!    interpreter, and a trivial program (`sh` running `echo`) beside `Sandbox::run` of the
//!    same program in this process, so "everything around `Sandbox::run`" shows without the
//!    interpreter's noise. The samples of one round (bare, engine alone, embedded, scaled)
//!    are taken back to back, so the differences are paired: each round's difference, then
//!    its p50/p99;
//! 2. throughput: bursts of 200 mixed Python/JavaScript hello worlds at the parallelism of
//!    the workers (one per core), alternating with the bare interpreters and with
//!    `Sandbox::run` alone at that parallelism, embedded and scaled (one `--role api`, one
//!    `--role worker`); the service's bursts both as one client submitting them all and
//!    polling each every 2 ms, and as concurrent `?wait=true` clients (no polling);
//! 3. test cases (issue 11's goal): a C++ solution against 50 cases in one
//!    `POST /executions?wait=true` (embedded, the service's default limits), beside `g++`
//!    once and the 50 runs piped by hand, alternated, [`CASE_ROUNDS`] rounds.
//!
//! Run (as root): `cargo bench -p livexec --bench overhead`, with
//! `DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379`
//! in front for the scaled figures. `LIVEXEC_BENCH_ROUNDS` (default 100) sets the latency
//! rounds.

#[path = "../tests/common/mod.rs"]
mod common;
mod support;

use common::Server;
use livexec_runtimes::{Registry, Resolved};
use livexec_sandbox::{Limits, Sandbox, SandboxConfig};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use support::{bare_command, pct};

const PY_HELLO: &str = "print('Hello World')";
const JS_HELLO: &str = "console.log('Hello World')";
const SH_HELLO: &str = "echo Hello World";
const BURST: usize = 200;
/// Rounds of the test-case figure (each: one bare compile-and-50-runs, one request).
const CASE_ROUNDS: usize = 7;
/// The C++ solution of the test-case figure: reads two numbers, prints their sum.
const CPP_SUM: &str =
    "#include <iostream>\nint main(){ long a, b; std::cin >> a >> b; std::cout << a + b << '\\n'; }\n";
/// Cases of the test-case figure.
const CASES: usize = 50;
const BURSTS: usize = 3;

/// A runtime whose program costs next to nothing: the platform's own cost shows.
const SH_RUNTIME: &str = r#"
id = "trivial"
language = "sh"
name = "POSIX sh (benchmark: a trivial program)"
file_name = "main.sh"
default_template = "echo Hello World"
binary = "sh"
override_env = "LIVEXEC_BENCH_SH"
probe = ["-c", "command -v sh | xargs readlink -f; echo /usr; echo 0"]
[run]
command = ["{executable}", "{file}"]
[smoke]
source = "read x; echo smoke $x"
stdin = "ok"
expected_stdout = "smoke ok\n"
"#;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The bare interpreter of `rt` on `code`, start → exit.
fn bare(rt: &Resolved, dir: &Path, code: &str) -> f64 {
    let mut cmd = bare_command(rt, dir, &format!("bare-{}", rt.id), code);
    let start = Instant::now();
    let out = cmd.output().unwrap();
    let took = ms(start.elapsed());
    assert!(out.status.success());
    took
}

/// `Sandbox::run` of `code` under `rt` in this process, call → return.
fn engine(sandbox: &Sandbox, rt: &Resolved, code: &str) -> f64 {
    let cmd = livexec_engine::command_for(rt, code, &[], b"", Limits::default());
    let start = Instant::now();
    let o = sandbox.run(&cmd, &mut |_, _| {}).unwrap();
    let took = ms(start.elapsed());
    assert_eq!(o.exit_code, Some(0), "{o:?}");
    took
}

/// One `POST …/run?wait=true` of `session` → 200, in ms.
async fn wait_run(server: &Server, session: &str) -> f64 {
    let url = server.url(&format!("/code-sessions/{session}/run?wait=true"));
    let start = Instant::now();
    let res = server.http.post(&url).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let v: serde_json::Value = res.json().await.unwrap();
    let took = ms(start.elapsed());
    assert_eq!(v["stdout"], "Hello World\n", "{v}");
    took
}

/// `g++` as the runtime compiles, then every case's input piped to the program by hand and
/// its output checked, in ms.
fn bare_cases(cpp: &Resolved, dir: &Path, cases: &[(String, String)]) -> f64 {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let src = dir.join("sum.cpp");
    let exe = dir.join("sum");
    std::fs::write(&src, CPP_SUM).unwrap();
    let start = Instant::now();
    let st = Command::new(&cpp.executable)
        .args(["-std=c++17", "-O2", "-Wall", "-o"])
        .arg(&exe)
        .arg(&src)
        .status()
        .unwrap();
    assert!(st.success());
    for (input, expected) in cases {
        let mut child = Command::new(&exe)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), *expected);
    }
    ms(start.elapsed())
}

/// One `POST /executions?wait=true` of the C++ solution against `cases` → 200, every case
/// accepted, in ms.
async fn cases_request(server: &Server, cases: &[(String, String)]) -> f64 {
    let tests: Vec<serde_json::Value> = cases
        .iter()
        .map(|(i, o)| serde_json::json!({"stdin": i, "expected_stdout": o}))
        .collect();
    let body = serde_json::json!({"language": "cpp", "source_code": CPP_SUM, "tests": tests});
    let url = server.url("/executions?wait=true");
    let start = Instant::now();
    let res = server.http.post(&url).json(&body).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let v: serde_json::Value = res.json().await.unwrap();
    let took = ms(start.elapsed());
    assert_eq!(v["status"], "COMPLETED", "{v}");
    assert_eq!(v["tests_passed"], CASES, "{v}");
    took
}

/// Samples of one figure, printed as p50/p99.
#[derive(Default)]
struct Samples(Vec<f64>);

impl Samples {
    fn p(&self, q: f64) -> f64 {
        let mut v = self.0.clone();
        v.sort_by(|a, b| a.total_cmp(b));
        pct(&v, q)
    }

    fn minus(&self, other: &Samples) -> Samples {
        Samples(self.0.iter().zip(&other.0).map(|(a, b)| a - b).collect())
    }

    fn line(&self, label: &str) {
        println!(
            "{label:<58} p50 {:8.2}  p99 {:8.2}",
            self.p(0.5),
            self.p(0.99)
        );
    }
}

/// A server of the scaled setup: one API process and one worker process.
struct ScaledPair {
    api: Server,
    _worker: Server,
}

async fn scaled_pair(
    sc: &common::scaled::Scaled,
    dirs: &[tempfile::TempDir],
    rt_dir: &str,
) -> ScaledPair {
    let refs = common::scaled::refs;
    let mut api_env = sc.env();
    api_env.push(("LIVEXEC_ROLE".into(), "api".into()));
    api_env.push(("RUST_LOG".into(), "warn".into()));
    api_env.push(("LIVEXEC_RUNTIMES_DIR".into(), rt_dir.into()));
    let mut worker_env = sc.env();
    worker_env.push(("LIVEXEC_ROLE".into(), "worker".into()));
    worker_env.push(("RUST_LOG".into(), "warn".into()));
    worker_env.push(("LIVEXEC_RUNTIMES_DIR".into(), rt_dir.into()));
    let api = Server::start(dirs[0].path(), &refs(&api_env)).await;
    let worker = Server::start(dirs[1].path(), &refs(&worker_env)).await;
    ScaledPair {
        api,
        _worker: worker,
    }
}

/// Runs/s of `BURST` mixed hello worlds, `parallel` at a time, each run by `one(is_python)`.
fn local_burst(parallel: usize, one: &(dyn Fn(bool) + Sync)) -> f64 {
    let start = Instant::now();
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..parallel {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= BURST {
                    break;
                }
                one(i.is_multiple_of(2));
            });
        }
    });
    BURST as f64 / start.elapsed().as_secs_f64()
}

/// Runs/s of `BURST` mixed hello worlds submitted to `api`, until all are COMPLETED (each
/// polled every 2 ms, in submission order).
async fn burst(api: &Server, py: &str, js: &str) -> f64 {
    let start = Instant::now();
    let mut ids = Vec::with_capacity(BURST);
    for i in 0..BURST {
        ids.push(api.run(if i.is_multiple_of(2) { py } else { js }).await);
    }
    for id in &ids {
        loop {
            let v = api.execution(id).await;
            if common::is_terminal(&v) {
                assert_eq!(v["status"], "COMPLETED", "{v}");
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    BURST as f64 / start.elapsed().as_secs_f64()
}

/// Runs/s of `BURST` mixed hello worlds through `clients` concurrent `?wait=true` clients
/// (twice the workers, so the queue never runs dry): the same work as [`burst`] without the
/// client's polling.
async fn wait_burst(api: &Server, py: &str, js: &str, clients: usize) -> f64 {
    let start = Instant::now();
    let next = AtomicUsize::new(0);
    let one = || async {
        loop {
            let i = next.fetch_add(1, Ordering::SeqCst);
            if i >= BURST {
                break;
            }
            let session = if i.is_multiple_of(2) { py } else { js };
            let url = api.url(&format!("/code-sessions/{session}/run?wait=true"));
            let res = api.http.post(&url).send().await.unwrap();
            assert_eq!(res.status(), 200);
            let v: serde_json::Value = res.json().await.unwrap();
            assert_eq!(v["status"], "COMPLETED", "{v}");
        }
    };
    futures::future::join_all((0..clients).map(|_| one())).await;
    BURST as f64 / start.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let rounds: usize = std::env::var("LIVEXEC_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let dir = tempfile::tempdir().unwrap();
    let rt_dir = dir.path().join("runtimes");
    std::fs::create_dir_all(&rt_dir).unwrap();
    std::fs::write(rt_dir.join("sh.toml"), SH_RUNTIME).unwrap();
    let rt_dir_s = rt_dir.display().to_string();
    let registry = Registry::with_dir(&rt_dir).unwrap();
    let py = registry.get("python").unwrap().resolve().unwrap();
    let js = registry.get("javascript").unwrap().resolve().unwrap();
    let sh = registry.get("trivial").unwrap().resolve().unwrap();
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let sandbox = Sandbox::new(SandboxConfig::default()).unwrap();

    let e_dir = dir.path().join("embedded");
    std::fs::create_dir_all(&e_dir).unwrap();
    let embedded = Server::start(
        &e_dir,
        &[("RUST_LOG", "warn"), ("LIVEXEC_RUNTIMES_DIR", &rt_dir_s)],
    )
    .await;
    let scaled = if livexec_testkit::bench_wants("DATABASE_URL")
        && livexec_testkit::bench_wants("REDIS_URL")
    {
        Some(common::scaled::scaled().await)
    } else {
        None
    };
    let sdirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let pair = match &scaled {
        Some(sc) => Some(scaled_pair(sc, &sdirs, &rt_dir_s).await),
        None => None,
    };
    let e_py = embedded.session("python", PY_HELLO).await;
    let e_sh = embedded.session("trivial", SH_HELLO).await;
    let s_sessions = match &pair {
        Some(p) => Some((
            p.api.session("python", PY_HELLO).await,
            p.api.session("trivial", SH_HELLO).await,
        )),
        None => None,
    };

    // 1. Latency, one round = one sample of every figure, back to back.
    let names = [
        "bare", "eng_py", "emb_py", "scl_py", "eng_sh", "emb_sh", "scl_sh",
    ];
    let mut s: Vec<Samples> = names.iter().map(|_| Samples::default()).collect();
    for round in 0..rounds + 5 {
        let mut one = vec![
            bare(&py, dir.path(), PY_HELLO),
            engine(&sandbox, &py, PY_HELLO),
            wait_run(&embedded, &e_py).await,
            0.0,
            engine(&sandbox, &sh, SH_HELLO),
            wait_run(&embedded, &e_sh).await,
            0.0,
        ];
        if let (Some(p), Some((spy, ssh))) = (&pair, &s_sessions) {
            one[3] = wait_run(&p.api, spy).await;
            one[6] = wait_run(&p.api, ssh).await;
        }
        // The first rounds warm caches and connections: drop them.
        if round >= 5 {
            for (samples, v) in s.iter_mut().zip(one) {
                samples.0.push(v);
            }
        }
    }
    let [bare_py, eng_py, emb_py, scl_py, eng_sh, emb_sh, scl_sh] =
        <[Samples; 7]>::try_from(s).unwrap_or_else(|_| unreachable!());
    println!("== POST …/run?wait=true → 200, {rounds} sequential rounds (ms; differences paired per round)");
    bare_py.line("python3 hello, bare interpreter (start → exit)");
    eng_py.line("python3 hello, Sandbox::run alone");
    emb_py.line("python3 hello, embedded wait=true");
    emb_py.minus(&bare_py).line("  embedded minus bare");
    emb_py.minus(&eng_py).line("  embedded minus Sandbox::run");
    if pair.is_some() {
        scl_py.line("python3 hello, scaled wait=true (PostgreSQL + Redis)");
        scl_py.minus(&bare_py).line("  scaled minus bare");
        scl_py.minus(&eng_py).line("  scaled minus Sandbox::run");
    }
    eng_sh.line("trivial program (sh: echo), Sandbox::run alone");
    emb_sh.line("trivial program, embedded wait=true");
    emb_sh
        .minus(&eng_sh)
        .line("  embedded: the platform around Sandbox::run");
    if pair.is_some() {
        scl_sh.line("trivial program, scaled wait=true");
        scl_sh
            .minus(&eng_sh)
            .line("  scaled: the platform around Sandbox::run");
    } else {
        println!("(scaled skipped: set DATABASE_URL=postgres://… and REDIS_URL)");
    }

    // 2. Bursts, alternating with the bare interpreters at the same parallelism.
    println!("== burst of {BURST} mixed python/javascript hello worlds, parallelism {workers} (runs/s, median of {BURSTS} rounds of: bare, Sandbox::run alone in this process, the service)");
    let e_js = embedded.session("javascript", JS_HELLO).await;
    let mut targets = vec![("embedded", &embedded, e_py.clone(), e_js)];
    if let Some(p) = &pair {
        let spy = p.api.session("python", PY_HELLO).await;
        let sjs = p.api.session("javascript", JS_HELLO).await;
        targets.push(("scaled", &p.api, spy, sjs));
    }
    for (label, server, spy, sjs) in &targets {
        let (mut b, mut e, mut v, mut w) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for _ in 0..BURSTS {
            b.push(local_burst(workers, &|is_py| {
                match is_py {
                    true => bare(&py, dir.path(), PY_HELLO),
                    false => bare(&js, dir.path(), JS_HELLO),
                };
            }));
            e.push(local_burst(workers, &|is_py| {
                match is_py {
                    true => engine(&sandbox, &py, PY_HELLO),
                    false => engine(&sandbox, &js, JS_HELLO),
                };
            }));
            v.push(burst(server, spy, sjs).await);
            w.push(wait_burst(server, spy, sjs, 2 * workers).await);
        }
        let med = |v: &[f64]| Samples(v.to_vec()).p(0.5);
        let ratios = |v: &[f64], of: &[f64]| {
            let r: Vec<f64> = v.iter().zip(of).map(|(v, o)| v / o * 100.0).collect();
            let each: Vec<String> = r.iter().map(|r| format!("{r:.0}")).collect();
            format!("{:3.0}% (each: {})", med(&r), each.join(" "))
        };
        println!(
            "{label:<9} bare {:6.1}  Sandbox::run alone {:6.1}  service {:6.1}",
            med(&b),
            med(&e),
            med(&v)
        );
        println!(
            "          service / bare {}; service / Sandbox::run alone {}",
            ratios(&v, &b),
            ratios(&v, &e)
        );
        println!(
            "          through {} wait=true clients instead of polling: {:6.1}; / bare {}; / Sandbox::run alone {}",
            2 * workers,
            med(&w),
            ratios(&w, &b),
            ratios(&w, &e)
        );
    }
    drop(targets);

    // 3. Test cases: one request against 50 cases beside the bare compile-and-run loop.
    let cpp = registry.get("cpp").unwrap().resolve().unwrap();
    let inputs: Vec<(String, String)> = (0..CASES)
        .map(|i| (format!("{i} {}\n", i * 2), format!("{}\n", i * 3)))
        .collect();
    let (mut b, mut v) = (Vec::new(), Vec::new());
    for round in 0..CASE_ROUNDS + 1 {
        let bare_ms = bare_cases(&cpp, dir.path(), &inputs);
        let service_ms = cases_request(&embedded, &inputs).await;
        // The first round warms the compiler's and the service's caches: drop it.
        if round > 0 {
            b.push(bare_ms);
            v.push(service_ms);
        }
    }
    let (b, v) = (Samples(b).p(0.5), Samples(v).p(0.5));
    println!("== a C++ solution against {CASES} test cases, median of {CASE_ROUNDS} alternated rounds (ms)");
    println!(
        "bare g++ once + {CASES} piped runs {b:7.1}; POST /executions?wait=true (embedded, default limits) {v:7.1} ({:+.1} %)",
        (v / b - 1.0) * 100.0
    );
    drop(pair);
    if let Some(sc) = scaled {
        sc.cleanup().await;
    }
}
