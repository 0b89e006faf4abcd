//! The engine's entry point ([`Sandbox`]): configuration, cgroup mode, the warm pool, and
//! `run`.

use std::fmt;
use std::fs;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::cgroup::{self, Hierarchy};
use crate::jail::Shape;
use crate::layout::HostLayout;
use crate::netns::NetnsPool;
use crate::reaper::Reaper;
use crate::run::Jail;
use crate::uids::UidPool;
use crate::warm::WarmPool;
use crate::{Command, Outcome, ProcIsolation, SandboxError, Stream};

/// The jail's init, a static executable built by `build.rs` from `src/init.rs`.
static INIT_EXE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/livexec-init"));

/// The directory under `run_dir` holding the jails' mount points.
const MNT_DIR: &str = "mnt";
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
    /// Directory for per-supervisor state (the jail's mount point, the uid locks). Default
    /// `/run/livexec` as root, else `$TMPDIR/livexec-<uid>`.
    pub run_dir: PathBuf,
    /// First uid (and gid) of the range the runs take their own id from; each concurrent run
    /// has a different one. The range must belong to no host account ([`Sandbox::new`]
    /// refuses one that overlaps `/etc/passwd` or `/etc/group`). Default 2 000 000 000
    /// (above systemd's container ranges, below its nspawn range).
    pub uid_base: u32,
    /// Number of ids in the range: the most concurrent runs on the host (all supervisors
    /// sharing `run_dir`). Default 4096.
    pub uid_count: u32,
    /// Network namespaces to create while [`Sandbox::new`] does the rest, beside it on a
    /// thread of its own (as [`Sandbox::prewarm`] would after it). A one-shot caller that will
    /// run one program sets 1, so that neither the start nor its jail waits for one. Default 0.
    pub netns_ahead: usize,
    /// Fresh network namespaces kept ready once runs start taking them: each one a jail takes
    /// is replaced on a background thread. Every run gets a namespace no earlier run used (a
    /// run leaves state in its namespace that outlives it, see `netns.rs`), so without spares
    /// a jail built on the spot makes its own (~0.5 ms). A one-shot caller sets 0. Default 2.
    pub netns_spare: usize,
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
            uid_base: 2_000_000_000,
            uid_count: 4096,
            netns_ahead: 0,
            netns_spare: 2,
        }
    }
}

/// What every jail of one [`Sandbox`] is built from (shared with the warm pool's thread).
pub(crate) struct Shared {
    pub(crate) hierarchy: Option<Hierarchy>,
    pub(crate) layout: HostLayout,
    /// `<run_dir>/mnt/root`: the mount point of every jail's root (in its own mount namespace).
    pub(crate) root: PathBuf,
    /// Fresh network namespaces, one per run.
    pub(crate) netns: Arc<NetnsPool>,
    /// A pidfd of this process, so a jail notices a supervisor that died during its setup.
    pub(crate) self_pidfd: OwnedFd,
    /// The jail's init executable, in a sealed memfd (`execveat` from inside the jail).
    pub(crate) init_exe: OwnedFd,
    /// The runs' own uids.
    pub(crate) uids: UidPool,
}

/// The sandbox engine. Create one per process and share it (`Arc`) across threads; every
/// [`Sandbox::run`] uses its own jail, prepared ahead of need ([`Sandbox::keep_warm`]) or
/// built on the spot, and throws it away afterwards.
pub struct Sandbox {
    mode: CgroupMode,
    shared: Arc<Shared>,
    warm: WarmPool,
    reaper: Reaper,
}

impl Sandbox {
    /// Detects cgroups, sweeps stale state of dead supervisors, checks the uid range, loads
    /// the init, and refuses to start without a cgroup unless `allow_rlimits_only` (then
    /// warns loudly).
    pub fn new(config: SandboxConfig) -> Result<Sandbox, SandboxError> {
        let ahead = config.netns_ahead;
        if ahead == 0 {
            return Sandbox::new_here(config);
        }
        std::thread::scope(|s| {
            let nets = std::thread::Builder::new()
                .name("livexec-netns-ahead".into())
                // Each namespace is made in this short-lived thread (`create_here`), which
                // ends right after.
                .spawn_scoped(s, || {
                    (0..ahead)
                        .map(|_| crate::netns::create_here())
                        .collect::<Result<Vec<_>, _>>()
                });
            let sandbox = Sandbox::new_here(config);
            let nets = match nets {
                Ok(t) => t.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
                // No thread to spare: created here.
                Err(_) => (0..ahead).map(|_| crate::netns::create()).collect(),
            };
            let sandbox = sandbox?;
            for fd in nets? {
                sandbox.shared.netns.add(fd);
            }
            Ok(sandbox)
        })
    }

