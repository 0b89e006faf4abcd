//! The syscall policy as data: the allow-list by group (each saying which runtime or libc path
//! needs it), the calls refused on purpose, and the argument checks.
//!
//! Modelled on the container default profiles (Docker's `default.json`), minus what a jail of
//! untrusted code has no use for. Not listed means `ENOSYS`, as on a kernel without the call,
//! so libc and the runtimes take their fallbacks: NUMA placement (`mbind`, `set_mempolicy`,
//! `migrate_pages`, `move_pages`, `get_mempolicy`: libnuma and the JVM read `ENOSYS` as "no
//! NUMA"), Linux AIO (`io_setup` … reserve from the host-wide `fs.aio-max-nr`; glibc's POSIX
//! AIO uses threads), `sync`/`syncfs` (write back the host's dirty data: the jail's own
//! writable filesystems are tmpfs), `vmsplice`, `remap_file_pages`, `get_robust_list`,
//! `set_thread_area`/`get_thread_area` (32-bit TLS), the obsolete calls (`sysfs`, `uselib`,
//! `ustat`, `_sysctl`, `nfsservctl`, …) and every call newer than this list (`statmount`,
//! `listmount`, `lsm_*`, `*xattrat`, `file_getattr`/`file_setattr`, `futex_wake` …) until it
//! is reviewed. x86_64 has no `vm86`; 32-bit and x32 entry points kill the process (preamble).

use super::Syscall;

/// x86_64 numbers the `libc` crate does not have yet, and the other entries, under one path.
#[allow(non_upper_case_globals)]
pub(crate) mod nr {
    pub(crate) use libc::*;
    /// `cachestat(2)` (Linux 6.5).
    pub(crate) const SYS_cachestat: i64 = 451;
    /// `map_shadow_stack(2)` (Linux 6.6).
    pub(crate) const SYS_map_shadow_stack: i64 = 453;
    /// `open_tree_attr(2)` (Linux 6.15).
    pub(crate) const SYS_open_tree_attr: i64 = 467;
}

/// `(name, number)` pairs from `SYS_…` names under [`nr`].
macro_rules! calls {
    ($($name:ident)*) => { &[$((stringify!($name), nr::$name)),*] };
}

