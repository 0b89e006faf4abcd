//! The runtimes on this host: resolving their toolchains, their smoke tests in the sandbox
//! (compile and run, all runtimes at once), the engine a worker runs with, and
//! `livexec runtimes`.

use crate::settings::SandboxArgs;
use clap::Args;
use livexec_api::SandboxHealth;
use livexec_runtimes::{Availability, Registry, Resolved, Runtime, RuntimeError};
use livexec_sandbox::{Limits, Sandbox};
use livexec_worker::{run_staged, staged_result};
use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::Arc;

/// The sandbox and the runtimes that work with it, ready for workers.
pub struct Engine {
    /// The sandbox engine.
    pub sandbox: Arc<Sandbox>,
    /// Resolved runtimes by id (only the ones whose toolchain was found and whose smoke test
    /// passed).
    pub runtimes: HashMap<String, Resolved>,
    /// What `/health` says about the sandbox.
    pub health: SandboxHealth,
}

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

/// Resolve every runtime and, with a sandbox, run every smoke test, in registry order. The
/// toolchains are probed all at once (a thread each); the smoke tests, which compile, run as
/// many at a time as there are cores, so a start never floods the host with compilers.
pub fn check_all(registry: &Registry, sandbox: Option<&Sandbox>, limits: &Limits) -> Vec<Check> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let slots = std::sync::Mutex::new(cores);
    let freed = std::sync::Condvar::new();
    let (slots, freed) = (&slots, &freed);
    std::thread::scope(|scope| {
        let handles: Vec<_> = registry
            .iter()
            .map(|rt| {
                scope.spawn(move || {
                    let resolved = rt.resolve();
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

/// Start the sandbox, resolve every runtime and run each smoke test once, recording in
/// `registry` which runtimes are available. A runtime whose toolchain is missing is
/// unavailable, not an error; a failing smoke test also makes `/health` degraded. Fails when
/// the sandbox cannot start or no runtime works.
pub fn prepare_engine(
    args: &SandboxArgs,
    registry: &mut Registry,
    limits: &Limits,
    smoke_tests: bool,
) -> anyhow::Result<Engine> {
    let sandbox = args.sandbox()?;
    let mode = sandbox.isolation();
    tracing::info!(sandbox = %mode, "sandbox ready");
    let mut runtimes = HashMap::new();
    let mut broken = Vec::new();
    let (mut ready, mut missing) = (Vec::new(), Vec::new());
    if !smoke_tests {
        tracing::warn!("LIVEXEC_SMOKE_TESTS=false: runtimes whose toolchain is found are offered without their smoke test");
    }
    let smoke_with = smoke_tests.then_some(&sandbox);
    for check in check_all(registry, smoke_with, limits) {
        let availability = check.availability();
        match (&check.resolved, &check.smoke) {
            (Err(e), _) => {
                tracing::warn!(runtime = %check.id, error = %e, "runtime unavailable on this host");
                missing.push(check.id.clone());
            }
            (Ok(_), Some(Err(why))) => {
                tracing::error!(runtime = %check.id, error = %why, "runtime smoke test failed");
                broken.push(format!("{}: {why}", check.id));
            }
            (Ok(r), smoke) => {
                let ms = smoke.as_ref().and_then(|s| s.as_ref().ok());
                tracing::debug!(runtime = %check.id, program = %r.executable.display(), version = %r.version, smoke_ms = ?ms, "runtime ready");
                ready.push(format!("{} {}", check.id, r.version));
            }
        }
        registry.set_availability(&check.id, availability);
        if let (Ok(r), None | Some(Ok(_))) = (check.resolved, check.smoke) {
            runtimes.insert(check.id, r);
        }
    }
    tracing::info!(
        available = %ready.join(", "),
        unavailable = %missing.iter().chain(&broken).map(String::as_str).collect::<Vec<_>>().join(", "),
        "runtimes: {} of {} available",
        ready.len(),
        ready.len() + missing.len() + broken.len()
    );
    anyhow::ensure!(
        !runtimes.is_empty(),
        "no runtime works on this host (install the toolchains with scripts/install-toolchains.sh, or set LIVEXEC_PYTHON / LIVEXEC_NODE)"
    );
    let health = if broken.is_empty() {
        SandboxHealth::Ok(mode.to_string())
    } else {
        SandboxHealth::Failed(format!("smoke test failed ({})", broken.join("; ")))
    };
    Ok(Engine {
        sandbox: Arc::new(sandbox),
        runtimes,
        health,
    })
}

/// How many times its stages' time limits a smoke test gets: it proves that the toolchain
/// works in the sandbox, not that it is fast, and a start on a busy host is slow.
const SMOKE_TIME_FACTOR: u64 = 4;

/// Run a runtime's smoke test in the sandbox (compile and run); the wall ms of both stages
/// when its output matches.
pub fn smoke(
    sandbox: &Sandbox,
    rt: &Runtime,
    resolved: &Resolved,
    limits: &Limits,
) -> Result<u64, String> {
    let mut patient = resolved.clone();
    for stage in patient.compile.iter_mut().chain([&mut patient.run]) {
        let ms = stage.limits.timeout_ms.unwrap_or(limits.wall_ms);
        stage.limits.timeout_ms = Some(ms.saturating_mul(SMOKE_TIME_FACTOR));
    }
    let staged = run_staged(
        sandbox,
        &patient,
        limits,
        &rt.smoke.source,
        rt.smoke.stdin.as_bytes(),
        &mut |_, _| {},
    )
    .map_err(|e| format!("sandbox error: {e}"))?;
    let result = staged_result(&staged);
    if let Some(msg) = result.error_message {
        return Err(format!(
            "{} {}: {msg}",
            result.status,
            result.error_type.map_or("", |t| t.as_str())
        ));
    }
    if result.stdout != rt.smoke.expected_stdout.as_bytes() {
        return Err(format!(
            "printed {:?}, expected {:?}",
            String::from_utf8_lossy(&result.stdout),
            rt.smoke.expected_stdout
        ));
    }
    let compile_ms = result.compile.map_or(0, |c| c.time_ms);
    Ok(u64::try_from(result.execution_time_ms.saturating_add(compile_ms)).unwrap_or(0))
}

/// Settings of `livexec runtimes`.
#[derive(Debug, Args)]
pub struct RuntimesArgs {
    #[command(flatten)]
    pub sandbox: SandboxArgs,
}

/// Print one line per runtime: id, language, version, aliases, compiled or not, the smoke
/// test's verdict and time (or why it is unavailable). Exit 1 when any runtime does not work
/// here.
pub fn main(args: RuntimesArgs) -> anyhow::Result<ExitCode> {
    args.sandbox.export_interpreters();
    let registry = args.sandbox.registry()?;
    let sandbox = args.sandbox.sandbox();
    let limits = Limits::default();
    match &sandbox {
        Ok(s) => println!("sandbox: {}", s.isolation()),
        Err(e) => println!("sandbox: cannot start: {e:#}"),
    }
    let mut all_ok = true;
    println!(
        "{:<11} {:<11} {:<9} {:<8} {:<24} {:<40} verdict",
        "id", "language", "version", "compiled", "aliases", "program"
    );
    for check in check_all(&registry, sandbox.as_ref().ok(), &limits) {
        let Some(rt) = registry.get(&check.id) else {
            continue;
        };
        let (program, version) = match &check.resolved {
            Ok(r) => (r.executable.display().to_string(), r.version.clone()),
            Err(_) => ("-".to_owned(), "-".to_owned()),
        };
        let verdict = match (&check.resolved, &check.smoke) {
            (Err(e), _) => format!("unavailable: {e}"),
            (Ok(_), None) => "FAILED: the sandbox cannot start".to_owned(),
            (Ok(_), Some(Ok(ms))) => format!("ok (smoke test {ms} ms)"),
            (Ok(_), Some(Err(why))) => format!("FAILED: {why}"),
        };
        all_ok &= verdict.starts_with("ok");
        println!(
            "{:<11} {:<11} {:<9} {:<8} {:<24} {:<40} {}",
            rt.id,
            rt.language,
            version,
            if rt.compiled() { "yes" } else { "no" },
            rt.aliases.join(","),
            program,
            verdict
        );
    }
    Ok(if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
