//! The child side: executes a [`crate::plan`] between `clone` and `execve`.
//!
//! Runs in a copy of the (possibly multi-threaded) supervisor, so it only makes syscalls
//! through [`crate::sys`]: no allocation, no locks, no panics. On the first failing step it
//! writes `(step index, errno)` to the status pipe and exits with 127.

use std::ffi::CStr;
use std::os::raw::{c_int, c_ulong};

use crate::plan::{Op, JAIL_GID, JAIL_HOSTNAME, JAIL_UID};
use crate::sys::{self, Errno};

/// The fd the status pipe is moved to by [`Op::Stdio`].
pub(crate) const STATUS_FD: c_int = 3;

/// The fd of the exit pipe (the init's report of the program's wait status).
pub(crate) const EXIT_FD: c_int = 4;

/// The fd of the supervisor's pidfd (to notice a supervisor that died before
/// `PR_SET_PDEATHSIG` was armed).
pub(crate) const PARENT_FD: c_int = 5;

/// The record the child writes on failure: step index and errno, little-endian.
pub(crate) const REPORT_LEN: usize = 8;

/// Runs every step, then `execve`. Never returns.
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
    let mut rec = [0u8; REPORT_LEN];
    rec[..4].copy_from_slice(&(index as u32).to_le_bytes());
    rec[4..].copy_from_slice(&errno.to_le_bytes());
    let _ = sys::write_all(fd, &rec);
    sys::exit_now(127)
}

/// The jail's init: holds no pipe of the program, reaps every child, reports the program's
/// wait status as 4 little-endian bytes on [`EXIT_FD`], and exits (the kernel then kills the
/// rest of the pid namespace).
fn init(program: c_int) -> ! {
    for fd in [0, 1, 2, STATUS_FD] {
        sys::close(fd);
    }
    loop {
        match sys::wait_any() {
            Ok((pid, status)) if pid == program => {
                let _ = sys::write_all(EXIT_FD, &status.to_le_bytes());
                sys::exit_now(0)
            }
            Ok(_) | Err(libc::EINTR) => {}
            Err(_) => sys::exit_now(1),
        }
    }
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
        } => {
            // First lift every source above the targets 0..=5, so that placing one never
            // overwrites another that is still to be placed (the supervisor's fds can be
            // any numbers, including 3, 4 or 5).
            let sources = [*stdin, *stdout, *stderr, *status, *exit, *parent];
            let first_free = PARENT_FD + 1;
            let mut lifted = [0 as c_int; 6];
            for (slot, src) in lifted.iter_mut().zip(sources) {
                *slot = sys::dup_above(src, first_free)?;
            }
            for (target, src) in lifted.into_iter().enumerate() {
                sys::dup3(src, target as c_int, target as c_int >= STATUS_FD)?;
            }
            sys::close_from(first_free as u32)
        }
        Op::ForkInit => {
            let pid = sys::fork_raw()?;
            if pid == 0 {
                sys::close(EXIT_FD);
                sys::close(PARENT_FD);
                return Ok(());
            }
            init(pid)
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
        Op::WriteFile { path, data, chown } => {
            let fd = sys::open(path, libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL, 0o644)?;
            let r = sys::write_all(fd, data).and_then(|()| {
                if *chown {
                    sys::fchown(fd, JAIL_UID, JAIL_GID)
                } else {
                    Ok(())
                }
            });
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
        Op::Exec { path, argv, envp } => Err(sys::execve(path, argv, envp)),
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
        Op::Disguise { mem, ranges, name } => disguise(mem, ranges, name),
    }
}

/// [`Op::Disguise`]: zeroes each range of this process's memory through `mem`, writes `name`
/// at the start of the first (the argv strings), and makes `name` the `comm`.
fn disguise(mem: &CStr, ranges: &[(u64, u64); 2], name: &CStr) -> Result<(), Errno> {
    static ZEROS: [u8; 4096] = [0; 4096];
    let fd = sys::open(mem, libc::O_RDWR, 0)?;
    let mut r = Ok(());
    for &(start, end) in ranges {
        let mut at = start;
        while r.is_ok() && at < end {
            let n = ((end - at) as usize).min(ZEROS.len());
            r = sys::pwrite_all(fd, &ZEROS[..n], at);
            at += n as u64;
        }
    }
    let (start, end) = ranges[0];
    let bytes = name.to_bytes_with_nul();
    if r.is_ok() && end > start + bytes.len() as u64 {
        // A last byte that is not NUL makes the kernel read the area as a title rewritten by
        // setproctitle(3): `cmdline` then shows it up to the first NUL, the name alone.
        r = sys::pwrite_all(fd, bytes, start).and_then(|()| sys::pwrite_all(fd, b" ", end - 1));
    }
    sys::close(fd);
    r.and_then(|()| sys::set_comm(name))
}
