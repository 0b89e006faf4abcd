//! Every language through the real server, the real sandbox and the real toolchains (CI
//! installs them with scripts/install-toolchains.sh): one server for all cases, submitted
//! together and checked together, every failure reported at once.
//!
//! At start the server smoke-tests every runtime (each smoke test reads stdin); `GET /runtimes`
//! then shows which passed. Through the API: each runtime's default template compiles and runs,
//! each compiled runtime reports a compile error as `CompilationError` with the compiler's
//! output and the line it is on (`error_line`), a thrown error in every runtime names the error
//! and the line of the user's file, a C segfault is a `RuntimeError` with SIGSEGV, Java and Go start threads within the
//! pids limit, a compile that loops is stopped by the compile time limit, aliases resolve to
//! ids, and a runtime whose toolchain is missing is listed unavailable and refused.

mod common;

use common::{Server, RUNTIME_IDS as IDS};
use serde_json::{json, Value};

/// One compile error per compiled runtime, and the line of the main file it is on
/// (`error_line`).
const COMPILE_ERRORS: &[(&str, &str, i64)] = &[
    ("c", "#include <stdio.h>\nint main(void) {\n    return x;\n}\n", 3),
    ("cpp", "#include <cstdio>\nint main() {\n    return x;\n}\n", 3),
    (
        "java",
        "public class Main {\n    public static void main(String[] a) {\n        int x = \"s\";\n    }\n}\n",
        3,
    ),
    ("go", "package main\n\nfunc main() { x = 1 }\n", 3),
    ("rust", "fn main() {\n    let x: i32 = \"s\";\n}\n", 2),
    (
        "typescript",
        "const a = 1;\nconst n: number = \"s\";\nconsole.log(a, n);\n",
        2,
    ),
];

/// A program that fails in each runtime, the `error_message` its runtime's rule finds (a
/// prefix for PHP, whose line goes on with the file), and the `error_line` it finds: the
/// innermost frame in the main file (the error is raised in a function called from further
/// down), or `None` where the toolchain prints no line (an exit code, an uncaught C++
/// exception, `die` with a newline).
const THROWN: &[(&str, &str, &str, Option<i64>)] = &[
    (
        "python",
        "import sys\n\ndef f(x):\n    return 1 / x\n\nprint(f(0))\n",
        "ZeroDivisionError: division by zero",
        Some(4),
    ),
    (
        "javascript",
        "function read() {\n  return require('fs').readFileSync('missing.txt');\n}\nread();\n",
        "Error: ENOENT: no such file or directory, open 'missing.txt'",
        Some(2),
    ),
    // The interface is erased from the compiled main.js: line 3 there is line 2, and only
    // the source map gives the TypeScript line.
    (
        "typescript",
        "interface P { x: number }\nfunction f(p: P): number {\n  throw new TypeError(\"boom\");\n}\nf({ x: 1 });\n",
        "TypeError: boom",
        Some(3),
    ),
    (
        "c",
        "#include <stdio.h>\nint main(void) { fprintf(stderr, \"boom\\n\"); return 3; }",
        "boom",
        None,
    ),
    (
        "c",
        "#include <assert.h>\nint f(int x) {\n    assert(x == 1);\n    return x;\n}\nint main(void) { return f(2); }\n",
        "main: main.c:3: f: Assertion `x == 1' failed.",
        Some(3),
    ),
    (
        "cpp",
        "#include <stdexcept>\nint main() { throw std::runtime_error(\"boom\"); }",
        "boom",
        None,
    ),
    (
        "cpp",
        "#include <cassert>\nint f(int x) {\n    assert(x == 1);\n    return x;\n}\nint main() { return f(2); }\n",
        "main: main.cpp:3: int f(int): Assertion `x == 1' failed.",
        Some(3),
    ),
    (
        "java",
        "public class Main {\n    static void f() {\n        throw new IllegalStateException(\"boom\");\n    }\n    public static void main(String[] a) {\n        f();\n    }\n}\n",
        "java.lang.IllegalStateException: boom",
        Some(3),
    ),
    (
        "go",
        "package main\n\nfunc f() {\n\tpanic(\"boom\")\n}\n\nfunc main() {\n\tf()\n}\n",
        "panic: boom",
        Some(4),
    ),
    (
        "rust",
        "fn f() {\n    panic!(\"boom\");\n}\nfn main() {\n    f();\n}\n",
        "boom",
        Some(2),
    ),
    ("ruby", "def f\n  raise \"boom\"\nend\nf\n", "boom (RuntimeError)", Some(2)),
    (
        "php",
        "<?php\nfunction f() {\n    throw new Exception(\"boom\");\n}\nf();\n",
        "Fatal error: Uncaught Exception: boom",
        Some(3),
    ),
    ("bash", "echo boom >&2; exit 3", "boom", None),
    (
        "bash",
        "f() {\n  nosuchcommand_xyz\n}\nf\n",
        "main.sh: line 2: nosuchcommand_xyz: command not found",
        Some(2),
    ),
    ("perl", "die \"boom\\n\";", "boom", None),
    (
        "perl",
        "use strict;\nsub f {\n    die \"boom\";\n}\nf();\n",
        "boom at main.pl line 3.",
        Some(3),
    ),
    (
        "lua",
        "local function f()\n  error(\"boom\")\nend\nf()\n",
        "main.lua:2: boom",
        Some(2),
    ),
    (
        "sql",
        "CREATE TABLE t(x);\nINSERT INTO t VALUES (1);\nSELECT * FROM nope;\n",
        "Parse error near line 3: no such table: nope",
        Some(3),
    ),
];

