//! One jail ([`Jail`]): *prepared* (its own uid, cgroup, pipes, the plan, `clone3` into fresh
//! namespaces, and the child's setup up to the jail's init waiting on the go pipe), then
//! *started* once with a [`Command`] (files into `/work`, the go message, supervision, the
//! outcome), and torn down on drop. A cold run prepares and starts at once; the warm pool
//! ([`crate::warm`]) prepares ahead of need.

use std::fs;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cgroup::RunCgroup;
use crate::init::{self, REPORT_LEN, STEP_EXEC, STEP_FORK, STEP_GO, STEP_READY};
use crate::jail::{self, ChildFds, Shape};
use crate::sandbox::{Shared, RUN_SEQ};
use crate::supervise::{self, Fds};
use crate::uids::Lease;
use crate::workdir::WorkDir;
use crate::{child, netns, sys, Command, Outcome, SandboxError, Stream};

/// Namespaces the jail's init is created in. The cgroup namespace is entered after joining
/// the run's cgroup and the network namespace comes from the pool, both in the child.
const CLONE_FLAGS: u64 =
    (libc::CLONE_NEWPID | libc::CLONE_NEWNS | libc::CLONE_NEWIPC | libc::CLONE_NEWUTS) as u64;

/// How long the jail may take to reach its init.
const SETUP_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest output pipe (bytes) when `/proc/sys/fs/pipe-max-size` cannot be read.
const DEFAULT_PIPE_MAX: usize = 1 << 20;

/// A pipe's size for `bytes` (at least 64 KiB), within the host's `fs.pipe-max-size`
/// (beyond which even root needs `CAP_SYS_RESOURCE`). The output pipes get the output cap, so
/// that a program that writes up to its cap at once and exits loses nothing (Node drops what
/// a non-blocking pipe did not take at `process.exit()`); the stdin pipe gets the input's
/// size ([`prefill_stdin`]).
fn pipe_bytes(output_bytes: usize) -> usize {
    static MAX: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    let max = *MAX.get_or_init(|| {
        fs::read_to_string("/proc/sys/fs/pipe-max-size")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(DEFAULT_PIPE_MAX)
    });
    output_bytes.clamp(64 << 10, max.max(64 << 10))
}

fn syscall_err(call: &'static str, args: String, errno: i32) -> SandboxError {
    SandboxError::Syscall {
        call,
        args,
        source: io::Error::from_raw_os_error(errno),
    }
}

/// What the child of [`clone_child`] runs: the plan, and the status pipe for its report.
struct ChildPlan<'p, 'a> {
    ops: &'p [crate::plan::Op<'a>],
    status: i32,
}

/// The child's entry on its own stack ([`sys::clone3_vm`]): runs the plan at `arg`.
#[cfg(target_arch = "x86_64")]
extern "C" fn child_entry(arg: *mut std::ffi::c_void) -> ! {
    // SAFETY: `arg` is the `ChildPlan` that `clone_child` keeps alive (its thread asleep)
    // until this child has exec'd or exited.
    let plan = unsafe { &*(arg as *const ChildPlan<'_, '_>) };
    child::run(plan.ops, plan.status)
}

