//! Sessions, executions and results, and the JSON view of an execution (API.md §4).

use crate::request::{EffectiveLimits, RunOptions, SourceFile, TestResult, Verdict};
use crate::status::{ErrorType, Status};
use crate::tenant::Owner;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A code session's id.
pub type SessionId = Uuid;
/// An execution's id (UUID v7: time-ordered, so ordering by id is ordering by creation).
pub type ExecutionId = Uuid;

/// A code session: the code a user is editing and the language it is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The session id.
    pub id: SessionId,
    /// Runtime id (`python`, `javascript`, …).
    pub language: String,
    /// Current code.
    pub source_code: String,
    /// Always `ACTIVE` today.
    pub status: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// The newest execution of this session, if any.
    pub latest_execution_id: Option<ExecutionId>,
    /// Extra files beside the main one (replaced whole by `PATCH`), snapshotted by a run.
    pub files: Vec<SourceFile>,
    /// The API key that created it (`None`: created while the service was open).
    pub owner: Owner,
}

/// What `PATCH /code-sessions/:id` changes: each `None` keeps the stored value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionPatch {
    /// The new code.
    pub source_code: Option<String>,
    /// The new runtime id.
    pub language: Option<String>,
    /// The new set of extra files, replacing the old one whole (`Some(vec![])` removes all).
    pub files: Option<Vec<SourceFile>>,
}

/// What `POST /code-sessions/:id/run` asks the store to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewExecution {
    /// The session whose current code and language are snapshotted.
    pub session_id: SessionId,
    /// The client's `idempotency-key`, if it sent one.
    pub idempotency_key: Option<String>,
    /// Insert the job row of the embedded queue in the same transaction.
    pub enqueue_job: bool,
    /// The run's options (stdin, args, files, limits, tests …), already validated.
    pub options: RunOptions,
    /// The caller's key: the execution's owner, and the scope of its idempotency key. Must
    /// be the session's owner (the API checks that before asking).
    pub owner: Owner,
}

/// What `POST /executions` (a one-shot run, without a session) asks the store to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOneShot {
    /// Runtime id.
    pub language: String,
    /// The main file's code.
    pub source_code: String,
    /// The client's `idempotency-key`, if it sent one.
    pub idempotency_key: Option<String>,
    /// Insert the job row of the embedded queue in the same transaction.
    pub enqueue_job: bool,
    /// The run's options (all its extra files are in `options.files`), already validated.
    pub options: RunOptions,
    /// The caller's key: the execution's owner, and the scope of its idempotency key.
    pub owner: Owner,
}

/// One run of a session's code (or of a one-shot request's), with its whole history of state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Execution {
    /// The execution id.
    pub id: ExecutionId,
    /// The session it was snapshotted from; `None` for a one-shot run (`POST /executions`).
    pub session_id: Option<SessionId>,
    /// Runtime id of the snapshot.
    pub language: String,
    /// Code of the snapshot.
    pub source_code: String,
    /// Where it is in its life.
    pub status: Status,
    /// The client's idempotency key.
    pub idempotency_key: Option<String>,
    /// How many times a worker has started it (platform retries make this > 1).
    pub attempts: i32,
    /// When it was accepted.
    pub queued_at: DateTime<Utc>,
    /// When the latest attempt started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it reached its terminal state.
    pub finished_at: Option<DateTime<Utc>>,
    /// What the run was asked for beyond the code (the session's files are in `files`).
    pub options: RunOptions,
    /// The API key that created it (`None`: created while the service was open).
    pub owner: Owner,
    /// What the run produced: empty (no output, no error, 0 ms) until it ends.
    pub report: RunReport,
}

/// What the compile stage of a compiled language did (`compile` of API.md §4): its own
/// status, output, exit code, wall time and peak memory, apart from the program's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CompileReport {
    /// `COMPLETED` (the program then ran), `FAILED` or `TIMEOUT`.
    pub status: Status,
    /// The compiler's stdout (invalid UTF-8 replaced by U+FFFD).
    pub stdout: String,
    /// The compiler's stderr (same).
    pub stderr: String,
    /// The compiler's exit code, when it exited.
    pub exit_code: Option<i32>,
    /// Wall time of the compiler, in ms.
    pub time_ms: i64,
    /// Peak memory of the compile stage, in KiB.
    pub memory_kb: Option<i64>,
}