    /// [`Sandbox::new`] without the network namespaces made ahead.
    fn new_here(config: SandboxConfig) -> Result<Sandbox, SandboxError> {
        let mkdir = |p: &Path| {
            fs::create_dir_all(p).map_err(|source| SandboxError::Fs {
                op: "mkdir",
                path: p.to_path_buf(),
                source,
            })
        };
        mkdir(&config.run_dir)?;
        // The mount points of the jails' root and `/proc` stage, shared by every supervisor
        // and never removed: nothing is mounted on them in the host's mount namespace, only in
        // each jail's own (and the probe's). Removing a directory that a dying jail's
        // namespace still has a mount on detaches that mount and waits for an RCU grace
        // period: per-supervisor directories removed at exit cost each `livexec run` 0.3 to
        // 7 ms there.
        let mnt = config.run_dir.join(MNT_DIR);
        let root = mnt.join("root");
        let stage = mnt.join(crate::procfs::STAGE_DIR);
        mkdir(&root)?;
        mkdir(&stage)?;
        // Which devices can be mounted under a neutral name is probed (in a throw-away mount
        // namespace, on a thread of its own: the longest step) while the host is inspected
        // and the rest is set up here.
        let probe = || {
            crate::procfs::Sources::detect().map(|mut sources| {
                sources.probe(&stage);
                sources
            })
        };
        let (found, sources) = std::thread::scope(|s| {
            let probing = std::thread::Builder::new()
                .name("livexec-probe".into())
                .spawn_scoped(s, probe);
            let found = Self::inspect(&config);
            let sources = match probing {
                Ok(t) => t.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
                // No thread to spare: probed here.
                Err(_) => probe(),
            };
            (found, sources)
        });
        let Inspected {
            mode,
            hierarchy,
            mut layout,
            uids,
            self_pidfd,
            init_exe,
        } = found?;
        layout.proc.attach(sources?, stage);
        tracing::info!(
            mode = %mode,
            run_dir = %config.run_dir.display(),
            uids = %format!("{}..{}", config.uid_base, config.uid_base as u64 + config.uid_count as u64),
            "sandbox ready"
        );
        Ok(Sandbox {
            mode,
            shared: Arc::new(Shared {
                hierarchy,
                layout,
                root,
                netns: Arc::new(NetnsPool::new(config.netns_spare)),
                self_pidfd,
                init_exe,
                uids,
            }),
            warm: WarmPool::default(),
            reaper: Reaper::start(),
        })
    }

    /// The part of [`Sandbox::new`] beside the mount-source probe: the cgroup hierarchy, the
    /// host layout, and [`Sandbox::start_up`].
    fn inspect(config: &SandboxConfig) -> Result<Inspected, SandboxError> {
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
        let (uids, self_pidfd, init_exe) = Self::start_up(config, hierarchy.as_ref())?;
        Ok(Inspected {
            mode,
            hierarchy,
            layout,
            uids,
            self_pidfd,
            init_exe,
        })
    }

