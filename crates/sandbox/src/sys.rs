//! Every raw syscall of the crate, in one place.
//!
//! Functions here are safe to call in the child between `clone` and `execve`: they never
//! allocate, lock or panic; they return the raw `errno` on failure ([`Errno`]). The caller (the
//! plan executor in the child, or the supervisor) attaches the call's name and arguments to the
//! error: the child through the step description of its plan, the supervisor through
//! [`crate::SandboxError::Syscall`].

use std::ffi::CStr;
use std::os::raw::{c_char, c_int, c_long, c_uint, c_ulong, c_void};

/// A raw OS error number.
pub(crate) type Errno = i32;

fn errno() -> Errno {
    // SAFETY: __errno_location always returns a valid pointer to this thread's errno.
    unsafe { *libc::__errno_location() }
}

fn check(ret: c_long) -> Result<c_long, Errno> {
    if ret < 0 {
        Err(errno())
    } else {
        Ok(ret)
    }
}

fn check_int(ret: c_int) -> Result<c_int, Errno> {
    if ret < 0 {
        Err(errno())
    } else {
        Ok(ret)
    }
}

/// `struct mount_attr` of `mount_setattr(2)`.
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// `MOUNT_ATTR_RDONLY`.
pub(crate) const MOUNT_ATTR_RDONLY: u64 = 0x1;
/// `MOUNT_ATTR_NOSUID`.
pub(crate) const MOUNT_ATTR_NOSUID: u64 = 0x2;
/// `MOUNT_ATTR_NODEV`.
pub(crate) const MOUNT_ATTR_NODEV: u64 = 0x4;
/// `MOUNT_ATTR_NOEXEC`.
pub(crate) const MOUNT_ATTR_NOEXEC: u64 = 0x8;

/// `mount(2)`.
pub(crate) fn mount(
    src: Option<&CStr>,
    target: &CStr,
    fstype: Option<&CStr>,
    flags: c_ulong,
    data: Option<&CStr>,
) -> Result<(), Errno> {
    let p = |s: Option<&CStr>| s.map_or(std::ptr::null(), |s| s.as_ptr());
    // SAFETY: all pointers are NUL-terminated strings or null, valid for the call.
    let r = unsafe {
        libc::mount(
            p(src),
            target.as_ptr(),
            p(fstype),
            flags,
            p(data) as *const c_void,
        )
    };
    check_int(r).map(drop)
}

