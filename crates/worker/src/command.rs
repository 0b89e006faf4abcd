//! Turning a resolved runtime and an execution's snapshot into the sandbox [`Command`]s of its
//! stages, and a stage's limit overrides into the effective [`Limits`] of one run.

use livexec_runtimes::{LimitOverrides, Resolved, StageRecipe};
use livexec_sandbox::{Command, Limits};

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
            error: None,
        };
        let source = "print('x' * 10)\n".repeat(20_000);
        let cmd = command_for(&rt, &source, &[], b"in", Limits::default());
        let dbg = format!("{cmd:?}");
        assert!(!dbg.contains("print('x'"), "source leaked into argv/env");
        assert!(dbg.contains("main.py") && dbg.contains("/opt/py"));
        assert_eq!(cmd.get_limits(), &Limits::default());
    }
}
