//! Piston v2 requests and results: the execute body's checks (Piston's 400 wording), version
//! selectors, and an execution as Piston's `run`/`compile` stage objects.

use crate::maxima::{RunMaxima, FLOORS};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use livexec_core::{ErrorType, Execution, RunOptions, SourceFile, Status};
use serde_json::{json, Map, Value};

/// A checked execute request.
#[derive(Debug)]
pub struct Request {
    /// `language`: a name or alias.
    pub language: String,
    /// `version`: exact, `*`, or a range; `None` when absent.
    pub version: Option<String>,
    /// The first file's content (the program).
    pub main: String,
    /// The other files.
    pub files: Vec<SourceFile>,
    /// `stdin`.
    pub stdin: Option<String>,
    /// `args`.
    pub args: Vec<String>,
    /// The numeric options that were set (not absent, 0 or -1), by name.
    pub numbers: Vec<(&'static str, i64)>,
}

/// The numeric options Piston knows.
const NUMBERS: &[&str] = &[
    "run_timeout",
    "compile_timeout",
    "run_cpu_time",
    "compile_cpu_time",
    "run_memory_limit",
    "compile_memory_limit",
];

/// A file's content in its `encoding` (utf8, base64 or hex).
fn content(file: &Map<String, Value>, i: usize) -> Result<Vec<u8>, String> {
    let Some(Value::String(text)) = file.get("content") else {
        return Err(format!("files[{i}].content is required as a string"));
    };
    match file
        .get("encoding")
        .and_then(Value::as_str)
        .unwrap_or("utf8")
    {
        "utf8" => Ok(text.clone().into_bytes()),
        "base64" => STANDARD
            .decode(text)
            .map_err(|_| format!("files[{i}].content is not valid base64")),
        "hex" => (0..text.len())
            .step_by(2)
            .map(|j| {
                text.get(j..j + 2)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
            })
            .collect::<Option<Vec<u8>>>()
            .ok_or_else(|| format!("files[{i}].content is not valid hex")),
        other => Err(format!(
            "files[{i}].encoding {other} is not one of utf8, base64, hex"
        )),
    }
}

/// Check an execute body, with Piston's messages.
pub fn parse(body: &Map<String, Value>) -> Result<Request, String> {
    let Some(Value::String(language)) = body.get("language") else {
        return Err("language is required as a string".into());
    };
    let version = match body.get("version") {
        None | Some(Value::Null) => None,
        Some(Value::String(v)) => Some(v.clone()),
        Some(_) => return Err("version is required as a string".into()),
    };
    let Some(Value::Array(files)) = body.get("files") else {
        return Err("files is required as an array".into());
    };
    let mut main = None;
    let mut extra = Vec::new();
    for (i, f) in files.iter().enumerate() {
        let Value::Object(f) = f else {
            return Err(format!("files[{i}] is required as an object"));
        };
        let bytes = content(f, i)?;
        if i == 0 {
            main = Some(
                String::from_utf8(bytes)
                    .map_err(|_| "files[0].content must be UTF-8 text".to_owned())?,
            );
            continue;
        }
        let name = match f.get("name").and_then(Value::as_str) {
            Some(n) if !n.is_empty() => n.to_owned(),
            _ => format!("file{i}.code"),
        };
        extra.push(SourceFile {
            name,
            content: bytes,
        });
    }
    let Some(main) = main else {
        return Err("files must contain at least one file".into());
    };
    let stdin = match body.get("stdin") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err("stdin must be a string".into()),
    };
    let args = match body.get("args") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| match v {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()
            .ok_or("args must be an array of strings")?,
        Some(_) => return Err("args must be an array of strings".into()),
    };
    let mut numbers = Vec::new();
    for key in NUMBERS {
        match body.get(*key) {
            None | Some(Value::Null) => {}
            Some(Value::Number(n)) => match n.as_f64() {
                Some(v) if v == 0.0 || v == -1.0 => {}
                Some(v) if v < 0.0 => return Err(format!("{key} must be non-negative")),
                Some(v) => numbers.push((*key, v.ceil() as i64)),
                None => return Err(format!("{key} must be a number")),
            },
            Some(_) => return Err(format!("{key} must be a number")),
        }
    }
    Ok(Request {
        language: language.clone(),
        version,
        main,
        files: extra,
        stdin,
        args,
        numbers,
    })
}

