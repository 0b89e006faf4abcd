//! Which runtimes work on this host, and why not: each runtime's toolchain is resolved and
//! (with a sandbox) its smoke test compiled and run ([`check_all`]); [`Engine::start`] keeps
//! the runtimes that passed and records every runtime's [`Availability`] in the registry the
//! API offers to clients.

use crate::{Engine, Executor, Request};
use livexec_core::RunOptions;
use livexec_runtimes::{Availability, Registry, Resolved, Runtime, RuntimeError};
use livexec_sandbox::{Limits, Sandbox};
use std::collections::HashMap;
use std::sync::Arc;

/// What checking one runtime on this host found.
pub struct Check {
    /// Runtime id.
    pub id: String,
    /// The resolved recipe, when the toolchain was found.
    pub resolved: Result<Resolved, RuntimeError>,
    /// The smoke test's wall ms (compile + run), or why it failed; `None` when not run.
    pub smoke: Option<Result<u64, String>>,
}

impl Check {
    /// The availability this check means.
    pub fn availability(&self) -> Availability {
        match (&self.resolved, &self.smoke) {
            (Err(e), _) => Availability::Unavailable {
                reason: e.to_string(),
            },
            (Ok(_), Some(Err(why))) => Availability::Unavailable {
                reason: format!("smoke test failed: {why}"),
            },
            (Ok(r), _) => Availability::Available {
                version: r.version.clone(),
            },
        }
    }
}

/// What [`Engine::start`] found, for the start-up log line and `/health`.
#[derive(Debug, Default, Clone)]
pub struct StartReport {
    /// `"id version"` of each runtime that works.
    pub ready: Vec<String>,
    /// `"id: reason"` of each runtime whose toolchain is missing here.
    pub missing: Vec<String>,
    /// `"id: reason"` of each runtime whose toolchain is here but whose smoke test failed.
    pub broken: Vec<String>,
}

/// Resolve every runtime and, with a sandbox, run every smoke test, in registry order. The
/// toolchains are probed all at once (a thread each); the smoke tests, which compile, run as
/// many at a time as there are cores, so a start never floods the host with compilers.
pub fn check_all(
    registry: &Registry,
    sandbox: Option<&Arc<Sandbox>>,
    limits: &Limits,
) -> Vec<Check> {
    let cores = livexec_runtimes::machine_cores();
    let slots = std::sync::Mutex::new(cores);
    let freed = std::sync::Condvar::new();
    let (slots, freed) = (&slots, &freed);
    std::thread::scope(|scope| {
        let handles: Vec<_> = registry
            .iter()
            .map(|rt| {
                scope.spawn(move || {
                    let resolved = rt.resolve_fresh(registry.probe_cache());
                    let smoke = match (&resolved, sandbox) {
                        (Ok(r), Some(s)) => {
                            let mut free = slots.lock().unwrap_or_else(|p| p.into_inner());
                            while *free == 0 {
                                free = freed.wait(free).unwrap_or_else(|p| p.into_inner());
                            }
                            *free -= 1;
                            drop(free);
                            let verdict = smoke(s, rt, r, limits);
                            *slots.lock().unwrap_or_else(|p| p.into_inner()) += 1;
                            freed.notify_one();
                            Some(verdict)
                        }
                        _ => None,
                    };
                    Check {
                        id: rt.id.clone(),
                        resolved,
                        smoke,
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .zip(registry.iter())
            .map(|(h, rt)| {
                h.join().unwrap_or_else(|_| Check {
                    id: rt.id.clone(),
                    resolved: Err(RuntimeError::Invalid {
                        file: rt.id.clone(),
                        problem: "checking it panicked".into(),
                    }),
                    smoke: None,
                })
            })
            .collect()
    })
}

/// How many times its stages' time limits a smoke test gets: it proves that the toolchain
/// works in the sandbox, not that it is fast, and a start on a busy host is slow.
const SMOKE_TIME_FACTOR: u64 = 4;

/// Run a runtime's smoke test in the sandbox (compile and run) through an [`Engine`] of that
/// one runtime; the wall ms of both stages when its output matches.
pub fn smoke(
    sandbox: &Arc<Sandbox>,
    rt: &Runtime,
    resolved: &Resolved,
    limits: &Limits,
) -> Result<u64, String> {
    let mut patient = resolved.clone();
    for stage in patient.compile.iter_mut().chain([&mut patient.run]) {
        let ms = stage.limits.timeout_ms.unwrap_or(limits.wall_ms);
        stage.limits.timeout_ms = Some(ms.saturating_mul(SMOKE_TIME_FACTOR));
    }
    let engine = Engine::new(
        Arc::clone(sandbox),
        HashMap::from([(rt.id.clone(), patient)]),
        limits.clone(),
    );
    let request = Request::new(&rt.id, &rt.smoke.source).with_options(RunOptions {
        stdin: Some(rt.smoke.stdin.clone()),
        ..RunOptions::default()
    });
    let result = engine
        .execute(&request, &mut |_, _| {})
        .map_err(|e| format!("sandbox error: {e}"))?;
    if let Some(msg) = result.report.error_message {
        return Err(format!(
            "{} {}: {msg}",
            result.status,
            result.report.error_type.map_or("", |t| t.as_str())
        ));
    }
    if result.report.stdout != rt.smoke.expected_stdout.as_bytes() {
        return Err(format!(
            "printed {:?}, expected {:?}",
            String::from_utf8_lossy(&result.report.stdout),
            rt.smoke.expected_stdout
        ));
    }
    let compile_ms = result.report.compile.map_or(0, |c| c.time_ms);
    Ok(u64::try_from(result.report.execution_time_ms.saturating_add(compile_ms)).unwrap_or(0))
}

impl Engine {
    /// Resolve every runtime of `registry` and (when `smoke_tests`) run each smoke test once
    /// in `sandbox`, record in `registry` which runtimes are available (and why not), and
    /// build the engine of those that work. A missing toolchain or a failing smoke test makes
    /// a runtime unavailable, never an error; the caller decides what an empty engine means.
    pub fn start(
        sandbox: Arc<Sandbox>,
        registry: &mut Registry,
        limits: Limits,
        smoke_tests: bool,
    ) -> (Engine, StartReport) {
        let mut runtimes = HashMap::new();
        let mut report = StartReport::default();
        let checks = check_all(registry, smoke_tests.then_some(&sandbox), &limits);
        for check in checks {
            registry.set_availability(&check.id, check.availability());
            match (check.resolved, check.smoke) {
                (Err(e), _) => report.missing.push(format!("{}: {e}", check.id)),
                (Ok(_), Some(Err(why))) => report.broken.push(format!("{}: {why}", check.id)),
                (Ok(r), smoke) => {
                    let ms = smoke.and_then(Result::ok);
                    tracing::debug!(runtime = %check.id, program = %r.executable.display(), version = %r.version, smoke_ms = ?ms, "runtime ready");
                    report.ready.push(format!("{} {}", check.id, r.version));
                    runtimes.insert(check.id, r);
                }
            }
        }
        let aliases = registry
            .iter()
            .filter(|rt| runtimes.contains_key(&rt.id))
            .flat_map(|rt| rt.aliases.iter().map(|a| (a.clone(), rt.id.clone())))
            .collect();
        let engine = Engine::new(sandbox, runtimes, limits).with_aliases(aliases);
        (engine, report)
    }
}
