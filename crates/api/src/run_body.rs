//! Validation of what a run asks beyond the code (API.md §10): `stdin`, `args`, `env`,
//! `files`, `limits`, `tests`, `compare`, `stop_on_failure`, `return_files`. Every problem is
//! collected (one message each, in the style of [`crate::validate`]); `files` are checked in
//! [`crate::run_files`].

use crate::maxima::{RunMaxima, FLOORS, MAX_ARGS, MAX_ARGV_ENV_BYTES, MAX_RETURN_PATTERNS};
use crate::run_files::files;
use crate::validate::{check_no_nul, Problems};
use livexec_core::{Compare, LimitOverrides, RunOptions, TestCase};
use livexec_runtimes::Registry;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The body keys of a run's options.
pub const OPTION_KEYS: &[&str] = &[
    "stdin",
    "args",
    "env",
    "files",
    "limits",
    "tests",
    "compare",
    "stop_on_failure",
    "return_files",
    "stderr_to_stdout",
];

/// Variables the sandbox sets itself; with every `LD_*` and the runtimes' own, a request may
/// not set them.
const RESERVED_ENV: &[&str] = &[
    "PATH", "HOME", "LANG", "TMPDIR", "PWD", "SHELL", "USER", "LOGNAME",
];

/// Whether a request may not set the variable `key`: the sandbox's, `LD_*`, or one a runtime
/// sets for its stages.
fn reserved(key: &str, registry: &Registry) -> bool {
    RESERVED_ENV.contains(&key)
        || key.starts_with("LD_")
        || registry.iter().any(|rt| {
            rt.env.contains_key(key)
                || rt.run.env.contains_key(key)
                || rt.compile.as_ref().is_some_and(|c| c.env.contains_key(key))
        })
}

/// Parse the options of a run body (other keys are the caller's to check).
pub fn options(
    body: &Map<String, Value>,
    maxima: &RunMaxima,
    registry: &Registry,
    p: &mut Problems,
) -> RunOptions {
    let stdin = match body.get("stdin") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            p.push("stdin must be a string");
            None
        }
    };
    let args = strings("args", body.get("args"), p);
    let env = env(body.get("env"), registry, p);
    let tests = tests(body.get("tests"), maxima, p);
    check_argv_env("args", &args, &env, p);
    for (i, case) in tests.iter().enumerate() {
        if let Some(args) = &case.args {
            check_argv_env(&format!("tests[{i}].args"), args, &env, p);
        }
    }
    RunOptions {
        stdin,
        args,
        env,
        files: files(body.get("files"), maxima, p),
        limits: limits(body.get("limits"), maxima, p),
        tests,
        compare: match body.get("compare") {
            None | Some(Value::Null) => Compare::default(),
            Some(Value::String(s)) if s == "exact" => Compare::Exact,
            Some(Value::String(s)) if s == "trim" => Compare::Trim,
            Some(_) => {
                p.push("compare must be one of the following values: exact, trim");
                Compare::default()
            }
        },
        stop_on_failure: match body.get("stop_on_failure") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                p.push("stop_on_failure must be a boolean value");
                false
            }
        },
        return_files: return_files(body.get("return_files"), p),
        stderr_to_stdout: match body.get("stderr_to_stdout") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                p.push("stderr_to_stdout must be a boolean value");
                false
            }
        },
    }
}

/// An optional array of strings without NUL (`args`, a test's `args`).
fn strings(field: &str, value: Option<&Value>, p: &mut Problems) -> Vec<String> {
    match value {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => items
            .iter()
            .enumerate()
            .filter_map(|(i, v)| {
                let s = v.as_str()?;
                check_no_nul(&format!("{field}[{i}]"), s, p);
                Some(s.to_owned())
            })
            .collect(),
        Some(_) => {
            p.push(format!("{field} must be an array of strings"));
            Vec::new()
        }
    }
}

/// The arguments (`field`: `args`, or a test case's) and the environment of one run against
/// [`MAX_ARGS`] and [`MAX_ARGV_ENV_BYTES`]: beyond them `execve` would refuse the program.
pub(crate) fn check_argv_env(
    field: &str,
    args: &[String],
    env: &BTreeMap<String, String>,
    p: &mut Problems,
) {
    if args.len() > MAX_ARGS {
        p.push(format!(
            "{field} must contain no more than {MAX_ARGS} elements"
        ));
    }
    let bytes: usize = args.iter().map(|a| a.len() + 1).sum::<usize>()
        + env
            .iter()
            .map(|(k, v)| k.len() + v.len() + 2)
            .sum::<usize>();
    if bytes > MAX_ARGV_ENV_BYTES {
        p.push(format!(
            "{field} and env must not exceed {MAX_ARGV_ENV_BYTES} bytes together, got {bytes}"
        ));
    }
}