/// The allow-list, by group: `(what and who needs it, calls)`. A call that also has an
/// argument check in `super::verdicts` is allowed only for the arguments that pass it.
pub(crate) const ALLOWED: &[(&str, &[Syscall])] = &[
    (
        "fd I/O: every runtime (libc stdio, Python io, libuv, the JVM, Go's os); sqlite3 \
         (ftruncate, fallocate, flock); cp/shutil/node copyFile (sendfile, \
         copy_file_range); Go's io.Copy (splice); pipes (sh pipelines, subprocess, libuv,          the JVM's process API); isatty and FIONBIO probes (ioctl); \
         subprocess close_fds (close_range); readahead only warms the page cache for files \
         the caller can read anyway",
        calls! {
            SYS_read SYS_write SYS_readv SYS_writev SYS_pread64 SYS_pwrite64 SYS_preadv
            SYS_pwritev SYS_preadv2 SYS_pwritev2 SYS_lseek SYS_close SYS_close_range SYS_dup
            SYS_dup2 SYS_dup3 SYS_fcntl SYS_ioctl SYS_flock SYS_ftruncate SYS_fallocate
            SYS_fadvise64 SYS_readahead
            SYS_sendfile SYS_copy_file_range SYS_splice SYS_tee SYS_pipe SYS_pipe2
        },
    ),
    (
        "waiting on fds and events: libuv (epoll, eventfd, signalfd), Python selectors and \
         asyncio, Go's netpoller (epoll_pwait, eventfd2), JVM NIO, sh (poll/select)",
        calls! {
            SYS_poll SYS_ppoll SYS_select SYS_pselect6 SYS_epoll_create SYS_epoll_create1
            SYS_epoll_ctl SYS_epoll_wait SYS_epoll_pwait SYS_epoll_pwait2 SYS_eventfd
            SYS_eventfd2 SYS_signalfd SYS_signalfd4 SYS_timerfd_create SYS_timerfd_settime
            SYS_timerfd_gettime
        },
    ),
    (
        "paths, metadata and directories: ld.so, every runtime's imports and file APIs, \
         coreutils (ls and cp read ACL/SELinux xattrs), mkfifo (mknod: no device nodes \
         without CAP_MKNOD, and /tmp, /work are nodev), statfs for df/statvfs and the JVM, \
         fchmodat2 for glibc >= 2.39",
        calls! {
            SYS_open SYS_openat SYS_openat2 SYS_creat SYS_stat SYS_fstat SYS_lstat
            SYS_newfstatat SYS_statx SYS_statfs SYS_fstatfs SYS_access SYS_faccessat
            SYS_faccessat2 SYS_readlink SYS_readlinkat SYS_getdents SYS_getdents64 SYS_getcwd
            SYS_chdir SYS_fchdir SYS_rename SYS_renameat SYS_renameat2 SYS_mkdir SYS_mkdirat
            SYS_rmdir SYS_link SYS_linkat SYS_unlink SYS_unlinkat SYS_symlink SYS_symlinkat
            SYS_chmod SYS_fchmod SYS_fchmodat SYS_fchmodat2 SYS_chown SYS_fchown SYS_lchown
            SYS_fchownat SYS_umask SYS_truncate SYS_utime SYS_utimes SYS_futimesat
            SYS_utimensat SYS_mknod SYS_mknodat SYS_setxattr SYS_lsetxattr SYS_fsetxattr
            SYS_getxattr SYS_lgetxattr SYS_fgetxattr SYS_listxattr SYS_llistxattr
            SYS_flistxattr SYS_removexattr SYS_lremovexattr SYS_fremovexattr
        },
    ),
    (
        "memory: malloc, ld.so, GC heaps (JVM, V8, Go); memfd_create (V8, JVM, Python \
         os.memfd_create); pkey_* (V8 guards its JIT pages); membarrier (JVM, liburcu); \
         mlock* (crypto libraries; bounded by RLIMIT_MEMLOCK and charged to the cgroup); \
         mseal and map_shadow_stack (glibc hardening: both only restrict or map the caller's \
         own memory)",
        calls! {
            SYS_brk SYS_mmap SYS_munmap SYS_mprotect SYS_mremap SYS_msync SYS_madvise
            SYS_mlock SYS_mlock2 SYS_munlock SYS_mlockall SYS_munlockall SYS_membarrier
            SYS_memfd_create SYS_pkey_alloc SYS_pkey_free SYS_pkey_mprotect SYS_mseal
            SYS_map_shadow_stack
        },
    ),
    (
        "processes and threads: fork/vfork/clone (Python os.fork and subprocess, \
         posix_spawn, pthread_create after clone3 gets ENOSYS), execve/execveat (exec, and the \
         jail's init through execveat AT_EMPTY_PATH), wait4/waitid, pidfd_open and \
         pidfd_send_signal (Python os.pidfd_open, Go >= 1.23 os/exec), futex and rseq (glibc \
         and Go locks), arch_prctl (TLS), prctl (PR_SET_NAME, PR_SET_PDEATHSIG, \
         PR_SET_DUMPABLE …), personality only as a query or PER_LINUX",
        calls! {
            SYS_clone SYS_fork SYS_vfork SYS_execve SYS_execveat SYS_exit SYS_exit_group
            SYS_wait4 SYS_waitid SYS_kill SYS_tkill SYS_tgkill SYS_pidfd_open
            SYS_pidfd_send_signal SYS_getpid SYS_getppid SYS_gettid SYS_getpgrp SYS_getpgid
            SYS_setpgid SYS_getsid SYS_setsid SYS_set_tid_address SYS_set_robust_list
            SYS_futex SYS_futex_waitv SYS_rseq SYS_restart_syscall SYS_arch_prctl SYS_prctl
            SYS_personality
        },
    ),
    (
        "identity and limits: id, getpwuid paths, the JVM and Go raising RLIMIT_NOFILE; \
         capget (node); the set* calls can only repeat the run's own uid/gid and capset can only \
         drop (the jail holds no capability)",
        calls! {
            SYS_getuid SYS_geteuid SYS_getgid SYS_getegid SYS_getgroups SYS_getresuid
            SYS_getresgid SYS_setuid SYS_setgid SYS_setreuid SYS_setregid SYS_setresuid
            SYS_setresgid SYS_setgroups SYS_setfsuid SYS_setfsgid SYS_capget SYS_capset
            SYS_getrlimit SYS_setrlimit SYS_prlimit64 SYS_getrusage SYS_times
        },
    ),
    (
        "signals: every runtime's handlers, sigaltstack (Go, the JVM, Rust's stack-overflow \
         guard), Python signal.alarm/setitimer, sh's wait and trap",
        calls! {
            SYS_rt_sigaction SYS_rt_sigprocmask SYS_rt_sigreturn SYS_rt_sigpending
            SYS_rt_sigsuspend SYS_rt_sigtimedwait SYS_rt_sigqueueinfo SYS_rt_tgsigqueueinfo
            SYS_sigaltstack SYS_pause SYS_alarm SYS_getitimer SYS_setitimer
        },
    ),
    (
        "time: sleeps, the vDSO fallbacks, POSIX timers (JVM, Go profiler, perl Time::HiRes)",
        calls! {
            SYS_nanosleep SYS_clock_nanosleep SYS_clock_gettime SYS_clock_getres
            SYS_gettimeofday SYS_time SYS_timer_create SYS_timer_settime SYS_timer_gettime
            SYS_timer_getoverrun SYS_timer_delete
        },
    ),
    (
        "scheduling and system information: nproc, os.cpus and availableProcessors \
         (sched_getaffinity, sysinfo), thread priorities (no real-time class without \
         CAP_SYS_NICE), ionice, uname, getrandom (every runtime's seeding)",
        calls! {
            SYS_sched_yield SYS_sched_getaffinity SYS_sched_setaffinity SYS_sched_getparam
            SYS_sched_setparam SYS_sched_getscheduler SYS_sched_setscheduler
            SYS_sched_get_priority_max SYS_sched_get_priority_min SYS_sched_rr_get_interval
            SYS_sched_getattr SYS_sched_setattr SYS_getpriority SYS_setpriority SYS_getcpu
            SYS_ioprio_get SYS_ioprio_set SYS_uname SYS_sysinfo SYS_getrandom
        },
    ),
    (
        "sockets (families checked in socket/socketpair): multiprocessing and asyncio \
         (socketpair), servers on the jail's own loopback, glibc's nscd probe (connect)",
        calls! {
            SYS_socket SYS_socketpair SYS_connect SYS_accept SYS_accept4 SYS_bind SYS_listen
            SYS_getsockname SYS_getpeername SYS_getsockopt SYS_setsockopt SYS_sendto
            SYS_recvfrom SYS_sendmsg SYS_recvmsg SYS_sendmmsg SYS_recvmmsg SYS_shutdown
        },
    ),
    (
        "System V and POSIX IPC, private to the jail's IPC namespace: PHP sysvsem/sysvshm, \
         perl IPC::SysV, POSIX message queues",
        calls! {
            SYS_shmget SYS_shmat SYS_shmctl SYS_shmdt SYS_semget SYS_semop SYS_semctl
            SYS_semtimedop SYS_msgget SYS_msgsnd SYS_msgrcv SYS_msgctl SYS_mq_open
            SYS_mq_unlink SYS_mq_timedsend SYS_mq_timedreceive SYS_mq_notify SYS_mq_getsetattr
        },
    ),
    (
        "self-restriction, which can only take rights away: Landlock and seccomp (sandboxed \
         tools such as a nested jail's own filter)",
        calls! {
            SYS_landlock_create_ruleset SYS_landlock_add_rule SYS_landlock_restrict_self
            SYS_seccomp
        },
    ),
];

