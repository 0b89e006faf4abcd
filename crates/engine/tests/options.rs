//! Run options through the real engine, the real sandbox (as root) and real toolchains:
//! stdin, args, env, extra files, per-run limits, test cases with verdicts (compiled once),
//! comparison rules and returned files.

use livexec_core::{
    Compare, ErrorType, LimitOverrides, RunOptions, RunResult, SourceFile, Status, TestCase,
    Verdict,
};
use livexec_engine::{Engine, Executor, Request, MAX_OUTPUT_FILES};
use livexec_runtimes::{LimitOverrides as StageLimits, Registry, Resolved, StageRecipe};
use livexec_sandbox::{Limits, Sandbox, SandboxConfig};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

fn sandbox() -> Arc<Sandbox> {
    Arc::new(
        Sandbox::new(SandboxConfig::default())
            .expect("the sandbox needs root and cgroups on the test host"),
    )
}

fn engine(ids: &[&str]) -> Engine {
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
    Engine::new(sandbox(), runtimes, Limits::default())
}

fn run(e: &Engine, language: &str, source: &str, options: RunOptions) -> RunResult {
    let request = Request::new(language, source).with_options(options);
    e.execute(&request, &mut |_, _| {}).unwrap()
}

fn case(stdin: &str, expected: Option<&str>) -> TestCase {
    TestCase {
        stdin: stdin.to_owned(),
        expected_stdout: expected.map(str::to_owned),
        args: None,
    }
}

fn file(name: &str, content: &str) -> SourceFile {
    SourceFile {
        name: name.to_owned(),
        content: content.as_bytes().to_vec(),
    }
}

#[test]
fn stdin_args_and_env_reach_the_program_but_never_override_the_sandboxs_own() {
    let e = engine(&["python"]);
    let src = "import os, sys\nprint(sys.stdin.read().strip(), sys.argv[1:], os.environ.get('GREETING'), os.environ['PATH'], os.environ.get('LD_PRELOAD'))";
    let r = run(
        &e,
        "python",
        src,
        RunOptions {
            stdin: Some("Bob\n".into()),
            args: vec!["a b".into(), "-x".into()],
            env: BTreeMap::from([
                ("GREETING".into(), "hi".into()),
                ("PATH".into(), "/evil".into()),
                ("LD_PRELOAD".into(), "/evil.so".into()),
            ]),
            ..RunOptions::default()
        },
    );
    assert_eq!(r.status, Status::Completed, "{r:?}");
    assert_eq!(
        String::from_utf8_lossy(&r.report.stdout),
        "Bob ['a b', '-x'] hi /usr/local/bin:/usr/bin:/bin None\n"
    );
}

#[test]
fn raw_stdin_bytes_reach_the_program_as_they_are() {
    let e = engine(&["python"]);
    let request = Request {
        stdin_bytes: Some(vec![0, 0xff, b'\n']),
        ..Request::new("python", "import sys\nprint(list(sys.stdin.buffer.read()))")
    };
    let r = e.execute(&request, &mut |_, _| {}).unwrap();
    assert_eq!(r.report.stdout, b"[0, 255, 10]\n");
}

#[test]
fn stdin_larger_than_the_program_reads_does_not_block() {
    let e = engine(&["python"]);
    let big = "x".repeat(8 << 20);
    let r = run(
        &e,
        "python",
        "import sys\nprint(sys.stdin.read(3))",
        RunOptions {
            stdin: Some(big),
            ..RunOptions::default()
        },
    );
    assert_eq!(
        (r.status, r.report.stdout.as_slice()),
        (Status::Completed, &b"xxx\n"[..])
    );
}

