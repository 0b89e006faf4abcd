//! Test cases through the engine beside the bare toolchain doing the same (prints figures;
//! asserts only that the outputs are right), issue 11's speed goals:
//!
//! 1. a C++ solution against 50 test cases: the engine (compile once in the sandbox, then 50
//!    fresh sandboxes prepared ahead while the compiler runs and while earlier cases run)
//!    with its cases side by side (a slot per CPU) and one at a time (1 slot), beside `g++`
//!    once and 50 runs piped by hand;
//! 2. a Python program reading nothing, then 1 MiB of stdin: the engine beside the bare
//!    interpreter (the difference between the two rows is what delivering the input costs).
//!
//! The engine runs with a CPU quota of every core (not the service's default half a core),
//! so the figures show what the platform adds, not the quota's throttling.
//!
//! On a host busy with other work the figures lean against the engine: on cgroup v1 every
//! jail sits under one `cpu` cgroup (`livexec`) whose weight equals one host process's, so
//! under contention all jails together get the CPU share of one bare process. The load
//! averages are printed at the start and the end; on a busy host run the bench in a `cpu`
//! cgroup of high weight (README, Benchmarks), which shelters its bare programs and its jails
//! alike.
//!
//! Run (as root): `cargo bench -p livexec-engine --bench cases`. `LIVEXEC_BENCH_ROUNDS`
//! (default 5) sets the rounds; the figures are medians.

use livexec_core::{RunOptions, Status, TestCase, Verdict};
use livexec_engine::{Engine, Executor, Request};
use livexec_runtimes::Registry;
use livexec_sandbox::{Limits, Sandbox, SandboxConfig};
use std::collections::HashMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

const CASES: usize = 50;
const SUM: &str = "#include <iostream>\nint main(){ long a, b; std::cin >> a >> b; std::cout << a + b << '\\n'; }\n";
const READ_ALL: &str = "import sys\nprint(len(sys.stdin.buffer.read()))";

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The host's load averages (1, 5, 15 min): other work on the host skews every figure.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn piped(cmd: &mut Command, input: &[u8]) -> Vec<u8> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    out.stdout
}

fn main() {
    let rounds: usize = std::env::var("LIVEXEC_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let registry = Registry::builtin().unwrap();
    let resolve = |id: &str| registry.get(id).unwrap().resolve().unwrap();
    let (cpp, py) = (resolve("cpp"), resolve("python"));
    let (gxx, python) = (cpp.executable.clone(), py.executable.clone());
    let sandbox = Arc::new(Sandbox::new(SandboxConfig::default()).unwrap());
    let runtimes = HashMap::from([("cpp".to_owned(), cpp), ("python".to_owned(), py)]);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let limits = Limits {
        cpu_millicores: u32::try_from(cores * 1000).unwrap_or(1000),
        ..Limits::default()
    };
    let engine = Engine::new(sandbox, runtimes, limits);
    engine.keep_warm(2).unwrap();
    let inputs: Vec<String> = (0..CASES).map(|i| format!("{i} {}\n", i * 2)).collect();

    let tests: Vec<TestCase> = inputs
        .iter()
        .enumerate()
        .map(|(i, input)| TestCase {
            stdin: input.clone(),
            expected_stdout: Some(format!("{}\n", i * 3)),
            args: None,
        })
        .collect();
    let request = Request::new("cpp", SUM).with_options(RunOptions {
        tests,
        ..RunOptions::default()
    });
    println!("load average at start: {}", loadavg());
    let (mut bare, mut bare_compile) = (Vec::new(), Vec::new());
    // The engine with its cases side by side (a slot per CPU), and one at a time.
    let (mut side, mut one) = (Vec::new(), Vec::new());
    let (mut compile_ms, mut cases_ms) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("main.cpp"), SUM).unwrap();
        let start = Instant::now();
        let built = Command::new(&gxx)
            .args(["-std=c++17", "-O2", "-Wall", "-o", "main", "main.cpp"])
            .current_dir(dir.path())
            .status()
            .unwrap();
        assert!(built.success());
        bare_compile.push(start.elapsed().as_secs_f64() * 1e3);
        for (i, input) in inputs.iter().enumerate() {
            let out = piped(&mut Command::new(dir.path().join("main")), input.as_bytes());
            assert_eq!(out, format!("{}\n", i * 3).into_bytes());
        }
        bare.push(start.elapsed().as_secs_f64() * 1e3);

        for (slots, into) in [(cores, &mut side), (1, &mut one)] {
            engine.set_slots(slots);
            let start = Instant::now();
            let r = engine.execute(&request, &mut |_, _| {}).unwrap();
            into.push(start.elapsed().as_secs_f64() * 1e3);
            assert_eq!(r.status, Status::Completed, "{r:?}");
            assert!(r
                .report
                .tests
                .iter()
                .all(|t| t.verdict == Verdict::Accepted));
            if slots == cores {
                compile_ms.push(r.report.compile.map_or(0.0, |c| c.time_ms as f64));
                cases_ms.push(r.report.execution_time_ms as f64);
            }
            // Each request starts with the previous one's jails torn down.
            engine.wait_idle();
        }
    }
    let (b, o, s) = (median(bare), median(side), median(one));
    println!(
        "C++, {CASES} test cases, median of {rounds}: bare g++ + {CASES} piped runs {b:.1} ms (g++ alone {:.1} ms), engine {o:.1} ms ({:+.1}%) with cases side by side ({cores} slots), {s:.1} ms ({:+.1}%) one at a time",
        median(bare_compile),
        (o / b - 1.0) * 100.0,
        (s / b - 1.0) * 100.0
    );
    println!(
        "  engine ({cores} slots): compile stage {:.0} ms (its own wall), the programs' own time summed over {CASES} cases {:.0} ms",
        median(compile_ms),
        median(cases_ms)
    );
    engine.set_slots(cores);

    let mib = "x".repeat(1 << 20);
    for (what, input) in [("no stdin", ""), ("1 MiB of stdin", mib.as_str())] {
        let (mut bare, mut ours, mut own) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..rounds * 4 {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("main.py"), READ_ALL).unwrap();
            let start = Instant::now();
            let out = piped(
                Command::new(&python).arg("main.py").current_dir(dir.path()),
                input.as_bytes(),
            );
            bare.push(start.elapsed().as_secs_f64() * 1e3);
            assert_eq!(out, format!("{}\n", input.len()).into_bytes());
            let request = Request::new("python", READ_ALL).with_options(RunOptions {
                stdin: Some(input.to_owned()),
                ..RunOptions::default()
            });
            let start = Instant::now();
            let r = engine.execute(&request, &mut |_, _| {}).unwrap();
            ours.push(start.elapsed().as_secs_f64() * 1e3);
            assert_eq!(r.report.stdout, format!("{}\n", input.len()).into_bytes());
            own.push(r.report.execution_time_ms as f64);
        }
        let (b, o) = (median(bare), median(ours));
        println!(
            "Python reading {what}, median of {}: bare {b:.1} ms, engine {o:.1} ms ({:+.1} ms; the program's own time in the engine {:.1} ms)",
            rounds * 4,
            o - b,
            median(own)
        );
    }
    println!("load average at the end: {}", loadavg());
}
