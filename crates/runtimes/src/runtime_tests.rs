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

/// The built-in rules find the line of the user's main file in what the toolchains print
/// (samples taken from them in the sandbox), the innermost frame of it, never a line of the
/// toolchain's own library.
#[test]
fn builtin_rules_find_the_users_line() {
    let r = crate::Registry::builtin().unwrap();
    let runs: &[(&str, &str, Option<i32>)] = &[
        (
            "python",
            "Traceback (most recent call last):\n  File \"/work/main.py\", line 5, in <module>\n    f()\n  File \"/work/main.py\", line 4, in f\n    return json.loads(\"x\")\n  File \"/usr/lib/python3.11/json/__init__.py\", line 346, in loads\n    return _default_decoder.decode(s)\njson.decoder.JSONDecodeError: Expecting value: line 1 column 1 (char 0)\n",
            Some(4),
        ),
        (
            "javascript",
            "node:fs:573\n  return binding.open(\n                 ^\n\nError: ENOENT: no such file or directory, open 'missing.txt'\n    at Object.openSync (node:fs:573:18)\n    at Object.readFileSync (node:fs:452:35)\n    at f (/work/main.js:2:24)\n    at Object.<anonymous> (/work/main.js:4:1)\n    at node:internal/main/run_main_module:28:49 {\n  errno: -2,\n}\n\nNode.js v20.20.2\n",
            Some(2),
        ),
        (
            "typescript",
            "/work/main.ts:3\n    throw new TypeError(\"boom \" + p.x);\n    ^\n\nTypeError: boom 1\n    at f (/work/main.ts:3:9)\n    at Object.<anonymous> (/work/main.ts:5:1)\n",
            Some(3),
        ),
        ("c", "main: main.c:3: f: Assertion `x == 1' failed.\n", Some(3)),
        ("c", "boom\n", None),
        (
            "cpp",
            "main: main.cpp:3: int f(int): Assertion `x == 1' failed.\n",
            Some(3),
        ),
        (
            "cpp",
            "terminate called after throwing an instance of 'std::runtime_error'\n  what():  boom\n",
            None,
        ),
        (
            "java",
            "Exception in thread \"main\" java.lang.NumberFormatException: For input string: \"x\"\n\tat java.base/java.lang.Integer.parseInt(Integer.java:652)\n\tat Main.f(Main.java:3)\n\tat Main.main(Main.java:6)\n",
            Some(3),
        ),
        (
            "go",
            "panic: assignment to entry in nil map\n\ngoroutine 1 [running]:\nmain.f(...)\n\t/work/main.go:4\nmain.main()\n\t/work/main.go:8 +0x2e\n",
            Some(4),
        ),
        (
            "rust",
            "\nthread 'main' (2) panicked at main.rs:2:5:\nindex out of bounds: the len is 0 but the index is 3\n",
            Some(2),
        ),
        (
            "ruby",
            "/usr/lib/ruby/3.1.0/json/common.rb:216:in `parse': 859: unexpected token at 'x' (JSON::ParserError)\n\tfrom /usr/lib/ruby/3.1.0/json/common.rb:216:in `parse'\n\tfrom main.rb:3:in `<main>'\n",
            Some(3),
        ),
        ("ruby", "main.rb:2:in `f': boom (RuntimeError)\n\tfrom main.rb:4:in `<main>'\n", Some(2)),
        (
            "php",
            "Warning: Undefined array key \"k\" in /work/main.php on line 3\nFatal error: Uncaught DivisionByZeroError: Division by zero in /work/main.php:4\nStack trace:\n#0 /work/main.php(4): intdiv(1, 0)\n#1 {main}\n  thrown in /work/main.php on line 4\n",
            Some(4),
        ),
        (
            "php",
            "PHP Parse error:  syntax error, unexpected end of file in /work/main.php on line 2\n",
            Some(2),
        ),
        (
            "bash",
            "main.sh: line 2: nosuch1: command not found\nmain.sh: line 4: nosuch2: command not found\n",
            Some(4),
        ),
        ("bash", "boom\n", None),
        (
            "perl",
            "careful at main.pl line 3, <STDIN> line 1.\nboom at main.pl line 4, <STDIN> line 1.\n",
            Some(4),
        ),
        (
            "lua",
            "/usr/bin/lua5.4: main.lua:2: boom\nstack traceback:\n\t[C]: in function 'error'\n\tmain.lua:2: in local 'f'\n\tmain.lua:4: in main chunk\n\t[C]: in ?\n",
            Some(2),
        ),
        (
            "lua",
            "/usr/bin/lua5.4: /usr/share/lua/5.4/lib.lua:7: boom\nstack traceback:\n\t[C]: in function 'error'\n\t/usr/share/lua/5.4/lib.lua:7: in function 'lib.f'\n\tmain.lua:3: in main chunk\n",
            Some(3),
        ),
        ("sql", "Parse error near line 3: no such table: nope\n", Some(3)),
    ];
    for (id, stderr, want) in runs {
        let rule = r.get(id).unwrap().error_rule();
        assert_eq!(rule.line(stderr), *want, "{id}: {stderr}");
    }
    let php = r.get("php").unwrap().error_rule();
    assert_eq!(
        php.find(runs[12].1).as_deref(),
        Some("Fatal error: Uncaught DivisionByZeroError: Division by zero in /work/main.php:4"),
        "a fatal error is the message, not an earlier warning"
    );
    let compiles: &[(&str, &str, Option<i32>)] = &[
        (
            "c",
            "main.c: In function 'main':\nmain.c:2:9: warning: unused variable 'y' [-Wunused-variable]\nmain.c:3:12: error: 'x' undeclared (first use in this function)\n",
            Some(3),
        ),
        (
            "cpp",
            "main.cpp: In function 'int main()':\nmain.cpp:3:12: error: 'x' was not declared in this scope\n",
            Some(3),
        ),
        (
            "java",
            "Main.java:3: error: incompatible types: String cannot be converted to int\n        int x = \"s\";\n1 error\n",
            Some(3),
        ),
        ("go", "# command-line-arguments\n./main.go:4:2: undefined: x\n", Some(4)),
        (
            "rust",
            "warning: unused variable: `y`\n --> main.rs:2:9\n\nerror[E0308]: mismatched types\n --> main.rs:3:18\n  |\n",
            Some(3),
        ),
        (
            "typescript",
            "\nmain.ts(2,7): error TS2322: Type 'string' is not assignable to type 'number'.\n",
            Some(2),
        ),
        ("c", "/usr/bin/ld: cannot find -lfoo\n", None),
    ];
    for (id, output, want) in compiles {
        let rule = r.get(id).unwrap().error_rule();
        assert_eq!(rule.compile_line(output), *want, "{id}: {output}");
    }
    // An interpreted runtime has no compile rule.
    let py = r.get("python").unwrap().error_rule();
    assert_eq!(py.compile_line("main.py:3:1: error: x\n"), None);
}