/// `mount_setattr(AT_FDCWD, path, AT_RECURSIVE?, {attr_set})`.
pub(crate) fn mount_setattr(path: &CStr, recursive: bool, attr_set: u64) -> Result<(), Errno> {
    let attr = MountAttr {
        attr_set,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    let flags = if recursive { libc::AT_RECURSIVE } else { 0 };
    // SAFETY: path is NUL-terminated; attr is a valid mount_attr of the size passed.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            path.as_ptr(),
            flags as c_uint,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    check(r).map(drop)
}

/// `umount2(2)`.
pub(crate) fn umount2(target: &CStr, flags: c_int) -> Result<(), Errno> {
    // SAFETY: target is NUL-terminated.
    check_int(unsafe { libc::umount2(target.as_ptr(), flags) }).map(drop)
}

/// `pivot_root(new_root, put_old)`.
pub(crate) fn pivot_root(new_root: &CStr, put_old: &CStr) -> Result<(), Errno> {
    // SAFETY: both paths are NUL-terminated.
    let r = unsafe { libc::syscall(libc::SYS_pivot_root, new_root.as_ptr(), put_old.as_ptr()) };
    check(r).map(drop)
}

/// `chdir(2)`.
pub(crate) fn chdir(path: &CStr) -> Result<(), Errno> {
    // SAFETY: path is NUL-terminated.
    check_int(unsafe { libc::chdir(path.as_ptr()) }).map(drop)
}

/// `mkdir(2)`; an existing directory is not an error.
pub(crate) fn mkdir(path: &CStr, mode: u32) -> Result<(), Errno> {
    // SAFETY: path is NUL-terminated.
    match check_int(unsafe { libc::mkdir(path.as_ptr(), mode) }) {
        Err(libc::EEXIST) | Ok(_) => Ok(()),
        Err(e) => Err(e),
    }
}

/// `symlink(2)`.
pub(crate) fn symlink(target: &CStr, link: &CStr) -> Result<(), Errno> {
    // SAFETY: both paths are NUL-terminated.
    check_int(unsafe { libc::symlink(target.as_ptr(), link.as_ptr()) }).map(drop)
}

/// `open(2)`, always with `O_CLOEXEC`.
pub(crate) fn open(path: &CStr, flags: c_int, mode: u32) -> Result<c_int, Errno> {
    // SAFETY: path is NUL-terminated.
    check_int(unsafe { libc::open(path.as_ptr(), flags | libc::O_CLOEXEC, mode) })
}

/// `write(2)` of the whole buffer (retrying short writes and `EINTR`).
pub(crate) fn write_all(fd: c_int, mut buf: &[u8]) -> Result<(), Errno> {
    while !buf.is_empty() {
        // SAFETY: buf is valid for buf.len() bytes.
        let r = unsafe { libc::write(fd, buf.as_ptr() as *const c_void, buf.len()) };
        if r < 0 {
            let e = errno();
            if e == libc::EINTR {
                continue;
            }
            return Err(e);
        }
        buf = &buf[r as usize..];
    }
    Ok(())
}

/// `fchown(2)`.
pub(crate) fn fchown(fd: c_int, uid: u32, gid: u32) -> Result<(), Errno> {
    // SAFETY: plain syscall on an fd.
    check_int(unsafe { libc::fchown(fd, uid, gid) }).map(drop)
}

/// `close(2)`; errors are ignored (nothing useful can be done).
pub(crate) fn close(fd: c_int) {
    // SAFETY: closing an fd we own.
    unsafe { libc::close(fd) };
}

/// `dup3(2)` (or `fcntl(F_SETFD)` when `old == new`).
pub(crate) fn dup3(old: c_int, new: c_int, cloexec: bool) -> Result<(), Errno> {
    if old == new {
        let flags = if cloexec { libc::FD_CLOEXEC } else { 0 };
        // SAFETY: plain fcntl on an fd.
        return check_int(unsafe { libc::fcntl(new, libc::F_SETFD, flags) }).map(drop);
    }
    let flags = if cloexec { libc::O_CLOEXEC } else { 0 };
    // SAFETY: plain syscall on fds.
    check_int(unsafe { libc::dup3(old, new, flags) }).map(drop)
}

/// `close_range(first, ~0, 0)`.
pub(crate) fn close_from(first: c_uint) -> Result<(), Errno> {
    // SAFETY: closes fds only.
    check(unsafe { libc::syscall(libc::SYS_close_range, first, c_uint::MAX, 0) }).map(drop)
}

/// `setns(fd, nstype)`.
pub(crate) fn setns(fd: c_int, nstype: c_int) -> Result<(), Errno> {
    // SAFETY: plain syscall on an fd.
    check_int(unsafe { libc::setns(fd, nstype) }).map(drop)
}

/// `unshare(2)`.
pub(crate) fn unshare(flags: c_int) -> Result<(), Errno> {
    // SAFETY: plain syscall.
    check_int(unsafe { libc::unshare(flags) }).map(drop)
}

/// `sethostname(2)`.
pub(crate) fn sethostname(name: &[u8]) -> Result<(), Errno> {
    // SAFETY: name is valid for name.len() bytes.
    check_int(unsafe { libc::sethostname(name.as_ptr() as *const c_char, name.len()) }).map(drop)
}

/// `setrlimit(2)`.
pub(crate) fn setrlimit(resource: c_int, soft: u64, hard: u64) -> Result<(), Errno> {
    let lim = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: lim is a valid rlimit.
    check_int(unsafe { libc::setrlimit(resource as libc::__rlimit_resource_t, &lim) }).map(drop)
}

/// `prctl(2)` with up to two arguments.
pub(crate) fn prctl(option: c_int, arg2: c_ulong, arg3: c_ulong) -> Result<(), Errno> {
    // SAFETY: the options used here take integer arguments only.
    check_int(unsafe { libc::prctl(option, arg2, arg3, 0 as c_ulong, 0 as c_ulong) }).map(drop)
}

/// `setgroups(0, NULL)`, `setresgid(gid×3)`, `setresuid(uid×3)` in that order, as raw
/// syscalls: glibc's wrappers broadcast the change to every thread it knows of, and in a
/// child made by a raw `clone` those threads do not exist (the wrapper would wait forever).
pub(crate) fn drop_ids(uid: u32, gid: u32) -> Result<(), Errno> {
    // SAFETY: raw syscalls with integer arguments (a null list for setgroups of size 0).
    unsafe {
        check(libc::syscall(
            libc::SYS_setgroups,
            0usize,
            std::ptr::null::<libc::gid_t>(),
        ))?;
        check(libc::syscall(libc::SYS_setresgid, gid, gid, gid))?;
        check(libc::syscall(libc::SYS_setresuid, uid, uid, uid)).map(drop)
    }
}

/// `capset(2)` clearing the effective, permitted and inheritable sets.
pub(crate) fn clear_caps() -> Result<(), Errno> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: c_int,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let mut hdr = Header {
        version: 0x2008_0522, // _LINUX_CAPABILITY_VERSION_3
        pid: 0,
    };
    let data = [Data {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: header and two data structs as required by version 3.
    check(unsafe { libc::syscall(libc::SYS_capset, &mut hdr as *mut Header, data.as_ptr()) })
        .map(drop)
}

/// Resets every catchable signal to its default action and unblocks all signals.
pub(crate) fn reset_signals() -> Result<(), Errno> {
    for sig in 1..65 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: setting SIG_DFL is always valid; errors for invalid numbers are ignored.
        unsafe { libc::signal(sig, libc::SIG_DFL) };
    }
    // SAFETY: an empty, initialised set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        check_int(libc::sigprocmask(
            libc::SIG_SETMASK,
            &set,
            std::ptr::null_mut(),
        ))
        .map(drop)
    }
}

