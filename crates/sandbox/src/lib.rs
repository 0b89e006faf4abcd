//! # livexec-sandbox
//!
//! Runs an untrusted program in a jail built from Linux primitives (namespaces, cgroups,
//! seccomp, Landlock, rlimits — no container engine), with a `std::process`-shaped API, and
//! hands back what it printed plus how it ended.
//!
//! ## Quickstart
//!
//! ```no_run
//! use livexec_sandbox::{Command, Limits, Sandbox, SandboxConfig, Stream};
//!
//! # fn main() -> Result<(), livexec_sandbox::SandboxError> {
//! // Once per process; share it with `Arc` across threads.
//! let sandbox = Sandbox::new(SandboxConfig::default())?;
//! println!("limits enforced with {}", sandbox.cgroup_mode());
//!
//! let mut cmd = Command::new("/root/.pyenv/versions/3.11.7/bin/python3");
//! cmd.arg("main.py")
//!     .file("main.py", "print(input()[::-1])") // code goes in as a file in /work
//!     .stdin("olleh\n")
//!     .mount_ro("/root/.pyenv/versions/3.11.7") // the interpreter's prefix, same path inside
//!     .limits(Limits { wall_ms: 5_000, ..Limits::default() });
//!
//! let outcome = sandbox.run(&cmd, &mut |stream: Stream, chunk: &[u8]| {
//!     // Called as output arrives (live streaming).
//!     eprintln!("{stream:?}: {} bytes", chunk.len());
//! })?;
//! assert_eq!(outcome.stdout, b"hello\n");
//! assert_eq!(outcome.exit_code, Some(0));
//! # Ok(())
//! # }
//! ```
//!
//! A program that fails, crashes, times out or exceeds a limit gives an [`Outcome`] with the
//! matching flags; [`SandboxError`] means the platform could not build or supervise the jail.
//!
//! ## Layers
//!
//! | layer | what |
//! |---|---|
//! | namespaces | new pid, mount, ipc, uts and cgroup namespaces, a time namespace where the kernel has one (the run's clocks start at 0 when its jail is prepared), and a network namespace with only `lo` (down) taken from a pool of empty ones (one run at a time, see [`Sandbox::prewarm`]); pid 1 is `livexec-init`, a tiny static program embedded in this crate and `execveat`ed from a sealed memfd with argv `["livexec-init"]` and an empty environment (so nothing of the server — argv, environment, memory — exists inside); it makes itself non-dumpable, forks the program (pid 2), reaps every process, reports the program's wait status, then exits as soon as the program does, so the kernel kills everything it left behind (daemons that `setsid` and double-fork included); the program keeps normal signal semantics (an `abort()` is `SIGABRT`, not an ignored signal of a pid 1) |
//! | identity | as root: `setgroups([])`, a uid (= gid) of the run's own from [`SandboxConfig::uid_base`]`..+`[`SandboxConfig::uid_count`] (a range no host account uses, `flock`ed per id across processes), so what the kernel counts per user (pending signals, pipe pages, mqueue bytes) is the run's alone — never uid 0, never the host's `nobody`; `RLIMIT_SIGPENDING` 1024, `RLIMIT_MSGQUEUE` 256 KiB; every capability dropped (bounding, permitted, effective, inheritable, ambient); `no_new_privs` |
//! | filesystem | `pivot_root` into a fresh read-only tmpfs root with read-only `nosuid,nodev` binds of `/usr`, the usrmerge links (`/bin → usr/bin` …) or dirs, `/etc/ld.so.cache`, `/etc/localtime`, and each [`Command::mount_ro`] path at its original path; generated `/etc/passwd`, `group`, `hosts`; private size-limited tmpfs `/tmp`, `/work` (the cwd, holding [`Command::file`]s, owned by the run's uid) and `/dev/shm`; a read-only `nosuid,noexec` `/dev` tmpfs holding only the null, zero, full, random and urandom nodes (made with `mknod` before the privilege drop; the jail cannot make any); a `/proc` of the run's pid namespace that shows the run, not the host (module `procfs`): every host file the jail could read covered by an empty read-only file or directory, `meminfo`, `cpuinfo`, `stat`, `uptime`, `loadavg` and a small `/proc/sys` (random `boot_id`, `threads-max` = pids limit) generated from the run's limits and bound read-only; the read-only binds show the source `livexec` instead of the host's block device in `mountinfo` ([`Sandbox::proc_isolation`] says what the host allowed); no `/sys` |
//! | limits | cgroup memory (no swap), CPU quota, pids; rlimits NOFILE, FSIZE, CORE=0, CPU (optional); tmpfs sizes; wall clock and output caps in the supervisor |
//! | syscalls | seccomp (a binary search over the syscall number compiled once per [`Sandbox`] and checked in the tests against `seccompiler`'s linear compilation of the same policy), an allow-list modelled on the container default profiles, each group named with the runtime or libc path that needs it: kill on a foreign architecture or x32 numbers; `clone3` → `ENOSYS` (so libc falls back to `clone`, whose flags are checked); `EPERM` for calls refused on purpose: `clone` with namespace flags, `unshare`, `setns`, the mount API (`open_tree_attr` included), `ptrace`, `process_vm_*`, `process_madvise`, `kcmp`, `pidfd_getfd`, keyring, `bpf`, `perf_event_open`, io_uring, `userfaultfd`, `memfd_secret`, `modify_ldt`, kexec/modules, `reboot`, swap, quota, `syslog`, clock setting, `iopl`/`ioperm`, file handles, inotify/fanotify (file watches on the shared host mounts), `personality` other than the query, and the page-cache probes (`mincore`, `cachestat`, `fadvise` `DONTNEED`/`NOREUSE`, `madvise` `MADV_COLD`/`MADV_PAGEOUT`, `RWF_NOWAIT`); `EAFNOSUPPORT` for sockets other than `AF_UNIX`, `AF_INET`, `AF_INET6` (no netlink, vsock, packet); `ENOSYS` for everything else, as on a kernel without the call (calls added to later kernels stay closed until reviewed) |
//! | Landlock | where the kernel has it: writes only beneath `/tmp`, `/work`, `/dev/shm` and to `/dev` devices |
//! | teardown | the pid namespace dies with its init; then every pid left in the run's cgroup is killed (v2 `cgroup.kill`; v1 freezer freeze + SIGKILL + thaw until empty) and the cgroup removed, by a background thread once the outcome is read (off the request path); mounts live only in the jail's mount namespace and vanish with it; their mount points (`<run_dir>/mnt/root` and `mnt/stage`) are shared by every supervisor and never removed, since removing a directory that a dying namespace still has a mount on waits for an RCU grace period |
//! | report | exit code or signal, the program's own wall time (from `execve` to exit, ms and µs), CPU time and peak memory from the cgroup, OOM kill, timeout, output cap, whether the jail was prepared ahead of need |
//!
//! ## How the jail is built
//!
//! A jail is *prepared* (module `run`), then *started* once with a [`Command`]. Preparing:
//! everything is built in the calling thread before `clone`: the step list (module `plan`)
//! with every path as a `CString`, the compiled seccomp program (built once per [`Sandbox`]).
//! The supervisor then calls `clone3` with the new namespaces and `CLONE_PIDFD` (plus
//! `CLONE_INTO_CGROUP` on cgroup v2), and on x86-64 `CLONE_VM | CLONE_VFORK` with a stack of
//! the child's own, as `posix_spawn` does: no copy of the supervisor's address space, hence
//! no copy-on-write faults (each with a TLB shoot-down) in the supervisor's threads after
//! every jail; the calling thread sleeps until the child's `execveat`. (The child's drop to
//! the run's uid marks that shared address space non-dumpable, as the kernel does on any
//! credential change: the supervisor then makes no core dump.) The child, one thread running
//! in (or, elsewhere, a copy of) a possibly multi-threaded process, only walks the step list making raw syscalls (no allocation, no
//! locks — even `setresuid` is the raw syscall, since glibc's wrapper would wait for threads
//! that do not exist in the child): mounts, `pivot_root`, rlimits, the drop to the run's uid,
//! Landlock, seccomp, and last the `execveat` of the init. On cgroup v1 the child joins its
//! cgroups by writing `0` to each `tasks` file, which moves a single thread and so avoids the
//! global lock that makes `cgroup.procs` writes cost ~15 ms. A setup failure is reported
//! through the status pipe as `(step, errno)` and becomes a [`SandboxError::ChildSetup`]
//! naming the syscall and path. The init reports *ready* on the same pipe and waits on a go
//! pipe. Starting: the supervisor writes the command's files into the jail's `/work` (through
//! `/proc/<init>/root`, before anything of the run executes) and the program, its argv and
//! environment on the go pipe; the init forks and the child `execve`s the program, which
//! closes the status pipe: EOF marks the start of the program's wall time. `PR_SET_PDEATHSIG`
//! (armed again after the uid change, which clears it, and backed by a pidfd check of the
//! supervisor for the race before it is armed) takes the jail down if the supervisor dies; a
//! start-up sweep removes cgroups and run directories whose name embeds the pid of a dead
//! supervisor. The supervisor does not need to be a subreaper: the jail's init is its direct
//! child.
//!
//! ## Speed
//!
//! `cargo bench -p livexec-sandbox --bench startup` (as root; `N=` runs per case) prints
//! min/p50/p99 of the bare interpreter and of the same program in a jail built on the spot
//! (*cold*) and in one prepared ahead of need (*warm*, [`Sandbox::keep_warm`]), side by side
//! with the same clean environment, for python, node and `/usr/bin/true`, plus the sandbox's
//! own cost on the request path and the supervisor's memory per concurrent run. A cold jail
//! costs a few ms of kernel work (namespaces, ~30 mount operations, and about 1 ms for the `/proc`
//! that shows the run: ~40 binds over procfs files, its staging tmpfs, the time namespace); a
//! warm one only the hand-over (files, go message, the init's fork). Teardown happens after the outcome, off the
//! request path. Network namespaces, the slowest to create and destroy, come from a pool
//! ([`Sandbox::prewarm`]).
//!
//! Every raw syscall lives in one module (`sys`); every `unsafe` block says why it is sound.
//! The supervisor ignores `SIGPIPE` like every Rust program (writing stdin to a program that
//! closed it gives `EPIPE`, not a signal).
//!
//! ## Host requirements
//!
//! - Linux ≥ 5.10 (clone3 with `CLONE_PIDFD`, `close_range`, `mount_setattr` needs 5.12;
//!   Landlock is used when present, from 5.13), x86_64.
//! - Root (the supervisor creates namespaces and drops each jail to a uid of its own).
//!   Unprivileged user namespaces alone are not enough for this version. Building the crate
//!   needs the C compiler as the linker of the jail's init (a `no_std` program that links no
//!   C library).
//! - cgroups: v2 with a delegated subtree where `memory cpu pids` can be enabled (the
//!   supervisor moves itself into `<its cgroup>/<name>-supervisor` and runs jails under
//!   `<its cgroup>/<name>/<pid>-<seq>`), or v1 with `memory`, `cpu`, `cpuacct`, `pids` (and
//!   `freezer`) mounted. Without either, [`Sandbox::new`] refuses, unless
//!   [`SandboxConfig::allow_rlimits_only`] is set for development (loud warning, no memory,
//!   CPU or process limits).

mod cgroup;
mod child;
mod command;
mod error;
mod init;
mod isolation;
mod jail;
mod layout;
mod limits;
mod netns;
mod outcome;
mod plan;
mod procfs;
mod reaper;
mod run;
mod sandbox;
mod seccomp;
mod supervise;
mod sys;
mod uids;
mod warm;
pub mod workdir;

pub use command::{Command, DEFAULT_ENV};
pub use error::SandboxError;
pub use isolation::Isolation;
pub use limits::Limits;
pub use outcome::{Outcome, Stream};
pub use procfs::ProcIsolation;
pub use sandbox::{CgroupMode, Prepared, Sandbox, SandboxConfig};
#[doc(hidden)]
pub use seccomp::allowed_syscalls;

#[cfg(test)]
mod tests {
    /// One `Sandbox` is shared by every worker thread.
    #[test]
    fn sandbox_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<crate::Sandbox>();
        assert_send_sync::<crate::Command>();
        assert_send_sync::<crate::Outcome>();
        assert_send_sync::<crate::SandboxError>();
    }
}
