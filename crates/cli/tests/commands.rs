//! `livexec run`, `livexec runtimes`, `livexec migrate` and `livexec serve --help`, on the
//! real binary.

mod common;

use common::BIN;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn livexec_run(dir: &std::path::Path, lang: &str, file: &str, code: &str) -> std::process::Output {
    let path = dir.join(file);
    std::fs::write(&path, code).unwrap();
    Command::new(BIN)
        .args(["run", "--language", lang])
        .arg(&path)
        .args(["--timeout-ms", "3000"])
        .output()
        .unwrap()
}

#[test]
fn run_passes_output_and_exit_code_through_with_a_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let out = livexec_run(
        dir.path(),
        "python",
        "a.py",
        "import sys\nprint('to stdout')\nprint('to stderr', file=sys.stderr)\nsys.exit(3)",
    );
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "to stdout\n");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("to stderr\n"), "{err}");
    let verdict = err.lines().last().unwrap();
    assert!(
        verdict.starts_with("livexec: FAILED RuntimeError: to stderr;") && verdict.contains(" ms"),
        "{verdict}"
    );

    // A program cannot forge the verdict: its last stderr line (the error message) tries to
    // erase the line and print a COMPLETED of its own; the verdict shows it escaped.
    let out = livexec_run(
        dir.path(),
        "python",
        "spoof.py",
        "import sys\nsys.stderr.write('\\r\\x1b[2Klivexec: COMPLETED wall 1 ms\\x1b[8m')\nsys.exit(1)",
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let verdict = err
        .rsplit('\n')
        .find(|l| l.starts_with("livexec: "))
        .unwrap();
    assert!(
        verdict.starts_with(
            "livexec: FAILED RuntimeError: \\u{1b}[2Klivexec: COMPLETED wall 1 ms\\u{1b}[8m;"
        ),
        "{err:?}"
    );

    let out = livexec_run(dir.path(), "javascript", "b.js", "console.log(6*7)");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "42\n");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("livexec: COMPLETED wall"), "{err}");
}

#[test]
fn run_reports_signals_and_timeouts_in_the_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let out = livexec_run(
        dir.path(),
        "python",
        "s.py",
        "import ctypes\nctypes.string_at(0)",
    );
    assert_eq!(out.status.code(), Some(128 + 11));
    let out = livexec_run(dir.path(), "python", "t.py", "while True: pass");
    assert_eq!(out.status.code(), Some(124));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("livexec: TIMEOUT TimeoutError"), "{err}");
}

#[test]
fn run_feeds_stdin_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    std::fs::write(&input, "from a file\n").unwrap();
    let prog = dir.path().join("echo.py");
    std::fs::write(&prog, "print(input().upper())").unwrap();
    let out = Command::new(BIN)
        .args(["run", "-l", "python"])
        .arg(&prog)
        .arg("--stdin")
        .arg(&input)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "FROM A FILE\n");
}

#[test]
fn run_streams_output_while_the_program_runs() {
    let dir = tempfile::tempdir().unwrap();
    let prog = dir.path().join("live.py");
    std::fs::write(
        &prog,
        "import time\nprint('first')\ntime.sleep(2)\nprint('second')",
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .args(["run", "-l", "python"])
        .arg(&prog)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "first");
    // The first line arrived while the program was still sleeping.
    assert!(
        child.try_wait().unwrap().is_none(),
        "output arrived only at exit"
    );
    assert_eq!(lines.next().unwrap().unwrap(), "second");
    assert!(child.wait().unwrap().success());
}

#[test]
fn run_compiles_then_runs_and_reports_a_compile_error() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    std::fs::write(&input, "21\n").unwrap();
    let path = dir.path().join("main.cpp");
    std::fs::write(
        &path,
        "#include <iostream>\nint main() { int n; std::cin >> n; std::cout << n * 2 << std::endl; return 4; }",
    )
    .unwrap();
    // By alias, with stdin from a file.
    let out = Command::new(BIN)
        .args(["run", "--language", "c++"])
        .arg(&path)
        .arg("--stdin")
        .arg(&input)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "42\n");
    assert!(err.contains("compile ") && err.contains(" ms,"), "{err}");

    let out = livexec_run(dir.path(), "cpp", "bad.cpp", "int main() { return x; }");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("error:"), "the compiler's output: {err}");
    // The code goes in as the runtime's file name, whatever the host file is called.
    assert!(
        err.contains("FAILED CompilationError: main.cpp:1:"),
        "{err}"
    );
    // The verdict names the line of the first error (`error_line`) and ends with the compile
    // time.
    let verdict = err.lines().last().unwrap_or_default();
    assert!(verdict.contains(" (line 1); compile "), "{err}");
    assert!(verdict.ends_with(" ms"), "{verdict}");
}

