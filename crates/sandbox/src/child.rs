//! The child side: executes a [`crate::plan`] between `clone` and `execve`.
//!
//! Runs in the (possibly multi-threaded) supervisor's memory on a stack of its own (x86-64,
//! `CLONE_VM | CLONE_VFORK`), or in a copy of it elsewhere, so it only makes syscalls through
//! [`crate::sys`]: no allocation, no locks, no panics, nothing written that the supervisor
//! reads. On the first failing step it
//! writes `(step index, errno)` to the status pipe and exits with 127.

use std::ffi::CStr;
use std::os::raw::{c_int, c_ulong};

use crate::init::{self, EXIT_FD, GO_FD, REPORT_LEN, STATUS_FD};
use crate::plan::{Op, JAIL_HOSTNAME};
use crate::sys::{self, Errno};

/// The fd of the supervisor's pidfd (to notice a supervisor that died before
/// `PR_SET_PDEATHSIG` was armed).
pub(crate) const PARENT_FD: c_int = 5;

/// The fd of the init executable (a sealed memfd) for `execveat`.
pub(crate) const INIT_FD: c_int = 7;

/// Where [`Op::Stdio`] puts each fd, and whether it is closed on `execve` of the init: stdin,
/// stdout, stderr, status, exit, parent pidfd, go, init executable. The init keeps 0–4 and
/// 6; it makes the status pipe close-on-exec in the program itself (see [`crate::init`]).
pub(crate) const FD_LAYOUT: [(c_int, bool); 8] = [
    (0, false),
    (1, false),
    (2, false),
    (STATUS_FD, false),
    (EXIT_FD, false),
    (PARENT_FD, true),
    (GO_FD, false),
    (INIT_FD, true),
];