/// `seccomp(SECCOMP_SET_MODE_FILTER, 0, prog)`.
pub(crate) fn seccomp_filter(prog: &[seccompiler::sock_filter]) -> Result<(), Errno> {
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: seccompiler's sock_filter has the kernel layout; fprog points into prog.
    check(unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            1 as c_uint, // SECCOMP_SET_MODE_FILTER
            0 as c_uint,
            &fprog as *const libc::sock_fprog,
        )
    })
    .map(drop)
}

/// `landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION)`: the ABI version, or
/// 0 when Landlock is unavailable.
pub(crate) fn landlock_abi() -> i32 {
    // SAFETY: the version query takes no pointer.
    let r = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<c_void>(),
            0usize,
            1u32,
        )
    };
    if r < 0 {
        0
    } else {
        r as i32
    }
}

/// `landlock_create_ruleset({handled_access_fs}, size, 0)`.
pub(crate) fn landlock_create(handled_fs: u64) -> Result<c_int, Errno> {
    let attr: [u64; 1] = [handled_fs];
    // SAFETY: attr is a valid landlock_ruleset_attr prefix of the size passed.
    check(unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            attr.as_ptr(),
            std::mem::size_of_val(&attr),
            0u32,
        )
    })
    .map(|fd| fd as c_int)
}

