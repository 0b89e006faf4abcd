//! exec, clone, wait, kill, pipes and poll.

use std::ffi::CStr;
use std::os::raw::{c_char, c_int, c_long, c_void};
use std::sync::atomic::{AtomicU64, Ordering};

use super::fs::close;
use super::{check, check_int, errno, Errno};

/// `execveat(fd, "", argv, envp, AT_EMPTY_PATH)`: runs the executable behind `fd` (a sealed
/// memfd); only returns on failure.
pub(crate) fn execve_fd(fd: c_int, argv: &[*const c_char], envp: &[*const c_char]) -> Errno {
    // SAFETY: argv and envp are NULL-terminated arrays of pointers to NUL-terminated strings
    // with static lifetime; the path is an empty C string.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            fd,
            c"".as_ptr(),
            argv.as_ptr(),
            envp.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    errno()
}

/// A sealed, read-only, close-on-exec memfd holding `bytes` (the init executable).
pub(crate) fn sealed_memfd(name: &CStr, bytes: &[u8]) -> Result<c_int, Errno> {
    const MFD_EXEC: u32 = 0x10;
    let flags = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
    // SAFETY: name is NUL-terminated. MFD_EXEC (Linux ≥ 6.3) keeps the memfd executable
    // where vm.memfd_noexec would otherwise refuse; older kernels reject it with EINVAL.
    let mut fd = unsafe { libc::memfd_create(name.as_ptr(), flags | MFD_EXEC) };
    if fd < 0 && errno() == libc::EINVAL {
        // SAFETY: as above.
        fd = unsafe { libc::memfd_create(name.as_ptr(), flags) };
    }
    let fd = check_int(fd)?;
    let sealed = super::fs::write_all(fd, bytes).and_then(|()| {
        let seals =
            libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
        // SAFETY: plain fcntl on the memfd we just created.
        check_int(unsafe { libc::fcntl(fd, libc::F_ADD_SEALS, seals) }).map(drop)
    });
    match sealed {
        Ok(()) => Ok(fd),
        Err(e) => {
            close(fd);
            Err(e)
        }
    }
}

/// `fcntl(fd, F_SETPIPE_SZ, bytes)`: the pipe's capacity (rounded up by the kernel).
pub(crate) fn set_pipe_size(fd: c_int, bytes: usize) -> Result<(), Errno> {
    let bytes = c_int::try_from(bytes).unwrap_or(c_int::MAX);
    // SAFETY: plain fcntl on a pipe fd.
    check_int(unsafe { libc::fcntl(fd, libc::F_SETPIPE_SZ, bytes) }).map(drop)
}

/// Ends the child without running any destructor or atexit handler.
pub(crate) fn exit_now(code: c_int) -> ! {
    // SAFETY: _exit never returns and is async-signal-safe.
    unsafe { libc::_exit(code) }
}

/// `CLONE_INTO_CGROUP` (libc's constant is deprecated for overflowing `c_int`).
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// Children this process created with `CLONE_INTO_CGROUP` (see
/// `Sandbox::runs_cloned_into_cgroup`).
pub(crate) static CLONED_INTO_CGROUP: AtomicU64 = AtomicU64::new(0);

/// A fork-like `clone3` with `CLONE_PIDFD` (and `CLONE_INTO_CGROUP` when `cgroup_fd` is set).
/// Returns `(0, -1)` in the child and `(pid, pidfd)` in the parent.
///
/// # Safety
/// The caller must, in the child, only make async-signal-safe calls (no allocation, no locks)
/// until `execve` or `_exit`: the child is a copy of a possibly multi-threaded process.
#[cfg(not(target_arch = "x86_64"))]
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
    if pid > 0 && cgroup_fd.is_some() {
        CLONED_INTO_CGROUP.fetch_add(1, Ordering::Relaxed);
    }
    Ok((pid, pidfd))
}

/// Stack of a child made by [`clone3_vm`] (it runs only `child::run`; touched pages only are
/// allocated), bytes.
#[cfg(target_arch = "x86_64")]
const CHILD_STACK: usize = 256 << 10;

/// Guard page at the bottom of that stack, bytes.
#[cfg(target_arch = "x86_64")]
const GUARD: usize = 4096;