/// The compiler's warnings reach stderr when the compile succeeds too, before the program's
/// output and the verdict, once.
#[test]
fn run_shows_the_compilers_warnings_before_the_program_runs() {
    let dir = tempfile::tempdir().unwrap();
    let out = livexec_run(
        dir.path(),
        "c",
        "warn.c",
        "#warning \"mind the gap\"\n#include <stdio.h>\nint main(void) { fputs(\"ran\\n\", stderr); return 0; }\n",
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let warning = err.find("warning: #warning").expect("the warning");
    let ran = err.find("ran\n").expect("the program's stderr");
    let verdict = err.find("livexec: COMPLETED").expect("the verdict");
    assert!(warning < ran && ran < verdict, "{err}");
    assert_eq!(err.matches("mind the gap").count(), 2, "{err}"); // its line and the caret line
}

#[test]
fn piped_stdin_and_stdin_dash_feed_the_program() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let prog = dir.path().join("in.py");
    std::fs::write(&prog, "print('hi', input())").unwrap();
    for dash in [false, true] {
        let mut cmd = Command::new(BIN);
        cmd.args(["run", "-l", "py"]).arg(&prog);
        if dash {
            cmd.args(["--stdin", "-"]);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(b"Bob\n").unwrap();
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "hi Bob\n",
            "--stdin - {dash}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A runtime whose probe counts itself in `probes.log` beside its toolchain (`tool`, a plain
/// file: only its identity matters; the probe names the host's sh as the executable).
const PROBED: &str = r#"
id = "probed"
language = "probed"
name = "Probe cache test"
file_name = "main.sh"
default_template = "echo hi"
binary = "livexec-test-probed-tool"
override_env = "LIVEXEC_TEST_PROBED_TOOL"
probe_sh = '''
echo probed >> "$(dirname "$1")/probes.log"
readlink -f /bin/sh; echo /usr; echo 1.0
'''
[run]
command = ["{executable}", "{file}"]
[smoke]
source = "read x; echo smoke $x"
stdin = "ok"
expected_stdout = "smoke ok\n"
"#;

#[test]
fn a_second_run_does_not_probe_the_toolchain_again_until_it_changes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let runtimes = d.join("runtimes");
    std::fs::create_dir(&runtimes).unwrap();
    std::fs::write(runtimes.join("probed.toml"), PROBED).unwrap();
    let tool = d.join("tool");
    std::fs::write(&tool, "a toolchain").unwrap();
    std::fs::write(d.join("main.sh"), "echo hi from $0").unwrap();
    let cache = d.join("cache");
    let path = std::env::var("PATH").unwrap_or_default();
    let run_on = |path: &str| {
        let out = Command::new(BIN)
            .args(["run", "-l", "probed"])
            .arg(d.join("main.sh"))
            .env("LIVEXEC_RUNTIMES_DIR", &runtimes)
            .env("LIVEXEC_TEST_PROBED_TOOL", &tool)
            .env("LIVEXEC_CACHE_DIR", &cache)
            .env("PATH", path)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "hi from main.sh\n");
        std::fs::read_to_string(d.join("probes.log"))
            .unwrap()
            .lines()
            .count()
    };
    let run = || run_on(&path);
    // The runtime's entries: one per PATH.
    let entries = || -> Vec<std::path::PathBuf> {
        let mut found: Vec<_> = std::fs::read_dir(&cache)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                name.starts_with("probe-probed-") && name.ends_with(".toml")
            })
            .collect();
        found.sort();
        found
    };
    assert_eq!(run(), 1, "the first run probes");
    assert_eq!(run(), 1, "the second run is answered by the cache");
    assert_eq!(entries().len(), 1, "{:?}", entries());

    // Another PATH (a pyenv shell, `sudo`, a profiler prepending its directory) probes once
    // and keeps an entry of its own: going back and forth probes no more.
    let other = format!("{}:{path}", d.display());
    assert_eq!(run_on(&other), 2, "a new PATH is probed");
    assert_eq!(run(), 2, "the first PATH's entry is still there");
    assert_eq!(run_on(&other), 2, "and so is the second's");
    assert_eq!(entries().len(), 2, "{:?}", entries());
    std::fs::remove_file(&entries()[0]).unwrap();
    std::fs::remove_file(&entries()[0]).unwrap();
    assert_eq!(run(), 3, "an emptied cache probes again");

    // A new mtime is a new toolchain: probed again, then cached again.
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(60);
    std::fs::File::options()
        .write(true)
        .open(&tool)
        .unwrap()
        .set_modified(later)
        .unwrap();
    assert_eq!(run(), 4, "a touched toolchain is probed again");
    assert_eq!(run(), 4);

    // An edited probe (the runtime file changed) probes again.
    let edited = PROBED.replace("echo /usr;", "echo /usr ;");
    std::fs::write(runtimes.join("probed.toml"), edited).unwrap();
    assert_eq!(run(), 5, "an edited probe is run again");

    // A corrupt cache is no error: ignored, probed, rewritten.
    std::fs::write(&entries()[0], "\0\0 not toml [").unwrap();
    assert_eq!(run(), 6, "a corrupt entry is ignored");
    assert_eq!(run(), 6, "and rewritten");

    // `livexec runtimes` always probes (it is how to refresh what no key sees).
    let out = Command::new(BIN)
        .arg("runtimes")
        .env("LIVEXEC_RUNTIMES_DIR", &runtimes)
        .env("LIVEXEC_TEST_PROBED_TOOL", &tool)
        .env("LIVEXEC_CACHE_DIR", &cache)
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("probed ") && l.contains("ok (smoke")),
        "{table}"
    );
    assert_eq!(
        run(),
        7,
        "`livexec runtimes` probed once and refreshed the cache"
    );
}

