//! What a run asks for beyond the code, and what its test cases gave (API.md §9, "Run
//! options"): stdin, arguments, environment, extra files, per-run limits, test cases with a
//! comparison rule, and output files to hand back.
//!
//! These are the *validated* forms: the API checks a request body against the server's maxima
//! and turns it into a [`RunOptions`]; the store keeps it with the execution (as JSON, the
//! serde shape below); the engine runs it. An execution created without a body has
//! `RunOptions::default()`, which runs exactly as the seed's bodiless run did.

use crate::status::{ErrorType, Status};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Everything a run may set besides the language and the main file. Every field is optional;
/// the default is "no stdin, no arguments, the runtime's limits, one run, no tests".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct RunOptions {
    /// Bytes fed to the program's stdin (UTF-8 text). `None`: stdin is empty (`/dev/null`-like,
    /// immediate EOF). Ignored when `tests` is non-empty (each case has its own).
    pub stdin: Option<String>,
    /// Arguments after the program (`argv[1..]`).
    pub args: Vec<String>,
    /// Extra environment variables (never `PATH`, `HOME`, `LD_*` … — the API refuses those).
    pub env: BTreeMap<String, String>,
    /// Extra files beside the main one, relative to the working dir.
    pub files: Vec<SourceFile>,
    /// Per-run limits; each `None` keeps the runtime's (already checked against the maxima).
    pub limits: LimitOverrides,
    /// Test cases: compile once, then one fresh sandbox per case. Empty: a single plain run.
    pub tests: Vec<TestCase>,
    /// How a case's stdout is compared with its expected output.
    pub compare: Compare,
    /// Stop at the first case that is not [`Verdict::Accepted`]; the rest are
    /// [`Verdict::Skipped`].
    pub stop_on_failure: bool,
    /// Glob patterns (`*` and `?`, relative to the working dir) of files the program leaves
    /// behind that are returned in the execution (capped in count and size by the engine).
    pub return_files: Vec<String>,
    /// Join the program's stderr into its stdout, in the order written (Judge0's
    /// `redirect_stderr_to_stdout`); `stderr` is then empty. Not stored when false.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub stderr_to_stdout: bool,
}

impl RunOptions {
    /// Whether these are the defaults (a bodiless run).
    pub fn is_default(&self) -> bool {
        *self == RunOptions::default()
    }
}

/// One file of a program (an extra source, a header, a data file) or one returned file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SourceFile {
    /// Relative path inside the working dir (`pkg/util.py`); never absolute, never `..`,
    /// never NUL (the API checks).
    pub name: String,
    /// The bytes of the file. Serialized as base64 (standard alphabet, padded).
    #[serde(with = "base64_bytes")]
    #[schema(value_type = String, format = Byte)]
    pub content: Vec<u8>,
}

/// Per-run limit overrides, each at most the server's maximum (`LIVEXEC_MAX_*`). `None` keeps
/// the runtime's own value for that stage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct LimitOverrides {
    /// Wall-clock limit of each run (each test case), in ms.
    pub time_ms: Option<u64>,
    /// CPU-time limit of each run, in ms.
    pub cpu_time_ms: Option<u64>,
    /// Memory of each run, in MiB.
    pub memory_mb: Option<u64>,
    /// Processes plus threads of each run.
    pub pids: Option<u32>,
    /// Cap on each output stream of each run, in bytes.
    pub output_bytes: Option<u64>,
    /// Wall-clock limit of the compile stage, in ms.
    pub compile_time_ms: Option<u64>,
    /// Memory of the compile stage, in MiB.
    pub compile_memory_mb: Option<u64>,
}

/// The limits an execution actually ran under (reported in the execution as `limits`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EffectiveLimits {
    /// Wall-clock limit of each run, in ms.
    pub time_ms: u64,
    /// CPU-time limit of each run, in ms, if any.
    pub cpu_time_ms: Option<u64>,
    /// Memory of each run, in MiB.
    pub memory_mb: u64,
    /// Processes plus threads of each run.
    pub pids: u32,
    /// Cap on each output stream, in bytes.
    pub output_bytes: u64,
    /// Wall-clock limit of the compile stage, in ms (compiled runtimes only).
    pub compile_time_ms: Option<u64>,
    /// Memory of the compile stage, in MiB (compiled runtimes only).
    pub compile_memory_mb: Option<u64>,
}

