//! The programs of the status/error-type suite and what each must end as (API.md §4), with
//! limits: time 2 s, output 1000 bytes, memory 64 MiB.

use serde_json::Value;

/// The limits the cases assume, as server settings.
pub const LIMITS: &[(&str, &str)] = &[
    ("LIVEXEC_TIMEOUT_MS", "2000"),
    ("LIVEXEC_OUTPUT_LIMIT_BYTES", "1000"),
    ("LIVEXEC_MEMORY_MB", "64"),
];

/// What one program must end as.
pub struct Case {
    pub name: &'static str,
    pub language: &'static str,
    pub code: &'static str,
    pub status: &'static str,
    pub error_type: Option<&'static str>,
    /// Exact error message, or a prefix when it ends with `*`.
    pub message: Option<&'static str>,
    /// Exact stdout, when checked.
    pub stdout: Option<&'static str>,
}

pub const fn case(
    name: &'static str,
    language: &'static str,
    code: &'static str,
    status: &'static str,
    error_type: Option<&'static str>,
    message: Option<&'static str>,
    stdout: Option<&'static str>,
) -> Case {
    Case {
        name,
        language,
        code,
        status,
        error_type,
        message,
        stdout,
    }
}

pub const RT: Option<&str> = Some("RuntimeError");

pub const CASES: &[Case] = &[
    case(
        "py success",
        "python",
        "print('Hello World')",
        "COMPLETED",
        None,
        None,
        Some("Hello World\n"),
    ),
    case(
        "py exception",
        "python",
        "print('before')\nx = 1/0",
        "FAILED",
        RT,
        Some("ZeroDivisionError: division by zero"),
        Some("before\n"),
    ),
    case(
        "py non-zero exit",
        "python",
        "import sys\nsys.exit(3)",
        "FAILED",
        RT,
        Some("Process exited with code 3"),
        Some(""),
    ),
    case(
        "py exit 124 is not a timeout",
        "python",
        "import sys\nsys.exit(124)",
        "FAILED",
        RT,
        Some("Process exited with code 124"),
        None,
    ),
    case(
        "py syntax error",
        "python",
        "print('unclosed'\n",
        "FAILED",
        RT,
        Some("SyntaxError: *"),
        Some(""),
    ),
    case(
        "py stdin is at EOF",
        "python",
        "input()",
        "FAILED",
        RT,
        Some("EOFError: EOF when reading a line"),
        None,
    ),
    case(
        "py killed by a signal",
        "python",
        "import ctypes\nctypes.string_at(0)",
        "FAILED",
        RT,
        Some("Process killed by signal SIGSEGV"),
        None,
    ),
    case(
        "py timeout",
        "python",
        "while True:\n    pass",
        "TIMEOUT",
        Some("TimeoutError"),
        Some("Execution exceeded the time limit of 2 s"),
        None,
    ),
    case(
        "py sleeping past the limit",
        "python",
        "import time\nprint('started', flush=True)\ntime.sleep(60)",
        "TIMEOUT",
        Some("TimeoutError"),
        Some("Execution exceeded the time limit of 2 s"),
        Some("started\n"),
    ),
    case(
        "py memory limit",
        "python",
        "x = 'x' * (300 * 1024 * 1024)\nprint(len(x))",
        "FAILED",
        Some("MemoryLimitExceeded"),
        Some("Execution exceeded the memory limit of 64 MB"),
        None,
    ),
    case(
        "py output limit",
        "python",
        "import sys\nwhile True:\n    sys.stdout.write('y' * 100)",
        "FAILED",
        Some("OutputLimitExceeded"),
        Some("Output exceeded the limit of 1000 bytes"),
        None,
    ),
    case(
        "py stderr flood",
        "python",
        "import sys\nwhile True:\n    sys.stderr.write('e' * 100)",
        "FAILED",
        Some("OutputLimitExceeded"),
        Some("Output exceeded the limit of 1000 bytes"),
        None,
    ),
    case(
        "py unicode",
        "python",
        "print('héllo wörld – 世界 🎉')",
        "COMPLETED",
        None,
        None,
        Some("héllo wörld – 世界 🎉\n"),
    ),
    case(
        "py NUL and invalid UTF-8",
        "python",
        "import sys\nsys.stdout.buffer.write(b'a\\x00b\\xff')",
        "COMPLETED",
        None,
        None,
        Some("a\u{0}b\u{fffd}"),
    ),
    case(
        "py stderr on success",
        "python",
        "import sys\nprint('out')\nprint('warn', file=sys.stderr)",
        "COMPLETED",
        None,
        None,
        Some("out\n"),
    ),
    case(
        "py empty program",
        "python",
        "",
        "COMPLETED",
        None,
        None,
        Some(""),
    ),
    case(
        "js success",
        "javascript",
        "console.log('Hello World')",
        "COMPLETED",
        None,
        None,
        Some("Hello World\n"),
    ),
    case(
        "js exit code",
        "javascript",
        "process.exit(2)",
        "FAILED",
        RT,
        Some("Process exited with code 2"),
        Some(""),
    ),
    case(
        "js exception",
        "javascript",
        "console.log('before'); null.x",
        "FAILED",
        RT,
        Some("TypeError: Cannot read properties of null (reading 'x')"),
        Some("before\n"),
    ),
    case(
        "js syntax error",
        "javascript",
        "console.log(",
        "FAILED",
        RT,
        Some("SyntaxError: *"),
        Some(""),
    ),
    case(
        "js timeout",
        "javascript",
        "for(;;){}",
        "TIMEOUT",
        Some("TimeoutError"),
        Some("Execution exceeded the time limit of 2 s"),
        None,
    ),
    case(
        "js output limit",
        "javascript",
        "for(;;){process.stdout.write('z'.repeat(100))}",
        "FAILED",
        Some("OutputLimitExceeded"),
        Some("Output exceeded the limit of 1000 bytes"),
        None,
    ),
    case(
        "js unicode",
        "javascript",
        "console.log('héllo 世界 🎉')",
        "COMPLETED",
        None,
        None,
        Some("héllo 世界 🎉\n"),
    ),
    case(
        "js NUL and invalid UTF-8",
        "javascript",
        "process.stdout.write(Buffer.from([0x61,0,0x62,0xff]))",
        "COMPLETED",
        None,
        None,
        Some("a\u{0}b\u{fffd}"),
    ),
];