/// Clones the jail's first process into fresh namespaces (and its cgroup with `cg_fd`); the
/// child runs `ops`. On x86-64 the child shares the supervisor's memory until its `execve`
/// ([`sys::clone3_vm`]), elsewhere it is a fork-like copy. `(pid, pidfd)` in the caller.
/// Signals must be blocked.
fn clone_child(
    cg_fd: Option<i32>,
    ops: &[crate::plan::Op<'_>],
    status: i32,
) -> Result<(i32, i32), sys::Errno> {
    let plan = ChildPlan { ops, status };
    #[cfg(target_arch = "x86_64")]
    {
        let arg = &plan as *const ChildPlan<'_, '_> as *mut std::ffi::c_void;
        // SAFETY: `child_entry` only runs `child::run`, which makes raw syscalls on the plan
        // prepared above (no allocation, no locks, nothing written that we read) and ends in
        // execveat or _exit; the caller blocked every signal; `plan` outlives the call.
        unsafe { sys::clone3_vm(CLONE_FLAGS, cg_fd, child_entry, arg) }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        // SAFETY: the child branch only runs `child::run`, which makes raw syscalls on data
        // prepared above (no allocation, no locks) and ends in execveat or _exit.
        let cloned = unsafe { sys::clone3(CLONE_FLAGS, cg_fd) };
        if let Ok((0, _)) = cloned {
            child::run(plan.ops, plan.status)
        }
        cloned
    }
}

/// Creates a pipe, naming it in the error.
fn pipe(which: &str) -> Result<(i32, i32), SandboxError> {
    sys::pipe().map_err(|e| syscall_err("pipe2", format!("O_CLOEXEC ({which})"), e))
}

/// A prepared (or running) jail. Dropping it kills and reaps whatever runs in it, removes its
/// cgroup and gives its network namespace and uid back.
pub(crate) struct Jail {
    shared: Arc<Shared>,
    pub(crate) shape: Shape,
    pid: i32,
    fds: Fds,
    /// The go pipe's write end (closed once the go message is written).
    go: Option<OwnedFd>,
    cg: Option<RunCgroup>,
    netns: Option<OwnedFd>,
    uid: Option<Lease>,
    reaped: bool,
    /// The go message was sent (a jail runs one program, once).
    started: bool,
    /// Prepared in the background: its cgroup has the lowest CPU weight until [`Jail::start`].
    background: bool,
}

impl Jail {
    /// Builds a jail of `shape` up to its init waiting for the program. `background`: ahead
    /// of need (the warm pool, test cases to come), at the lowest CPU weight, so that its
    /// setup takes only the CPU time running programs leave; [`Jail::start`] gives the default
    /// weight back before the program runs.
    pub(crate) fn prepare(
        shared: &Arc<Shared>,
        shape: Shape,
        background: bool,
    ) -> Result<Jail, SandboxError> {
        let lease = shared.uids.acquire()?;
        let uid = lease.uid;
        let seq = RUN_SEQ.fetch_add(1, Ordering::Relaxed);
        let id = format!("{}-{seq}", std::process::id());
        let mut jail = Jail {
            shared: Arc::clone(shared),
            shape,
            pid: -1,
            fds: Fds::default(),
            go: None,
            cg: None,
            netns: None,
            uid: Some(lease),
            reaped: true,
            started: false,
            background: false,
        };
        if let Some(h) = &shared.hierarchy {
            let cg = jail.cg.insert(h.create_run(&id, &jail.shape.limits)?);
            if background {
                match cg.set_background(true) {
                    Ok(()) => jail.background = true,
                    Err(e) => {
                        tracing::debug!(error = %e, "a jail prepared ahead keeps the default CPU weight")
                    }
                }
            }
        }
        let tasks = match &jail.cg {
            Some(c) => c.tasks_files()?,
            None => Vec::new(),
        };
        // Every pipe end lands in an owner right away, so every error path closes it.
        let mut child_ends = ChildEnds(Vec::new());
        let mut mk = |which: &str, ours_is_read: bool| -> Result<(i32, i32), SandboxError> {
            let (r, w) = pipe(which)?;
            let (ours, theirs) = if ours_is_read { (r, w) } else { (w, r) };
            child_ends.0.push(theirs);
            Ok((ours, theirs))
        };
        let (in_w, in_r) = mk("stdin", false)?;
        jail.fds.stdin = in_w;
        let (out_r, out_w) = mk("stdout", true)?;
        jail.fds.stdout = out_r;
        let (err_r, err_w) = mk("stderr", true)?;
        jail.fds.stderr = err_r;
        let (st_r, st_w) = mk("status", true)?;
        jail.fds.status = st_r;
        let (ex_r, ex_w) = mk("exit", true)?;
        jail.fds.exit = ex_r;
        let (go_w, go_r) = mk("go", false)?;
        // SAFETY: go_w was just created by pipe2 and is owned by nothing else.
        jail.go = Some(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(go_w) });
        // The program (its own uid) may reopen its stdio through /dev/stdin, /dev/stdout,
        // /proc/self/fd/N: the pipes must be its own, not root's 0600.
        for fd in [in_w, out_r, err_r] {
            sys::fchown(fd, uid, uid)
                .map_err(|e| syscall_err("fchown", format!("stdio pipe, {uid}"), e))?;
        }
        let netns = jail.netns.insert(shared.netns.take()?);
        let child_fds = ChildFds {
            stdin: in_r,
            stdout: out_w,
            stderr: err_w,
            status: st_w,
            exit: ex_w,
            parent: shared.self_pidfd.as_raw_fd(),
            netns: netns::raw(netns),
            go: go_r,
            init: shared.init_exe.as_raw_fd(),
        };
        let ops = jail::build(
            &shared.layout,
            &jail.shape,
            &shared.root,
            tasks,
            child_fds,
            uid,
        )?;
        let cg_fd = jail.cg.as_ref().and_then(RunCgroup::clone_fd);
        // The child copies our fd table; no run's file is ever open for writing in it
        // (`workdir::write_files` writes from a table of its own).
        let old_mask = sys::block_all_signals();
        let cloned = clone_child(cg_fd, &ops, st_w);
        sys::restore_signals(&old_mask);
        drop(child_ends);
        let (pid, pidfd) = cloned.map_err(|e| {
            syscall_err("clone3", "CLONE_NEWPID|NEWNS|NEWIPC|NEWUTS|PIDFD".into(), e)
        })?;
        jail.pid = pid;
        jail.fds.pidfd = pidfd;
        jail.reaped = false;
        match jail.wait_ready() {
            Ok(()) => Ok(jail),
            Err(Some((idx, errno))) => {
                let source = io::Error::from_raw_os_error(errno);
                Err(match ops.get(idx as usize) {
                    Some(op) => SandboxError::ChildSetup {
                        step: op.describe(),
                        source,
                    },
                    None => SandboxError::SetupFailed {
                        reason: format!("child reported unknown step {idx} (errno {errno})"),
                    },
                })
            }
            Err(None) => Err(SandboxError::SetupFailed {
                reason: format!(
                    "the jail's init did not report ready within {} s",
                    SETUP_TIMEOUT.as_secs()
                ),
            }),
        }
    }

    /// Waits for the init's *ready* record; `Err(Some((step, errno)))` for a failed step,
    /// `Err(None)` when the child died silently or the deadline passed.
    fn wait_ready(&self) -> Result<(), Option<(u32, i32)>> {
        let deadline = Instant::now() + SETUP_TIMEOUT;
        let mut rec = Vec::with_capacity(REPORT_LEN);
        let mut buf = [0u8; REPORT_LEN];
        while rec.len() < REPORT_LEN {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(None);
            }
            let mut p = [libc::pollfd {
                fd: self.fds.status,
                events: libc::POLLIN,
                revents: 0,
            }];
            let ms = left.as_millis().min(60_000) as i32 + 1;
            if sys::poll(&mut p, ms).map_err(|_| None)? == 0 {
                continue;
            }
            match sys::read(self.fds.status, &mut buf[..REPORT_LEN - rec.len()]) {
                Ok(0) => return Err(None),
                Ok(n) => rec.extend_from_slice(&buf[..n]),
                Err(libc::EINTR) | Err(libc::EAGAIN) => {}
                Err(_) => return Err(None),
            }
        }
        let step = u32::from_le_bytes([rec[0], rec[1], rec[2], rec[3]]);
        let errno = i32::from_le_bytes([rec[4], rec[5], rec[6], rec[7]]);
        if step == STEP_READY {
            Ok(())
        } else {
            Err(Some((step, errno)))
        }
    }

    /// The CPU weight of the jail's cgroup now (`None` without cgroups).
    pub(crate) fn cpu_weight(&self) -> Option<u64> {
        self.cg.as_ref().map(RunCgroup::cpu_weight)
    }

    /// Whether the init is still waiting (a prepared jail whose init died is useless).
    pub(crate) fn alive(&self) -> bool {
        !self.reaped && !self.started && !sys::pidfd_exited(self.fds.pidfd)
    }

    /// Runs `cmd` in this jail (which must have been prepared for `Shape::of(cmd)`), blocking
    /// until it is over. Used once: the jail is torn down when it drops.
    pub(crate) fn start(
        &mut self,
        cmd: &Command,
        on_output: &mut dyn FnMut(Stream, &[u8]),
    ) -> Result<Outcome, SandboxError> {
        if std::mem::replace(&mut self.started, true) {
            return Err(SandboxError::SetupFailed {
                reason: "a jail runs one program only".into(),
            });
        }
        if std::mem::take(&mut self.background) {
            if let Some(Err(e)) = self.cg.as_ref().map(|cg| cg.set_background(false)) {
                tracing::warn!(error = %e, "a prepared jail kept the lowest CPU weight for its run");
            }
        }
        let uid = self.uid.as_ref().map_or(0, |l| l.uid);
        crate::workdir::write_files(self.pid, cmd, uid)?;
        // Opened now, while the jail surely exists; read once the program has ended.
        let work = match cmd.collect.is_empty() {
            true => None,
            false => Some(WorkDir::open(self.pid)?),
        };
        let pipe_bytes = pipe_bytes(cmd.limits.output_bytes);
        for fd in [self.fds.stdout, self.fds.stderr] {
            sys::set_pipe_size(fd, pipe_bytes)
                .map_err(|e| syscall_err("fcntl", format!("F_SETPIPE_SZ {pipe_bytes}"), e))?;
        }
        let queued = prefill_stdin(self.fds.stdin, &cmd.stdin);
        let go = go_message(cmd)?;
        if let Some(go_w) = self.go.take() {
            // The init reads while we write; if it died, EPIPE (SIGPIPE is ignored).
            let mut f = fs::File::from(go_w);
            f.write_all(&go).map_err(|source| SandboxError::Fs {
                op: "write the go message to",
                path: PathBuf::from("the jail's init"),
                source,
            })?;
        }
        let limits = &cmd.limits;
        let (pid, fds) = (self.pid, &mut self.fds);
        let observed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            supervise::supervise(
                pid,
                fds,
                &cmd.stdin[queued..],
                limits.wall_ms,
                limits.output_bytes,
                on_output,
            )
        }));
        let obs = match observed {
            Ok(Ok(o)) => o,
            Ok(Err((call, errno))) => {
                let args = format!("run of {}", cmd.program.display());
                return Err(syscall_err(call, args, errno));
            }
            // on_output panicked: `self` drops (kills and reaps the jail) while unwinding.
            Err(panic) => std::panic::resume_unwind(panic),
        };
        // When the init is reaped, every process of the run is gone and the namespace is clean;
        // otherwise the teardown kills and reaps it.
        self.reaped = obs.init_reaped;
        if let Some((step, errno)) = obs.setup_error {
            let source = io::Error::from_raw_os_error(errno);
            return Err(if step == STEP_EXEC {
                SandboxError::Exec {
                    program: cmd.program.clone(),
                    source,
                }
            } else {
                let what = match step {
                    STEP_FORK => "could not fork the program".to_owned(),
                    STEP_GO => "could not read the program to run".to_owned(),
                    _ => format!("failed at step {step:#x}"),
                };
                SandboxError::SetupFailed {
                    reason: format!("the jail's init {what}: {source}"),
                }
            });
        }
        if obs.setup_timed_out {
            return Err(SandboxError::SetupFailed {
                reason: "the program did not reach execve within 10 s".into(),
            });
        }
        let (files, files_past_max) = match &work {
            Some(w) => w.read(&cmd.collect, cmd.limits.tmpfs_bytes)?,
            None => (Vec::new(), 0),
        };
        drop(work);
        let stats = self.cg.as_ref().map(RunCgroup::stats).unwrap_or_default();
        let cpu_timeout = limits.cpu_ms.is_some()
            && (obs.signal == Some(libc::SIGXCPU)
                || (obs.signal == Some(libc::SIGKILL)
                    && limits.cpu_ms.is_some_and(|ms| stats.cpu_ms >= ms)));
        Ok(Outcome {
            exit_code: obs.exit_code,
            signal: obs.signal,
            wall_ms: obs.wall_us / 1000,
            wall_us: obs.wall_us,
            cpu_ms: stats.cpu_ms,
            memory_peak_bytes: stats.memory_peak_bytes,
            timed_out: obs.timed_out || cpu_timeout,
            oom_killed: stats.oom_killed,
            output_limited: obs.output_limited,
            stdout: obs.stdout,
            stderr: obs.stderr,
            warm_start: false,
            files,
            files_past_max,
        })
    }
}

