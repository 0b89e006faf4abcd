//! Every branch of [`to_result`] and its formatting helpers.

use super::*;
use livexec_sandbox::Stream;

fn limits() -> Limits {
    Limits::default()
}

fn exited(code: i32, stderr: &[u8]) -> Outcome {
    Outcome {
        exit_code: Some(code),
        wall_ms: 42,
        cpu_ms: 17,
        memory_peak_bytes: 8 << 20,
        stdout: b"out".to_vec(),
        stderr: stderr.to_vec(),
        ..Outcome::default()
    }
}

fn killed(sig: i32, stderr: &[u8]) -> Outcome {
    Outcome {
        exit_code: None,
        signal: Some(sig),
        ..exited(0, stderr)
    }
}

#[test]
fn exit_zero_is_completed_with_every_figure() {
    let r = to_result(&exited(0, b"warning on stderr\n"), &limits());
    assert_eq!(r.status, Status::Completed);
    assert_eq!((r.report.error_type, r.report.error_message), (None, None));
    assert_eq!(r.report.stdout, b"out");
    assert_eq!(r.report.stderr, b"warning on stderr\n");
    assert_eq!(r.report.execution_time_ms, 42);
    assert_eq!(r.report.cpu_time_ms, Some(17));
    assert_eq!(r.report.memory_kb, Some(8 * 1024));
    assert_eq!((r.report.exit_code, r.report.signal), (Some(0), None));
}

#[test]
fn non_zero_exit_takes_the_last_non_empty_stderr_line() {
    let tb = b"Traceback (most recent call last):\n  File \"main.py\", line 1\nZeroDivisionError: division by zero\n\n  \n";
    let r = to_result(&exited(1, tb), &limits());
    assert_eq!(r.status, Status::Failed);
    assert_eq!(r.report.error_type, Some(ErrorType::RuntimeError));
    assert_eq!(
        r.report.error_message.as_deref(),
        Some("ZeroDivisionError: division by zero")
    );
}

#[test]
fn non_zero_exit_without_stderr_names_the_code() {
    let r = to_result(&exited(3, b"\n \n"), &limits());
    assert_eq!(r.report.error_type, Some(ErrorType::RuntimeError));
    assert_eq!(
        r.report.error_message.as_deref(),
        Some("Process exited with code 3")
    );
}

#[test]
fn exit_124_is_a_runtime_error_not_a_timeout() {
    let r = to_result(&exited(124, b""), &limits());
    assert_eq!(r.status, Status::Failed);
    assert_eq!(r.report.error_type, Some(ErrorType::RuntimeError));
    assert_eq!(
        r.report.error_message.as_deref(),
        Some("Process exited with code 124")
    );
}

#[test]
fn death_by_signal_names_the_signal() {
    let r = to_result(&killed(11, b""), &limits());
    assert_eq!(r.status, Status::Failed);
    assert_eq!(r.report.error_type, Some(ErrorType::RuntimeError));
    assert_eq!(
        r.report.error_message.as_deref(),
        Some("Process killed by signal SIGSEGV")
    );
    assert_eq!(r.report.signal, Some(11));
    let r = to_result(&killed(6, b"free(): invalid pointer\n"), &limits());
    assert_eq!(
        r.report.error_message.as_deref(),
        Some("free(): invalid pointer")
    );
}

#[test]
fn timeout_wins_and_formats_seconds() {
    let mut o = killed(9, b"");
    o.timed_out = true;
    let r = to_result(&o, &limits());
    assert_eq!(r.status, Status::Timeout);
    assert_eq!(r.report.error_type, Some(ErrorType::TimeoutError));
    assert_eq!(
        r.report.error_message.as_deref(),
        Some("Execution exceeded the time limit of 30 s")
    );
    let short = Limits {
        wall_ms: 1500,
        ..limits()
    };
    assert_eq!(
        to_result(&o, &short).report.error_message.as_deref(),
        Some("Execution exceeded the time limit of 1.5 s")
    );
}

#[test]
fn cpu_time_over_its_limit_is_a_timeout_even_when_the_program_ended_on_its_own() {
    // RLIMIT_CPU only fires on whole seconds: 961 ms of CPU under a 500 ms limit ran to its
    // end and was COMPLETED.
    let cpu = Limits {
        cpu_ms: Some(500),
        ..limits()
    };
    let mut o = exited(0, b"");
    o.cpu_ms = 961;
    let r = to_result(&o, &cpu);
    assert_eq!(r.status, Status::Timeout);
    assert_eq!(r.report.error_type, Some(ErrorType::TimeoutError));
    assert_eq!(
        r.report.error_message.as_deref(),
        Some("Execution exceeded the CPU time limit of 0.5 s")
    );
    // Killed by SIGXCPU: the CPU limit is named, not the wall clock's.
    let mut o = killed(24, b"");
    (o.timed_out, o.cpu_ms) = (true, 1003);
    assert_eq!(
        to_result(&o, &cpu).report.error_message.as_deref(),
        Some("Execution exceeded the CPU time limit of 0.5 s")
    );
    // Under the CPU limit, a wall-clock timeout is the wall clock's.
    let mut o = killed(9, b"");
    (o.timed_out, o.cpu_ms) = (true, 20);
    assert_eq!(
        to_result(&o, &cpu).report.error_message.as_deref(),
        Some("Execution exceeded the time limit of 30 s")
    );
    o.timed_out = false;
    o.cpu_ms = 499;
    assert_eq!(to_result(&o, &cpu).status, Status::Failed);
}