/// `landlock_add_rule(ruleset, LANDLOCK_RULE_PATH_BENEATH, {allowed, parent_fd}, 0)`.
pub(crate) fn landlock_add_path(
    ruleset: c_int,
    parent_fd: c_int,
    allowed: u64,
) -> Result<(), Errno> {
    #[repr(C, packed)]
    struct PathBeneath {
        allowed_access: u64,
        parent_fd: i32,
    }
    let attr = PathBeneath {
        allowed_access: allowed,
        parent_fd,
    };
    // SAFETY: attr is a valid landlock_path_beneath_attr.
    check(unsafe {
        libc::syscall(
            libc::SYS_landlock_add_rule,
            ruleset,
            1u32, // LANDLOCK_RULE_PATH_BENEATH
            &attr as *const PathBeneath,
            0u32,
        )
    })
    .map(drop)
}

/// `landlock_restrict_self(ruleset, 0)`.
pub(crate) fn landlock_restrict(ruleset: c_int) -> Result<(), Errno> {
    // SAFETY: plain syscall on an fd.
    check(unsafe { libc::syscall(libc::SYS_landlock_restrict_self, ruleset, 0u32) }).map(drop)
}

/// `execve(2)`; only returns on failure.
pub(crate) fn execve(path: &CStr, argv: &[*const c_char], envp: &[*const c_char]) -> Errno {
    // SAFETY: argv and envp are NULL-terminated arrays of pointers to NUL-terminated strings
    // that outlive the call (built by the supervisor before clone).
    unsafe { libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    errno()
}

/// Ends the child without running any destructor or atexit handler.
pub(crate) fn exit_now(code: c_int) -> ! {
    // SAFETY: _exit never returns and is async-signal-safe.
    unsafe { libc::_exit(code) }
}

/// `CLONE_INTO_CGROUP` (libc's constant is deprecated for overflowing `c_int`).
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// A fork-like `clone3` with `CLONE_PIDFD` (and `CLONE_INTO_CGROUP` when `cgroup_fd` is set).
/// Returns `(0, -1)` in the child and `(pid, pidfd)` in the parent.
///
/// # Safety
/// The caller must, in the child, only make async-signal-safe calls (no allocation, no locks)
/// until `execve` or `_exit`: the child is a copy of a possibly multi-threaded process.
pub(crate) unsafe fn clone3(flags: u64, cgroup_fd: Option<c_int>) -> Result<(c_int, c_int), Errno> {
    let mut pidfd: c_int = -1;
    let mut args: libc::clone_args = std::mem::zeroed();
    args.flags = flags | libc::CLONE_PIDFD as u64;
    args.pidfd = &mut pidfd as *mut c_int as u64;
    args.exit_signal = libc::SIGCHLD as u64;
    if let Some(fd) = cgroup_fd {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd as u64;
    }
    let r = libc::syscall(
        libc::SYS_clone3,
        &mut args as *mut libc::clone_args,
        std::mem::size_of::<libc::clone_args>(),
    );
    let pid = check(r)? as c_int;
    Ok((pid, pidfd))
}

/// A fork-like raw `clone(SIGCHLD)` (no glibc fork handlers): 0 in the child.
pub(crate) fn fork_raw() -> Result<c_int, Errno> {
    // SAFETY: fork semantics; the caller's child only makes raw syscalls until exec/_exit.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone,
            libc::SIGCHLD as c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    check(r).map(|pid| pid as c_int)
}

/// `wait4(-1, &status, __WALL)`: `(pid, raw wait status)` of any reaped child.
pub(crate) fn wait_any() -> Result<(c_int, c_int), Errno> {
    let mut status: c_int = 0;
    // SAFETY: status is a valid out-pointer.
    let r = unsafe { libc::waitpid(-1, &mut status, libc::__WALL) };
    check_int(r).map(|pid| (pid, status))
}

/// `(exit_code, signal)` of a raw wait status.
pub(crate) fn decode_status(status: c_int) -> (Option<i32>, Option<i32>) {
    if libc::WIFEXITED(status) {
        (Some(libc::WEXITSTATUS(status)), None)
    } else if libc::WIFSIGNALED(status) {
        (None, Some(libc::WTERMSIG(status)))
    } else {
        (None, None)
    }
}

/// `pidfd_send_signal(pidfd, sig, NULL, 0)`.
pub(crate) fn pidfd_kill(pidfd: c_int, sig: c_int) -> Result<(), Errno> {
    // SAFETY: plain syscall on an fd.
    check(unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd,
            sig,
            std::ptr::null::<c_void>(),
            0u32,
        )
    })
    .map(drop)
}

