//! Parsing and refusing runtime files.

use super::*;

const OK: &str = r#"
id = "x"
language = "x"
name = "X"
file_name = "main.x"
default_template = ""
binary = "x"
override_env = "LIVEXEC_X"
probe = ["--probe"]
[run]
command = ["{executable}", "{file}"]
[smoke]
source = ""
expected_stdout = ""
"#;

const COMPILED: &str = r#"
id = "y"
language = "y"
name = "Y"
aliases = ["why", "y++"]
file_name = "main.y"
default_template = ""
binary = "yc"
override_env = "LIVEXEC_YC"
probe_sh = 'echo "$1"; echo /usr; echo 1.0'
[compile]
command = ["{executable}", "-o", "main", "{file}"]
artifacts = ["main"]
[compile.limits]
timeout_ms = 20000
[run]
command = ["/work/main"]
[smoke]
source = ""
expected_stdout = ""
"#;

#[test]
fn a_minimal_file_parses_with_defaults() {
    let rt = Runtime::parse("x.toml", OK).unwrap();
    assert_eq!(rt.run.limits, LimitOverrides::default());
    assert!(rt.mounts.is_empty() && rt.aliases.is_empty());
    assert!(!rt.compiled());
    assert_eq!(rt.compile_limits(), None);
}

#[test]
fn a_compile_stage_gets_the_compile_defaults_under_its_own_limits() {
    let rt = Runtime::parse("y.toml", COMPILED).unwrap();
    assert!(rt.compiled());
    assert_eq!(rt.aliases, vec!["why", "y++"]);
    let l = rt.compile_limits().unwrap();
    assert_eq!(
        (l.memory_mb, l.pids, l.timeout_ms),
        (Some(512), Some(64), Some(20_000))
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let bad = OK
        .replace("id = \"x\"", "id = \"X!\"")
        .replace("main.x", "../main.x")
        .replace("[\"{executable}\", \"{file}\"]", "[\"sh\"]");
    let err = Runtime::parse("bad.toml", &bad).unwrap_err().to_string();
    for needle in ["bad.toml", "id", "file_name", "{executable}", "{file}"] {
        assert!(err.contains(needle), "{needle} missing in {err}");
    }
}

#[test]
fn unknown_keys_are_rejected() {
    let err = Runtime::parse("u.toml", &format!("colour = 1\n{OK}")).unwrap_err();
    assert!(err.to_string().contains("colour"), "{err}");
    let err = Runtime::parse("u.toml", &OK.replace("[run]", "[run]\nfoo = 2")).unwrap_err();
    assert!(err.to_string().contains("foo"), "{err}");
}

#[test]
fn a_missing_command_is_named() {
    let err = Runtime::parse(
        "m.toml",
        &OK.replace("command = [\"{executable}\", \"{file}\"]", ""),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("m.toml") && err.contains("command"), "{err}");
    let err = Runtime::parse(
        "e.toml",
        &OK.replace("[\"{executable}\", \"{file}\"]", "[]"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("e.toml") && err.contains("run.command"),
        "{err}"
    );
}

#[test]
fn a_compile_stage_without_an_artifact_is_refused() {
    let err = Runtime::parse("c.toml", &COMPILED.replace("artifacts = [\"main\"]", ""))
        .unwrap_err()
        .to_string();
    assert!(err.contains("c.toml") && err.contains("artifact"), "{err}");
    let err = Runtime::parse("c.toml", &COMPILED.replace("[\"main\"]", "[\"../x\"]"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("\"../x\""), "{err}");
}

#[test]
fn probe_and_probe_sh_are_exclusive_and_one_is_required() {
    let none = OK.replace("probe = [\"--probe\"]", "");
    let err = Runtime::parse("p.toml", &none).unwrap_err().to_string();
    assert!(err.contains("probe"), "{err}");
    let both = OK.replace("probe = [\"--probe\"]", "probe = [\"a\"]\nprobe_sh = \"b\"");
    assert!(Runtime::parse("p.toml", &both).is_err());
}

/// The built-in error rules on what the toolchains print (samples taken from them).
#[test]
fn builtin_error_rules_find_the_error_line() {
    let r = crate::Registry::builtin().unwrap();
    let cases = [
        (
            "python",
            "Traceback (most recent call last):\n  File \"/work/main.py\", line 2, in <module>\n    raise Exception(\"boom\")\nException: boom\n",
            "Exception: boom",
        ),
        (
            "javascript",
            "node:fs:573\n  return binding.open(\n                 ^\n\nError: ENOENT: no such file or directory, open 'missing.txt'\n    at Object.openSync (node:fs:573:18)\n    at node:internal/main/run_main_module:28:49 {\n  errno: -2,\n  code: 'ENOENT'\n}\n\nNode.js v20.20.2\n",
            "Error: ENOENT: no such file or directory, open 'missing.txt'",
        ),
        (
            "java",
            "Exception in thread \"main\" java.lang.ArithmeticException: / by zero\n\tat Main.main(Main.java:3)\n",
            "java.lang.ArithmeticException: / by zero",
        ),
        (
            "go",
            "panic: assignment to entry in nil map\n\ngoroutine 1 [running]:\nmain.main()\n\t/work/main.go:2 +0x2e\n",
            "panic: assignment to entry in nil map",
        ),
        (
            "rust",
            "\nthread 'main' (31572) panicked at main.rs:1:55:\nindex out of bounds: the len is 0 but the index is 3\nnote: run with `RUST_BACKTRACE=1`\n",
            "index out of bounds: the len is 0 but the index is 3",
        ),
        ("ruby", "main.rb:1:in `<main>': boom (RuntimeError)\n", "boom (RuntimeError)"),
        (
            "lua",
            "lua5.4: main.lua:2: boom\nstack traceback:\n\t[C]: in function 'error'\n\t[C]: in ?\n",
            "main.lua:2: boom",
        ),
        (
            "php",
            "PHP Fatal error:  Uncaught Exception: boom in /work/main.php:2\nStack trace:\n#0 {main}\n",
            "Fatal error:  Uncaught Exception: boom in /work/main.php:2",
        ),
        (
            "cpp",
            "terminate called after throwing an instance of 'std::runtime_error'\n  what():  boom\n",
            "boom",
        ),
    ];
    for (id, stderr, want) in cases {
        let rule = r.get(id).unwrap().error_rule();
        assert_eq!(rule.find(stderr).as_deref(), Some(want), "{id}");
    }
    let py = r.get("python").unwrap().error_rule();
    assert_eq!(py.find("no error here\n"), None);
}

#[test]
fn a_bad_error_pattern_or_pick_is_refused() {
    let bad = OK.replace(
        "probe = [\"--probe\"]",
        "probe = [\"--probe\"]\nerror_pattern = \"(unclosed\"\nerror_pick = \"middle\"",
    );
    let err = Runtime::parse("e.toml", &bad).unwrap_err().to_string();
    assert!(
        err.contains("error_pattern") && err.contains("middle"),
        "{err}"
    );
}