/// Puts as much of `stdin` as the stdin pipe can hold into it before the program starts, the
/// pipe grown to hold all of it up to the host's `fs.pipe-max-size` (1 MiB by default), and
/// returns how many bytes went in; the supervisor feeds the rest while the program runs. So
/// a program finds its whole input (up to that size) at once, in as few reads as it likes,
/// instead of 64 KiB at a time, each a round trip through the supervisor's poll loop. The
/// pipe's pages belong to the supervisor (it holds the input anyway), not to the run.
/// Failures are not errors here: what did not go in is fed by the loop.
fn prefill_stdin(fd: i32, stdin: &[u8]) -> usize {
    if stdin.is_empty() || sys::set_nonblocking(fd).is_err() {
        return 0;
    }
    if stdin.len() > PIPE_DEFAULT {
        // Best effort: at the host's maximum, or the default size when refused.
        let _ = sys::set_pipe_size(fd, pipe_bytes(stdin.len()));
    }
    sys::write(fd, stdin).unwrap_or(0)
}

/// A pipe's default capacity (bytes).
const PIPE_DEFAULT: usize = 64 << 10;

/// The go message of `cmd` (program, `argv` = program path then the arguments, environment).
fn go_message(cmd: &Command) -> Result<Vec<u8>, SandboxError> {
    let program = cmd.program.as_os_str().as_bytes();
    let argv: Vec<&[u8]> = std::iter::once(program)
        .chain(cmd.args.iter().map(|a| a.as_bytes()))
        .collect();
    let env: Vec<Vec<u8>> = cmd
        .env
        .iter()
        .map(|(k, v)| crate::plan::cenv(k, v).map(|c| c.into_bytes()))
        .collect::<Result<_, _>>()?;
    let envp: Vec<&[u8]> = env.iter().map(Vec::as_slice).collect();
    init::encode(program, &argv, &envp).ok_or_else(|| SandboxError::NulByte {
        what: format!(
            "the program's arguments (a NUL byte, or more than {} bytes)",
            init::MAX_GO_BYTES
        ),
    })
}

/// The child's pipe ends, closed in the supervisor once the child has them (or on error).
struct ChildEnds(Vec<i32>);

impl Drop for ChildEnds {
    fn drop(&mut self) {
        self.0.drain(..).for_each(sys::close);
    }
}

impl Drop for Jail {
    fn drop(&mut self) {
        if !self.reaped {
            let _ = sys::pidfd_kill(self.fds.pidfd, libc::SIGKILL);
            self.reaped = sys::wait_pid(self.pid).is_ok();
        }
        if let Some(cg) = self.cg.take() {
            cg.kill_all();
            if let Err(e) = cg.remove() {
                tracing::warn!(error = %e, "could not remove a run cgroup");
            }
        }
        // The run's network namespace dies with it: no other run ever uses it.
        drop(self.netns.take());
        if let Some(l) = self.uid.take() {
            if self.reaped {
                self.shared.uids.release(l);
            }
        }
    }
}
