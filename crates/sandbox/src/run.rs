//! One run: pipes, the plan, `clone3` into fresh namespaces, supervision, and the outcome.

use std::io;
use std::os::fd::AsRawFd;

use crate::cgroup::RunCgroup;
use crate::jail::{self, ChildFds};
use crate::plan::Op;
use crate::supervise::{self, Fds};
use crate::{child, netns, sys, Command, Outcome, Sandbox, SandboxError, Stream};

/// Namespaces the jail's init is created in. The cgroup namespace is entered after joining
/// the run's cgroup and the network namespace comes from the pool, both in the child.
const CLONE_FLAGS: u64 =
    (libc::CLONE_NEWPID | libc::CLONE_NEWNS | libc::CLONE_NEWIPC | libc::CLONE_NEWUTS) as u64;

fn syscall_err(call: &'static str, args: String, errno: i32) -> SandboxError {
    SandboxError::Syscall {
        call,
        args,
        source: io::Error::from_raw_os_error(errno),
    }
}

/// Creates a pipe, naming it in the error.
fn pipe(which: &str) -> Result<(i32, i32), SandboxError> {
    sys::pipe().map_err(|e| syscall_err("pipe2", format!("O_CLOEXEC ({which})"), e))
}

/// Runs `cmd` with the cgroup `cg` already created.
pub(crate) fn run(
    sb: &Sandbox,
    cmd: &Command,
    cg: Option<&RunCgroup>,
    on_output: &mut dyn FnMut(Stream, &[u8]),
) -> Result<Outcome, SandboxError> {
    let tasks = match cg {
        Some(c) => c.tasks_files()?,
        None => Vec::new(),
    };
    // Parent ends are wrapped in `Fds` right away so every error path closes them.
    let (in_r, in_w) = pipe("stdin")?;
    let mut fds = Fds {
        pidfd: -1,
        stdin: in_w,
        stdout: -1,
        stderr: -1,
        status: -1,
        exit: -1,
    };
    let mut child_ends = vec![in_r];
    let close_child_ends = |v: &mut Vec<i32>| v.drain(..).for_each(sys::close);
    let mk = |which: &str, slot: &mut i32, ends: &mut Vec<i32>| -> Result<i32, SandboxError> {
        let (r, w) = pipe(which)?;
        *slot = r;
        ends.push(w);
        Ok(w)
    };
    let made = (|| {
        let out_w = mk("stdout", &mut fds.stdout, &mut child_ends)?;
        let err_w = mk("stderr", &mut fds.stderr, &mut child_ends)?;
        let st_w = mk("status", &mut fds.status, &mut child_ends)?;
        let ex_w = mk("exit", &mut fds.exit, &mut child_ends)?;
        Ok::<_, SandboxError>((out_w, err_w, st_w, ex_w))
    })();
    let (out_w, err_w, st_w, ex_w) = match made {
        Ok(v) => v,
        Err(e) => {
            close_child_ends(&mut child_ends);
            return Err(e);
        }
    };
    let netns = match sb.netns.take() {
        Ok(n) => n,
        Err(e) => {
            close_child_ends(&mut child_ends);
            return Err(e);
        }
    };
    let child_fds = ChildFds {
        stdin: in_r,
        stdout: out_w,
        stderr: err_w,
        status: st_w,
        exit: ex_w,
        parent: sb.self_pidfd.as_raw_fd(),
        netns: netns::raw(&netns),
    };
    let prepared = match jail::build(&sb.layout, cmd, &sb.root, tasks, child_fds) {
        Ok(p) => p,
        Err(e) => {
            close_child_ends(&mut child_ends);
            return Err(e);
        }
    };
    let ops = &prepared.ops;

    let old_mask = sys::block_all_signals();
    // SAFETY: the child branch only runs `child::run`, which makes raw syscalls on data
    // prepared above (no allocation, no locks) and ends in execve or _exit.
    let cloned = unsafe { sys::clone3(CLONE_FLAGS, cg.and_then(RunCgroup::clone_fd)) };
    match cloned {
        Ok((0, _)) => child::run(ops, st_w),
        Ok(_) | Err(_) => sys::restore_signals(&old_mask),
    }
    close_child_ends(&mut child_ends);
    let (pid, pidfd) = cloned
        .map_err(|e| syscall_err("clone3", "CLONE_NEWPID|NEWNS|NEWIPC|NEWUTS|PIDFD".into(), e))?;
    fds.pidfd = pidfd;

    let limits = &cmd.limits;
    let observed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        supervise::supervise(
            pid,
            &mut fds,
            &cmd.stdin,
            limits.wall_ms,
            limits.output_bytes,
            on_output,
        )
    }));
    let obs = match observed {
        Ok(Ok(o)) => o,
        Ok(Err((call, errno))) => {
            let _ = sys::pidfd_kill(fds.pidfd, libc::SIGKILL);
            let _ = sys::wait_pid(pid);
            let args = format!("run of {}", cmd.program.display());
            return Err(syscall_err(call, args, errno));
        }
        Err(panic) => {
            // on_output panicked: take the jail down and reap it before unwinding further.
            let _ = sys::pidfd_kill(fds.pidfd, libc::SIGKILL);
            let _ = sys::wait_pid(pid);
            std::panic::resume_unwind(panic);
        }
    };
    // The init is reaped: every process of the run is gone, the namespace is clean.
    sb.netns.give_back(netns);
    if let Some((idx, errno)) = obs.setup_error {
        let source = io::Error::from_raw_os_error(errno);
        return Err(match ops.get(idx) {
            Some(Op::Exec { .. }) => SandboxError::Exec {
                program: cmd.program.clone(),
                source,
            },
            Some(op) => SandboxError::ChildSetup {
                step: op.describe(),
                source,
            },
            None => SandboxError::SetupFailed {
                reason: format!("child reported unknown step {idx} (errno {errno})"),
            },
        });
    }
    if obs.setup_timed_out {
        return Err(SandboxError::SetupFailed {
            reason: "the jail did not reach execve within 10 s".into(),
        });
    }
    let stats = cg.map(RunCgroup::stats).unwrap_or_default();
    let cpu_timeout = limits.cpu_ms.is_some()
        && (obs.signal == Some(libc::SIGXCPU)
            || (obs.signal == Some(libc::SIGKILL)
                && limits.cpu_ms.is_some_and(|ms| stats.cpu_ms >= ms)));
    Ok(Outcome {
        exit_code: obs.exit_code,
        signal: obs.signal,
        wall_ms: obs.wall_ms,
        cpu_ms: stats.cpu_ms,
        memory_peak_bytes: stats.memory_peak_bytes,
        timed_out: obs.timed_out || cpu_timeout,
        oom_killed: stats.oom_killed,
        output_limited: obs.output_limited,
        stdout: obs.stdout,
        stderr: obs.stderr,
    })
}