/// Refused on purpose with `EPERM`, whatever the arguments: `(why, calls)`.
pub(crate) const REFUSED: &[(&str, &[Syscall])] = &[
    (
        "mounts and the root: the jail's mount tree is fixed",
        calls! {
            SYS_mount SYS_umount2 SYS_pivot_root SYS_chroot SYS_move_mount SYS_open_tree
            SYS_open_tree_attr SYS_fsopen SYS_fsconfig SYS_fsmount SYS_fspick
            SYS_mount_setattr
        },
    ),
    (
        "namespaces and host identity (the UTS namespace is the jail's own, but renaming it \
         needs CAP_SYS_ADMIN anyway)",
        calls! { SYS_unshare SYS_setns SYS_sethostname SYS_setdomainname },
    ),
    (
        "reaching into other processes",
        calls! {
            SYS_ptrace SYS_process_vm_readv SYS_process_vm_writev SYS_process_madvise
            SYS_process_mrelease SYS_kcmp SYS_pidfd_getfd
        },
    ),
    (
        "kernel facilities with a large attack surface or global state",
        calls! {
            SYS_keyctl SYS_add_key SYS_request_key SYS_bpf SYS_perf_event_open
            SYS_io_uring_setup SYS_io_uring_enter SYS_io_uring_register SYS_userfaultfd
            SYS_memfd_secret SYS_modify_ldt SYS_lookup_dcookie
        },
    ),
    (
        "administration of the machine",
        calls! {
            SYS_kexec_load SYS_kexec_file_load SYS_init_module SYS_finit_module
            SYS_delete_module SYS_reboot SYS_swapon SYS_swapoff SYS_acct SYS_quotactl
            SYS_quotactl_fd SYS_syslog SYS_vhangup SYS_iopl SYS_ioperm SYS_settimeofday
            SYS_clock_settime SYS_clock_adjtime SYS_adjtimex
        },
    ),
    (
        "file handles: open_by_handle_at resolves handles outside the jail's mounts",
        calls! { SYS_open_by_handle_at SYS_name_to_handle_at },
    ),
    (
        "page-cache side channels: residency of pages shared with other runs and the host",
        calls! { SYS_mincore SYS_cachestat },
    ),
    (
        "file watches: inotify and fanotify on the shared read-only host mounts would show \
         one run which files another opens",
        calls! {
            SYS_inotify_init SYS_inotify_init1 SYS_inotify_add_watch SYS_inotify_rm_watch
            SYS_fanotify_init SYS_fanotify_mark
        },
    ),
];

