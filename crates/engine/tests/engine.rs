//! The real engine against the real sandbox (as root) and the real toolchains: what the
//! worker's tests prove with a fake executor, proven once here with real programs.

use livexec_core::{ErrorType, Status};
use livexec_engine::{Engine, ExecError, Executor, Request};
use livexec_runtimes::Registry;
use livexec_sandbox::{Limits, Sandbox, SandboxConfig};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

fn engine_of(ids: &[&str], limits: Limits) -> Engine {
    let registry = Registry::builtin().unwrap();
    let runtimes = ids
        .iter()
        .map(|id| {
            let rt = registry.get(id).unwrap().resolve();
            (
                (*id).to_owned(),
                rt.expect("the toolchain must be installed"),
            )
        })
        .collect();
    let sandbox = Sandbox::new(SandboxConfig::default())
        .expect("the sandbox needs root and cgroups on the test host");
    Engine::new(Arc::new(sandbox), runtimes, limits)
}

fn run(engine: &Engine, language: &str, source: &str) -> livexec_core::RunResult {
    engine
        .execute(&Request::new(language, source), &mut |_, _| {})
        .unwrap()
}

#[test]
fn a_program_runs_to_completed_with_its_limits_reported() {
    let e = engine_of(&["python"], Limits::default());
    let r = run(&e, "python", "print('hello', 6 * 7)");
    assert_eq!(r.status, Status::Completed);
    assert_eq!(r.report.stdout, b"hello 42\n");
    assert_eq!((r.report.exit_code, r.report.error_type), (Some(0), None));
    let l = r
        .report
        .limits
        .expect("a run that started reports its limits");
    assert_eq!((l.time_ms, l.memory_mb, l.pids), (30_000, 128, 50));
    assert_eq!(l.compile_time_ms, None);
}

#[test]
fn a_failing_program_is_a_result_with_the_runtimes_error_line() {
    let e = engine_of(&["python"], Limits::default());
    let r = run(&e, "python", "print('before')\n1/0");
    assert_eq!(r.status, Status::Failed);
    assert_eq!(r.report.error_type, Some(ErrorType::RuntimeError));
    assert_eq!(
        r.report.error_message.as_deref(),
        Some("ZeroDivisionError: division by zero")
    );
    assert_eq!(r.report.stdout, b"before\n");
    assert_eq!(r.report.error_line, Some(2), "the line of the user's file");
}

#[test]
fn the_time_limit_is_a_timeout_result() {
    let e = engine_of(
        &["python"],
        Limits {
            wall_ms: 500,
            ..Limits::default()
        },
    );
    let r = run(&e, "python", "import time\ntime.sleep(30)");
    assert_eq!(r.status, Status::Timeout);
    assert_eq!(
        r.report.error_message.as_deref(),
        Some("Execution exceeded the time limit of 0.5 s")
    );
}

#[test]
fn a_compiled_runtime_compiles_then_runs_and_aliases_resolve() {
    let registry = Registry::builtin().unwrap();
    let aliases = HashMap::from([("c++".to_owned(), "cpp".to_owned())]);
    let e = engine_of(&["cpp"], Limits::default()).with_aliases(aliases);
    let r = run(
        &e,
        "c++",
        "#include <iostream>\nint main(){ std::cout << 6 * 7 << std::endl; }",
    );
    assert_eq!(r.status, Status::Completed, "{r:?}");
    assert_eq!(r.report.stdout, b"42\n");
    assert_eq!(r.report.compile.unwrap().status, Status::Completed);
    assert!(r.report.limits.unwrap().compile_time_ms.is_some());
    assert_eq!(r.report.error_line, None);
    let bad = run(&e, "cpp", "int main() {\n  return x;\n}");
    assert_eq!(bad.report.error_type, Some(ErrorType::CompilationError));
    assert_eq!(bad.report.error_line, Some(2), "g++'s main.cpp:2:10: error");
    assert!(bad.report.limits.is_some());
    assert!(registry.get("cpp").is_some());
    // The message is g++'s error, not a warning or a quoted source line that says "error".
    let spoof =
        "#warning error: FAKE\n#include <cstdio>\nint main() { puts(\"error\"); return x; }";
    let bad = run(&e, "cpp", spoof);
    let message = bad.report.error_message.unwrap_or_default();
    assert!(
        message.starts_with("main.cpp:3:") && message.contains(" error: "),
        "{message}"
    );
    assert_eq!(bad.report.error_line, Some(3));
}

#[test]
fn what_cannot_run_is_a_platform_failure_not_a_result() {
    let e = engine_of(&["python"], Limits::default());
    let unknown = e.execute(&Request::new("cobol", "x"), &mut |_, _| {});
    assert!(matches!(unknown, Err(ExecError::NoRuntime { .. })));
    // An interpreter that does not exist: the sandbox itself cannot start the program.
    let mut rt = Registry::builtin()
        .unwrap()
        .get("python")
        .unwrap()
        .resolve()
        .unwrap();
    rt.run.program = PathBuf::from("/nonexistent/livexec/python3");
    rt.mounts.clear();
    let broken = Engine::new(
        Arc::clone(e.sandbox()),
        HashMap::from([("python".to_owned(), rt)]),
        Limits::default(),
    );
    let r = broken.execute(&Request::new("python", "print(1)"), &mut |_, _| {});
    assert!(matches!(r, Err(ExecError::Sandbox { .. })), "{r:?}");
}

#[test]
fn start_records_availability_and_smoke_tests_pass() {
    let mut registry = Registry::builtin().unwrap();
    let sandbox = Arc::new(Sandbox::new(SandboxConfig::default()).unwrap());
    let (engine, report) = Engine::start(sandbox, &mut registry, Limits::default(), true);
    assert!(report.broken.is_empty(), "{:?}", report.broken);
    assert!(engine.runtime_ids().contains(&"python"));
    assert!(registry.availability("python").usable());
    let r = run(&engine, "py", "print(1)");
    assert_eq!(r.report.stdout, b"1\n");
}

#[test]
fn per_run_limits_reach_the_run_and_the_compile_stage() {
    use livexec_core::{LimitOverrides, RunOptions};
    let e = engine_of(&["python", "c"], Limits::default());
    let with = |limits| RunOptions {
        limits,
        ..RunOptions::default()
    };
    // CPU time: a busy loop under 1 s of CPU and a roomy wall clock is a timeout.
    let spin = Request::new("python", "while True:\n    pass").with_options(with(LimitOverrides {
        cpu_time_ms: Some(1_000),
        time_ms: Some(20_000),
        ..LimitOverrides::default()
    }));
    let r = e.execute(&spin, &mut |_, _| {}).unwrap();
    assert_eq!(r.status, Status::Timeout, "{r:?}");
    assert_eq!(r.report.limits.unwrap().cpu_time_ms, Some(1_000));
    // The compile stage's own time limit.
    let slow =
        Request::new("c", "int main(void) { return 0; }").with_options(with(LimitOverrides {
            compile_time_ms: Some(1),
            ..LimitOverrides::default()
        }));
    let r = e.execute(&slow, &mut |_, _| {}).unwrap();
    assert_eq!(
        r.report.error_type,
        Some(ErrorType::CompilationError),
        "{r:?}"
    );
    assert_eq!(
        r.report.error_message.as_deref(),
        Some("Compilation exceeded the time limit of 0.001 s")
    );
    assert_eq!(r.report.limits.unwrap().compile_time_ms, Some(1));
}