/// What a run produced, apart from its status: the one list of result fields, held by the
/// result a worker records ([`RunResult`]) and by the execution that stores it
/// ([`Execution::report`]). A field added here is added to the store's columns
/// (`crates/store`: the migration, `finish_execution`'s write and the row's read) and, when
/// clients should see it, to [`ExecutionView`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunReport {
    /// Raw stdout bytes (may hold NUL or invalid UTF-8).
    pub stdout: Vec<u8>,
    /// Raw stderr bytes.
    pub stderr: Vec<u8>,
    /// Wall time of the program itself, in ms.
    pub execution_time_ms: i64,
    /// Human-readable reason when it did not complete.
    pub error_message: Option<String>,
    /// Machine-readable reason when it did not complete.
    pub error_type: Option<ErrorType>,
    /// The line of the user's main file the error points at (1-based), when the toolchain
    /// printed one that the runtime's rule finds.
    pub error_line: Option<i32>,
    /// The program's exit code, when it exited.
    pub exit_code: Option<i32>,
    /// The signal that killed it, when one did.
    pub signal: Option<i32>,
    /// CPU time used, from the cgroup, in ms.
    pub cpu_time_ms: Option<i64>,
    /// Peak memory, from the cgroup, in KiB.
    pub memory_kb: Option<i64>,
    /// The compile stage, for compiled languages once it has run.
    pub compile: Option<CompileReport>,
    /// The limits it ran under.
    pub limits: Option<EffectiveLimits>,
    /// Per test case results, in order (empty without tests).
    pub tests: Vec<TestResult>,
    /// Files the program left that matched `options.return_files`.
    pub output_files: Vec<SourceFile>,
}

/// The final result a worker records for an execution: its terminal status and what it
/// produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunResult {
    /// Terminal status (`COMPLETED`, `FAILED` or `TIMEOUT`).
    pub status: Status,
    /// What the run produced.
    pub report: RunReport,
}

impl RunResult {
    /// A platform failure that ended the execution after its retries.
    pub fn internal_error(message: impl Into<String>) -> Self {
        RunResult {
            status: Status::Failed,
            report: RunReport {
                error_message: Some(message.into()),
                error_type: Some(ErrorType::InternalError),
                ..RunReport::default()
            },
        }
    }
}

/// The JSON object of API.md §4: seven fixed keys, then additive ones.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct ExecutionView {
    /// Execution id.
    #[schema(value_type = uuid::Uuid)]
    pub execution_id: ExecutionId,
    /// Status.
    pub status: Status,
    /// stdout, invalid UTF-8 replaced by U+FFFD, NUL kept.
    pub stdout: String,
    /// stderr, same treatment.
    pub stderr: String,
    /// Wall ms of the program itself; 0 before the run ends.
    pub execution_time_ms: i64,
    /// Reason, or null.
    pub error_message: Option<String>,
    /// Error type, or null.
    pub error_type: Option<ErrorType>,
    /// Session id; null for a one-shot run.
    #[schema(value_type = Option<uuid::Uuid>)]
    pub session_id: Option<SessionId>,
    /// Runtime id.
    pub language: String,
    /// Exit code.
    pub exit_code: Option<i32>,
    /// Killing signal.
    pub signal: Option<i32>,
    /// CPU ms.
    pub cpu_time_ms: Option<i64>,
    /// Peak memory KiB.
    pub memory_kb: Option<i64>,
    /// RFC 3339.
    pub queued_at: String,
    /// RFC 3339.
    pub started_at: Option<String>,
    /// RFC 3339.
    pub finished_at: Option<String>,
    /// Attempts so far.
    pub attempts: i32,
    /// The compile stage (compiled languages), or null.
    pub compile: Option<CompileReport>,
    /// The limits it ran under, or null before a worker started it.
    pub limits: Option<EffectiveLimits>,
    /// Per test case results (only when the run had test cases).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tests: Option<Vec<TestResult>>,
    /// How many cases were `ACCEPTED` (only with test cases).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tests_passed: Option<usize>,
    /// How many cases the run had (only with test cases).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tests_total: Option<usize>,
    /// Files returned by `return_files` (only when it asked for some).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_files: Option<Vec<FileView>>,
    /// The line (1-based) of the user's main file that the error points at: the compiler's
    /// first error for a `CompilationError`, the innermost frame in the main file for a
    /// `RuntimeError`; null when there is no error or the toolchain named no line of it.
    pub error_line: Option<i32>,
}

