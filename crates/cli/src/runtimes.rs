//! The runtimes on this host: resolving their interpreters, their smoke tests in the sandbox,
//! the engine a worker runs with, and `livexec runtimes`.

use crate::settings::SandboxArgs;
use clap::Args;
use livexec_api::SandboxHealth;
use livexec_runtimes::{Registry, Resolved, Runtime};
use livexec_sandbox::{Limits, Sandbox};
use livexec_worker::{command_for, effective_limits, to_result};
use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::Arc;

/// The sandbox and the runtimes that work with it, ready for workers.
pub struct Engine {
    /// The sandbox engine.
    pub sandbox: Arc<Sandbox>,
    /// Resolved runtimes by id (only the ones whose interpreter was found).
    pub runtimes: HashMap<String, Resolved>,
    /// What `/health` says about the sandbox.
    pub health: SandboxHealth,
}

/// Start the sandbox, resolve every runtime, and run each smoke test once. Fails when the
/// sandbox cannot start or no runtime resolves; a failing smoke test makes `/health` degraded.
pub fn prepare_engine(
    args: &SandboxArgs,
    registry: &Registry,
    limits: &Limits,
) -> anyhow::Result<Engine> {
    let sandbox = args.sandbox()?;
    let mode = sandbox.isolation();
    tracing::info!(sandbox = %mode, "sandbox ready");
    let mut runtimes = HashMap::new();
    let mut broken = Vec::new();
    for rt in registry.iter() {
        let resolved = match rt.resolve() {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(runtime = %rt.id, error = %e, "runtime unavailable on this host");
                continue;
            }
        };
        match smoke(&sandbox, rt, &resolved, limits) {
            Ok(ms) => {
                tracing::info!(runtime = %rt.id, program = %resolved.program.display(), version = %resolved.version, smoke_ms = ms, "runtime ready")
            }
            Err(why) => {
                tracing::error!(runtime = %rt.id, error = %why, "runtime smoke test failed");
                broken.push(format!("{}: {why}", rt.id));
            }
        }
        runtimes.insert(rt.id.clone(), resolved);
    }
    anyhow::ensure!(
        !runtimes.is_empty(),
        "no runtime could be resolved on this host (install python3 or node, or set LIVEXEC_PYTHON / LIVEXEC_NODE)"
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

/// Run a runtime's smoke test in the sandbox; the program's wall ms when its output matches.
pub fn smoke(
    sandbox: &Sandbox,
    rt: &Runtime,
    resolved: &Resolved,
    limits: &Limits,
) -> Result<u64, String> {
    let limits = effective_limits(limits, &resolved.limits);
    let cmd = command_for(
        resolved,
        &rt.smoke.source,
        rt.smoke.stdin.as_bytes(),
        limits.clone(),
    );
    let outcome = sandbox
        .run(&cmd, &mut |_, _| {})
        .map_err(|e| format!("sandbox error: {e}"))?;
    let result = to_result(&outcome, &limits);
    if let Some(msg) = result.error_message {
        return Err(format!("{}: {msg}", result.status));
    }
    if outcome.stdout != rt.smoke.expected_stdout.as_bytes() {
        return Err(format!(
            "printed {:?}, expected {:?}",
            String::from_utf8_lossy(&outcome.stdout),
            rt.smoke.expected_stdout
        ));
    }
    Ok(outcome.wall_ms)
}

/// Settings of `livexec runtimes`.
#[derive(Debug, Args)]
pub struct RuntimesArgs {
    #[command(flatten)]
    pub sandbox: SandboxArgs,
}

/// Print one line per runtime: id, name, interpreter, version, smoke test verdict. Exit 1 when
/// any runtime does not work here.
pub fn main(args: RuntimesArgs) -> anyhow::Result<ExitCode> {
    args.sandbox.export_interpreters();
    let registry = args.sandbox.registry()?;
    let sandbox = args.sandbox.sandbox();
    let limits = Limits::default();
    if let Ok(s) = &sandbox {
        println!("sandbox: {}", s.isolation());
    }
    let mut all_ok = true;
    for rt in registry.iter() {
        let (program, version, verdict) = match rt.resolve() {
            Err(e) => ("-".to_owned(), "-".to_owned(), format!("unavailable: {e}")),
            Ok(r) => {
                let verdict = match &sandbox {
                    Err(e) => format!("FAILED: sandbox cannot start: {e:#}"),
                    Ok(s) => match smoke(s, rt, &r, &limits) {
                        Ok(ms) => format!("ok (smoke test {ms} ms)"),
                        Err(why) => format!("FAILED: {why}"),
                    },
                };
                (r.program.display().to_string(), r.version.clone(), verdict)
            }
        };
        all_ok &= verdict.starts_with("ok");
        println!(
            "{:<12} {:<22} {:<50} {:<10} {}",
            rt.id, rt.name, program, version, verdict
        );
    }
    Ok(if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
