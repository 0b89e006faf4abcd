//! Turning a resolved runtime and an execution's snapshot into the sandbox [`Command`]s of its
//! stages, a stage's limit overrides into the effective [`Limits`] of one run, and a request's
//! options (per-run limits, args, env, extra files) into both.

use livexec_core::{EffectiveLimits, SourceFile};
use livexec_runtimes::{LimitOverrides, Resolved, StageRecipe};
use livexec_sandbox::{Command, Limits, DEFAULT_ENV};

const MIB: u64 = 1024 * 1024;

fn stage_command(rt: &Resolved, stage: &StageRecipe, limits: Limits) -> Command {
    let mut cmd = Command::new(&stage.program);
    cmd.args(&stage.args);
    for (k, v) in &stage.env {
        cmd.env(k, v);
    }
    for m in &rt.mounts {
        cmd.mount_ro(m);
    }
    cmd.limits(limits);
    cmd
}

/// The sandbox command of `rt`'s run stage. An interpreted runtime's code goes in as a file
/// in the working dir (`rt.file_name`), never as an argv element; a compiled runtime's run
/// stage gets the compile stage's `artifacts` instead (read-only) and no source. `stdin` is
/// fed to the program.
pub fn command_for(
    rt: &Resolved,
    source: &str,
    artifacts: &[(String, Vec<u8>)],
    stdin: &[u8],
    limits: Limits,
) -> Command {
    let mut cmd = stage_command(rt, &rt.run, limits);
    if rt.compile.is_none() {
        cmd.file(&rt.file_name, source.as_bytes());
    }
    for (name, data) in artifacts {
        cmd.artifact(name, data.clone());
    }
    cmd.stdin(stdin);
    cmd
}

/// The sandbox command of a compile stage: the source as a file in the writable working dir,
/// the stage's artifacts collected when it ends. Its stdin is empty.
pub fn compile_command(
    rt: &Resolved,
    stage: &StageRecipe,
    source: &str,
    limits: Limits,
) -> Command {
    let mut cmd = stage_command(rt, stage, limits);
    cmd.file(&rt.file_name, source.as_bytes());
    for pattern in &stage.artifacts {
        cmd.collect(pattern);
    }
    cmd
}

/// The service's default limits with a runtime's overrides applied over them.
pub fn effective_limits(defaults: &Limits, o: &LimitOverrides) -> Limits {
    let mut l = defaults.clone();
    if let Some(mb) = o.memory_mb {
        l.memory_bytes = mb.saturating_mul(MIB);
    }
    if let Some(p) = o.pids {
        l.pids = p;
    }
    if let Some(ms) = o.timeout_ms {
        l.wall_ms = ms;
    }
    if let Some(m) = o.cpu_millicores {
        l.cpu_millicores = m;
    }
    if let Some(n) = o.open_files {
        l.open_files = n;
    }
    if let Some(mb) = o.tmpfs_mb {
        l.tmpfs_bytes = mb.saturating_mul(MIB);
    }
    l
}

/// The runtime's effective limits with a request's per-run overrides applied: `time_ms`,
/// `cpu_time_ms`, `memory_mb`, `pids` and `output_bytes` to the run stage, `compile_time_ms`
/// and `compile_memory_mb` to the compile stage (the API has checked them against the
/// server's maxima).
pub(crate) fn apply_request(
    run: &mut Limits,
    compile: Option<&mut Limits>,
    o: &livexec_core::LimitOverrides,
) {
    if let Some(ms) = o.time_ms {
        run.wall_ms = ms;
    }
    if let Some(ms) = o.cpu_time_ms {
        run.cpu_ms = Some(ms);
    }
    if let Some(mb) = o.memory_mb {
        run.memory_bytes = mb.saturating_mul(MIB);
    }
    if let Some(p) = o.pids {
        run.pids = p;
    }
    if let Some(b) = o.output_bytes {
        run.output_bytes = usize::try_from(b).unwrap_or(usize::MAX);
    }
    if let Some(c) = compile {
        if let Some(ms) = o.compile_time_ms {
            c.wall_ms = ms;
        }
        if let Some(mb) = o.compile_memory_mb {
            c.memory_bytes = mb.saturating_mul(MIB);
        }
    }
}

