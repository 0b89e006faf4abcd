//! Test cases through the engine beside the bare toolchain doing the same (prints figures;
//! asserts only that the outputs are right), issue 11's speed goals:
//!
//! 1. a C++ solution against 50 test cases: the engine (compile once in the sandbox, then 50
//!    fresh sandboxes, warm pool of 2) beside `g++` once and 50 runs piped by hand;
//! 2. a Python program reading 1 MiB of stdin: the engine beside the bare interpreter.
//!
//! The engine runs with a CPU quota of every core (not the service's default half a core),
//! so the figures show what the platform adds, not the quota's throttling.
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

    let (mut bare, mut ours) = (Vec::new(), Vec::new());
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
        for (i, input) in inputs.iter().enumerate() {
            let out = piped(&mut Command::new(dir.path().join("main")), input.as_bytes());
            assert_eq!(out, format!("{}\n", i * 3).into_bytes());
        }
        bare.push(start.elapsed().as_secs_f64() * 1e3);

        let tests = inputs
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
        let start = Instant::now();
        let r = engine.execute(&request, &mut |_, _| {}).unwrap();
        ours.push(start.elapsed().as_secs_f64() * 1e3);
        assert_eq!(r.status, Status::Completed, "{r:?}");
        assert!(r
            .report
            .tests
            .iter()
            .all(|t| t.verdict == Verdict::Accepted));
        compile_ms.push(r.report.compile.map_or(0.0, |c| c.time_ms as f64));
        cases_ms.push(r.report.execution_time_ms as f64);
    }
    let (b, o) = (median(bare), median(ours));
    println!(
        "C++, {CASES} test cases, median of {rounds}: bare g++ + {CASES} piped runs {b:.1} ms, engine {o:.1} ms ({:+.1}%)",
        (o / b - 1.0) * 100.0
    );
    println!(
        "  engine: compile stage {:.0} ms (its own wall), the programs' own time over {CASES} cases {:.0} ms",
        median(compile_ms),
        median(cases_ms)
    );

    let mib = "x".repeat(1 << 20);
    let (mut bare, mut ours) = (Vec::new(), Vec::new());
    for _ in 0..rounds * 4 {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("main.py"), READ_ALL).unwrap();
        let start = Instant::now();
        let out = piped(
            Command::new(&python).arg("main.py").current_dir(dir.path()),
            mib.as_bytes(),
        );
        bare.push(start.elapsed().as_secs_f64() * 1e3);
        assert_eq!(out, b"1048576\n");
        let request = Request::new("python", READ_ALL).with_options(RunOptions {
            stdin: Some(mib.clone()),
            ..RunOptions::default()
        });
        let start = Instant::now();
        let r = engine.execute(&request, &mut |_, _| {}).unwrap();
        ours.push(start.elapsed().as_secs_f64() * 1e3);
        assert_eq!(r.report.stdout, b"1048576\n");
    }
    let (b, o) = (median(bare), median(ours));
    println!(
        "Python reading 1 MiB of stdin, median of {}: bare {b:.1} ms, engine {o:.1} ms ({:+.1} ms)",
        rounds * 4,
        o - b
    );
}