#[test]
fn multi_file_python_and_c_programs() {
    let e = engine(&["python", "c"]);
    let py = run(
        &e,
        "python",
        "from pkg.util import twice\nprint(twice(21), open('data/in.txt').read())",
        RunOptions {
            files: vec![
                file("pkg/__init__.py", ""),
                file("pkg/util.py", "def twice(x):\n    return 2 * x\n"),
                file("data/in.txt", "from a file"),
            ],
            ..RunOptions::default()
        },
    );
    assert_eq!(
        String::from_utf8_lossy(&py.report.stdout),
        "42 from a file\n",
        "{py:?}"
    );
    let c = run(
        &e,
        "c",
        "#include <stdio.h>\n#include \"util.h\"\nint main(void) { printf(\"%d\\n\", twice(21)); return 0; }",
        RunOptions {
            files: vec![file("util.h", "static inline int twice(int x) { return 2 * x; }\n")],
            ..RunOptions::default()
        },
    );
    assert_eq!(
        (c.status, c.report.stdout.as_slice()),
        (Status::Completed, &b"42\n"[..]),
        "{c:?}"
    );
}

/// One program, one request, every verdict: the case's stdin says what the program does.
const JUDGED: &str = r#"
import sys, time
what = sys.stdin.read().strip()
if what == "wrong":
    print("41")
elif what == "crash":
    raise ValueError("bad input")
elif what == "sleep":
    time.sleep(30)
elif what == "mem":
    hog = []
    while True:
        hog.append(bytearray(1 << 20))
elif what == "flood":
    while True:
        print("y" * 1000)
else:
    print("42  ")
"#;

#[test]
fn each_verdict_from_a_real_program_in_one_request_of_mixed_cases() {
    let e = engine(&["python"]);
    let limits = LimitOverrides {
        time_ms: Some(2_000),
        memory_mb: Some(64),
        output_bytes: Some(64 << 10),
        ..LimitOverrides::default()
    };
    let cases = ["ok", "wrong", "crash", "sleep", "mem", "flood", "ok"];
    let r = run(
        &e,
        "python",
        JUDGED,
        RunOptions {
            tests: cases.iter().map(|c| case(c, Some("42\n"))).collect(),
            limits,
            ..RunOptions::default()
        },
    );
    let verdicts: Vec<Verdict> = r.report.tests.iter().map(|t| t.verdict).collect();
    use Verdict::*;
    assert_eq!(
        verdicts,
        [
            Accepted,
            WrongAnswer,
            RuntimeError,
            Timeout,
            MemoryLimitExceeded,
            OutputLimitExceeded,
            Accepted
        ],
        "{:#?}",
        r.report.tests
    );
    assert_eq!(r.status, Status::Failed);
    assert_eq!(r.report.error_type, Some(ErrorType::WrongAnswer));
    assert_eq!(
        r.report.error_message.as_deref(),
        Some("5 of 7 tests failed")
    );
    // The execution shows the first failing case.
    assert_eq!(r.report.stdout, b"41\n");
    assert_eq!(
        r.report.tests[1].message.as_deref(),
        Some("line 1: expected \"42\", got \"41\"")
    );
    assert_eq!(
        r.report.tests[2].message.as_deref(),
        Some("ValueError: bad input")
    );
    let l = r.report.limits.unwrap();
    assert_eq!(
        (l.time_ms, l.memory_mb, l.output_bytes),
        (2_000, 64, 64 << 10)
    );

    // stop_on_failure: the rest are skipped; the first failure's type is the execution's.
    let r = run(
        &e,
        "python",
        JUDGED,
        RunOptions {
            tests: ["ok", "crash", "ok", "wrong"]
                .iter()
                .map(|c| case(c, Some("42")))
                .collect(),
            stop_on_failure: true,
            ..RunOptions::default()
        },
    );
    let verdicts: Vec<Verdict> = r.report.tests.iter().map(|t| t.verdict).collect();
    assert_eq!(verdicts, [Accepted, RuntimeError, Skipped, Skipped]);
    assert_eq!(r.report.error_type, Some(ErrorType::RuntimeError));
    assert_eq!(
        r.report.error_message.as_deref(),
        Some("1 of 4 tests failed, 2 skipped")
    );
}

