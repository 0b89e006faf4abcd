//! Judge0 CE 1.13.1's fixed tables as our runtimes fill them: language ids, statuses, and
//! the `/config_info`, `/about` and `/workers` documents.

use crate::AppState;
use livexec_runtimes::{Availability, Runtime};
use serde_json::{json, Value};

/// The version `/about` reports: the Judge0 SDK maps its language aliases by it, and knows
/// only `1.13.1`, `1.14.0` and their `-extra` flavours.
pub const VERSION: &str = "1.13.1";

/// The largest batch (Judge0's default, reported in `/config_info`).
pub const MAX_BATCH: usize = 20;

/// Judge0 CE 1.13.1's language ids of the languages we have, with our runtime id and the
/// name prefix (the version in parentheses is ours). Where Judge0 lists several versions of
/// one language, every id maps to our toolchain; the last one is the id we answer with.
const LANGUAGES: &[(u32, &str, &str)] = &[
    (46, "bash", "Bash"),
    (48, "c", "C (GCC"),
    (49, "c", "C (GCC"),
    (50, "c", "C (GCC"),
    (52, "cpp", "C++ (GCC"),
    (53, "cpp", "C++ (GCC"),
    (54, "cpp", "C++ (GCC"),
    (60, "go", "Go"),
    (62, "java", "Java (OpenJDK"),
    (63, "javascript", "JavaScript (Node.js"),
    (64, "lua", "Lua"),
    (68, "php", "PHP"),
    (71, "python", "Python"),
    (72, "ruby", "Ruby"),
    (73, "rust", "Rust"),
    (74, "typescript", "TypeScript"),
    (82, "sql", "SQL (SQLite"),
    (85, "perl", "Perl"),
];

/// Judge0's statuses, id and description.
pub const STATUSES: &[(u8, &str)] = &[
    (1, "In Queue"),
    (2, "Processing"),
    (3, "Accepted"),
    (4, "Wrong Answer"),
    (5, "Time Limit Exceeded"),
    (6, "Compilation Error"),
    (7, "Runtime Error (SIGSEGV)"),
    (8, "Runtime Error (SIGXFSZ)"),
    (9, "Runtime Error (SIGFPE)"),
    (10, "Runtime Error (SIGABRT)"),
    (11, "Runtime Error (NZEC)"),
    (12, "Runtime Error (Other)"),
    (13, "Internal Error"),
    (14, "Exec Format Error"),
];

/// `{"id", "description"}` of status `id`.
pub fn status(id: u8) -> Value {
    let description = STATUSES
        .iter()
        .find(|(i, _)| *i == id)
        .map_or("Internal Error", |(_, d)| d);
    json!({ "id": id, "description": description })
}

/// The usable runtime behind Judge0 language `id`.
pub fn runtime_of(state: &AppState, id: i64) -> Option<&Runtime> {
    let (_, rt, _) = LANGUAGES.iter().find(|(i, _, _)| i64::from(*i) == id)?;
    state.runtimes.lookup_usable(rt)
}

/// The Judge0 id we answer with for runtime `runtime` (the newest of its ids).
pub fn id_of(runtime: &str) -> Option<u32> {
    LANGUAGES
        .iter()
        .rev()
        .find(|(_, rt, _)| *rt == runtime)
        .map(|(id, _, _)| *id)
}

/// Judge0's name of language `id`: its prefix with our toolchain's version.
fn name(state: &AppState, prefix: &str, runtime: &str) -> String {
    let version = match state.runtimes.availability(runtime) {
        Availability::Available { version } => version.as_str(),
        _ => "unknown",
    };
    match prefix.contains('(') {
        true => format!("{prefix} {version})"),
        false => format!("{prefix} ({version})"),
    }
}

/// `GET /languages`: `[{"id", "name"}]` of the usable runtimes, by id.
pub fn languages(state: &AppState) -> Value {
    LANGUAGES
        .iter()
        .filter(|(_, rt, _)| state.runtimes.lookup_usable(rt).is_some())
        .map(|(id, rt, prefix)| json!({ "id": id, "name": name(state, prefix, rt) }))
        .collect()
}

/// `GET /languages/:id`: the full language, or `None` when we do not have it.
pub fn language(state: &AppState, id: i64) -> Option<Value> {
    let rt = runtime_of(state, id)?;
    let (_, _, prefix) = LANGUAGES.iter().find(|(i, _, _)| i64::from(*i) == id)?;
    Some(json!({
        "id": id,
        "name": name(state, prefix, &rt.id),
        "is_archived": false,
        "source_file": rt.file_name,
        "compile_cmd": rt.compile.as_ref().map(|s| s.command.join(" ")),
        "run_cmd": rt.run.command.join(" "),
    }))
}

/// The service's default limits in Judge0's units (seconds, KB).
pub struct Limits {
    /// Default wall-time limit, s.
    pub wall_s: f64,
    /// Default memory, KB.
    pub memory_kb: u64,
    /// Default processes and threads.
    pub pids: u32,
}

/// The service's default limits in Judge0's units.
pub fn limits(state: &AppState) -> Limits {
    let d = &state.config.default_limits;
    Limits {
        wall_s: state.config.time_limit.as_secs_f64(),
        memory_kb: d.memory_mb.unwrap_or(128) * 1024,
        pids: d.pids.unwrap_or(50),
    }
}

/// `GET /config_info`: every key Judge0 1.13.1 returns (the SDK requires them all).
pub fn config_info(state: &AppState) -> Value {
    let l = limits(state);
    let m = &state.config.maxima;
    let (max_cpu_s, max_wall_s) = (m.cpu_time_ms as f64 / 1000.0, m.time_ms as f64 / 1000.0);
    json!({
        "maintenance_mode": false,
        "enable_wait_result": true,
        "enable_compiler_options": false,
        "allowed_languages_for_compile_options": [],
        "enable_command_line_arguments": true,
        "enable_submission_delete": false,
        "enable_callbacks": false,
        "callbacks_max_tries": 0,
        "callbacks_timeout": 0.0,
        "enable_additional_files": true,
        "max_queue_size": 10000,
        "cpu_time_limit": l.wall_s,
        "max_cpu_time_limit": max_cpu_s,
        "cpu_extra_time": 0.0,
        "max_cpu_extra_time": 0.0,
        "wall_time_limit": l.wall_s,
        "max_wall_time_limit": max_wall_s,
        "memory_limit": l.memory_kb,
        "max_memory_limit": m.memory_mb * 1024,
        "stack_limit": l.memory_kb,
        "max_stack_limit": m.memory_mb * 1024,
        "max_processes_and_or_threads": l.pids,
        "max_max_processes_and_or_threads": m.pids,
        "enable_per_process_and_thread_time_limit": false,
        "allow_enable_per_process_and_thread_time_limit": false,
        "enable_per_process_and_thread_memory_limit": false,
        "allow_enable_per_process_and_thread_memory_limit": false,
        "max_file_size": 1024,
        "max_max_file_size": 1024,
        "number_of_runs": 1,
        "max_number_of_runs": 1,
        "redirect_stderr_to_stdout": false,
        "max_extract_size": 10240,
        "enable_batched_submissions": true,
        "max_submission_batch_size": MAX_BATCH,
        "submission_cache_duration": 0.0,
        "use_docs_as_homepage": false,
        "allow_enable_network": false,
        "enable_network": false,
    })
}

/// `GET /about`.
pub fn about() -> Value {
    json!({
        "version": VERSION,
        "homepage": null,
        "source_code": null,
        "maintainer": "livexec (the Judge0 CE 1.13.1 compatible API of a livexec server)",
    })
}