/// Calls answered "done" (0) without being made: `fsync`, `fdatasync` and `sync_file_range`.
/// Everything a jail can write is on tmpfs, where they do nothing; on a read-only host file
/// each `fsync` sent a cache-flush request to the host's disk (a flush per call, thousands a
/// second, outside every limit). sqlite3 and Python's `os.fsync` keep working.
pub(crate) const SUCCEED_UNDONE: &[(&str, &[Syscall])] = &[(
    "flushes to disk: sqlite3, os.fsync, Go's os.File.Sync",
    calls! { SYS_fsync SYS_fdatasync SYS_sync_file_range },
)];

/// `fcntl` commands refused with `EPERM`: `F_NOTIFY` (dnotify) would watch directories of the
/// shared read-only mounts, which inotify and fanotify are refused for: it reports one run
/// which files another run or the host reads there. `F_SETLEASE`: a lease on a file of
/// `/work`, kept alive past the run in a socket cycle, made the collection of that file
/// wait (`EWOULDBLOCK`); no runtime takes leases (file servers do).
pub(crate) const FCNTL_REFUSED: &[u32] = &[libc::F_NOTIFY as u32, libc::F_SETLEASE as u32];

/// `clone` flags that create namespaces; `clone` with any of them gets `EPERM`.
pub(crate) const NAMESPACE_FLAGS: &[i32] = &[
    libc::CLONE_NEWUSER,
    libc::CLONE_NEWNS,
    libc::CLONE_NEWPID,
    libc::CLONE_NEWNET,
    libc::CLONE_NEWIPC,
    libc::CLONE_NEWUTS,
    libc::CLONE_NEWCGROUP,
];

