//! Judge0 submissions as answers: an [`Execution`] becomes Judge0's submission object with
//! the requested `fields`, base64-encoded or not, its status mapped onto Judge0's 1–14.

use super::judge0_tables as tables;
use crate::AppState;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chrono::{DateTime, SecondsFormat, Utc};
use livexec_core::{ErrorType, Execution, Status, Verdict};
use serde_json::{json, Map, Value};

/// Every field `fields=*` returns (Judge0 1.13.1's submission columns), in Judge0's order.
pub const ALL_FIELDS: &[&str] = &[
    "source_code",
    "language_id",
    "stdin",
    "expected_output",
    "stdout",
    "status_id",
    "created_at",
    "finished_at",
    "time",
    "memory",
    "stderr",
    "token",
    "number_of_runs",
    "cpu_time_limit",
    "cpu_extra_time",
    "wall_time_limit",
    "memory_limit",
    "stack_limit",
    "max_processes_and_or_threads",
    "enable_per_process_and_thread_time_limit",
    "enable_per_process_and_thread_memory_limit",
    "max_file_size",
    "compile_output",
    "exit_code",
    "exit_signal",
    "message",
    "wall_time",
    "compiler_options",
    "command_line_arguments",
    "redirect_stderr_to_stdout",
    "callback_url",
    "additional_files",
    "enable_network",
    "status",
    "language",
];

/// What a submission returns without `fields`.
const DEFAULT_FIELDS: &[&str] = &[
    "token",
    "time",
    "memory",
    "stdout",
    "stderr",
    "compile_output",
    "message",
    "status",
];

/// Which fields to return.
#[derive(Debug, Clone)]
pub struct Fields(Vec<&'static str>);

impl Fields {
    /// From the `fields` query value: absent → Judge0's default set, `*` → all; an unknown
    /// name → Judge0's 400 message.
    pub fn parse(raw: Option<&str>) -> Result<Fields, String> {
        let raw = raw.map(str::trim).unwrap_or_default();
        if raw.is_empty() {
            return Ok(Fields(DEFAULT_FIELDS.to_vec()));
        }
        if raw == "*" {
            return Ok(Fields(ALL_FIELDS.to_vec()));
        }
        let (mut known, mut unknown) = (Vec::new(), Vec::new());
        for name in raw.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match ALL_FIELDS.iter().find(|f| **f == name) {
                Some(f) => known.push(*f),
                None => unknown.push(name),
            }
        }
        match unknown.is_empty() {
            true => Ok(Fields(known)),
            false => Err(format!("invalid fields: [{}]", unknown.join(", "))),
        }
    }
}

/// Judge0's status of an execution (the mapping of docs/COMPAT.md).
pub fn status_id(e: &Execution) -> u8 {
    let case = e.report.tests.first();
    let signal = case.map_or(e.report.signal, |t| t.signal);
    let by_signal = |signal: Option<i32>| match signal {
        Some(11) => 7,
        Some(25) => 8,
        Some(8) => 9,
        Some(6) => 10,
        Some(_) => 12,
        None => 11,
    };
    match e.status {
        Status::Queued => return 1,
        Status::Running => return 2,
        Status::Timeout => return 5,
        _ => {}
    }
    if e.report.error_type == Some(ErrorType::CompilationError) {
        return 6;
    }
    if e.report.error_type == Some(ErrorType::InternalError) {
        return 13;
    }
    match case.map(|t| t.verdict) {
        Some(Verdict::Accepted) | Some(Verdict::Skipped) => return 3,
        Some(Verdict::WrongAnswer) => return 4,
        Some(Verdict::Timeout) => return 5,
        Some(Verdict::MemoryLimitExceeded) => return 12,
        Some(Verdict::OutputLimitExceeded) => return 8,
        Some(Verdict::RuntimeError) => return by_signal(signal),
        None => {}
    }
    match e.report.error_type {
        None => 3,
        Some(ErrorType::WrongAnswer) => 4,
        Some(ErrorType::TimeoutError) => 5,
        Some(ErrorType::MemoryLimitExceeded) => 12,
        Some(ErrorType::OutputLimitExceeded) => 8,
        Some(_) => by_signal(signal),
    }
}

