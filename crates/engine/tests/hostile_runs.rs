//! Programs that got past a limit through the real engine, the real sandbox (as root) and a
//! real Python: CPU time under a second (RLIMIT_CPU counts whole seconds), and test cases
//! that together print far more than one run may.

use livexec_core::{ErrorType, LimitOverrides, RunOptions, Status, TestCase, Verdict};
use livexec_engine::{Engine, Executor, Request, MAX_TESTS_OUTPUT_BYTES};
use livexec_runtimes::Registry;
use livexec_sandbox::{Limits, Sandbox, SandboxConfig};
use std::collections::HashMap;
use std::sync::Arc;

/// An engine with the one runtime `id` (its toolchain from install-toolchains.sh).
fn engine(id: &str) -> Engine {
    let sandbox = Sandbox::new(SandboxConfig::default()).expect("root and cgroups");
    let registry = Registry::builtin().unwrap();
    let rt = registry
        .get(id)
        .unwrap()
        .resolve()
        .unwrap_or_else(|e| panic!("{id} (install-toolchains.sh): {e}"));
    let runtimes = HashMap::from([(id.to_owned(), rt)]);
    Engine::new(Arc::new(sandbox), runtimes, Limits::default())
}

fn python() -> Engine {
    engine("python")
}

fn case() -> TestCase {
    TestCase {
        stdin: String::new(),
        expected_stdout: None,
        args: None,
    }
}

#[test]
fn a_program_past_a_sub_second_cpu_limit_is_a_timeout_that_names_it() {
    // 0.6 s of CPU under a 300 ms limit ended on its own and was COMPLETED.
    let burn = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.6:\n    pass\nprint('done')";
    let limits = LimitOverrides {
        cpu_time_ms: Some(300),
        time_ms: Some(20_000),
        ..LimitOverrides::default()
    };
    let e = python();
    let request = Request::new("python", burn).with_options(RunOptions {
        limits,
        ..RunOptions::default()
    });
    let r = e.execute(&request, &mut |_, _| {}).unwrap();
    assert_eq!(r.status, Status::Timeout, "{r:?}");
    assert_eq!(r.report.error_type, Some(ErrorType::TimeoutError));
    assert_eq!(
        r.report.error_message.as_deref(),
        Some("Execution exceeded the CPU time limit of 0.3 s")
    );
    let request = Request::new("python", burn).with_options(RunOptions {
        limits,
        tests: vec![case()],
        ..RunOptions::default()
    });
    let r = e.execute(&request, &mut |_, _| {}).unwrap();
    assert_eq!(
        r.report.tests[0].verdict,
        Verdict::Timeout,
        "{:?}",
        r.report.tests[0]
    );
}

#[test]
fn test_cases_record_no_more_output_together_than_the_budget() {
    // Three cases of 9 MiB each: 27 MiB recorded before (64 cases: 64 times a run's output);
    // now each keeps its third of the budget.
    let nine = 9 << 20;
    let print = format!("import sys\nsys.stdout.write('x' * {nine})");
    let request = Request::new("python", &print).with_options(RunOptions {
        limits: LimitOverrides {
            output_bytes: Some(16 << 20),
            ..LimitOverrides::default()
        },
        tests: vec![case(), case(), case()],
        ..RunOptions::default()
    });
    let r = python().execute(&request, &mut |_, _| {}).unwrap();
    let lens: Vec<usize> = r.report.tests.iter().map(|t| t.stdout.len()).collect();
    let third = MAX_TESTS_OUTPUT_BYTES / 3;
    assert_eq!(lens, [third, third, third]);
    assert!(r
        .report
        .tests
        .iter()
        .all(|t| t.verdict == Verdict::Accepted));
    assert_eq!(r.status, Status::Completed);
}

/// javac loads annotation processors from its class path, which is the working dir: a
/// submission that brings a processor's class and a `META-INF/services` entry among its files
/// would run its own code inside the compile stage, under the compile limits (every core,
/// 512 MiB, 20 s) rather than the run's. The compile stage must not run submitted code.
#[test]
fn a_java_compile_runs_no_annotation_processor_the_submission_brings() {
    let registry = Registry::builtin().unwrap();
    let java = registry
        .get("java")
        .unwrap()
        .resolve()
        .expect("java (install-toolchains.sh)");
    // The processor, compiled here with the same javac.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("p")).unwrap();
    std::fs::write(
        dir.path().join("p/Evil.java"),
        r#"package p;
import javax.annotation.processing.*;
import javax.lang.model.element.TypeElement;
import java.util.Set;
@SupportedAnnotationTypes("*")
public class Evil extends AbstractProcessor {
  public Evil() { System.err.println("SUBMITTED PROCESSOR RAN"); }
  public boolean process(Set<? extends TypeElement> a, RoundEnvironment r) { return false; }
}
"#,
    )
    .unwrap();
    let built = std::process::Command::new(&java.executable)
        .args(["-d", ".", "p/Evil.java"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(built.status.success(), "{built:?}");
    let class = std::fs::read(dir.path().join("p/Evil.class")).unwrap();
    let sandbox = Sandbox::new(SandboxConfig::default()).expect("root and cgroups");
    let engine = Engine::new(
        Arc::new(sandbox),
        HashMap::from([("java".to_owned(), java)]),
        Limits::default(),
    );
    let main = "public class Main { public static void main(String[] a) { System.out.println(\"Hello\"); } }";
    let file = |name: &str, content: &[u8]| livexec_core::SourceFile {
        name: name.to_owned(),
        content: content.to_vec(),
    };
    let request = Request::new("java", main).with_options(RunOptions {
        files: vec![
            file("p/Evil.class", &class),
            file(
                "META-INF/services/javax.annotation.processing.Processor",
                b"p.Evil\n",
            ),
        ],
        ..RunOptions::default()
    });
    let r = engine.execute(&request, &mut |_, _| {}).unwrap();
    let compile = r.report.compile.as_ref().expect("a compile stage");
    assert!(
        !compile.stderr.contains("SUBMITTED PROCESSOR RAN")
            && !compile.stdout.contains("SUBMITTED PROCESSOR RAN"),
        "the compile stage ran the submission's processor: {compile:?}"
    );
    assert_eq!(r.status, Status::Completed, "{r:?}");
    assert_eq!(String::from_utf8_lossy(&r.report.stdout), "Hello\n");
}

/// A compile stage whose artifacts match more files than the run stage takes (1024) is a
/// compilation error naming the limit, not a run that silently lacks some of them: 1100
/// nested Java classes sort (`Main$…`) before `Main.class`, which was the one dropped, and
/// the run failed with "Could not find or load main class Main".
#[test]
fn a_compile_leaving_more_artifacts_than_the_run_takes_is_a_compilation_error() {
    let engine = engine("java");
    let classes: String = (0..1100)
        .map(|i| format!("static class C{i} {{}}\n"))
        .collect();
    let main = format!(
        "public class Main {{\n{classes}public static void main(String[] a) {{ System.out.println(\"Hello\"); }} }}"
    );
    let r = engine
        .execute(&Request::new("java", &main), &mut |_, _| {})
        .unwrap();
    assert_eq!(r.status, Status::Failed, "{r:?}");
    assert_eq!(r.report.error_type, Some(ErrorType::CompilationError));
    let message = r.report.error_message.as_deref().unwrap_or_default();
    assert!(
        message.contains("1101 files") && message.contains("1024"),
        "{message}"
    );
}