/// [`clone3`] without copying the caller's address space: `CLONE_VM | CLONE_VFORK` (as
/// `posix_spawn` does), the child on a stack of its own, the calling thread asleep until the
/// child's `execve` (or exit). A fork-like clone of the supervisor copies its page tables and
/// makes every page it has written copy-on-write: each thread of the supervisor then takes a
/// fault, with a TLB shoot-down across CPUs, on each page it writes next — per jail, on the
/// request path. Here the child's own address space is created by its `execve` of the init,
/// as before. Returns `(pid, pidfd)` in the caller; the child runs `child(arg)`, which never
/// returns.
///
/// # Safety
/// `child(arg)` runs in the caller's memory: it must only make raw syscalls (no allocation,
/// no locks, no unwinding), write nothing the caller reads afterwards (errno aside: the
/// caller's thread is asleep meanwhile), and end in `execve` or `_exit`. All signals must be
/// blocked, so that no handler runs in the child. `arg` must stay valid until this returns.
#[cfg(target_arch = "x86_64")]
pub(crate) unsafe fn clone3_vm(
    flags: u64,
    cgroup_fd: Option<c_int>,
    child: extern "C" fn(*mut c_void) -> !,
    arg: *mut c_void,
) -> Result<(c_int, c_int), Errno> {
    let stack = libc::mmap(
        std::ptr::null_mut(),
        CHILD_STACK,
        libc::PROT_READ | libc::PROT_WRITE,
        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
        -1,
        0,
    );
    if stack == libc::MAP_FAILED {
        return Err(errno());
    }
    let guarded = check_int(libc::mprotect(stack, GUARD, libc::PROT_NONE));
    let result = guarded.and_then(|_| {
        let mut pidfd: c_int = -1;
        let mut args: libc::clone_args = std::mem::zeroed();
        args.flags =
            flags | libc::CLONE_PIDFD as u64 | libc::CLONE_VM as u64 | libc::CLONE_VFORK as u64;
        args.pidfd = &mut pidfd as *mut c_int as u64;
        args.exit_signal = libc::SIGCHLD as u64;
        // clone3 takes the stack's lowest address and its size.
        args.stack = stack as u64;
        args.stack_size = CHILD_STACK as u64;
        if let Some(fd) = cgroup_fd {
            args.flags |= CLONE_INTO_CGROUP;
            args.cgroup = fd as u64;
        }
        let ret: c_long;
        // The child returns from `syscall` with rax = 0 on the new stack (16-byte aligned,
        // its top), every other register as the parent's but rcx and r11: it calls
        // `child(arg)` from r13/r12, which never returns. The parent jumps past that.
        core::arch::asm!(
            "syscall",
            "test rax, rax",
            "jnz 2f",
            "mov rdi, r12",
            "call r13",
            "ud2",
            "2:",
            inlateout("rax") libc::SYS_clone3 => ret,
            in("rdi") &mut args as *mut libc::clone_args,
            in("rsi") std::mem::size_of::<libc::clone_args>(),
            in("r12") arg,
            in("r13") child,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
        if ret < 0 {
            return Err(-ret as Errno);
        }
        if cgroup_fd.is_some() {
            CLONED_INTO_CGROUP.fetch_add(1, Ordering::Relaxed);
        }
        Ok((ret as c_int, pidfd))
    });
    // The child has exec'd or exited (CLONE_VFORK): its stack is free.
    libc::munmap(stack, CHILD_STACK);
    result
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

/// `pidfd_open(pid, 0)`.
pub(crate) fn pidfd_open(pid: c_int) -> Result<c_int, Errno> {
    // SAFETY: plain syscall with integer arguments.
    check(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0u32) }).map(|fd| fd as c_int)
}

/// Whether the process behind `pidfd` has exited (a zero-timeout `poll`).
pub(crate) fn pidfd_exited(pidfd: c_int) -> bool {
    let mut p = [libc::pollfd {
        fd: pidfd,
        events: libc::POLLIN,
        revents: 0,
    }];
    // SAFETY: p is a valid one-element pollfd array.
    let r = unsafe { libc::poll(p.as_mut_ptr(), 1, 0) };
    r > 0 && p[0].revents != 0
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

/// `clock_gettime(clock)` as `(seconds, nanoseconds)`.
pub(crate) fn clock_now(clock: libc::clockid_t) -> (i64, i64) {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid out-pointer; the clocks used here always exist.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    (ts.tv_sec, ts.tv_nsec)
}