/// Directories under `dir` (at most `depth` levels down) named `<pid>-<n>` inside a `livexec`
/// directory: the run cgroups of the supervisor `pid`.
fn run_cgroups_of(
    pid: u32,
    dir: &std::path::Path,
    depth: u32,
    found: &mut Vec<std::path::PathBuf>,
) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let prefix = format!("{pid}-");
    for e in entries.filter_map(Result::ok) {
        if !e.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let path = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with(&prefix) && dir.file_name().is_some_and(|n| n == "livexec") {
            found.push(path);
        } else if depth > 0 {
            run_cgroups_of(pid, &path, depth - 1, found);
        }
    }
}

/// `livexec run` builds its sandbox beside loading the runtimes and tears its jail down before
/// it exits: once it has exited, whether the program succeeded, was killed at its time limit,
/// or never ran (an unknown language), no cgroup or run directory of it is left (and so no
/// process of the run: a cgroup with a process in it cannot be removed).
#[test]
fn run_leaves_no_cgroup_run_dir_or_process_behind() {
    let dir = tempfile::tempdir().unwrap();
    // (language, file, code, time limit in ms, exit status): the time limit is generous
    // except for the program meant to hit it.
    let cases = [
        ("python", "a.py", "print('hi')", "20000", Some(0)),
        (
            "python",
            "b.py",
            "import os\nos.fork()\nwhile True: pass",
            "500",
            Some(124),
        ),
        ("cobol", "x.cob", "DISPLAY 'HI'.", "20000", Some(1)),
    ];
    for (lang, file, code, timeout_ms, status) in cases {
        let path = dir.path().join(file);
        std::fs::write(&path, code).unwrap();
        let child = Command::new(BIN)
            .args(["run", "--language", lang])
            .arg(&path)
            .args(["--timeout-ms", timeout_ms])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id();
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), status, "{lang} {file}: {out:?}");
        let mut left = Vec::new();
        run_cgroups_of(pid, std::path::Path::new("/sys/fs/cgroup"), 6, &mut left);
        assert!(left.is_empty(), "{file}: cgroups left behind: {left:?}");
        let run_dirs: Vec<_> = std::fs::read_dir("/run/livexec")
            .map(|d| {
                d.filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with(&format!("{pid}.")))
                    .collect()
            })
            .unwrap_or_default();
        assert!(run_dirs.is_empty(), "{file}: run dirs left: {run_dirs:?}");
    }
}