/// Runs every step; the last one `execve`s the init. Never returns.
pub(crate) fn run(ops: &[Op<'_>], status_fd: c_int) -> ! {
    let mut status = status_fd;
    for (i, op) in ops.iter().enumerate() {
        if let Err(e) = step(op) {
            report(status, i, e);
        }
        if matches!(op, Op::Stdio { .. }) {
            status = STATUS_FD;
        }
    }
    report(status, ops.len(), libc::ENOEXEC)
}

fn report(fd: c_int, index: usize, errno: Errno) -> ! {
    let rec: [u8; REPORT_LEN] = init::record(index as u32, errno);
    let _ = sys::write_all(fd, &rec);
    sys::exit_now(127)
}

const ROOT: &CStr = c"/";
const DOT: &CStr = c".";

fn step(op: &Op<'_>) -> Result<(), Errno> {
    match op {
        Op::Stdio {
            stdin,
            stdout,
            stderr,
            status,
            exit,
            parent,
            go,
            init,
        } => {
            // First lift every source above the targets, so that placing one never
            // overwrites another that is still to be placed (the supervisor's fds can be
            // any numbers, including the targets).
            let sources = [
                *stdin, *stdout, *stderr, *status, *exit, *parent, *go, *init,
            ];
            let first_free = FD_LAYOUT.len() as c_int;
            let mut lifted = [0 as c_int; FD_LAYOUT.len()];
            for (slot, src) in lifted.iter_mut().zip(sources) {
                *slot = sys::dup_above(src, first_free)?;
            }
            for (src, (target, cloexec)) in lifted.into_iter().zip(FD_LAYOUT) {
                sys::dup3(src, target, cloexec)?;
            }
            sys::close_from(first_free as u32)
        }
        Op::EnterNetns { fd } => sys::setns(*fd, libc::CLONE_NEWNET),
        Op::DeathSignal => {
            sys::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as c_ulong, 0)?;
            if sys::pidfd_exited(PARENT_FD) {
                return Err(libc::ESRCH);
            }
            Ok(())
        }
        Op::JoinCgroup { tasks } => {
            let fd = sys::open(tasks, libc::O_WRONLY, 0)?;
            let r = sys::write_all(fd, b"0");
            sys::close(fd);
            r
        }
        Op::Unshare { flags } => sys::unshare(*flags),
        Op::MakePrivate => sys::mount(
            None,
            ROOT,
            None,
            (libc::MS_REC | libc::MS_PRIVATE) as c_ulong,
            None,
        ),
        Op::Tmpfs {
            target,
            data,
            flags,
        } => sys::mount(Some(c"tmpfs"), target, Some(c"tmpfs"), *flags, Some(data)),
        Op::Mkdir { path, mode } => sys::mkdir(path, *mode),
        Op::Touch { path } => {
            let fd = sys::open(path, libc::O_WRONLY | libc::O_CREAT, 0o644)?;
            sys::close(fd);
            Ok(())
        }
        Op::Symlink { target, link } => sys::symlink(target, link),
        Op::Bind { src, dst, attrs } => {
            sys::mount(
                Some(src),
                dst,
                None,
                (libc::MS_BIND | libc::MS_REC) as c_ulong,
                None,
            )?;
            sys::mount_setattr(dst, true, *attrs)
        }
        Op::Mknod { path, major, minor } => sys::mknod_char(path, *major, *minor),
        Op::Proc { target } => sys::mount(
            Some(c"proc"),
            target,
            Some(c"proc"),
            (libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC) as c_ulong,
            None,
        ),
        Op::WriteFile { path, data } => {
            let fd = sys::open(path, libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL, 0o644)?;
            let r = sys::write_all(fd, data);
            sys::close(fd);
            r
        }
        Op::RemountRo { target } => sys::mount_setattr(target, false, sys::MOUNT_ATTR_RDONLY),
        Op::PivotRoot { root } => {
            sys::chdir(root)?;
            sys::pivot_root(DOT, DOT)?;
            sys::umount2(DOT, libc::MNT_DETACH)?;
            sys::chdir(ROOT)
        }
        Op::Chdir { path } => sys::chdir(path),
        Op::Hostname => sys::sethostname(JAIL_HOSTNAME.as_bytes()),
        Op::Rlimit {
            resource,
            soft,
            hard,
            ..
        } => sys::setrlimit(*resource, *soft, *hard),
        Op::DropBoundingSet { last } => {
            for cap in 0..=*last {
                sys::prctl(libc::PR_CAPBSET_DROP, cap, 0)?;
            }
            Ok(())
        }
        Op::Renice => sys::set_nice(0, 0),
        Op::DropIds { uid, gid } => sys::drop_ids(*uid, *gid),
        Op::ClearCaps => sys::clear_caps(),
        Op::NoNewPrivs => sys::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0),
        Op::Landlock { handled, rules } => {
            let ruleset = sys::landlock_create(*handled)?;
            for (path, allowed) in rules {
                let fd = sys::open(path, libc::O_PATH, 0)?;
                let r = sys::landlock_add_path(ruleset, fd, *allowed & *handled);
                sys::close(fd);
                r?;
            }
            let r = sys::landlock_restrict(ruleset);
            sys::close(ruleset);
            r
        }
        Op::ResetSignals => sys::reset_signals(),
        Op::Seccomp { prog } => sys::seccomp_filter(prog),
        Op::ExecInit { argv, envp } => Err(sys::execve_fd(INIT_FD, argv, envp)),
        Op::WriteOwned { path, data } => {
            let fd = sys::open(path, libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL, 0o444)?;
            let r = sys::write_all(fd, data);
            sys::close(fd);
            r
        }
        Op::Cover { src, dst } => {
            let flags = libc::MS_BIND as c_ulong;
            match sys::mount(Some(src), dst, None, flags, None) {
                Err(libc::ENOENT) => Ok(()),
                r => r,
            }
        }
        Op::WriteTo { path, data } => {
            let fd = sys::open(path, libc::O_WRONLY, 0)?;
            let r = sys::write_all(fd, data);
            sys::close(fd);
            r
        }
        Op::SetAttrs { target, attrs } => sys::mount_setattr(target, false, *attrs),
        Op::MountDevice {
            dir,
            name,
            dev,
            fstype,
            target,
            flags,
        } => sys::mount_device_as(dir, name, *dev, fstype, target, *flags),
    }
}
