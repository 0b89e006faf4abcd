//! Test cases: the verdict of one case's run, the comparison of its stdout with the expected
//! output, and the execution's result made of all the cases.
//!
//! The execution of a request with tests:
//! - `status` COMPLETED when every case is ACCEPTED, else FAILED; `error_type` the first
//!   failing case's ([`Verdict::error_type`]: `WrongAnswer`, `RuntimeError`, …) and
//!   `error_message` `"2 of 5 tests failed"` (`", 3 skipped"` added when `stop_on_failure`
//!   skipped some; skipped cases are not counted as failed).
//! - `stdout`, `stderr`, `exit_code` and `signal` are the first failing case's, or the last
//!   case's when all pass: what a reader of the execution needs to see first.
//! - `execution_time_ms` and `cpu_time_ms` are the sums over the cases that ran (the
//!   program's own time, compile excluded), `memory_kb` the highest peak of any case.
//! - The cases record at most [`MAX_TESTS_OUTPUT_BYTES`] of stdout and of stderr together,
//!   each case its equal share ([`OutputShare`]).

use crate::result::cut;
use livexec_core::{Compare, ErrorType, RunResult, Status, TestResult, Verdict};

/// Longest side of a wrong answer's "expected …, got …" message, in bytes.
const SHOWN_BYTES: usize = 80;

/// Most bytes of stdout, and of stderr, that the cases of one execution record together:
/// 16 MiB, what one run may print at most by default. Each case records at most its equal
/// share ([`OutputShare`]), cut as soon as it ends (its verdict is decided on the whole of
/// its output first): without it 64 cases could record 64 times a run's output (2 GiB at the
/// maxima), held in memory and stored.
pub const MAX_TESTS_OUTPUT_BYTES: usize = 16 << 20;

/// One case's share of [`MAX_TESTS_OUTPUT_BYTES`], bytes of stdout and of stderr: the budget
/// over the number of cases (16 MiB for one case, 256 KiB each for 64). Cutting every case
/// to it as it ends bounds what the cases of one execution hold in memory at once, whatever
/// the order they end in, and the result does not depend on that order.
pub(crate) struct OutputShare(usize);

impl OutputShare {
    /// The share of each of `cases` cases.
    pub(crate) fn of(cases: usize) -> Self {
        OutputShare(MAX_TESTS_OUTPUT_BYTES / cases.max(1))
    }

    /// Cuts what `test` and `run` (one case) record to the share (never inside a character).
    pub(crate) fn cut(&self, test: &mut TestResult, run: &mut RunResult) {
        for (text, bytes) in [
            (&mut test.stdout, &mut run.report.stdout),
            (&mut test.stderr, &mut run.report.stderr),
        ] {
            let mut end = text.len().min(self.0);
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            // Copied out, then the whole buffer freed: truncating in place would leave the
            // kept part as an island inside a 16 MiB block, and every case a hole the next
            // one's output does not fit in (the server's memory grew ~50 MB per case).
            if end < text.len() {
                *text = text[..end].to_owned();
            }
            if end < bytes.len() {
                *bytes = bytes[..end].to_vec();
            }
        }
    }
}

/// Result of comparing a case's stdout with its expected output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Comparison {
    /// They are equal under the rule.
    Equal,
    /// They differ; the first differing line (1-based) and both sides of it.
    Differs {
        /// 1-based line number.
        line: usize,
        /// The expected line (empty past the end).
        expected: String,
        /// The printed line (empty past the end).
        got: String,
    },
}

