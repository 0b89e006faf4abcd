//! `GET /runtimes`: every language this service knows, whether it is available here, its
//! version, aliases and the limits its stages run with.

use crate::auth::Authed;
use crate::{AppState, RunMaxima};
use axum::extract::State;
use axum::Json;
use livexec_runtimes::{Availability, LimitOverrides, Runtime};
use serde::Serialize;

/// The effective limits of one stage.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StageLimits {
    /// Wall-clock limit, ms.
    pub timeout_ms: Option<u64>,
    /// Memory limit, MiB.
    pub memory_mb: Option<u64>,
    /// Processes and threads.
    pub pids: Option<u32>,
    /// CPU quota, thousandths of a core.
    pub cpu_millicores: Option<u32>,
}

impl From<LimitOverrides> for StageLimits {
    fn from(l: LimitOverrides) -> Self {
        StageLimits {
            timeout_ms: l.timeout_ms,
            memory_mb: l.memory_mb,
            pids: l.pids,
            cpu_millicores: l.cpu_millicores,
        }
    }
}

/// The limits of a runtime's stages: `run` always, `compile` for compiled languages.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RuntimeLimits {
    /// The run stage.
    pub run: StageLimits,
    /// The compile stage, or null.
    pub compile: Option<StageLimits>,
}

/// One element of `GET /runtimes`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RuntimeView {
    /// What clients send as `language`.
    pub id: String,
    /// The language (several versions of one language share it).
    pub language: String,
    /// The toolchain's version as it reports it; null when unknown here.
    pub version: Option<String>,
    /// Other names accepted as `language`.
    pub aliases: Vec<String>,
    /// Human name.
    pub name: String,
    /// Whether it compiles before it runs.
    pub compiled: bool,
    /// The file the code is written to.
    pub file_name: String,
    /// Whether `language` may name it on this service.
    pub available: bool,
    /// Why it is not available, or null.
    pub unavailable_reason: Option<String>,
    /// The limits its stages run with when a run asks for none: the service's defaults for
    /// it, with the caller's tier's caps where those are lower (what such a run gets).
    pub limits: RuntimeLimits,
    /// The most a run of it may ask in `limits`: the server's `LIVEXEC_MAX_*`, with the
    /// caller's tier's below them (see `GET /limits`, which also gives the floors).
    pub max_limits: MaxLimits,
}

/// The server's maxima of a run's `limits`, as they apply to one runtime.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MaxLimits {
    /// Wall-clock ms of each run.
    pub time_ms: u64,
    /// CPU ms of each run.
    pub cpu_time_ms: u64,
    /// MiB of each run.
    pub memory_mb: u64,
    /// Processes plus threads of each run.
    pub pids: u32,
    /// Bytes of each output stream.
    pub output_bytes: u64,
    /// Wall-clock ms of the compile stage (compiled runtimes), else null.
    pub compile_time_ms: Option<u64>,
    /// MiB of the compile stage (compiled runtimes), else null.
    pub compile_memory_mb: Option<u64>,
}

impl MaxLimits {
    fn of(m: &RunMaxima, compiled: bool) -> Self {
        MaxLimits {
            time_ms: m.time_ms,
            cpu_time_ms: m.cpu_time_ms,
            memory_mb: m.memory_mb,
            pids: m.pids,
            output_bytes: m.output_bytes,
            compile_time_ms: compiled.then_some(m.compile_time_ms),
            compile_memory_mb: compiled.then_some(m.compile_memory_mb),
        }
    }
}

/// `limits` with what a tier caps (`capped`, from [`AppState::clamp_limits`] of a run that
/// asks nothing) in place of the defaults.
fn capped_stage(
    mut limits: StageLimits,
    timeout_ms: Option<u64>,
    memory_mb: Option<u64>,
    pids: Option<u32>,
) -> StageLimits {
    limits.timeout_ms = timeout_ms.or(limits.timeout_ms);
    limits.memory_mb = memory_mb.or(limits.memory_mb);
    limits.pids = pids.or(limits.pids);
    limits
}

fn view(
    rt: &Runtime,
    availability: &Availability,
    defaults: &LimitOverrides,
    capped: &livexec_core::LimitOverrides,
    maxima: &RunMaxima,
) -> RuntimeView {
    let (version, reason) = match availability {
        Availability::Available { version } => (Some(version.clone()), None),
        Availability::Unavailable { reason } => (None, Some(reason.clone())),
        Availability::Unchecked => (None, None),
    };
    RuntimeView {
        id: rt.id.clone(),
        language: rt.language.clone(),
        version,
        aliases: rt.aliases.clone(),
        name: rt.name.clone(),
        compiled: rt.compiled(),
        file_name: rt.file_name.clone(),
        available: availability.usable(),
        unavailable_reason: reason,
        limits: RuntimeLimits {
            run: capped_stage(
                defaults.overlay(&rt.run.limits).into(),
                capped.time_ms,
                capped.memory_mb,
                capped.pids,
            ),
            compile: rt.compile_limits().map(|c| {
                let stage = defaults.overlay(&c).into();
                capped_stage(
                    stage,
                    capped.compile_time_ms,
                    capped.compile_memory_mb,
                    None,
                )
            }),
        },
        max_limits: MaxLimits::of(maxima, rt.compiled()),
    }
}

/// Every runtime, sorted by id; `limits` and `max_limits` are the caller's (the server's, with
/// its tier's below them), as a run of that caller gets them and `GET /limits` shows them.
#[utoipa::path(get, path = "/runtimes", tag = "system",
    responses((status = 200, description = "Every runtime", body = Vec<RuntimeView>)))]
pub async fn list(State(state): State<AppState>, Authed(caller): Authed) -> Json<Vec<RuntimeView>> {
    let defaults = &state.config.default_limits;
    let maxima = state.maxima_for(&caller);
    Json(
        state
            .runtimes
            .iter()
            .map(|rt| {
                let availability = state.runtimes.availability(&rt.id);
                let mut capped = livexec_core::LimitOverrides::default();
                state.clamp_limits(&caller, &rt.id, &mut capped);
                view(rt, availability, defaults, &capped, &maxima)
            })
            .collect(),
    )
}
