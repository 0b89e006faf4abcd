//! Namespaces, credentials, capabilities, rlimits, signals, seccomp and Landlock.

use std::os::raw::{c_char, c_int, c_uint, c_ulong, c_void};

use super::{check, check_int, Errno};

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

/// `setpriority(PRIO_PROCESS, tid, nice)` of one thread (`tid` 0: the calling thread).
pub(crate) fn set_nice(tid: c_int, nice: c_int) -> Result<(), Errno> {
    // SAFETY: plain syscall with integer arguments.
    check_int(unsafe { libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, nice) }).map(drop)
}

/// The calling thread's id.
pub(crate) fn gettid() -> c_int {
    // SAFETY: gettid has no preconditions and cannot fail.
    unsafe { libc::gettid() }
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