    /// The part of [`Sandbox::new`] that does not depend on the host layout: the uid range,
    /// the sweep of dead supervisors' leftovers, a pidfd of this process and the init's
    /// sealed memfd.
    fn start_up(
        config: &SandboxConfig,
        hierarchy: Option<&Hierarchy>,
    ) -> Result<(UidPool, OwnedFd, OwnedFd), SandboxError> {
        let uids = UidPool::new(config.uid_base, config.uid_count, &config.run_dir)?;
        sweep_run_dirs(&config.run_dir);
        if let Some(h) = hierarchy {
            let removed = h.sweep_stale(&pid_alive);
            if !removed.is_empty() {
                tracing::info!(
                    count = removed.len(),
                    "removed stale cgroups of dead supervisors"
                );
            }
        }
        let sys_err = |call: &'static str, args: String| {
            move |e| SandboxError::Syscall {
                call,
                args,
                source: std::io::Error::from_raw_os_error(e),
            }
        };
        let me = std::process::id() as i32;
        let self_pidfd =
            crate::sys::pidfd_open(me).map_err(sys_err("pidfd_open", me.to_string()))?;
        // SAFETY: pidfd_open returned a new fd that nothing else owns.
        let self_pidfd = unsafe { OwnedFd::from_raw_fd(self_pidfd) };
        let init_exe = crate::sys::sealed_memfd(c"livexec-init", INIT_EXE)
            .map_err(sys_err("memfd_create", "livexec-init, sealed".into()))?;
        // SAFETY: sealed_memfd returned a new fd that nothing else owns.
        let init_exe = unsafe { OwnedFd::from_raw_fd(init_exe) };
        Ok((uids, self_pidfd, init_exe))
    }

    /// Prepares `n` more fresh network namespaces ahead of need (each run takes one and it
    /// dies with the run; [`SandboxConfig::netns_spare`] keeps replacing those taken).
    /// Optional.
    pub fn prewarm(&self, n: usize) -> Result<(), SandboxError> {
        self.shared.netns.prewarm(n)
    }

    /// Keeps `n` jails of `template`'s shape (its read-only mounts and its limits, except the
    /// wall-clock limit and the output cap, which the supervisor applies) prepared ahead of
    /// need: namespaces, mounts, cgroup, uid, and the init waiting for a program. A run whose
    /// command has that shape then only hands its files and program to a waiting init. A
    /// background thread refills the pool after each use; every prepared jail is used once.
    /// `n = 0` stops keeping that shape warm. A shape that fails to prepare is retried with
    /// a back-off and logged; runs fall back to building their jail on the spot.
    pub fn keep_warm(&self, template: &Command, n: usize) -> Result<(), SandboxError> {
        crate::jail::validate(template)?;
        self.warm.set_target(&self.shared, Shape::of(template), n)
    }

    /// The layers of this host's jails and the fallbacks in use (one line with `to_string()`,
    /// for logs, `livexec runtimes` and `/health`).
    pub fn isolation(&self) -> crate::Isolation {
        let abi = crate::sys::landlock_abi();
        crate::Isolation {
            cgroup: self.mode,
            clone_into_cgroup: self.mode == CgroupMode::V2,
            proc: self.proc_isolation(),
            landlock_abi: u32::try_from(abi).ok().filter(|a| *a > 0),
            uids: self.shared.uids.range(),
        }
    }

    /// Blocks until the jail of every run that has returned is torn down: its processes
    /// reaped, its cgroup removed, its network namespace and uid given back. Runs do not need
    /// this (teardown happens in the background, off the request path); tests that look for
    /// leftovers and graceful shutdowns do.
    pub fn wait_torn_down(&self) {
        self.reaper.wait_idle();
    }

    /// Which cgroup mode is in use.
    pub fn cgroup_mode(&self) -> CgroupMode {
        self.mode
    }

    /// How isolated the jails' `/proc` is on this host (what the kernel and the host allowed
    /// at start-up).
    pub fn proc_isolation(&self) -> ProcIsolation {
        self.shared.layout.proc.isolation()
    }

    /// How many jails this process (every [`Sandbox`] in it) has created directly inside their
    /// run cgroup with `clone3(CLONE_INTO_CGROUP)`: on cgroup v2 every run, so the program never
    /// runs a single instruction outside its limits and is never migrated. Stays 0 on cgroup v1,
    /// where the child joins its cgroups through the `tasks` files instead. For tests and
    /// diagnostics.
    pub fn runs_cloned_into_cgroup() -> u64 {
        crate::sys::CLONED_INTO_CGROUP.load(Ordering::Relaxed)
    }

    /// Runs `cmd` in a fresh jail and blocks until it is over: the program's status is
    /// reported and its output closed. The jail's teardown (its remaining processes killed
    /// and reaped, its cgroup removed) then happens on the reaper thread, off the caller's
    /// path; [`Sandbox::wait_torn_down`] waits for it, and dropping the `Sandbox` finishes it.
    /// `on_output` gets every chunk of output as it arrives (the same bytes are accumulated in the outcome).
    pub fn run(
        &self,
        cmd: &Command,
        on_output: &mut dyn FnMut(Stream, &[u8]),
    ) -> Result<Outcome, SandboxError> {
        let prepared = self.prepare(cmd)?;
        self.run_prepared(prepared, cmd, on_output)
    }

    /// A jail for a command of `template`'s shape (its read-only mounts and its limits except
    /// `wall_ms` and `output_bytes`), up to its init waiting for a program: taken from the
    /// warm pool when one is ready, else built now. Its program, files, stdin and arguments
    /// come later, with [`Sandbox::run_prepared`]; a caller that knows what it will run
    /// (test cases of one program) prepares the next jails while earlier ones run. Used
    /// once; a jail not used is torn down by [`Sandbox::discard`] (or when it drops).
    ///
    /// A jail built here dies with the thread that called this (its first process has
    /// `PR_SET_PDEATHSIG`, which follows the parent *thread*): prepare on a thread that
    /// outlives the run, not on a short-lived helper thread.
    pub fn prepare(&self, template: &Command) -> Result<Prepared, SandboxError> {
        self.prepare_as(template, false)
    }

    /// [`Sandbox::prepare`] ahead of need, off the request path: a jail built here does its
    /// setup at the lowest CPU weight (it takes only the CPU time that running programs leave)
    /// and gets the default weight back when its program is handed over.
    pub fn prepare_ahead(&self, template: &Command) -> Result<Prepared, SandboxError> {
        self.prepare_as(template, true)
    }

    fn prepare_as(&self, template: &Command, background: bool) -> Result<Prepared, SandboxError> {
        crate::jail::validate(template)?;
        let shape = Shape::of(template);
        Ok(match self.warm.take(&shape) {
            Some(jail) => Prepared { jail, warm: true },
            None => Prepared {
                jail: Jail::prepare(&self.shared, shape, background)?,
                warm: false,
            },
        })
    }

    /// Runs `cmd` in `prepared` (see [`Sandbox::run`]). A jail of another shape than `cmd`'s
    /// is not used: it is discarded and `cmd` runs in a jail built on the spot, so a
    /// program never runs under limits other than its own.
    pub fn run_prepared(
        &self,
        prepared: Prepared,
        cmd: &Command,
        on_output: &mut dyn FnMut(Stream, &[u8]),
    ) -> Result<Outcome, SandboxError> {
        crate::jail::validate(cmd)?;
        let shape = Shape::of(cmd);
        let Prepared { mut jail, warm } = if prepared.jail.shape == shape {
            prepared
        } else {
            self.discard(prepared);
            self.prepare(cmd)?
        };
        // A panicking `on_output` unwinds from here: the jail then drops (is torn down) inline.
        tracing::debug!(target: "livexec::path", warm, "program handed to its jail");
        let result = jail.start(cmd, on_output);
        tracing::debug!(target: "livexec::path", "program over");
        self.reaper.dispose(jail);
        let mut outcome = result?;
        outcome.warm_start = warm;
        Ok(outcome)
    }

    /// Tears a prepared jail that will not be used down, off the caller's path.
    pub fn discard(&self, prepared: Prepared) {
        self.reaper.dispose(prepared.jail);
    }
}