/// Seconds as Judge0 prints a decimal: `"0.012"`, `"5.0"`.
pub fn seconds(ms: i64) -> String {
    let s = format!("{:.3}", ms as f64 / 1000.0);
    let s = s.trim_end_matches('0');
    match s.ends_with('.') {
        true => format!("{s}0"),
        false => s.to_owned(),
    }
}

/// `YYYY-MM-DDTHH:MM:SS.fffZ`.
pub fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Some output text wasn't UTF-8 and `base64_encoded=false` was asked for.
#[derive(Debug)]
pub struct NotUtf8;

/// Execution `e` as Judge0's submission object with `fields`.
pub fn render(
    state: &AppState,
    e: &Execution,
    fields: &Fields,
    base64: bool,
) -> Result<Value, NotUtf8> {
    let out = |bytes: &[u8]| -> Result<Value, NotUtf8> {
        if bytes.is_empty() {
            return Ok(Value::Null);
        }
        match base64 {
            true => Ok(Value::String(STANDARD.encode(bytes))),
            false => std::str::from_utf8(bytes)
                .map(|s| json!(s))
                .map_err(|_| NotUtf8),
        }
    };
    let case = e.report.tests.first();
    let finished = e.status.is_terminal();
    let (stdout, stderr) = match case {
        Some(t) => (t.stdout.as_bytes(), t.stderr.as_bytes()),
        None => (e.report.stdout.as_slice(), e.report.stderr.as_slice()),
    };
    let wall_ms = case.map_or(e.report.execution_time_ms, |t| t.time_ms);
    let cpu_ms = case
        .map_or(e.report.cpu_time_ms, |t| t.cpu_time_ms)
        .unwrap_or(wall_ms);
    let memory = case.map_or(e.report.memory_kb, |t| t.memory_kb);
    let compile_output = e
        .report
        .compile
        .as_ref()
        .map(|c| format!("{}{}", c.stdout, c.stderr))
        .unwrap_or_default();
    let message = case
        .and_then(|t| t.message.clone())
        .or_else(|| e.report.error_message.clone());
    let limits = e.report.limits;
    let defaults = tables::limits(state);
    let id = tables::id_of(&e.language);
    let test = e.options.tests.first();
    let stdin = test
        .map(|t| t.stdin.clone())
        .or_else(|| e.options.stdin.clone());
    let time_limit_ms = e.options.limits.time_ms.or(limits.map(|l| l.time_ms));
    let value = |name: &str| -> Result<Value, NotUtf8> {
        Ok(match name {
            "source_code" => out(e.source_code.as_bytes())?,
            "language_id" => json!(id),
            "stdin" => out(stdin.as_deref().unwrap_or_default().as_bytes())?,
            "expected_output" => out(test
                .and_then(|t| t.expected_stdout.as_deref())
                .unwrap_or_default()
                .as_bytes())?,
            "stdout" => out(stdout)?,
            "stderr" => out(stderr)?,
            "status_id" => json!(status_id(e)),
            "status" => tables::status(status_id(e)),
            "created_at" => json!(timestamp(e.queued_at)),
            "finished_at" => json!(e.finished_at.map(timestamp)),
            "time" => json!(finished.then(|| seconds(cpu_ms))),
            "wall_time" => json!(finished.then(|| seconds(wall_ms))),
            "memory" => json!(memory.filter(|_| finished)),
            "token" => json!(e.id),
            "number_of_runs" => json!(1),
            "cpu_time_limit" => json!(seconds(
                e.options
                    .limits
                    .cpu_time_ms
                    .or(time_limit_ms)
                    .unwrap_or((defaults.wall_s * 1000.0) as u64) as i64
            )),
            "cpu_extra_time" => json!("0.0"),
            "wall_time_limit" => json!(seconds(
                time_limit_ms.unwrap_or((defaults.wall_s * 1000.0) as u64) as i64
            )),
            "memory_limit" | "stack_limit" => json!(e
                .options
                .limits
                .memory_mb
                .or(limits.map(|l| l.memory_mb))
                .map_or(defaults.memory_kb, |mb| mb * 1024)),
            "max_processes_and_or_threads" => {
                json!(e
                    .options
                    .limits
                    .pids
                    .or(limits.map(|l| l.pids))
                    .unwrap_or(defaults.pids))
            }
            "enable_per_process_and_thread_time_limit"
            | "enable_per_process_and_thread_memory_limit"
            | "redirect_stderr_to_stdout"
            | "enable_network" => json!(false),
            "max_file_size" => json!(1024),
            "compile_output" => out(compile_output.as_bytes())?,
            "exit_code" => json!(case.map_or(e.report.exit_code, |t| t.exit_code)),
            "exit_signal" => json!(case.map_or(e.report.signal, |t| t.signal)),
            "message" => out(message.as_deref().unwrap_or_default().as_bytes())?,
            "command_line_arguments" => match e.options.args.is_empty() {
                true => Value::Null,
                false => json!(e.options.args.join(" ")),
            },
            "language" => {
                json!({ "id": id, "name": id.and_then(|id| tables::language(state, id.into())).map(|l| l["name"].clone()) })
            }
            _ => Value::Null,
        })
    };
    let mut object = Map::new();
    for name in &fields.0 {
        object.insert((*name).to_owned(), value(name)?);
    }
    Ok(Value::Object(object))
}