/// `kill(2)`.
pub(crate) fn kill(pid: c_int, sig: c_int) -> Result<(), Errno> {
    // SAFETY: plain syscall.
    check_int(unsafe { libc::kill(pid, sig) }).map(drop)
}

/// `waitpid(pid, __WALL)`: `(exit_code, signal)` of the reaped child.
pub(crate) fn wait_pid(pid: c_int) -> Result<(Option<i32>, Option<i32>), Errno> {
    let mut status: c_int = 0;
    loop {
        // SAFETY: status is a valid out-pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::__WALL) };
        match check_int(r) {
            Ok(_) => return Ok(decode_status(status)),
            Err(libc::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// `pipe2(O_CLOEXEC)` whose ends are both ≥ 3 (so the child can `dup2` onto 0–2 safely).
pub(crate) fn pipe() -> Result<(c_int, c_int), Errno> {
    let mut fds = [0 as c_int; 2];
    // SAFETY: fds has room for two ints.
    check_int(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    for fd in &mut fds {
        if *fd < 3 {
            // SAFETY: duplicating an fd we own, then closing the low one.
            let high = check_int(unsafe { libc::fcntl(*fd, libc::F_DUPFD_CLOEXEC, 3) })?;
            close(*fd);
            *fd = high;
        }
    }
    Ok((fds[0], fds[1]))
}

/// Sets `O_NONBLOCK` on an fd.
pub(crate) fn set_nonblocking(fd: c_int) -> Result<(), Errno> {
    // SAFETY: plain fcntl calls on an fd we own.
    unsafe {
        let fl = check_int(libc::fcntl(fd, libc::F_GETFL))?;
        check_int(libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK)).map(drop)
    }
}

/// `read(2)` once; `Ok(0)` is EOF.
pub(crate) fn read(fd: c_int, buf: &mut [u8]) -> Result<usize, Errno> {
    // SAFETY: buf is valid for writes of buf.len() bytes.
    let r = unsafe { libc::read(fd, buf.as_mut_ptr() as *mut c_void, buf.len()) };
    check(r as c_long).map(|n| n as usize)
}

/// `write(2)` once.
pub(crate) fn write(fd: c_int, buf: &[u8]) -> Result<usize, Errno> {
    // SAFETY: buf is valid for buf.len() bytes.
    let r = unsafe { libc::write(fd, buf.as_ptr() as *const c_void, buf.len()) };
    check(r as c_long).map(|n| n as usize)
}

/// `poll(2)` with a timeout in milliseconds (-1 = forever); `EINTR` counts as no event.
pub(crate) fn poll(fds: &mut [libc::pollfd], timeout_ms: c_int) -> Result<usize, Errno> {
    // SAFETY: fds is a valid array of pollfd.
    let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
    match check_int(r) {
        Ok(n) => Ok(n as usize),
        Err(libc::EINTR) => Ok(0),
        Err(e) => Err(e),
    }
}

/// Blocks every signal in the calling thread, returning the previous mask.
pub(crate) fn block_all_signals() -> libc::sigset_t {
    // SAFETY: sets are initialised by sigfillset / written by pthread_sigmask.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        old
    }
}

/// Restores a signal mask saved by [`block_all_signals`].
pub(crate) fn restore_signals(old: &libc::sigset_t) {
    // SAFETY: old is a valid, initialised sigset.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, old, std::ptr::null_mut()) };
}