fn env(value: Option<&Value>, registry: &Registry, p: &mut Problems) -> BTreeMap<String, String> {
    let map = match value {
        None | Some(Value::Null) => return BTreeMap::new(),
        Some(Value::Object(map)) => map,
        Some(_) => {
            p.push("env must be an object whose values are strings");
            return BTreeMap::new();
        }
    };
    if map.len() > MAX_ARGS {
        p.push(format!(
            "env must contain no more than {MAX_ARGS} variables"
        ));
        return BTreeMap::new();
    }
    let mut out = BTreeMap::new();
    for (key, v) in map {
        if key.is_empty() {
            p.push("env keys must not be empty");
        } else if key.contains('\0') {
            p.push(format!("env key {key:?} must not contain NUL characters"));
        } else if key.contains('=') {
            p.push(format!("env key {key:?} must not contain ="));
        } else if reserved(key, registry) {
            p.push(format!(
                "env key {key} is set by the sandbox and cannot be overridden"
            ));
        }
        match v {
            Value::String(s) => {
                check_no_nul(&format!("env.{key}"), s, p);
                out.insert(key.clone(), s.clone());
            }
            _ => p.push(format!("env.{key} must be a string")),
        }
    }
    out
}

fn limits(value: Option<&Value>, maxima: &RunMaxima, p: &mut Problems) -> LimitOverrides {
    let map = match value {
        None | Some(Value::Null) => return LimitOverrides::default(),
        Some(Value::Object(map)) => map,
        Some(_) => {
            p.push("limits must be an object");
            return LimitOverrides::default();
        }
    };
    let f = FLOORS;
    let m = maxima;
    let mut one = |key: &str, floor: u64, max: u64| -> Option<u64> {
        let v = match map.get(key) {
            None | Some(Value::Null) => return None,
            Some(v) => v,
        };
        let Some(n) = v.as_u64() else {
            p.push(format!("limits.{key} must be a positive integer"));
            return None;
        };
        if n > max {
            p.push(format!("limits.{key} must not exceed {max}"));
        } else if n < floor {
            p.push(format!("limits.{key} must be at least {floor}"));
        }
        Some(n)
    };
    let out = LimitOverrides {
        time_ms: one("time_ms", f.time_ms, m.time_ms),
        cpu_time_ms: one("cpu_time_ms", f.cpu_time_ms, m.cpu_time_ms),
        memory_mb: one("memory_mb", f.memory_mb, m.memory_mb),
        pids: one("pids", u64::from(f.pids), u64::from(m.pids)).map(|n| n as u32),
        output_bytes: one("output_bytes", f.output_bytes, m.output_bytes),
        compile_time_ms: one("compile_time_ms", f.compile_time_ms, m.compile_time_ms),
        compile_memory_mb: one(
            "compile_memory_mb",
            f.compile_memory_mb,
            m.compile_memory_mb,
        ),
    };
    p.unknown_properties_in(
        "limits.",
        map,
        &[
            "time_ms",
            "cpu_time_ms",
            "memory_mb",
            "pids",
            "output_bytes",
            "compile_time_ms",
            "compile_memory_mb",
        ],
    );
    out
}

fn tests(value: Option<&Value>, maxima: &RunMaxima, p: &mut Problems) -> Vec<TestCase> {
    let items = match value {
        None | Some(Value::Null) => return Vec::new(),
        Some(Value::Array(items)) => items,
        Some(_) => {
            p.push("tests must be an array of objects");
            return Vec::new();
        }
    };
    if items.len() > maxima.tests {
        p.push(format!(
            "tests must contain no more than {} elements",
            maxima.tests
        ));
    }
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let Value::Object(case) = item else {
            p.push(format!("tests[{i}] must be an object"));
            continue;
        };
        p.unknown_properties_in(
            &format!("tests[{i}]."),
            case,
            &["stdin", "expected_stdout", "args"],
        );
        let stdin = match case.get("stdin") {
            Some(Value::String(s)) => Some(s.clone()),
            _ => {
                p.push(format!("tests[{i}].stdin must be a string"));
                None
            }
        };
        let expected_stdout = match case.get("expected_stdout") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                p.push(format!("tests[{i}].expected_stdout must be a string"));
                None
            }
        };
        let args = match case.get("args") {
            None | Some(Value::Null) => None,
            v => Some(strings(&format!("tests[{i}].args"), v, p)),
        };
        if let Some(stdin) = stdin {
            out.push(TestCase {
                stdin,
                expected_stdout,
                args,
            });
        }
    }
    out
}

fn return_files(value: Option<&Value>, p: &mut Problems) -> Vec<String> {
    let patterns = strings("return_files", value, p);
    if patterns.len() > MAX_RETURN_PATTERNS {
        p.push(format!(
            "return_files must contain no more than {MAX_RETURN_PATTERNS} elements"
        ));
    }
    for (i, pattern) in patterns.iter().enumerate() {
        let bad = pattern.is_empty()
            || pattern.starts_with('/')
            || pattern.split('/').any(|c| c == ".." || c.is_empty());
        if bad {
            p.push(format!(
                "return_files[{i}] must be a relative path pattern without .. (e.g. out.txt or *.png)"
            ));
        } else if pattern.contains('/') || pattern == "." {
            // Files are handed back from the working dir's top level only: such a pattern
            // would silently match nothing.
            p.push(format!(
                "return_files[{i}] must name files of the working dir itself, not of a subdirectory ({pattern:?})"
            ));
        }
    }
    patterns
}