#[test]
fn trim_forgives_line_end_blanks_and_exact_does_not() {
    let e = engine(&["python"]);
    let src = "print('1 2 \\r')\nprint()\nprint()";
    let judged = |compare| {
        run(
            &e,
            "python",
            src,
            RunOptions {
                tests: vec![case("", Some("1 2\n"))],
                compare,
                ..RunOptions::default()
            },
        )
    };
    let trim = judged(Compare::Trim);
    assert_eq!(
        (trim.status, trim.report.tests[0].verdict),
        (Status::Completed, Verdict::Accepted)
    );
    assert_eq!(
        (trim.report.error_type, trim.report.error_message),
        (None, None)
    );
    let exact = judged(Compare::Exact);
    assert_eq!(exact.report.tests[0].verdict, Verdict::WrongAnswer);
    assert_eq!(
        exact.report.error_message.as_deref(),
        Some("1 of 1 tests failed")
    );
}

/// A compiled runtime whose "compiler" writes a program that prints the moment it was
/// compiled (in ns): if every case prints the same moment, the compile stage ran once.
fn stamping_runtime() -> Resolved {
    let stage = |program: &str, args: &[&str], artifacts: &[&str]| StageRecipe {
        program: PathBuf::from(program),
        args: args.iter().map(|a| (*a).to_owned()).collect(),
        env: Vec::new(),
        limits: StageLimits::default(),
        artifacts: artifacts.iter().map(|a| (*a).to_owned()).collect(),
    };
    Resolved {
        id: "stamp".into(),
        executable: PathBuf::from("/bin/sh"),
        mounts: Vec::new(),
        file_name: "main.sh".into(),
        compile: Some(stage(
            "/bin/sh",
            &[
                "-c",
                "{ echo \"echo compiled $(date +%s%N)\"; cat main.sh; } > main",
            ],
            &["main"],
        )),
        run: stage("/bin/sh", &["/work/main"], &[]),
        version: "1".into(),
        error: Default::default(),
    }
}

#[test]
fn ten_cases_are_compiled_once() {
    let e = Engine::new(
        sandbox(),
        HashMap::from([("stamp".to_owned(), stamping_runtime())]),
        Limits::default(),
    );
    let r = run(
        &e,
        "stamp",
        "read x; echo \"got $x\"",
        RunOptions {
            tests: (0..10).map(|i| case(&format!("{i}\n"), None)).collect(),
            ..RunOptions::default()
        },
    );
    assert_eq!(r.status, Status::Completed, "{r:#?}");
    let stamps: Vec<&str> = r
        .report
        .tests
        .iter()
        .map(|t| t.stdout.lines().next().unwrap())
        .collect();
    assert!(stamps[0].starts_with("compiled "), "{stamps:?}");
    assert!(
        stamps.iter().all(|s| *s == stamps[0]),
        "compiled more than once: {stamps:?}"
    );
    for (i, t) in r.report.tests.iter().enumerate() {
        assert_eq!(t.stdout.lines().nth(1), Some(format!("got {i}").as_str()));
    }
    // And a real compiler: ten C cases, one compile report, every case accepted.
    let c = engine(&["c"]);
    let r = run(
        &c,
        "c",
        "#include <stdio.h>\nint main(void){ int a, b; if (scanf(\"%d %d\", &a, &b) != 2) return 1; printf(\"%d\\n\", a + b); return 0; }",
        RunOptions {
            tests: (0..10)
                .map(|i| case(&format!("{i} {i}"), Some(&format!("{}", 2 * i))))
                .collect(),
            ..RunOptions::default()
        },
    );
    assert_eq!(r.status, Status::Completed, "{r:#?}");
    assert!(r
        .report
        .tests
        .iter()
        .all(|t| t.verdict == Verdict::Accepted));
    assert_eq!(r.report.compile.unwrap().status, Status::Completed);
}