#[test]
fn oom_kill_is_memory_limit_exceeded() {
    let mut o = killed(9, b"");
    o.oom_killed = true;
    let r = to_result(&o, &limits());
    assert_eq!(r.status, Status::Failed);
    assert_eq!(r.report.error_type, Some(ErrorType::MemoryLimitExceeded));
    assert_eq!(
        r.report.error_message.as_deref(),
        Some("Execution exceeded the memory limit of 128 MB")
    );
}

#[test]
fn output_cap_is_output_limit_exceeded() {
    for stream in [Stream::Stdout, Stream::Stderr] {
        let mut o = killed(9, b"");
        o.output_limited = Some(stream);
        let r = to_result(&o, &limits());
        assert_eq!(r.status, Status::Failed);
        assert_eq!(r.report.error_type, Some(ErrorType::OutputLimitExceeded));
        assert_eq!(
            r.report.error_message.as_deref(),
            Some("Output exceeded the limit of 1 MiB")
        );
    }
    let mut o = exited(0, b"");
    o.output_limited = Some(Stream::Stdout);
    let small = Limits {
        output_bytes: 1000,
        ..limits()
    };
    assert_eq!(
        to_result(&o, &small).report.error_message.as_deref(),
        Some("Output exceeded the limit of 1000 bytes")
    );
}

#[test]
fn no_exit_status_at_all_is_still_a_result() {
    let mut o = exited(0, b"");
    o.exit_code = None;
    let r = to_result(&o, &limits());
    assert_eq!(r.status, Status::Failed);
    assert_eq!(r.report.error_type, Some(ErrorType::RuntimeError));
}

#[test]
fn invalid_utf8_and_long_lines_never_break_the_message() {
    let mut line = vec![b'x'; 5000];
    line.extend_from_slice("é\u{fffd}".as_bytes());
    line.push(0xff);
    let r = to_result(&exited(1, &line), &limits());
    let msg = r.report.error_message.unwrap();
    assert!(msg.len() <= MAX_MESSAGE_BYTES && msg.starts_with("xxx"));
}

#[test]
fn formatting_helpers() {
    assert_eq!(format_seconds(30_000), "30");
    assert_eq!(format_seconds(1500), "1.5");
    assert_eq!(format_seconds(250), "0.25");
    assert_eq!(format_seconds(2001), "2.001");
    assert_eq!(format_bytes(1 << 20), "1 MiB");
    assert_eq!(format_bytes(3 << 19), "1.5 MiB");
    assert_eq!(format_bytes(64 << 10), "64 KiB");
    assert_eq!(format_bytes(1000), "1000 bytes");
    assert_eq!(signal_name(9), "SIGKILL");
    assert_eq!(signal_name(31), "SIGSYS");
    assert_eq!(signal_name(0), "signal 0");
    assert_eq!(signal_name(64), "signal 64");
}

#[test]
fn node_errors_give_the_error_line_not_the_version_trailer() {
    let stderr = b"/work/main.js:1\nnull.x\n    ^\n\nTypeError: Cannot read properties of null (reading 'x')\n    at Object.<anonymous> (/work/main.js:1:6)\n    at node:internal/main/run_main_module:28:49\n\nNode.js v20.20.2\n";
    let r = to_result(&exited(1, stderr), &limits());
    assert_eq!(
        r.report.error_message.as_deref(),
        Some("TypeError: Cannot read properties of null (reading 'x')")
    );
    // Only Node's trailer triggers it: other output ending in "at …" is taken as it is.
    let r = to_result(&exited(1, b"look\n  at the end\n"), &limits());
    assert_eq!(r.report.error_message.as_deref(), Some("at the end"));
    let r = to_result(&exited(1, b"Node.js v20.1.0\n"), &limits());
    assert_eq!(r.report.error_message.as_deref(), Some("Node.js v20.1.0"));
}

#[test]
fn derived_messages_never_hold_nul() {
    // PostgreSQL refuses NUL in text: a message taken from stderr replaces it like bad UTF-8.
    let r = to_result(&exited(3, b"bad\x00byte\n"), &limits());
    assert_eq!(r.report.error_message.as_deref(), Some("bad\u{FFFD}byte"));
    assert_eq!(
        r.report.stderr, b"bad\x00byte\n",
        "the output itself is kept as it was"
    );
}
