//! The runtimes on this host as the service and `livexec runtimes` see them: the engine a
//! worker runs with ([`prepare_engine`], which asks [`Engine::start`] which runtimes work) and
//! the `livexec runtimes` table.

use crate::settings::SandboxArgs;
use clap::Args;
use livexec_api::SandboxHealth;
use livexec_engine::{check_all, Engine};
use livexec_runtimes::Registry;
use livexec_sandbox::Limits;
use std::process::ExitCode;
use std::sync::Arc;

/// The engine and what `/health` says about its sandbox.
pub struct Prepared {
    /// The engine (the sandbox and the runtimes that work with it).
    pub engine: Arc<Engine>,
    /// What `/health` says about the sandbox.
    pub health: SandboxHealth,
}

/// Start the sandbox and the engine: every runtime resolved and its smoke test run once,
/// `registry` told which runtimes are available. A runtime whose toolchain is missing is
/// unavailable, not an error; a failing smoke test also makes `/health` degraded. Fails when
/// the sandbox cannot start or no runtime works.
pub fn prepare_engine(
    args: &SandboxArgs,
    registry: &mut Registry,
    limits: &Limits,
    smoke_tests: bool,
) -> anyhow::Result<Prepared> {
    let sandbox = args.sandbox()?;
    let mode = sandbox.isolation();
    tracing::info!(sandbox = %mode, "sandbox ready");
    if !smoke_tests {
        tracing::warn!("LIVEXEC_SMOKE_TESTS=false: runtimes whose toolchain is found are offered without their smoke test");
    }
    let (engine, report) = Engine::start(Arc::new(sandbox), registry, limits.clone(), smoke_tests);
    for why in &report.missing {
        tracing::warn!(runtime = %why, "runtime unavailable on this host");
    }
    for why in &report.broken {
        tracing::error!(runtime = %why, "runtime smoke test failed");
    }
    let unavailable: Vec<&str> = report
        .missing
        .iter()
        .chain(&report.broken)
        .map(|w| w.split(':').next().unwrap_or(w))
        .collect();
    tracing::info!(
        available = %report.ready.join(", "),
        unavailable = %unavailable.join(", "),
        "runtimes: {} of {} available",
        report.ready.len(),
        report.ready.len() + unavailable.len()
    );
    anyhow::ensure!(
        !report.ready.is_empty(),
        "no runtime works on this host (install the toolchains with scripts/install-toolchains.sh, or set LIVEXEC_PYTHON / LIVEXEC_NODE)"
    );
    let health = if report.broken.is_empty() {
        SandboxHealth::Ok(mode.to_string())
    } else {
        SandboxHealth::Failed(format!("smoke test failed ({})", report.broken.join("; ")))
    };
    Ok(Prepared {
        engine: Arc::new(engine),
        health,
    })
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
    let sandbox = args.sandbox.sandbox().map(Arc::new);
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