/// One test case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TestCase {
    /// The case's stdin.
    pub stdin: String,
    /// What stdout must be (under [`RunOptions::compare`]); `None` only records the output
    /// (the case's verdict is then `ACCEPTED` when the program ran cleanly).
    #[serde(default)]
    pub expected_stdout: Option<String>,
    /// Arguments for this case instead of [`RunOptions::args`].
    #[serde(default)]
    pub args: Option<Vec<String>>,
}

/// How stdout is compared with the expected output.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Compare {
    /// Byte for byte.
    Exact,
    /// Ignore spaces and tabs at line ends, `\r\n` vs `\n`, and trailing blank lines (the
    /// ICPC-style convention). The default.
    #[default]
    Trim,
}

/// A test case's verdict (the field's standard names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Verdict {
    /// Ran cleanly and the output matched (or no expected output was given).
    Accepted,
    /// Ran cleanly but the output differs.
    WrongAnswer,
    /// Non-zero exit or killed by a signal.
    RuntimeError,
    /// Wall-clock or CPU-time limit.
    Timeout,
    /// Killed by the memory limit.
    MemoryLimitExceeded,
    /// Printed more than the output cap.
    OutputLimitExceeded,
    /// Not run: an earlier case failed and `stop_on_failure` was set.
    Skipped,
}

impl Verdict {
    /// The execution `error_type` a failing case of this verdict gives (`None` for
    /// `Accepted`/`Skipped`).
    pub fn error_type(self) -> Option<ErrorType> {
        match self {
            Verdict::Accepted | Verdict::Skipped => None,
            Verdict::WrongAnswer => Some(ErrorType::WrongAnswer),
            Verdict::RuntimeError => Some(ErrorType::RuntimeError),
            Verdict::Timeout => Some(ErrorType::TimeoutError),
            Verdict::MemoryLimitExceeded => Some(ErrorType::MemoryLimitExceeded),
            Verdict::OutputLimitExceeded => Some(ErrorType::OutputLimitExceeded),
        }
    }

    /// The terminal status a run with this verdict has on its own.
    pub fn status(self) -> Status {
        match self {
            Verdict::Accepted | Verdict::Skipped => Status::Completed,
            Verdict::Timeout => Status::Timeout,
            _ => Status::Failed,
        }
    }
}

/// What one test case gave (`tests[i]` of the execution).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TestResult {
    /// The verdict.
    pub verdict: Verdict,
    /// stdout (invalid UTF-8 replaced by U+FFFD).
    pub stdout: String,
    /// stderr (same).
    pub stderr: String,
    /// Exit code, when it exited.
    pub exit_code: Option<i32>,
    /// Killing signal, when one did.
    pub signal: Option<i32>,
    /// Wall time of this case's run, in ms.
    pub time_ms: i64,
    /// CPU time, in ms, when measured.
    pub cpu_time_ms: Option<i64>,
    /// Peak memory, in KiB, when measured.
    pub memory_kb: Option<i64>,
    /// Why it failed (the error line, "expected …, got …"), or null.
    pub message: Option<String>,
}

/// Base64 (standard, padded) for byte fields of the stored JSON.
mod base64_bytes {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        STANDARD.decode(s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_options_round_trip_and_files_are_base64() {
        let o = RunOptions::default();
        assert!(o.is_default());
        let back: RunOptions = serde_json::from_str("{}").unwrap();
        assert_eq!(back, o);
        let f = SourceFile {
            name: "a.bin".into(),
            content: vec![0, 255, b'x'],
        };
        let j = serde_json::to_value(&f).unwrap();
        assert_eq!(j["content"], "AP94");
        assert_eq!(serde_json::from_value::<SourceFile>(j).unwrap(), f);
    }

    #[test]
    fn verdicts_are_screaming_snake_case_and_map_to_error_types() {
        assert_eq!(
            serde_json::to_value(Verdict::MemoryLimitExceeded).unwrap(),
            "MEMORY_LIMIT_EXCEEDED"
        );
        assert_eq!(
            Verdict::WrongAnswer.error_type(),
            Some(ErrorType::WrongAnswer)
        );
        assert_eq!(Verdict::Accepted.error_type(), None);
        assert_eq!(Verdict::Timeout.status(), Status::Timeout);
    }
}
