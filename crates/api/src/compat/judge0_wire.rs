//! Judge0 submission bodies: one becomes a runtime, code and [`RunOptions`] (stdin, one test
//! case for `expected_output`, arguments, limits), or Judge0's 422/400 refusal.

use super::judge0_tables as tables;
use crate::maxima::FLOORS;
use crate::AppState;
use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use livexec_core::{RunOptions, TestCase};
use serde_json::{json, Map, Value};

/// A valid submission, ready to run.
#[derive(Debug)]
pub struct Submission {
    /// Our runtime id.
    pub runtime: String,
    /// The program.
    pub source_code: String,
    /// stdin, test case, arguments, limits.
    pub options: RunOptions,
}

/// Why a submission is refused, in Judge0's two shapes.
#[derive(Debug)]
pub enum Refusal {
    /// 422 `{"field": ["message", …]}`.
    Invalid(Map<String, Value>),
    /// 400 `{"error": "message"}`.
    Bad(String),
}

/// Lenient base64 as Judge0 reads it: line breaks ignored, padding optional.
pub(super) const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A text field of the body (decoded from base64 in base64 mode); `None` when absent/null.
fn text(body: &Map<String, Value>, key: &str, base64: bool) -> Result<Option<String>, Refusal> {
    let raw = match body.get(key) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    if !base64 {
        return Ok(Some(raw));
    }
    let compact: String = raw.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let bytes = LENIENT
        .decode(compact)
        .map_err(|_| Refusal::Bad(format!("invalid base64 encoded data in {key}")))?;
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| Refusal::Bad(format!("{key} is not valid UTF-8 once decoded from base64")))
}

/// A number field (JSON number or numeric string); `Err` names the problem.
fn number(body: &Map<String, Value>, key: &str) -> Result<Option<f64>, &'static str> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_f64().map(Some).ok_or("is not a number"),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| "is not a number"),
        Some(_) => Err("is not a number"),
    }
}

/// A boolean field (JSON bool or "true"/"false").
fn flag(body: &Map<String, Value>, key: &str) -> bool {
    match body.get(key) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true",
        _ => false,
    }
}

/// Records `message` under `key`.
fn complain(errors: &mut Map<String, Value>, key: &str, message: String) {
    let list = errors.entry(key).or_insert_with(|| json!([]));
    if let Value::Array(items) = list {
        items.push(Value::String(message));
    }
}

/// Parse and check one submission body, every problem of it at once (as Judge0 does), within
/// the caller's maxima (its tier's below the server's); limits left unset get the tier's caps
/// where the runtime's defaults are higher.
pub fn parse(
    state: &AppState,
    caller: &livexec_core::Caller,
    body: &Map<String, Value>,
    base64: bool,
) -> Result<Submission, Refusal> {
    let mut errors = Map::new();
    let source_code = text(body, "source_code", base64)?.unwrap_or_default();
    if source_code.is_empty() {
        complain(&mut errors, "source_code", "can't be blank".into());
    }
    let stdin = text(body, "stdin", base64)?;
    let expected = text(body, "expected_output", base64)?;
    let runtime = match number(body, "language_id") {
        Ok(None) => {
            complain(&mut errors, "language_id", "can't be blank".into());
            None
        }
        Ok(Some(id)) => {
            let found = tables::runtime_of(state, id as i64).filter(|_| id.fract() == 0.0);
            if found.is_none() {
                complain(
                    &mut errors,
                    "language_id",
                    format!("language with id {id} doesn't exist"),
                );
            }
            found.map(|rt| rt.id.clone())
        }
        Err(m) => {
            complain(&mut errors, "language_id", m.into());
            None
        }
    };
    let mut options = RunOptions::default();
    let (m, f) = (&state.maxima_for(caller), &FLOORS);
    // In Judge0's units: seconds, KB.
    let mut limit = |key: &str, min: f64, max: f64, scale: f64| -> Option<u64> {
        match number(body, key) {
            Ok(None) => None,
            Ok(Some(v)) if v < min => {
                complain(
                    &mut errors,
                    key,
                    format!("must be greater than or equal to {min}"),
                );
                None
            }
            Ok(Some(v)) if v > max => {
                complain(
                    &mut errors,
                    key,
                    format!("must be less than or equal to {max}"),
                );
                None
            }
            Ok(Some(v)) => Some((v * scale).ceil() as u64),
            Err(m) => {
                complain(&mut errors, key, m.into());
                None
            }
        }
    };
    let s = |ms: u64| ms as f64 / 1000.0;
    let kb = |mb: u64| (mb * 1024) as f64;
    options.limits.cpu_time_ms =
        limit("cpu_time_limit", s(f.cpu_time_ms), s(m.cpu_time_ms), 1000.0);
    options.limits.time_ms = limit("wall_time_limit", s(f.time_ms), s(m.time_ms), 1000.0);
    options.limits.memory_mb = limit(
        "memory_limit",
        kb(f.memory_mb),
        kb(m.memory_mb),
        1.0 / 1024.0,
    );
    options.limits.pids = limit(
        "max_processes_and_or_threads",
        f64::from(f.pids),
        f64::from(m.pids),
        1.0,
    )
    .map(|p| p as u32);
    if let Some(args) = text(body, "command_line_arguments", false)? {
        options.args = super::judge0::split_args(&args)
            .ok_or_else(|| Refusal::Bad("command_line_arguments has an unclosed quote".into()))?;
    }
    for (key, message) in [
        (
            "compiler_options",
            "setting compiler options is not allowed",
        ),
        ("callback_url", "callbacks are not enabled on this server"),
    ] {
        if matches!(body.get(key), Some(Value::String(s)) if !s.is_empty()) {
            complain(&mut errors, key, message.into());
        }
    }
    if let Some(Value::String(zip)) = body.get("additional_files").filter(|v| !v.is_null()) {
        if !zip.is_empty() {
            let main = runtime
                .as_deref()
                .and_then(|id| state.runtimes.get(id))
                .map_or("", |rt| rt.file_name.as_str());
            match super::judge0_zip::files(zip, main, m) {
                Ok(files) => options.files = files,
                Err(message) => complain(&mut errors, "additional_files", message),
            }
        }
    }
    options.stderr_to_stdout = flag(body, "redirect_stderr_to_stdout");
    if flag(body, "enable_network") {
        complain(
            &mut errors,
            "enable_network",
            "enabling network is not allowed".into(),
        );
    }
    if let Some(rt) = &runtime {
        state.clamp_limits(caller, rt, &mut options.limits);
    }
    match (expected, errors.is_empty(), runtime) {
        (_, false, _) | (_, _, None) => Err(Refusal::Invalid(errors)),
        (Some(expected_stdout), true, Some(runtime)) => {
            options.tests.push(TestCase {
                stdin: stdin.unwrap_or_default(),
                expected_stdout: Some(expected_stdout),
                args: None,
            });
            Ok(Submission {
                runtime,
                source_code,
                options,
            })
        }
        (None, true, Some(runtime)) => {
            options.stdin = stdin;
            Ok(Submission {
                runtime,
                source_code,
                options,
            })
        }
    }
}