const C_SEGFAULT: &str =
    "int main(void) { volatile int *p = (volatile int *)16; *p = 1; return 0; }";

const JAVA_THREADS: &str = r#"
public class Main {
    public static void main(String[] a) throws Exception {
        Thread[] t = new Thread[8];
        int[] r = new int[8];
        for (int i = 0; i < 8; i++) {
            final int k = i;
            t[i] = new Thread(() -> r[k] = k * k);
            t[i].start();
        }
        int s = 0;
        for (int i = 0; i < 8; i++) { t[i].join(); s += r[i]; }
        System.out.println("threads " + s);
    }
}
"#;

const GO_THREADS: &str = r#"
package main

import (
	"fmt"
	"runtime"
	"sync"
)

func main() {
	var wg sync.WaitGroup
	ch := make(chan int, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(k int) {
			defer wg.Done()
			runtime.LockOSThread() // an OS thread of its own
			ch <- k * k
		}(i)
	}
	wg.Wait()
	close(ch)
	s := 0
	for v := range ch {
		s += v
	}
	fmt.Println("threads", s)
}
"#;

/// Constant evaluation that takes minutes: only the compile time limit (10 s) stops it. Many
/// evaluations, each well under GCC's per-evaluation operation limit (2^25, which a single
/// long loop hits in ~7 s on a quiet machine and then fails as an ordinary compile error).
const CPP_SLOW_COMPILE: &str = r#"
template <long N> constexpr long spin() {
    long s = N;
    for (long i = 0; i < 1000; i++)
        for (long j = 0; j < 1000; j++)
            s += i ^ j;
    return s;
}
static_assert(spin<0>() != 1, "spin");
static_assert(spin<1>() != 1, "spin");
static_assert(spin<2>() != 1, "spin");
static_assert(spin<3>() != 1, "spin");
static_assert(spin<4>() != 1, "spin");
static_assert(spin<5>() != 1, "spin");
static_assert(spin<6>() != 1, "spin");
static_assert(spin<7>() != 1, "spin");
static_assert(spin<8>() != 1, "spin");
static_assert(spin<9>() != 1, "spin");
static_assert(spin<10>() != 1, "spin");
static_assert(spin<11>() != 1, "spin");
static_assert(spin<12>() != 1, "spin");
static_assert(spin<13>() != 1, "spin");
static_assert(spin<14>() != 1, "spin");
static_assert(spin<15>() != 1, "spin");
static_assert(spin<16>() != 1, "spin");
static_assert(spin<17>() != 1, "spin");
static_assert(spin<18>() != 1, "spin");
static_assert(spin<19>() != 1, "spin");
static_assert(spin<20>() != 1, "spin");
static_assert(spin<21>() != 1, "spin");
static_assert(spin<22>() != 1, "spin");
static_assert(spin<23>() != 1, "spin");
static_assert(spin<24>() != 1, "spin");
static_assert(spin<25>() != 1, "spin");
static_assert(spin<26>() != 1, "spin");
static_assert(spin<27>() != 1, "spin");
static_assert(spin<28>() != 1, "spin");
static_assert(spin<29>() != 1, "spin");
static_assert(spin<30>() != 1, "spin");
static_assert(spin<31>() != 1, "spin");
static_assert(spin<32>() != 1, "spin");
static_assert(spin<33>() != 1, "spin");
static_assert(spin<34>() != 1, "spin");
static_assert(spin<35>() != 1, "spin");
static_assert(spin<36>() != 1, "spin");
static_assert(spin<37>() != 1, "spin");
static_assert(spin<38>() != 1, "spin");
static_assert(spin<39>() != 1, "spin");
static_assert(spin<40>() != 1, "spin");
static_assert(spin<41>() != 1, "spin");
static_assert(spin<42>() != 1, "spin");
static_assert(spin<43>() != 1, "spin");
static_assert(spin<44>() != 1, "spin");
static_assert(spin<45>() != 1, "spin");
static_assert(spin<46>() != 1, "spin");
static_assert(spin<47>() != 1, "spin");
static_assert(spin<48>() != 1, "spin");
static_assert(spin<49>() != 1, "spin");
static_assert(spin<50>() != 1, "spin");
static_assert(spin<51>() != 1, "spin");
static_assert(spin<52>() != 1, "spin");
static_assert(spin<53>() != 1, "spin");
static_assert(spin<54>() != 1, "spin");
static_assert(spin<55>() != 1, "spin");
static_assert(spin<56>() != 1, "spin");
static_assert(spin<57>() != 1, "spin");
static_assert(spin<58>() != 1, "spin");
static_assert(spin<59>() != 1, "spin");
static_assert(spin<60>() != 1, "spin");
static_assert(spin<61>() != 1, "spin");
static_assert(spin<62>() != 1, "spin");
static_assert(spin<63>() != 1, "spin");
int main() {}
"#;