#[cfg(test)]
mod tests {
    use super::*;
    use livexec_core::RunReport;
    use livexec_core::{RunOptions, TestResult};
    use uuid::Uuid;

    fn execution(status: Status, error_type: Option<ErrorType>, signal: Option<i32>) -> Execution {
        Execution {
            id: Uuid::now_v7(),
            session_id: None,
            language: "python".into(),
            source_code: "print(1)".into(),
            status,
            idempotency_key: None,
            attempts: 1,
            queued_at: Utc::now(),
            started_at: None,
            finished_at: None,
            options: RunOptions::default(),
            owner: None,
            report: RunReport {
                execution_time_ms: 12,
                error_type,
                signal,
                ..RunReport::default()
            },
        }
    }

    #[test]
    fn every_outcome_maps_onto_judge0_statuses() {
        use ErrorType as E;
        use Status as S;
        let cases = [
            (S::Queued, None, None, 1),
            (S::Running, None, None, 2),
            (S::Completed, None, None, 3),
            (S::Failed, Some(E::WrongAnswer), None, 4),
            (S::Timeout, Some(E::TimeoutError), None, 5),
            (S::Failed, Some(E::CompilationError), None, 6),
            (S::Failed, Some(E::RuntimeError), Some(11), 7),
            (S::Failed, Some(E::OutputLimitExceeded), None, 8),
            (S::Failed, Some(E::RuntimeError), Some(8), 9),
            (S::Failed, Some(E::RuntimeError), Some(6), 10),
            (S::Failed, Some(E::RuntimeError), None, 11),
            (S::Failed, Some(E::RuntimeError), Some(9), 12),
            (S::Failed, Some(E::MemoryLimitExceeded), Some(9), 12),
            (S::Failed, Some(E::InternalError), None, 13),
        ];
        for (status, error_type, signal, want) in cases {
            let e = execution(status, error_type, signal);
            assert_eq!(status_id(&e), want, "{status:?} {error_type:?} {signal:?}");
        }
    }

    #[test]
    fn a_test_case_verdict_decides_accepted_or_wrong_answer() {
        let mut e = execution(Status::Failed, Some(ErrorType::WrongAnswer), None);
        e.report.tests.push(TestResult {
            verdict: Verdict::WrongAnswer,
            stdout: "1\n".into(),
            stderr: String::new(),
            exit_code: Some(0),
            signal: None,
            time_ms: 5,
            cpu_time_ms: None,
            memory_kb: None,
            message: None,
        });
        assert_eq!(status_id(&e), 4);
        e.report.tests[0].verdict = Verdict::Accepted;
        e.status = Status::Completed;
        e.report.error_type = None;
        assert_eq!(status_id(&e), 3);
    }
}