/// Every difference between what an execution is and what its case says.
pub fn check(c: &Case, v: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let mut expect = |what: &str, ok: bool, got: &Value| {
        if !ok {
            problems.push(format!("{}: {what} wrong, got {got}", c.name));
        }
    };
    expect("status", v["status"] == c.status, &v["status"]);
    expect(
        "error_type",
        v["error_type"].as_str() == c.error_type,
        &v["error_type"],
    );
    if c.error_type.is_none() {
        expect(
            "error_message",
            v["error_message"].is_null(),
            &v["error_message"],
        );
    } else {
        let msg = v["error_message"].as_str().unwrap_or("");
        let ok = match c.message {
            Some(m) if m.ends_with('*') => msg.starts_with(m.trim_end_matches('*')),
            Some(m) => msg == m,
            None => !msg.is_empty(),
        };
        expect("error_message", ok, &v["error_message"]);
    }
    if let Some(out) = c.stdout {
        expect("stdout", v["stdout"] == out, &v["stdout"]);
    }
    for key in [
        "execution_id",
        "status",
        "stdout",
        "stderr",
        "execution_time_ms",
        "error_message",
        "error_type",
    ] {
        expect(key, v.get(key).is_some(), &Value::Null);
    }
    expect("attempts", v["attempts"] == 1, &v["attempts"]);
    problems
}
