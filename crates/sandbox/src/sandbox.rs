//! The engine's entry point ([`Sandbox`]): configuration, cgroup mode, and `run`.

use std::fmt;
use std::fs;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::cgroup::{self, Hierarchy, RunCgroup};
use crate::layout::HostLayout;
use crate::netns::NetnsPool;
use crate::{run, Command, Outcome, SandboxError, Stream};

/// Instances of [`Sandbox`] in this process (names their run directories).
static INSTANCE: AtomicU64 = AtomicU64::new(0);
/// Runs started by this process (names their cgroups).
pub(crate) static RUN_SEQ: AtomicU64 = AtomicU64::new(0);

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

/// The sandbox engine. Create one per process and share it (`Arc`) across threads; every
/// [`Sandbox::run`] builds and throws away its own jail.
pub struct Sandbox {
    mode: CgroupMode,
    pub(crate) hierarchy: Option<Hierarchy>,
    pub(crate) layout: HostLayout,
    /// `<run_dir>/<pid>.<instance>`.
    inst_dir: PathBuf,
    /// `<inst_dir>/root`: the mount point of every jail's root (in its own mount namespace).
    pub(crate) root: PathBuf,
    /// Idle network namespaces.
    pub(crate) netns: NetnsPool,
    /// A pidfd of this process, so a jail notices a supervisor that died during its setup.
    pub(crate) self_pidfd: OwnedFd,
}

impl Sandbox {
    /// Detects cgroups, sweeps stale state of dead supervisors, and refuses to start without
    /// a cgroup unless `allow_rlimits_only` (then warns loudly).
    pub fn new(config: SandboxConfig) -> Result<Sandbox, SandboxError> {
        let read = |p: &str| {
            fs::read_to_string(p).map_err(|source| SandboxError::Fs {
                op: "read",
                path: PathBuf::from(p),
                source,
            })
        };
        let mountinfo = read("/proc/self/mountinfo")?;
        let proc_cgroup = read("/proc/self/cgroup")?;
        let (mode, hierarchy) = match cgroup::detect(&mountinfo, &proc_cgroup, &config.name) {
            Ok(h @ Hierarchy::V2 { .. }) => (CgroupMode::V2, Some(h)),
            Ok(h @ Hierarchy::V1(_)) => (CgroupMode::V1, Some(h)),
            Err((v2, v1)) if config.allow_rlimits_only => {
                tracing::warn!(
                    v2 = %v2,
                    v1 = %v1,
                    "NO CGROUP: running with rlimits only. Memory, CPU and process limits are \
                     NOT enforced. This mode is UNSAFE and for development only."
                );
                (CgroupMode::RlimitsOnly, None)
            }
            Err((v2, v1)) => return Err(SandboxError::NoCgroup { v2, v1 }),
        };
        let layout = HostLayout::detect()?;
        let mkdir = |p: &Path| {
            fs::create_dir_all(p).map_err(|source| SandboxError::Fs {
                op: "mkdir",
                path: p.to_path_buf(),
                source,
            })
        };
        mkdir(&config.run_dir)?;
        sweep_run_dirs(&config.run_dir);
        if let Some(h) = &hierarchy {
            let removed = h.sweep_stale(&pid_alive);
            if !removed.is_empty() {
                tracing::info!(
                    count = removed.len(),
                    "removed stale cgroups of dead supervisors"
                );
            }
        }
        let me = std::process::id() as i32;
        let self_pidfd = crate::sys::pidfd_open(me).map_err(|e| SandboxError::Syscall {
            call: "pidfd_open",
            args: format!("{me}, 0"),
            source: std::io::Error::from_raw_os_error(e),
        })?;
        // SAFETY: pidfd_open returned a new fd that nothing else owns.
        let self_pidfd = unsafe { OwnedFd::from_raw_fd(self_pidfd) };
        let n = INSTANCE.fetch_add(1, Ordering::Relaxed);
        let inst_dir = config.run_dir.join(format!("{}.{n}", std::process::id()));
        let root = inst_dir.join("root");
        mkdir(&root)?;
        tracing::info!(mode = %mode, run_dir = %inst_dir.display(), "sandbox ready");
        Ok(Sandbox {
            mode,
            hierarchy,
            layout,
            inst_dir,
            root,
            netns: NetnsPool::default(),
            self_pidfd,
        })
    }

    /// Prepares `n` network namespaces ahead of need (each run takes one from the pool and
    /// gives it back, so after warm-up no run pays for creating one). Optional.
    pub fn prewarm(&self, n: usize) -> Result<(), SandboxError> {
        self.netns.prewarm(n)
    }

    /// Which cgroup mode is in use.
    pub fn cgroup_mode(&self) -> CgroupMode {
        self.mode
    }

    /// How many jails this process (every [`Sandbox`] in it) has created directly inside their
    /// run cgroup with `clone3(CLONE_INTO_CGROUP)`: on cgroup v2 every run, so the program never
    /// runs a single instruction outside its limits and is never migrated. Stays 0 on cgroup v1,
    /// where the child joins its cgroups through the `tasks` files instead. For tests and
    /// diagnostics.
    pub fn runs_cloned_into_cgroup() -> u64 {
        crate::sys::CLONED_INTO_CGROUP.load(Ordering::Relaxed)
    }

    /// Runs `cmd` in a fresh jail and blocks until it is over and torn down. `on_output` gets
    /// every chunk of output as it arrives (the same bytes are accumulated in the outcome).
    pub fn run(
        &self,
        cmd: &Command,
        on_output: &mut dyn FnMut(Stream, &[u8]),
    ) -> Result<Outcome, SandboxError> {
        crate::jail::validate(cmd)?;
        let seq = RUN_SEQ.fetch_add(1, Ordering::Relaxed);
        let id = format!("{}-{seq}", std::process::id());
        let cg = Teardown(match &self.hierarchy {
            Some(h) => Some(h.create_run(&id, &cmd.limits)?),
            None => None,
        });
        // On return or unwind, `cg` kills what is left in the cgroup and removes it.
        run::run(self, cmd, cg.0.as_ref(), on_output)
    }
}

/// Kills every process left in a run's cgroup and removes it, also when unwinding.
struct Teardown(Option<RunCgroup>);

impl Drop for Teardown {
    fn drop(&mut self) {
        if let Some(cg) = self.0.take() {
            cg.kill_all();
            if let Err(e) = cg.remove() {
                tracing::warn!(error = %e, "could not remove a run cgroup");
            }
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = fs::remove_dir(&self.root);
        let _ = fs::remove_dir(&self.inst_dir);
    }
}

/// Whether a process with this pid exists.
pub(crate) fn pid_alive(pid: u32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}

/// Removes `<run_dir>/<pid>.<n>` directories of dead supervisors (never a live one's).
fn sweep_run_dirs(run_dir: &Path) {
    let Ok(entries) = fs::read_dir(run_dir) else {
        return;
    };
    for e in entries.filter_map(Result::ok) {
        let Ok(name) = e.file_name().into_string() else {
            continue;
        };
        let Some((pid, n)) = name.split_once('.') else {
            continue;
        };
        let (Ok(pid), Ok(_)) = (pid.parse::<u32>(), n.parse::<u64>()) else {
            continue;
        };
        if pid_alive(pid) {
            continue;
        }
        let dir = e.path();
        let root = dir.join("root");
        if let Ok(c) = crate::plan::cpath(&root) {
            let _ = crate::sys::umount2(&c, libc::MNT_DETACH);
        }
        let _ = fs::remove_dir(&root);
        let _ = fs::remove_dir(&dir);
    }
}