#[test]
fn return_files_are_returned_by_glob_and_capped() {
    let e = engine(&["python"]);
    let src = "for i in range(20):\n    open(f'out{i:02}.txt', 'w').write(str(i))\nopen('a.png', 'wb').write(b'\\x89PNG')\nopen('big.bin', 'wb').write(b'0' * (2 << 20))";
    let r = run(
        &e,
        "python",
        src,
        RunOptions {
            return_files: vec!["?.pn?".into(), "*.bin".into(), "out*.txt".into()],
            limits: LimitOverrides {
                memory_mb: Some(256),
                ..LimitOverrides::default()
            },
            ..RunOptions::default()
        },
    );
    assert_eq!(r.status, Status::Completed, "{r:?}");
    let names: Vec<&str> = r
        .report
        .output_files
        .iter()
        .map(|f| f.name.as_str())
        .collect();
    assert_eq!(names.len(), MAX_OUTPUT_FILES, "{names:?}");
    assert!(!names.contains(&"big.bin"), "over the byte cap: left out");
    // In name order: a.png, big.bin (over the byte cap), then out00 … out14 (the count cap).
    assert_eq!(
        (names[0], names[1], names[15]),
        ("a.png", "out00.txt", "out14.txt")
    );
    assert_eq!(r.report.output_files[0].content, b"\x89PNG");
    assert_eq!(r.report.output_files[1].content, b"0");
    assert!(!names.contains(&"main.py"), "only what matches");
}

#[test]
fn cases_side_by_side_give_the_sequential_result_in_order_and_stop_at_the_lowest_failure() {
    // Later cases finish first (the earlier ones sleep longer); each prints its own index.
    let src = "import sys, time\ni = int(input())\ntime.sleep((8 - i) * 0.02)\nprint(i if i != 2 else 'x')\nif i == 5: sys.exit(3)";
    let cases = || -> Vec<TestCase> {
        (0..8)
            .map(|i| case(&i.to_string(), Some(&format!("{i}\n"))))
            .collect()
    };
    let e = engine(&["python"]);
    let mut seen = Vec::new();
    for slots in [4, 1] {
        e.set_slots(slots);
        let all = run(
            &e,
            "python",
            src,
            RunOptions {
                tests: cases(),
                ..RunOptions::default()
            },
        );
        let outs: Vec<&str> = all.report.tests.iter().map(|t| t.stdout.trim()).collect();
        assert_eq!(
            outs,
            ["0", "1", "x", "3", "4", "5", "6", "7"],
            "{slots} slots"
        );
        use Verdict::*;
        let verdicts: Vec<Verdict> = all.report.tests.iter().map(|t| t.verdict).collect();
        let want = [
            Accepted,
            Accepted,
            WrongAnswer,
            Accepted,
            Accepted,
            RuntimeError,
            Accepted,
            Accepted,
        ];
        assert_eq!(verdicts, want, "{slots} slots");
        assert_eq!(
            all.report.error_message.as_deref(),
            Some("2 of 8 tests failed")
        );
        assert_eq!(all.report.stdout, b"x\n", "the first failing case is shown");

        // The first failure is case 2 whichever case ended first: every later case is
        // skipped, also those that had started beside it.
        let stopped = run(
            &e,
            "python",
            src,
            RunOptions {
                tests: cases(),
                stop_on_failure: true,
                ..RunOptions::default()
            },
        );
        let verdicts: Vec<Verdict> = stopped.report.tests.iter().map(|t| t.verdict).collect();
        assert_eq!(
            verdicts,
            [
                Accepted,
                Accepted,
                WrongAnswer,
                Skipped,
                Skipped,
                Skipped,
                Skipped,
                Skipped
            ],
            "{slots} slots"
        );
        assert_eq!(
            stopped.report.error_message.as_deref(),
            Some("1 of 8 tests failed, 5 skipped")
        );
        seen.push((all, stopped));
    }
    let strip = |r: &RunResult| -> Vec<(Verdict, String, Option<i32>)> {
        r.report
            .tests
            .iter()
            .map(|t| (t.verdict, t.stdout.clone(), t.exit_code))
            .collect()
    };
    assert_eq!(
        strip(&seen[0].0),
        strip(&seen[1].0),
        "parallel = sequential"
    );
    assert_eq!(
        strip(&seen[0].1),
        strip(&seen[1].1),
        "parallel = sequential"
    );
}