/// The run options of a checked request; a value outside the native range is Piston's 400.
pub fn options(req: &Request, m: &RunMaxima, compiled: bool) -> Result<RunOptions, String> {
    let mut o = RunOptions {
        stdin: req.stdin.clone(),
        args: req.args.clone(),
        files: req.files.clone(),
        ..RunOptions::default()
    };
    let f = &FLOORS;
    for &(key, v) in &req.numbers {
        let v = v as u64;
        // (floor, maximum) in the field's unit: ms, or bytes for memory.
        let (min, max) = match key {
            "run_timeout" => (f.time_ms, m.time_ms),
            "run_cpu_time" => (f.cpu_time_ms, m.cpu_time_ms),
            "run_memory_limit" => (f.memory_mb << 20, m.memory_mb << 20),
            "compile_timeout" => (f.compile_time_ms, m.compile_time_ms),
            "compile_memory_limit" => (f.compile_memory_mb << 20, m.compile_memory_mb << 20),
            // compile_cpu_time: the compile stage has no CPU-time limit of its own here.
            _ => (0, u64::MAX),
        };
        if v > max {
            return Err(format!("{key} cannot exceed the configured limit of {max}"));
        }
        if v < min {
            return Err(format!("{key} must be at least {min}"));
        }
        let mb = Some(v.div_ceil(1 << 20));
        match key {
            "run_timeout" => o.limits.time_ms = Some(v),
            "run_cpu_time" => o.limits.cpu_time_ms = Some(v),
            "run_memory_limit" => o.limits.memory_mb = mb,
            "compile_timeout" if compiled => o.limits.compile_time_ms = Some(v),
            "compile_memory_limit" if compiled => o.limits.compile_memory_mb = mb,
            _ => {}
        }
    }
    Ok(o)
}

/// Whether `selector` (absent, `*`, exact, `3`, `3.x`, `^3.1`, `~3.11`, `>=3`) accepts
/// `version`.
pub fn version_matches(selector: Option<&str>, version: &str) -> bool {
    let sel = selector.map(str::trim).unwrap_or("*");
    if sel.is_empty() || sel == "*" || sel == "x" || sel == version {
        return true;
    }
    let parts = |s: &str| -> Vec<Option<u64>> { s.split('.').map(|p| p.parse().ok()).collect() };
    let have = parts(version);
    if let Some(min) = sel.strip_prefix(">=") {
        let want = parts(min.trim());
        return have
            .iter()
            .map(|p| p.unwrap_or(0))
            .ge(want.iter().map(|p| p.unwrap_or(0)));
    }
    let (sel, fixed) = match (sel.strip_prefix('^'), sel.strip_prefix('~')) {
        (Some(s), _) => (s, 1),
        (_, Some(s)) => (s, 2),
        _ => (sel.trim_start_matches(['=', 'v']), usize::MAX),
    };
    let want: Vec<&str> = sel.split('.').collect();
    want.iter().enumerate().all(|(i, w)| {
        let h = have.get(i).copied().flatten();
        match *w {
            "x" | "X" | "*" => true,
            w if i >= fixed => match (w.parse::<u64>().ok(), h) {
                (Some(w), Some(h)) => h >= w,
                _ => false,
            },
            w => w.parse::<u64>().ok().is_some_and(|w| Some(w) == h),
        }
    })
}