/// Compare `got` with `expected` under `rule`: [`Compare::Exact`] byte for byte;
/// [`Compare::Trim`] ignoring spaces and tabs at line ends, `\r\n` vs `\n` and trailing blank
/// lines.
pub fn compare(rule: Compare, expected: &str, got: &str) -> Comparison {
    if rule == Compare::Exact && expected == got {
        return Comparison::Equal;
    }
    // Line by line, without copying either side: a program's output may be 16 MiB of
    // newlines, and this runs in the worker, outside every limit.
    let lines = |s| {
        str::split(s, '\n').map(move |l| match rule {
            Compare::Exact => l,
            Compare::Trim => l.trim_end_matches([' ', '\t', '\r']),
        })
    };
    let (mut e, mut g) = (lines(expected), lines(got));
    // Under `Trim`, only blank lines from here to the end.
    fn blank_to_end<'a>(first: Option<&str>, mut rest: impl Iterator<Item = &'a str>) -> bool {
        first.is_none_or(str::is_empty) && rest.all(str::is_empty)
    }
    let mut line = 1;
    loop {
        match (e.next(), g.next()) {
            (None, None) => return Comparison::Equal,
            (Some(a), Some(b)) if a == b => line += 1,
            (a, b) => {
                if rule == Compare::Trim && blank_to_end(a, e.clone()) && blank_to_end(b, g.clone())
                {
                    return Comparison::Equal;
                }
                return Comparison::Differs {
                    line,
                    expected: a.map_or_else(String::new, shorten),
                    got: b.map_or_else(String::new, shorten),
                };
            }
        }
    }
}

fn shorten(line: &str) -> String {
    let mut end = line.len().min(SHOWN_BYTES);
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    if end < line.len() {
        format!("{}…", &line[..end])
    } else {
        line.to_owned()
    }
}

/// The verdict and message of one case, from its run's result and the expected output.
pub(crate) fn case_result(
    run: RunResult,
    expected: Option<&str>,
    rule: Compare,
) -> (TestResult, RunResult) {
    let stdout = String::from_utf8_lossy(&run.report.stdout).into_owned();
    let (verdict, message) = match (run.status, run.report.error_type) {
        (Status::Timeout, _) | (_, Some(ErrorType::TimeoutError)) => {
            (Verdict::Timeout, run.report.error_message.clone())
        }
        (_, Some(ErrorType::MemoryLimitExceeded)) => (
            Verdict::MemoryLimitExceeded,
            run.report.error_message.clone(),
        ),
        (_, Some(ErrorType::OutputLimitExceeded)) => (
            Verdict::OutputLimitExceeded,
            run.report.error_message.clone(),
        ),
        (Status::Completed, None) => match expected.map(|e| compare(rule, e, &stdout)) {
            None | Some(Comparison::Equal) => (Verdict::Accepted, None),
            Some(Comparison::Differs {
                line,
                expected,
                got,
            }) => (
                Verdict::WrongAnswer,
                Some(cut(&format!(
                    "line {line}: expected {expected:?}, got {got:?}"
                ))),
            ),
        },
        _ => (Verdict::RuntimeError, run.report.error_message.clone()),
    };
    let test = TestResult {
        verdict,
        stdout,
        stderr: String::from_utf8_lossy(&run.report.stderr).into_owned(),
        exit_code: run.report.exit_code,
        signal: run.report.signal,
        time_ms: run.report.execution_time_ms,
        cpu_time_ms: run.report.cpu_time_ms,
        memory_kb: run.report.memory_kb,
        message,
    };
    (test, run)
}

/// A case that was not run (`stop_on_failure` after a failure).
pub(crate) fn skipped() -> TestResult {
    TestResult {
        verdict: Verdict::Skipped,
        stdout: String::new(),
        stderr: String::new(),
        exit_code: None,
        signal: None,
        time_ms: 0,
        cpu_time_ms: None,
        memory_kb: None,
        message: None,
    }
}