/// The limits an execution ran under, as the execution reports them.
pub(crate) fn reported(run: &Limits, compile: Option<&Limits>) -> EffectiveLimits {
    EffectiveLimits {
        time_ms: run.wall_ms,
        cpu_time_ms: run.cpu_ms,
        memory_mb: run.memory_bytes / MIB,
        pids: run.pids,
        output_bytes: run.output_bytes as u64,
        compile_time_ms: compile.map(|c| c.wall_ms),
        compile_memory_mb: compile.map(|c| c.memory_bytes / MIB),
    }
}

/// Adds a request's extra files to a stage's working dir, except any named like the main
/// file or like one of `taken` (artifacts), and any name already given (first one wins):
/// the API refuses those, and a clash in the jail would be a platform failure.
pub(crate) fn add_files(cmd: &mut Command, files: &[SourceFile], main: &str, taken: &[&str]) {
    let mut seen: Vec<&str> = vec![main];
    seen.extend_from_slice(taken);
    for f in files {
        if seen.contains(&f.name.as_str()) {
            continue;
        }
        seen.push(&f.name);
        cmd.file(&f.name, f.content.clone());
    }
}

/// Whether a request's environment variable may be set: never one of the sandbox's own
/// ([`DEFAULT_ENV`]), a dynamic-loader one (`LD_*`) or one the runtime's stage sets.
pub(crate) fn env_allowed(stage: &StageRecipe, key: &str) -> bool {
    !key.is_empty()
        && !key.contains(['=', '\0'])
        && !key.starts_with("LD_")
        && !DEFAULT_ENV.iter().any(|(k, _)| *k == key)
        && !stage.env.iter().any(|(k, _)| k == key)
}

/// Adds a request's arguments (after the runtime's own) and environment (filtered by
/// [`env_allowed`]) to a run-stage command.
pub(crate) fn add_run_options<'a>(
    cmd: &mut Command,
    stage: &StageRecipe,
    args: &[String],
    env: impl IntoIterator<Item = (&'a String, &'a String)>,
) {
    cmd.args(args);
    for (k, v) in env {
        if env_allowed(stage, k) {
            cmd.env(k, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn overrides_apply_over_defaults_and_none_keeps_them() {
        let d = Limits::default();
        assert_eq!(effective_limits(&d, &LimitOverrides::default()), d);
        let o = LimitOverrides {
            memory_mb: Some(256),
            pids: Some(7),
            timeout_ms: Some(1500),
            cpu_millicores: Some(1000),
            open_files: Some(64),
            tmpfs_mb: Some(8),
        };
        let l = effective_limits(&d, &o);
        assert_eq!(l.memory_bytes, 256 * MIB);
        assert_eq!((l.pids, l.wall_ms, l.cpu_millicores), (7, 1500, 1000));
        assert_eq!((l.open_files, l.tmpfs_bytes), (64, 8 * MIB));
        assert_eq!(l.output_bytes, d.output_bytes);
    }

    #[test]
    fn code_goes_in_as_a_file_not_argv() {
        let rt = Resolved {
            id: "python".into(),
            executable: PathBuf::from("/usr/bin/python3"),
            mounts: vec![PathBuf::from("/opt/py")],
            file_name: "main.py".into(),
            compile: None,
            run: StageRecipe {
                program: PathBuf::from("/usr/bin/python3"),
                args: vec!["-u".into(), "main.py".into()],
                env: vec![("PYTHONIOENCODING".into(), "utf-8".into())],
                limits: LimitOverrides::default(),
                artifacts: Vec::new(),
            },
            version: "3.11".into(),
            error: Default::default(),
        };
        let source = "print('x' * 10)\n".repeat(20_000);
        let cmd = command_for(&rt, &source, &[], b"in", Limits::default());
        let dbg = format!("{cmd:?}");
        assert!(!dbg.contains("print('x'"), "source leaked into argv/env");
        assert!(dbg.contains("main.py") && dbg.contains("/opt/py"));
        assert_eq!(cmd.get_limits(), &Limits::default());
    }
}