/// A signal's name (`SIGKILL`), as Piston reports it.
fn signal_name(n: i32) -> String {
    const NAMES: &[(i32, &str)] = &[
        (1, "SIGHUP"),
        (2, "SIGINT"),
        (3, "SIGQUIT"),
        (4, "SIGILL"),
        (5, "SIGTRAP"),
        (6, "SIGABRT"),
        (7, "SIGBUS"),
        (8, "SIGFPE"),
        (9, "SIGKILL"),
        (11, "SIGSEGV"),
        (13, "SIGPIPE"),
        (14, "SIGALRM"),
        (15, "SIGTERM"),
        (24, "SIGXCPU"),
        (25, "SIGXFSZ"),
    ];
    NAMES
        .iter()
        .find(|(i, _)| *i == n)
        .map_or_else(|| format!("SIG{n}"), |(_, s)| (*s).to_owned())
}

/// Piston's two-letter status of an execution that did not complete, or null.
fn status_code(e: &Execution) -> Value {
    match (e.status, e.report.error_type) {
        (Status::Completed, _) => Value::Null,
        (Status::Timeout, _) | (_, Some(ErrorType::TimeoutError)) => json!("TO"),
        (_, Some(ErrorType::OutputLimitExceeded)) => json!("OL"),
        (_, Some(ErrorType::InternalError)) => json!("XX"),
        _ if e.report.signal.is_some() => json!("SG"),
        (Status::Queued | Status::Running, _) => json!("XX"),
        _ => json!("RE"),
    }
}

/// The `run` object (a copy of `compile` when compiling failed).
pub fn run_report(e: &Execution) -> Value {
    if e.report.error_type == Some(ErrorType::CompilationError) {
        if let Some(c) = compile_report(e).as_object() {
            return Value::Object(c.clone());
        }
    }
    let stdout = String::from_utf8_lossy(&e.report.stdout);
    let stderr = String::from_utf8_lossy(&e.report.stderr);
    let message = match e.status {
        Status::Queued | Status::Running => {
            Some("the run did not finish while the request waited".to_owned())
        }
        _ => e.report.error_message.clone(),
    };
    json!({
        "stdout": stdout,
        "stderr": stderr,
        "output": format!("{stdout}{stderr}"),
        "code": e.report.exit_code,
        "signal": e.report.signal.map(signal_name),
        "message": message,
        "status": status_code(e),
        "cpu_time": e.report.cpu_time_ms.unwrap_or(e.report.execution_time_ms),
        "wall_time": e.report.execution_time_ms,
        "memory": e.report.memory_kb.map(|kb| kb * 1024),
    })
}

/// The `compile` object of a compiled language, or null.
pub fn compile_report(e: &Execution) -> Value {
    let Some(c) = &e.report.compile else {
        return Value::Null;
    };
    let failed = c.status != Status::Completed;
    json!({
        "stdout": c.stdout,
        "stderr": c.stderr,
        "output": format!("{}{}", c.stdout, c.stderr),
        "code": c.exit_code,
        "signal": Value::Null,
        "message": if failed { e.report.error_message.clone() } else { None },
        "status": match c.status {
            Status::Timeout => json!("TO"),
            Status::Completed => Value::Null,
            _ => json!("RE"),
        },
        "cpu_time": c.time_ms,
        "wall_time": c.time_ms,
        "memory": c.memory_kb.map(|kb| kb * 1024),
    })
}

#[cfg(test)]
mod tests {
    use super::version_matches as m;

    #[test]
    fn version_selectors() {
        assert!(m(None, "3.11.7") && m(Some("*"), "3.11.7") && m(Some("3.11.7"), "3.11.7"));
        assert!(m(Some("3"), "3.11.7") && m(Some("3.x"), "3.11.7") && m(Some("3.11"), "3.11.7"));
        assert!(m(Some("^3.10"), "3.11.7") && !m(Some("^4"), "3.11.7"));
        assert!(m(Some("~3.11.1"), "3.11.7") && !m(Some("~3.10"), "3.11.7"));
        assert!(m(Some(">=3.8"), "3.11.7") && !m(Some(">=3.12"), "3.11.7"));
        assert!(!m(Some("3.10.0"), "3.11.7") && !m(Some("2"), "3.11.7"));
    }
}