#[test]
fn a_failed_compile_with_test_cases_discards_the_jails_prepared_for_them() {
    let e = engine(&["cpp"]);
    e.set_slots(4);
    let r = run(
        &e,
        "cpp",
        "int main() { return x; }",
        RunOptions {
            tests: (0..20).map(|_| case("", Some(""))).collect(),
            ..RunOptions::default()
        },
    );
    assert_eq!(r.report.error_type, Some(ErrorType::CompilationError));
    assert!(r.report.tests.is_empty());
    // The jails prepared while the compiler ran go to the teardown (waiting for it ends), and
    // the engine goes on serving test cases.
    e.wait_idle();
    let ok = run(
        &e,
        "cpp",
        "#include <cstdio>\nint main() { int a; if (scanf(\"%d\", &a) != 1) return 1; printf(\"%d\\n\", a * 2); }",
        RunOptions {
            // The most cases a run may have: each runs the compiled artifact, written into
            // its jail while other jails are being cloned (no ETXTBSY).
            tests: (0..64)
                .map(|i| case(&i.to_string(), Some(&(i * 2).to_string())))
                .collect(),
            ..RunOptions::default()
        },
    );
    assert_eq!(ok.status, Status::Completed, "{:?}", ok.report.tests);
    assert_eq!(ok.report.tests.len(), 64);
}

#[test]
fn compiled_requests_run_on_a_warm_pool_of_compile_and_run_stage_jails() {
    let e = engine(&["cpp"]);
    e.keep_warm(1).unwrap();
    let src = "#include <cstdio>\nint main() { int a; if (scanf(\"%d\", &a) != 1) return 1; printf(\"%d\\n\", a + 1); }";
    for i in 0..3 {
        let r = run(
            &e,
            "cpp",
            src,
            RunOptions {
                stdin: Some(i.to_string()),
                ..RunOptions::default()
            },
        );
        assert_eq!(r.status, Status::Completed, "{r:?}");
        assert_eq!(r.report.stdout, format!("{}\n", i + 1).into_bytes());
        assert_eq!(r.report.compile.map(|c| c.status), Some(Status::Completed));
    }
    e.keep_warm(0).unwrap();
}

#[test]
fn a_compiled_run_gets_the_run_stages_own_jail_prepared_beside_the_compile() {
    let e = engine(&["c"]);
    // The run stage reads its memory limit from /proc/meminfo: the run's (per-run 64 MiB
    // over the default), never the compile stage's 512 MiB, although its jail was prepared
    // while the compiler ran.
    let src = "#include <stdio.h>\nint main(void) { char l[128]; FILE *f = fopen(\"/proc/meminfo\", \"r\"); if (!f || !fgets(l, sizeof l, f)) return 1; fputs(l, stdout); return 0; }";
    for _ in 0..2 {
        let r = run(
            &e,
            "c",
            src,
            RunOptions {
                limits: LimitOverrides {
                    memory_mb: Some(64),
                    ..LimitOverrides::default()
                },
                stderr_to_stdout: true,
                ..RunOptions::default()
            },
        );
        assert_eq!(r.status, Status::Completed, "{r:?}");
        let line = String::from_utf8_lossy(&r.report.stdout).into_owned();
        assert!(line.starts_with("MemTotal:"), "{line}");
        assert_eq!(
            line.split_whitespace().nth(1),
            Some("65536"),
            "the run stage's memory limit, in kB: {line}"
        );
        assert_eq!(r.report.compile.map(|c| c.status), Some(Status::Completed));
    }
    // A failed compile gives its prepared run jail to the teardown, which ends.
    let bad = run(
        &e,
        "c",
        "int main(void) { return x; }",
        RunOptions::default(),
    );
    assert_eq!(bad.report.error_type, Some(ErrorType::CompilationError));
    e.wait_idle();
    let again = run(
        &e,
        "c",
        "#include <stdio.h>\nint main(void) { puts(\"ok\"); return 0; }",
        RunOptions::default(),
    );
    assert_eq!(again.report.stdout, b"ok\n");
}
