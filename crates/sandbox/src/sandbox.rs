//! The engine's entry point ([`Sandbox`]): configuration, cgroup mode, and `run`.

use std::fmt;
use std::path::PathBuf;

use crate::{Command, Outcome, SandboxError, Stream};

/// How the sandbox enforces memory, CPU and pids limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CgroupMode {
    /// The unified hierarchy with a delegated subtree.
    V2,
    /// The legacy per-controller hierarchies (memory, cpu, cpuacct, pids, freezer).
    V1,
    /// No cgroup: only rlimits. Unsafe, for development only.
    RlimitsOnly,
}

impl fmt::Display for CgroupMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CgroupMode::V2 => "cgroup v2",
            CgroupMode::V1 => "cgroup v1",
            CgroupMode::RlimitsOnly => "rlimits only (UNSAFE, development)",
        })
    }
}

/// Process-wide settings of the engine.
#[derive(Clone, Debug)]
pub struct SandboxConfig {
    /// Run without cgroups (only rlimits) when none is usable, with a loud warning.
    pub allow_rlimits_only: bool,
    /// Name of our cgroup subtree and run directory. Default `livexec`.
    pub name: String,
    /// Directory for per-supervisor state (the jail's mount point). Default `/run/livexec`
    /// as root, else `$TMPDIR/livexec-<uid>`.
    pub run_dir: PathBuf,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        // SAFETY: geteuid has no preconditions and cannot fail.
        let uid = unsafe { libc::geteuid() };
        let run_dir = if uid == 0 {
            PathBuf::from("/run/livexec")
        } else {
            std::env::temp_dir().join(format!("livexec-{uid}"))
        };
        SandboxConfig {
            allow_rlimits_only: false,
            name: "livexec".to_owned(),
            run_dir,
        }
    }
}

/// The sandbox engine. Create one per process and share it (`Arc`) across threads.
pub struct Sandbox {
    mode: CgroupMode,
}

impl Sandbox {
    /// Detects cgroups, sweeps stale state of dead supervisors, and refuses to start without
    /// a cgroup unless `allow_rlimits_only`.
    pub fn new(config: SandboxConfig) -> Result<Sandbox, SandboxError> {
        let _ = config;
        Ok(Sandbox {
            mode: CgroupMode::V1,
        })
    }

    /// Which cgroup mode is in use.
    pub fn cgroup_mode(&self) -> CgroupMode {
        self.mode
    }

    /// Runs `cmd` in a fresh jail and blocks until it is over; `on_output` gets every chunk of
    /// output as it arrives.
    pub fn run(
        &self,
        cmd: &Command,
        on_output: &mut dyn FnMut(Stream, &[u8]),
    ) -> Result<Outcome, SandboxError> {
        let _ = (cmd, on_output);
        Err(SandboxError::SetupFailed {
            reason: "not implemented yet".to_owned(),
        })
    }
}