/// The socket families a jail may create (`socket`, `socketpair`); any other gets
/// `EAFNOSUPPORT`, the kernel's own answer for a family it was built without, so programs
/// take their "not available here" path (glibc's netlink probe in `getaddrinfo` falls back).
pub(crate) const SOCKET_FAMILIES: &[u32] = &[
    libc::AF_UNIX as u32,
    libc::AF_INET as u32,
    libc::AF_INET6 as u32,
];

/// `fadvise64` advice refused with `EPERM`: `DONTNEED` evicts clean pages of files shared
/// with other runs (the eviction half of a page-cache attack); `NOREUSE` (Linux >= 6.3) lowers
/// their reclaim priority.
pub(crate) const FADVISE_REFUSED: &[u32] = &[
    libc::POSIX_FADV_DONTNEED as u32,
    libc::POSIX_FADV_NOREUSE as u32,
];

/// `madvise` advice refused with `EPERM`: `MADV_COLD` (20) and `MADV_PAGEOUT` (21) deactivate
/// or reclaim the caller's pages, file pages shared with other runs included.
pub(crate) const MADVISE_REFUSED: &[u32] = &[20, 21];

/// `ioctl` requests refused with `EPERM`: those that name the host's file system behind the
/// read-only binds — its UUID (`FS_IOC_GETFSUUID`, ext4's `EXT4_IOC_GETFSUUID`, btrfs's
/// `BTRFS_IOC_FS_INFO`), label (`FS_IOC_GETFSLABEL`) or sysfs path (`FS_IOC_GETFSSYSFSPATH`,
/// e.g. `ext4/vda`) — and those that map a shared file to the host disk's physical blocks
/// (`FS_IOC_FIEMAP`, ext4's `EXT4_IOC_GET_ES_CACHE` with the same answer, XFS's `GETBMAP`
/// family) or load its extent tree into the host's memory (`EXT4_IOC_PRECACHE_EXTENTS`). No
/// runtime needs them; every other request keeps the allow-list's verdict.
pub(crate) const IOCTL_REFUSED: &[u32] = &[
    0x8011_1500, // FS_IOC_GETFSUUID
    0x8081_1501, // FS_IOC_GETFSSYSFSPATH
    0x8100_9431, // FS_IOC_GETFSLABEL
    0x8008_662c, // EXT4_IOC_GETFSUUID
    0x8400_941f, // BTRFS_IOC_FS_INFO
    0xc020_660b, // FS_IOC_FIEMAP
    0xc020_662a, // EXT4_IOC_GET_ES_CACHE
    0x0000_6612, // EXT4_IOC_PRECACHE_EXTENTS
    0xc020_5826, // XFS_IOC_GETBMAP
    0xc020_582c, // XFS_IOC_GETBMAPA
    0xc020_5838, // XFS_IOC_GETBMAPX
];

/// `RWF_NOWAIT`: `preadv2`/`pwritev2` with it answer `EAGAIN` for pages not cached, a residency
/// test of shared files; refused with `EPERM`.
pub(crate) const RWF_NOWAIT: u64 = 0x8;

/// `personality` arguments allowed: the query (`0xffffffff`) and `PER_LINUX` (0).
pub(crate) const PERSONALITY_ALLOWED: &[u32] = &[0xffff_ffff, 0];