#[test]
fn a_line_pattern_needs_a_line_group_and_a_valid_pick() {
    let bad = OK.replace(
        "probe = [\"--probe\"]",
        "probe = [\"--probe\"]\nerror_line_pattern = \"main:(\\\\d+)\"\nerror_line_pick = \"middle\"\ncompile_error_line_pattern = \"(x\"",
    );
    let err = Runtime::parse("l.toml", &bad).unwrap_err().to_string();
    for part in [
        "error_line_pattern needs a named group `line`",
        "error_line_pick \"middle\"",
        "compile_error_line_pattern is not a valid regular expression",
    ] {
        assert!(err.contains(part), "{part}: {err}");
    }
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

#[test]
fn artifact_names_match_in_the_working_dir_only() {
    let stage = |artifacts: &[&str]| Stage {
        command: vec!["/work/main".into()],
        env: Default::default(),
        limits: Default::default(),
        artifacts: artifacts.iter().map(|a| a.to_string()).collect(),
    };
    let java = stage(&["*.class"]);
    assert_eq!(java.artifact_named("Main.class"), Some("*.class"));
    assert_eq!(java.artifact_named(".class"), Some("*.class"));
    assert_eq!(java.artifact_named("lib/A.class"), None);
    assert_eq!(java.artifact_named("Main.java"), None);
    let c = stage(&["main"]);
    assert_eq!(c.artifact_named("main"), Some("main"));
    assert_eq!(c.artifact_named("main.c"), None);
    assert_eq!(stage(&["a*b"]).artifact_named("ab"), Some("a*b"));
    assert_eq!(stage(&["ab*b"]).artifact_named("ab"), None);
}