/// A file as the API shows it: its bytes in base64, with `"encoding": "base64"` so that it can
/// be sent back unchanged (in a `files` array of a request).
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct FileView {
    /// Relative path in the working dir.
    pub name: String,
    /// The bytes, base64 (standard alphabet, padded).
    pub content: String,
    /// Always `"base64"`.
    pub encoding: &'static str,
}

impl From<&SourceFile> for FileView {
    fn from(f: &SourceFile) -> Self {
        use base64::Engine as _;
        FileView {
            name: f.name.clone(),
            content: base64::engine::general_purpose::STANDARD.encode(&f.content),
            encoding: "base64",
        }
    }
}

/// RFC 3339 with millisecond precision and a `Z`.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// `bytes` as text: moved when they are UTF-8 (no copy), else invalid sequences replaced by
/// U+FFFD.
fn into_text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

impl Execution {
    /// The API view of this execution, its outputs moved into it rather than copied: an
    /// answer carrying megabytes of output holds them once, not twice, while it is built.
    pub fn into_view(self) -> ExecutionView {
        let finished = self.status.is_terminal();
        let r = self.report;
        let has_tests = !self.options.tests.is_empty();
        let tests_passed = r
            .tests
            .iter()
            .filter(|t| t.verdict == Verdict::Accepted)
            .count();
        ExecutionView {
            execution_id: self.id,
            status: self.status,
            stdout: into_text(r.stdout),
            stderr: into_text(r.stderr),
            execution_time_ms: if finished { r.execution_time_ms } else { 0 },
            error_message: r.error_message,
            error_type: r.error_type,
            session_id: self.session_id,
            language: self.language,
            exit_code: r.exit_code,
            signal: r.signal,
            cpu_time_ms: r.cpu_time_ms,
            memory_kb: r.memory_kb,
            queued_at: rfc3339(self.queued_at),
            started_at: self.started_at.map(rfc3339),
            finished_at: self.finished_at.map(rfc3339),
            attempts: self.attempts,
            compile: r.compile,
            limits: r.limits,
            tests: has_tests.then_some(r.tests),
            tests_passed: has_tests.then_some(tests_passed),
            tests_total: has_tests.then_some(self.options.tests.len()),
            output_files: (!self.options.return_files.is_empty())
                .then(|| r.output_files.iter().map(FileView::from).collect()),
            error_line: r.error_line,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Execution {
        Execution {
            id: Uuid::now_v7(),
            session_id: Some(Uuid::now_v7()),
            language: "python".into(),
            source_code: "print(1)".into(),
            status: Status::Completed,
            idempotency_key: None,
            attempts: 1,
            queued_at: Utc::now(),
            started_at: Some(Utc::now()),
            finished_at: Some(Utc::now()),
            options: RunOptions::default(),
            owner: None,
            report: RunReport {
                stdout: b"a\0b\xffc\n".to_vec(),
                execution_time_ms: 12,
                exit_code: Some(0),
                cpu_time_ms: Some(3),
                memory_kb: Some(1024),
                ..RunReport::default()
            },
        }
    }

    #[test]
    fn view_keeps_nul_and_replaces_invalid_utf8() {
        let v = sample().into_view();
        assert_eq!(v.stdout, "a\u{0}b\u{fffd}c\n");
        let json = serde_json::to_value(&v).unwrap();
        let keys: Vec<_> = json.as_object().unwrap().keys().cloned().collect();
        for k in [
            "execution_id",
            "status",
            "stdout",
            "stderr",
            "execution_time_ms",
            "error_message",
            "error_type",
        ] {
            assert!(keys.contains(&k.to_string()), "missing {k}");
        }
        assert_eq!(json["error_type"], serde_json::Value::Null);
        assert_eq!(json["status"], "COMPLETED");
    }

    #[test]
    fn unfinished_execution_reports_zero_time() {
        let mut e = sample();
        e.status = Status::Running;
        assert_eq!(e.into_view().execution_time_ms, 0);
    }
}