/// A runtime whose toolchain is not installed anywhere.
fn ghost_runtime() -> String {
    include_str!("../../../runtimes/bash.toml")
        .replace("id = \"bash\"", "id = \"ghost\"")
        .replace("aliases = [\"sh\", \"shell\"]", "aliases = []")
        .replace(
            "binary = \"bash\"",
            "binary = \"livexec-no-such-toolchain\"",
        )
        .replace("LIVEXEC_BASH", "LIVEXEC_TEST_GHOST")
}

/// `POST /code-sessions` with an optional template; status and body.
async fn create(server: &Server, language: &str, template: Option<&str>) -> (u16, Value) {
    let mut body = json!({ "language": language });
    if let Some(t) = template {
        body["templateCode"] = json!(t);
    }
    let r = server
        .http
        .post(server.url("/code-sessions"))
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// A session (default template when `template` is `None`) run once; the execution id.
async fn submit(server: &Server, language: &str, template: Option<&str>) -> String {
    let (status, v) = create(server, language, template).await;
    assert_eq!(status, 201, "{language}: {v}");
    server.run(v["session_id"].as_str().unwrap()).await
}

async fn get(server: &Server, path: &str) -> Value {
    let r = server.http.get(server.url(path)).send().await.unwrap();
    assert_eq!(r.status(), 200, "{path}");
    r.json().await.unwrap()
}

/// Records a failed check instead of stopping at the first.
fn check(failures: &mut Vec<String>, ok: bool, what: String) {
    if !ok {
        failures.push(what);
    }
}

#[tokio::test]
async fn every_language_compiles_runs_and_fails_as_it_should() {
    let dir = tempfile::tempdir().unwrap();
    let extra = dir.path().join("runtimes");
    std::fs::create_dir(&extra).unwrap();
    std::fs::write(extra.join("ghost.toml"), ghost_runtime()).unwrap();
    let env = [
        ("LIVEXEC_RUNTIMES_DIR", extra.to_str().unwrap()),
        ("LIVEXEC_SMOKE_TESTS", "true"),
    ];
    let server = Server::start(dir.path(), &env).await;
    let mut failures = Vec::new();

    // Submitted first: the slow compile runs while the rest do.
    let slow = submit(&server, "cpp", Some(CPP_SLOW_COMPILE)).await;
    let mut hello = Vec::new();
    for id in IDS {
        hello.push((id, submit(&server, id, None).await));
    }
    let mut broken = Vec::new();
    for (id, code, line) in COMPILE_ERRORS {
        broken.push((id, line, submit(&server, id, Some(code)).await));
    }
    let mut thrown = Vec::new();
    for (id, code, message, line) in THROWN {
        thrown.push((id, message, line, submit(&server, id, Some(code)).await));
    }
    let segfault = submit(&server, "c", Some(C_SEGFAULT)).await;
    let java_threads = submit(&server, "java", Some(JAVA_THREADS)).await;
    let go_threads = submit(&server, "go", Some(GO_THREADS)).await;

    // Discovery: every built-in runtime available with a real version; ghost listed, not.
    let runtimes = get(&server, "/runtimes").await;
    let list = runtimes.as_array().unwrap();
    for id in IDS {
        let rt = list.iter().find(|r| r["id"] == *id);
        let ok = rt.is_some_and(|r| {
            r["available"] == true
                && r["version"]
                    .as_str()
                    .is_some_and(|v| v.starts_with(|c: char| c.is_ascii_digit()))
                && r["limits"]["run"]["timeout_ms"].is_u64()
                && r["compiled"] == r["limits"]["compile"].is_object()
        });
        check(&mut failures, ok, format!("GET /runtimes {id}: {rt:?}"));
    }
    let ghost = list.iter().find(|r| r["id"] == "ghost");
    let ok = ghost.is_some_and(|g| {
        g["available"] == false
            && g["version"].is_null()
            && g["unavailable_reason"]
                .as_str()
                .is_some_and(|r| r.contains("livexec-no-such-toolchain"))
    });
    check(
        &mut failures,
        ok,
        format!("ghost listed unavailable: {ghost:?}"),
    );
    let (status, v) = create(&server, "ghost", None).await;
    let msg = v["message"].to_string();
    check(
        &mut failures,
        status == 400 && msg.contains("cpp") && !msg.contains("ghost"),
        format!("an unavailable runtime is refused with the available ids: {status} {v}"),
    );

    // Aliases are stored as the id.
    for (alias, id) in [
        ("py", "python"),
        ("node", "javascript"),
        ("ts", "typescript"),
        ("c++", "cpp"),
        ("golang", "go"),
        ("rs", "rust"),
        ("sh", "bash"),
        ("sqlite", "sql"),
    ] {
        let (status, v) = create(&server, alias, Some("x")).await;
        let stored = match v["session_id"].as_str() {
            Some(s) => get(&server, &format!("/code-sessions/{s}")).await["language"].clone(),
            None => Value::Null,
        };
        check(
            &mut failures,
            status == 201 && stored == id,
            format!("alias {alias} → {id}: {status} {v} stored {stored}"),
        );
    }

    for (id, exec) in &hello {
        let v = server.wait(exec).await;
        let compiled = v["compile"].is_object();
        check(
            &mut failures,
            v["status"] == "COMPLETED"
                && v["stdout"] == "Hello World\n"
                && v.get("error_line") == Some(&Value::Null)
                && compiled == ["c", "cpp", "go", "java", "rust", "typescript"].contains(id)
                && (!compiled || v["compile"]["status"] == "COMPLETED"),
            format!("{id} default template: {v}"),
        );
    }
    for (id, line, exec) in &broken {
        let v = server.wait(exec).await;
        let c = &v["compile"];
        let output = format!(
            "{}{}",
            c["stdout"].as_str().unwrap_or(""),
            c["stderr"].as_str().unwrap_or("")
        );
        let message = v["error_message"].as_str().unwrap_or("");
        check(
            &mut failures,
            v["status"] == "FAILED"
                && v["error_type"] == "CompilationError"
                && c["status"] == "FAILED"
                && c["exit_code"].as_i64().is_some_and(|code| code != 0)
                && c["time_ms"].is_i64()
                && !message.is_empty()
                && output.contains(message)
                && v["execution_time_ms"] == 0
                && v["error_line"] == **line,
            format!("{id} compile error on line {line}: {v}"),
        );
    }
    for (id, message, line, exec) in &thrown {
        let v = server.wait(exec).await;
        check(
            &mut failures,
            v["status"] == "FAILED"
                && v["error_type"] == "RuntimeError"
                && v["error_message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with(**message) && (**id == "php" || m == **message))
                && v.get("error_line") == Some(&json!(line)),
            format!("{id} thrown error, expected {message:?} on line {line:?}: {v}"),
        );
    }
    let v = server.wait(&segfault).await;
    check(
        &mut failures,
        v["status"] == "FAILED"
            && v["error_type"] == "RuntimeError"
            && v["signal"] == 11
            && v["error_message"] == "Process killed by signal SIGSEGV"
            && v["error_line"].is_null(),
        format!("C segfault: {v}"),
    );
    for (name, exec) in [("java", &java_threads), ("go", &go_threads)] {
        let v = server.wait(exec).await;
        check(
            &mut failures,
            v["status"] == "COMPLETED" && v["stdout"] == "threads 140\n",
            format!("{name} threads: {v}"),
        );
    }
    let v = server.wait(&slow).await;
    check(
        &mut failures,
        v["status"] == "FAILED"
            && v["error_type"] == "CompilationError"
            && v["error_message"] == "Compilation exceeded the time limit of 10 s"
            && v["compile"]["status"] == "TIMEOUT",
        format!("a compile over its time limit: {v}"),
    );
    assert!(
        failures.is_empty(),
        "{} failed:\n{}\n\nserver log:\n{}",
        failures.len(),
        failures.join("\n"),
        server.log_text()
    );
}