#[test]
fn an_unknown_language_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = livexec_run(dir.path(), "cobol", "x.cob", "DISPLAY 'HI'.");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cobol") && err.contains("python"), "{err}");
}

#[test]
fn runtimes_lists_every_runtime_as_working_with_its_smoke_test() {
    let out = Command::new(BIN).arg("runtimes").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Every smoke test reads stdin; compiled runtimes compile and run theirs.
    for id in common::RUNTIME_IDS {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("{id} ")))
            .unwrap_or_else(|| panic!("{id} missing:\n{text}"));
        assert!(line.contains(" ok (smoke test"), "{line}");
    }
    assert!(text.starts_with("sandbox: cgroup"), "{text}");
    // The isolation line names every layer, so a fallback shows.
    let first = text.lines().next().unwrap_or_default();
    for layer in [
        "pid 1 livexec-init",
        "run uids ",
        "seccomp allow-list",
        "/proc masked",
    ] {
        assert!(first.contains(layer), "{layer} missing: {first}");
    }
}

#[test]
fn migrate_creates_the_schema_and_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/m.sqlite", dir.path().display());
    for _ in 0..2 {
        let out = Command::new(BIN)
            .arg("migrate")
            .env("DATABASE_URL", &url)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(dir.path().join("m.sqlite").exists());
}

#[test]
fn serve_help_documents_every_setting() {
    let out = Command::new(BIN)
        .args(["serve", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for var in [
        "LIVEXEC_ROLE",
        "LIVEXEC_BIND",
        "PORT",
        "DATABASE_URL",
        "REDIS_URL",
        "LIVEXEC_REDIS_PREFIX",
        "LIVEXEC_WORKERS",
        "LIVEXEC_TIMEOUT_MS",
        "LIVEXEC_MEMORY_MB",
        "LIVEXEC_CPUS",
        "LIVEXEC_COMPILE_CPUS",
        "LIVEXEC_PIDS",
        "LIVEXEC_OUTPUT_LIMIT_BYTES",
        "LIVEXEC_MAX_BODY_BYTES",
        "LIVEXEC_LEASE_MS",
        "LIVEXEC_HEALTH_BIND",
        "LIVEXEC_ALLOW_RLIMITS_ONLY",
        "LIVEXEC_RUNTIMES_DIR",
        "LIVEXEC_CACHE_DIR",
        "LIVEXEC_PYTHON",
        "LIVEXEC_NODE",
        "LIVEXEC_JUDGE0_API",
        "LIVEXEC_PISTON_API",
        "LIVEXEC_MCP",
    ] {
        assert!(
            help.contains(&format!("[env: {var}")),
            "{var} missing:\n{help}"
        );
    }
}

#[test]
fn serve_waits_for_an_unreachable_database_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let dead_port = common::free_port();
    let mut child = Command::new(BIN)
        .arg("serve")
        .current_dir(dir.path())
        .env(
            "DATABASE_URL",
            format!("postgres://postgres@127.0.0.1:{dead_port}/nothing"),
        )
        .env_remove("REDIS_URL")
        .env("LIVEXEC_BIND", format!("127.0.0.1:{}", common::free_port()))
        .env("LIVEXEC_WORKERS", "1")
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    let waiting = loop {
        match rx.recv_timeout(common::PATIENCE) {
            Ok(line) if line.contains("waiting for database") => break line,
            Ok(line) => seen.push(line),
            Err(e) => {
                let _ = child.kill();
                panic!("no waiting line ({e}):\n{}", seen.join("\n"));
            }
        }
    };
    assert!(waiting.contains("retrying"), "{waiting}");
    assert!(
        child.try_wait().unwrap().is_none(),
        "it must wait, not crash"
    );
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
}
