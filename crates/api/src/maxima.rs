//! The server's maxima for what one run may ask (`LIVEXEC_MAX_*`), the floors below which a
//! limit is refused, and `GET /limits`, which shows both.

use crate::auth::Authed;
use crate::AppState;
use axum::extract::State;
use axum::Json;
use serde::Serialize;

/// Most items of one `POST /executions/batch`.
pub const MAX_BATCH: usize = 20;

/// Most `return_files` patterns of one run.
pub const MAX_RETURN_PATTERNS: usize = 32;

/// Most `files` of one body (a run's, a one-shot's or a session's).
pub const MAX_FILES: usize = 1024;

/// Most `args` of one run (or one test case), and most `env` variables.
pub const MAX_ARGS: usize = 1024;

/// Most bytes of one run's `args` and `env` together (each string with its NUL, a variable as
/// `KEY=VALUE`), so that they, their pointers and the runtime's own arguments stay well under
/// the 128 KiB that `execve` always accepts (beyond it the program could not be started).
pub const MAX_ARGV_ENV_BYTES: usize = 64 * 1024;

/// What one run may ask at most (settings `LIVEXEC_MAX_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RunMaxima {
    /// `limits.time_ms`, wall-clock ms of each run (each test case). Default 60 000.
    pub time_ms: u64,
    /// `limits.cpu_time_ms`, CPU ms of each run. Default 60 000.
    pub cpu_time_ms: u64,
    /// `limits.memory_mb`, MiB of each run. Default 512.
    pub memory_mb: u64,
    /// `limits.pids`, processes plus threads of each run. Default 256.
    pub pids: u32,
    /// `limits.output_bytes`, bytes of each output stream. Default 16 MiB.
    pub output_bytes: u64,
    /// `limits.compile_time_ms`, wall-clock ms of the compile stage. Default 60 000.
    pub compile_time_ms: u64,
    /// `limits.compile_memory_mb`, MiB of the compile stage. Default 2048.
    pub compile_memory_mb: u64,
    /// Test cases of one run. Default 64.
    pub tests: usize,
    /// Bytes of all files of one run together (the session's and the request's, decoded).
    /// Default 4 MiB.
    pub file_bytes: usize,
    /// Bytes of the body of a run request (`POST …/run`, `POST /executions`, a batch).
    /// Default 16 MiB.
    pub request_bytes: usize,
}

impl Default for RunMaxima {
    fn default() -> Self {
        RunMaxima {
            time_ms: 60_000,
            cpu_time_ms: 60_000,
            memory_mb: 512,
            pids: 256,
            output_bytes: 16 << 20,
            compile_time_ms: 60_000,
            compile_memory_mb: 2048,
            tests: 64,
            file_bytes: 4 << 20,
            request_bytes: 16 << 20,
        }
    }
}

/// The smallest value each limit may be set to: below it no program could start (or the
/// limit would be meaningless). `pids` counts the jail's init too, hence 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Floors {
    /// ms.
    pub time_ms: u64,
    /// ms.
    pub cpu_time_ms: u64,
    /// MiB.
    pub memory_mb: u64,
    /// Processes plus threads.
    pub pids: u32,
    /// Bytes.
    pub output_bytes: u64,
    /// ms.
    pub compile_time_ms: u64,
    /// MiB.
    pub compile_memory_mb: u64,
}

/// The floors of every limit.
pub const FLOORS: Floors = Floors {
    time_ms: 10,
    cpu_time_ms: 10,
    memory_mb: 8,
    pids: 2,
    output_bytes: 1,
    compile_time_ms: 100,
    compile_memory_mb: 32,
};

/// One limit's range.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Range<T> {
    /// The floor.
    pub min: T,
    /// The server's maximum.
    pub max: T,
}

/// One maximum without a floor.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Max {
    /// The server's maximum.
    pub max: usize,
}

/// The body of `GET /limits`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LimitsView {
    /// `limits.time_ms`.
    pub time_ms: Range<u64>,
    /// `limits.cpu_time_ms`.
    pub cpu_time_ms: Range<u64>,
    /// `limits.memory_mb`.
    pub memory_mb: Range<u64>,
    /// `limits.pids`.
    pub pids: Range<u32>,
    /// `limits.output_bytes`.
    pub output_bytes: Range<u64>,
    /// `limits.compile_time_ms`.
    pub compile_time_ms: Range<u64>,
    /// `limits.compile_memory_mb`.
    pub compile_memory_mb: Range<u64>,
    /// Test cases of one run.
    pub tests: Max,
    /// Bytes of all files of one run, decoded.
    pub file_bytes: Max,
    /// Bytes of a run request's body.
    pub request_bytes: Max,
    /// Items of one batch.
    pub batch: Max,
    /// `return_files` patterns of one run.
    pub return_files: Max,
    /// The caller's tier, whose maxima are already in the ranges above (null for an open
    /// service, which has the server's maxima only).
    pub tier: Option<crate::tiers::Tier>,
}

impl LimitsView {
    /// The view of `m` with the floors.
    pub fn of(m: &RunMaxima) -> Self {
        let f = FLOORS;
        LimitsView {
            time_ms: Range {
                min: f.time_ms,
                max: m.time_ms,
            },
            cpu_time_ms: Range {
                min: f.cpu_time_ms,
                max: m.cpu_time_ms,
            },
            memory_mb: Range {
                min: f.memory_mb,
                max: m.memory_mb,
            },
            pids: Range {
                min: f.pids,
                max: m.pids,
            },
            output_bytes: Range {
                min: f.output_bytes,
                max: m.output_bytes,
            },
            compile_time_ms: Range {
                min: f.compile_time_ms,
                max: m.compile_time_ms,
            },
            compile_memory_mb: Range {
                min: f.compile_memory_mb,
                max: m.compile_memory_mb,
            },
            tests: Max { max: m.tests },
            file_bytes: Max { max: m.file_bytes },
            request_bytes: Max {
                max: m.request_bytes,
            },
            batch: Max { max: MAX_BATCH },
            return_files: Max {
                max: MAX_RETURN_PATTERNS,
            },
            tier: None,
        }
    }
}

/// `GET /limits`: what a run of the caller may ask at most (the server's maxima, with its
/// tier's below them), and at least, and the caller's tier.
#[utoipa::path(get, path = "/limits", tag = "system",
    responses((status = 200, description = "Floors and maxima of a run's options, for this caller", body = LimitsView)))]
pub async fn limits(State(state): State<AppState>, Authed(caller): Authed) -> Json<LimitsView> {
    let mut view = LimitsView::of(&state.maxima_for(&caller));
    view.tier = state.tier_of(&caller).map(|t| (*t).clone());
    Json(view)
}