/// The execution's result made of its cases (see the module doc); `runs` are the results of
/// the cases that ran, aligned with the first `runs.len()` entries of `tests`.
pub(crate) fn overall(tests: Vec<TestResult>, runs: Vec<RunResult>) -> RunResult {
    let total = tests.len();
    let failing = |t: &TestResult| !matches!(t.verdict, Verdict::Accepted | Verdict::Skipped);
    let failed = tests.iter().filter(|t| failing(t)).count();
    let skipped = tests
        .iter()
        .filter(|t| t.verdict == Verdict::Skipped)
        .count();
    let first_failing = tests.iter().position(failing);
    let shown = first_failing.or(runs.len().checked_sub(1));
    let mut result = match shown.and_then(|i| runs.get(i)) {
        Some(r) => r.clone(),
        None => RunResult::internal_error("no test case ran"),
    };
    result.report.execution_time_ms = runs.iter().map(|r| r.report.execution_time_ms).sum();
    result.report.cpu_time_ms = runs.iter().map(|r| r.report.cpu_time_ms).sum();
    result.report.memory_kb = runs.iter().filter_map(|r| r.report.memory_kb).max();
    match first_failing.map(|i| tests[i].verdict) {
        None => {
            result.status = Status::Completed;
            result.report.error_type = None;
            result.report.error_message = None;
            result.report.error_line = None;
        }
        Some(v) => {
            result.status = Status::Failed;
            result.report.error_type = v.error_type();
            let mut msg = format!("{failed} of {total} tests failed");
            if skipped > 0 {
                msg.push_str(&format!(", {skipped} skipped"));
            }
            result.report.error_message = Some(msg);
        }
    }
    result.report.tests = tests;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trim_ignores_line_end_blanks_crlf_and_trailing_blank_lines() {
        let t = |e, g| compare(Compare::Trim, e, g) == Comparison::Equal;
        assert!(t("1 2\n3\n", "1 2  \r\n3\t\n\n\n"));
        assert!(t("a", "a\n"));
        assert!(t("", "\n \n"));
        assert!(!t("1 2\n", "1  2\n"), "inner spaces count");
        assert!(!t("a\n\nb\n", "a\nb\n"), "inner blank lines count");
        assert!(!t(" a\n", "a\n"), "leading spaces count");
    }

    #[test]
    fn each_case_records_at_most_its_share_of_the_budget() {
        let case = |out: &str| {
            let mut run = RunResult::internal_error("x");
            run.report.stdout = out.as_bytes().to_vec();
            run.report.stderr = b"e".to_vec();
            case_result(run, None, Compare::Trim)
        };
        let share = OutputShare::of(4);
        let quarter = MAX_TESTS_OUTPUT_BYTES / 4;
        let big = "a".repeat(MAX_TESTS_OUTPUT_BYTES);
        let (mut t1, mut r1) = case(&big);
        share.cut(&mut t1, &mut r1);
        assert_eq!(
            (t1.stdout.len(), r1.report.stdout.len()),
            (quarter, quarter)
        );
        assert_eq!(t1.stderr, "e");
        // A two-byte character across the share's end is not split.
        let edge = format!("{}é", "a".repeat(quarter - 1));
        let (mut t2, mut r2) = case(&edge);
        share.cut(&mut t2, &mut r2);
        assert_eq!(
            (t2.stdout.len(), r2.report.stdout.len()),
            (quarter - 1, quarter - 1)
        );
        let (mut t3, mut r3) = case("small");
        share.cut(&mut t3, &mut r3);
        assert_eq!(t3.stdout, "small");
        assert_eq!(OutputShare::of(0).0, MAX_TESTS_OUTPUT_BYTES);
    }

    #[test]
    fn a_difference_is_found_without_copying_a_huge_output() {
        // 16 Mi newlines against one expected line: the first line differs at once.
        let flood = "\n".repeat(16 << 20);
        assert_eq!(
            compare(Compare::Trim, "x", &flood),
            Comparison::Differs {
                line: 1,
                expected: "x".into(),
                got: String::new()
            }
        );
        assert_eq!(compare(Compare::Trim, "", &flood), Comparison::Equal);
        assert_eq!(
            compare(Compare::Exact, "", "\n"),
            Comparison::Differs {
                line: 2,
                expected: String::new(),
                got: String::new()
            }
        );
        assert_eq!(
            compare(Compare::Trim, "a\n\nb\n", "a\n"),
            Comparison::Differs {
                line: 3,
                expected: "b".into(),
                got: String::new()
            }
        );
    }

    #[test]
    fn exact_is_byte_for_byte_and_a_difference_names_its_line() {
        assert_eq!(compare(Compare::Exact, "a\n", "a\n"), Comparison::Equal);
        assert_eq!(
            compare(Compare::Exact, "a\nb\n", "a\nb \n"),
            Comparison::Differs {
                line: 2,
                expected: "b".into(),
                got: "b ".into()
            }
        );
        assert!(matches!(
            compare(Compare::Exact, "a\n", "a"),
            Comparison::Differs { line: 2, .. }
        ));
    }
}
