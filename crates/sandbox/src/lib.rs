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
//! | namespaces | new pid, mount, ipc, uts and cgroup namespaces, and a network namespace with only `lo` (down) taken from a pool of empty ones (one run at a time, see [`Sandbox::prewarm`]); pid 1 is a tiny init of ours (forked from the child, no exec) that reaps every process and reports the program's (pid 2) wait status, then exits as soon as the program does, so the kernel kills everything it left behind (daemons that `setsid` and double-fork included); the program keeps normal signal semantics (an `abort()` is `SIGABRT`, not an ignored signal of a pid 1) |
//! | identity | as root: `setgroups([])`, gid/uid 65534 — never uid 0; every capability dropped (bounding, permitted, effective, inheritable, ambient); `no_new_privs` |
//! | filesystem | `pivot_root` into a fresh read-only tmpfs root with read-only `nosuid,nodev` binds of `/usr`, the usrmerge links (`/bin → usr/bin` …) or dirs, `/etc/ld.so.cache`, `/etc/localtime`, and each [`Command::mount_ro`] path at its original path; generated `/etc/passwd`, `group`, `hosts`; private size-limited tmpfs `/tmp` and `/work` (the cwd, holding [`Command::file`]s); a read-only `nosuid,noexec` `/dev` tmpfs holding only the null, zero, full, random and urandom nodes (made with `mknod` before the privilege drop; the jail cannot make any); a new `/proc`; no `/sys` |
//! | limits | cgroup memory (no swap), CPU quota, pids; rlimits NOFILE, FSIZE, CORE=0, CPU (optional); tmpfs sizes; wall clock and output caps in the supervisor |
//! | syscalls | seccomp (via `seccompiler`, built once per [`Sandbox`]), an allow-list modelled on the container default profiles, each group named with the runtime or libc path that needs it: kill on a foreign architecture or x32 numbers; `clone3` → `ENOSYS` (so libc falls back to `clone`, whose flags are checked); `EPERM` for calls refused on purpose: `clone` with namespace flags, `unshare`, `setns`, the mount API (`open_tree_attr` included), `ptrace`, `process_vm_*`, `process_madvise`, `kcmp`, `pidfd_getfd`, keyring, `bpf`, `perf_event_open`, io_uring, `userfaultfd`, `memfd_secret`, `modify_ldt`, kexec/modules, `reboot`, swap, quota, `syslog`, clock setting, `iopl`/`ioperm`, file handles, inotify/fanotify (file watches on the shared host mounts), `personality` other than the query, and the page-cache probes (`mincore`, `cachestat`, `fadvise` `DONTNEED`/`NOREUSE`, `madvise` `MADV_COLD`/`MADV_PAGEOUT`, `RWF_NOWAIT`); `EAFNOSUPPORT` for sockets other than `AF_UNIX`, `AF_INET`, `AF_INET6` (no netlink, vsock, packet); `ENOSYS` for everything else, as on a kernel without the call (calls added to later kernels stay closed until reviewed) |
//! | Landlock | where the kernel has it: writes only beneath `/tmp`, `/work` and to `/dev` devices |
//! | teardown | the pid namespace dies with its init; then every pid left in the run's cgroup is killed (v2 `cgroup.kill`; v1 freezer freeze + SIGKILL + thaw until empty) and the cgroup removed; mounts live only in the jail's mount namespace and vanish with it |
//! | report | exit code or signal, the program's own wall time (from `execve` to exit), CPU time and peak memory from the cgroup, OOM kill, timeout, output cap |
//!
//! ## How the jail is built (no helper executable)
//!
//! Everything is prepared in the calling thread before `clone`: the step list (module `plan`) with
//! every path as a `CString`, `argv`/`envp` pointer arrays, the compiled seccomp program
//! (built once per [`Sandbox`]). The supervisor then calls `clone3` with the new namespaces
//! and `CLONE_PIDFD` (plus `CLONE_INTO_CGROUP` on cgroup v2). The child, a copy of one thread
//! of a possibly multi-threaded process, only walks the step list making raw syscalls (no
//! allocation, no locks — even `setresuid` is the raw syscall, since glibc's wrapper would wait
//! for threads that do not exist in the child) and ends in `execve`. On cgroup v1 the child
//! joins its cgroups by writing `0` to each `tasks` file, which moves a single thread and so
//! avoids the global lock that makes `cgroup.procs` writes cost ~15 ms. A setup failure is
//! reported through a close-on-exec status pipe as `(step, errno)` and becomes a
//! [`SandboxError::ChildSetup`] naming the syscall and path. The last step before `execve`
//! forks: the child becomes the jail's init (pid 1: reaps orphans, writes the program's wait
//! status to an exit pipe, exits, and the kernel kills whatever is left in the namespace), the
//! grandchild execs the program as pid 2. `PR_SET_PDEATHSIG` (armed again after the uid
//! change, which clears it, and backed by a pidfd check of the supervisor for the race before
//! it is armed) takes the jail down if the supervisor dies; a start-up sweep removes cgroups
//! and run directories whose name embeds the pid of a dead supervisor. The supervisor does
//! not need to be a subreaper: the jail's init is its direct child.
//!
//! ## Speed
//!
//! `cargo bench -p livexec-sandbox --bench startup` (as root; `N=` runs per case) prints
//! min/median/p95 of the bare interpreter and of the same program in the sandbox, side by
//! side with the same clean environment, for python, node and `/usr/bin/true`, plus the
//! supervisor's memory per concurrent run. The fixed cost of a jail is about 2 ms of kernel
//! work (namespaces, ~30 mount operations, teardown). Network namespaces, the slowest to
//! create and destroy, come from a pool ([`Sandbox::prewarm`]). Designed next step for a warm
//! pool: pre-cloned children already in their cgroup with the command-independent tree
//! mounted, waiting on a pipe for the go (files written by the supervisor into their `/work`).
//!
//! Every raw syscall lives in one module (`sys`); every `unsafe` block says why it is sound.
//! The supervisor ignores `SIGPIPE` like every Rust program (writing stdin to a program that
//! closed it gives `EPIPE`, not a signal).
//!
//! ## Host requirements
//!
//! - Linux ≥ 5.10 (clone3 with `CLONE_PIDFD`, `close_range`, `mount_setattr` needs 5.12;
//!   Landlock is used when present, from 5.13), x86_64.
//! - Root (the supervisor creates namespaces and drops the jail to uid 65534). Unprivileged
//!   user namespaces alone are not enough for this version.
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
mod jail;
mod layout;
mod limits;
mod netns;
mod outcome;
mod plan;
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
pub use limits::Limits;
pub use outcome::{Outcome, Stream};
pub use sandbox::{CgroupMode, Sandbox, SandboxConfig};
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