/// A jail prepared for one shape of command ([`Sandbox::prepare`]), its init waiting for a
/// program; used once by [`Sandbox::run_prepared`]. It holds no program and no data of any
/// request. Dropping it unused tears it down on the spot ([`Sandbox::discard`] does it in
/// the background).
pub struct Prepared {
    jail: Jail,
    /// Taken from the warm pool (else built by [`Sandbox::prepare`]).
    warm: bool,
}

impl Prepared {
    /// Whether it was taken from the warm pool ([`Sandbox::keep_warm`]) rather than built by
    /// [`Sandbox::prepare`] itself.
    pub fn is_warm(&self) -> bool {
        self.warm
    }

    /// The CPU weight of the jail's cgroup now (`cpu.shares` on cgroup v1, `cpu.weight` on
    /// v2; `None` without cgroups): the lowest (2 / 1) for a jail prepared ahead of need
    /// until its program is handed over, else the default (1024 / 100). For tests and
    /// diagnostics.
    pub fn cpu_weight(&self) -> Option<u64> {
        self.jail.cpu_weight()
    }
}

impl fmt::Debug for Prepared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Prepared")
            .field("warm", &self.warm)
            .finish_non_exhaustive()
    }
}

/// What [`Sandbox::inspect`] learns and sets up.
struct Inspected {
    mode: CgroupMode,
    hierarchy: Option<Hierarchy>,
    layout: HostLayout,
    uids: UidPool,
    self_pidfd: OwnedFd,
    init_exe: OwnedFd,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.warm.shut_down();
        self.reaper.shut_down();
    }
}

/// Whether a process with this pid exists.
pub(crate) fn pid_alive(pid: u32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}

/// Removes `<run_dir>/<pid>.<n>` directories of dead supervisors (never a live one's), left by
/// versions that gave each supervisor mount points of its own.
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
        let _ = fs::remove_dir(dir.join(crate::procfs::STAGE_DIR));
        let _ = fs::remove_dir(&dir);
    }
}
