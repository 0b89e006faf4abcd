//! Turning a sandbox [`Outcome`] into the [`RunResult`] the store records, with the statuses,
//! error types and messages of API.md §4.

use livexec_core::{ErrorType, RunReport, RunResult, Status};
use livexec_sandbox::{Limits, Outcome};

/// Longest error message taken from a program's stderr, in bytes.
const MAX_MESSAGE_BYTES: usize = 1000;

/// The result to record for a program that ran (whatever it did): status, error type and
/// message per API.md §4. Precedence: time limit (wall clock, or CPU time when the run used
/// at least its `cpu_ms`), memory limit, output limit, then the exit.
pub fn to_result(outcome: &Outcome, limits: &Limits) -> RunResult {
    let (status, error_type, error_message) = verdict(outcome, limits);
    RunResult {
        status,
        report: RunReport {
            stdout: outcome.stdout.clone(),
            stderr: outcome.stderr.clone(),
            execution_time_ms: clamp_i64(outcome.wall_ms),
            error_message,
            error_type,
            exit_code: outcome.exit_code,
            signal: outcome.signal,
            cpu_time_ms: Some(clamp_i64(outcome.cpu_ms)),
            memory_kb: Some(clamp_i64(outcome.memory_peak_bytes / 1024)),
            ..RunReport::default()
        },
    }
}

fn clamp_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn verdict(o: &Outcome, limits: &Limits) -> (Status, Option<ErrorType>, Option<String>) {
    // The sandbox enforces `cpu_ms` with RLIMIT_CPU, whole seconds only: a program may end
    // on its own past a sub-second limit. The CPU time it used decides, and names the limit.
    // (RLIMIT_CPU fires at or past the limit, so a SIGXCPU kill is caught here too.)
    let cpu_limit = limits.cpu_ms.filter(|&ms| o.cpu_ms >= ms);
    if o.timed_out || cpu_limit.is_some() {
        let msg = match cpu_limit {
            Some(ms) => format!(
                "Execution exceeded the CPU time limit of {} s",
                format_seconds(ms)
            ),
            None => format!(
                "Execution exceeded the time limit of {} s",
                format_seconds(limits.wall_ms)
            ),
        };
        return (Status::Timeout, Some(ErrorType::TimeoutError), Some(msg));
    }
    if o.oom_killed {
        let msg = format!(
            "Execution exceeded the memory limit of {} MB",
            format_decimal(limits.memory_bytes, 1024 * 1024)
        );
        return failed(ErrorType::MemoryLimitExceeded, msg);
    }
    if o.output_limited.is_some() {
        let msg = format!(
            "Output exceeded the limit of {}",
            format_bytes(limits.output_bytes as u64)
        );
        return failed(ErrorType::OutputLimitExceeded, msg);
    }
    match (o.exit_code, o.signal) {
        (Some(0), None) => (Status::Completed, None, None),
        (_, Some(sig)) => {
            let msg = last_line(&o.stderr)
                .unwrap_or_else(|| format!("Process killed by signal {}", signal_name(sig)));
            failed(ErrorType::RuntimeError, msg)
        }
        (Some(code), None) => {
            let msg =
                last_line(&o.stderr).unwrap_or_else(|| format!("Process exited with code {code}"));
            failed(ErrorType::RuntimeError, msg)
        }
        (None, None) => failed(
            ErrorType::RuntimeError,
            last_line(&o.stderr).unwrap_or_else(|| "Process ended without an exit status".into()),
        ),
    }
}

fn failed(t: ErrorType, msg: String) -> (Status, Option<ErrorType>, Option<String>) {
    (Status::Failed, Some(t), Some(msg))
}

/// The last non-empty line of stderr, trimmed and cut to a sane length.
///
/// One exception keeps messages useful for Node.js: when stderr ends with Node's version
/// trailer (`Node.js v20.11.0`), the trailer and the stack frames above it (`at …`) are
/// skipped, so the message is the error line (`TypeError: …`), as it is for Python.
fn last_line(stderr: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(stderr);
    let mut lines = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .rev()
        .peekable();
    if lines.peek().is_some_and(|l| is_node_trailer(l)) {
        let mut rest = lines.clone().skip(1).skip_while(|l| l.starts_with("at "));
        if let Some(error_line) = rest.next() {
            return Some(cut(error_line));
        }
    }
    lines.next().map(cut)
}

/// `Node.js v20.11.0`.
fn is_node_trailer(line: &str) -> bool {
    line.strip_prefix("Node.js v")
        .is_some_and(|v| v.starts_with(|c: char| c.is_ascii_digit()))
}

/// A line made into a message: at most [`MAX_MESSAGE_BYTES`] (on a char boundary), and NUL
/// replaced by U+FFFD like invalid UTF-8, so that no message the engine derives can be
/// refused by a database's text rules (PostgreSQL refuses NUL in text).
pub(crate) fn cut(line: &str) -> String {
    let mut end = line.len().min(MAX_MESSAGE_BYTES);
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    line[..end].replace('\0', "\u{FFFD}")
}

/// `30000` → `"30"`, `1500` → `"1.5"`, `250` → `"0.25"`.
pub fn format_seconds(ms: u64) -> String {
    format_decimal(ms, 1000)
}

/// `value / unit` with at most three decimals and no trailing zeros.
pub(crate) fn format_decimal(value: u64, unit: u64) -> String {
    let whole = value / unit;
    let frac = ((value % unit) as u128 * 1000 / unit as u128) as u64;
    if frac == 0 {
        return whole.to_string();
    }
    let digits = format!("{frac:03}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// `1048576` → `"1 MiB"`, `65536` → `"64 KiB"`, `1000` → `"1000 bytes"`.
pub fn format_bytes(bytes: u64) -> String {
    const KIB: u64 = 1024;
    const MIB: u64 = 1024 * 1024;
    if bytes >= MIB {
        format!("{} MiB", format_decimal(bytes, MIB))
    } else if bytes >= KIB && bytes.is_multiple_of(KIB) {
        format!("{} KiB", bytes / KIB)
    } else {
        format!("{bytes} bytes")
    }
}

/// The conventional name of a Linux signal (`11` → `"SIGSEGV"`), or `"signal 42"`.
pub fn signal_name(sig: i32) -> String {
    const NAMES: [&str; 31] = [
        "SIGHUP",
        "SIGINT",
        "SIGQUIT",
        "SIGILL",
        "SIGTRAP",
        "SIGABRT",
        "SIGBUS",
        "SIGFPE",
        "SIGKILL",
        "SIGUSR1",
        "SIGSEGV",
        "SIGUSR2",
        "SIGPIPE",
        "SIGALRM",
        "SIGTERM",
        "SIGSTKFLT",
        "SIGCHLD",
        "SIGCONT",
        "SIGSTOP",
        "SIGTSTP",
        "SIGTTIN",
        "SIGTTOU",
        "SIGURG",
        "SIGXCPU",
        "SIGXFSZ",
        "SIGVTALRM",
        "SIGPROF",
        "SIGWINCH",
        "SIGIO",
        "SIGPWR",
        "SIGSYS",
    ];
    usize::try_from(sig)
        .ok()
        .and_then(|s| s.checked_sub(1))
        .and_then(|i| NAMES.get(i))
        .map_or_else(|| format!("signal {sig}"), |n| (*n).to_owned())
}

#[cfg(test)]
#[path = "result_tests.rs"]
mod tests;
