//! The jail's `/proc`: it shows the run, not the host.
//!
//! ## Choices
//!
//! - **A full procfs, covered where it shows the host** — not `subset=pid`. `subset=pid`
//!   (Linux ≥ 5.8) drops every non-pid entry, and nothing can be mounted on an entry that does
//!   not exist: `/proc/stat`, `meminfo`, `cpuinfo` would be missing, so glibc's `get_nprocs`
//!   falls back to the affinity mask (the host's CPUs), libuv's `uv_cpu_info` fails (Node's
//!   `os.cpus()` is `[]`) and `os.totalmem()` falls back to `sysinfo(2)` (the host's RAM). The
//!   pid namespace already limits `/proc/<pid>` to the run's processes.
//! - **No `hidepid`.** Every process of the jail has the same uid; `hidepid=invisible` would
//!   only hide the jail's own init (it is not dumpable, so not "ptraceable"), whose sensitive
//!   files (`environ`, `mem`, `maps`, `fd`) already need ptrace access, and leave a parent pid
//!   without a `/proc` entry. (The init is a fresh `execveat` of `livexec-init`: its
//!   `cmdline` and `comm` show nothing of the supervisor — module [`crate::init`].)
//! - **Generated files, bound read-only** (like LXCFS, without FUSE): the supervisor writes
//!   them when it builds the plan into a private tmpfs (the *stage*, mounted on
//!   [`ProcHost::stage`] in the jail's mount namespace only, and detached with the old root at
//!   `pivot_root`), and the child binds them over the procfs files. They are snapshots of the
//!   run at its start (module `files`): `meminfo` (`MemTotal` = `MemFree` = `MemAvailable` =
//!   the memory limit, no swap), `cpuinfo` and `stat` (the CPU quota rounded up, at least 1,
//!   at most the host's CPUs, all idle; glibc's `get_nprocs` without `/sys` and libuv count
//!   the `cpuN` lines of `stat`), `uptime` (0), `loadavg` (0), `version` (what `uname(2)`
//!   shows). Nothing in them moves while the run goes on.
//! - **Everything else that the jail's user can read is covered** — default-deny over the
//!   host's own top-level listing, so a new kernel's new file is covered too (module `host`):
//!   an empty read-only file (`cmdline`, `config.gz`, `kallsyms`, `keys`, `key-users`,
//!   `diskstats`, `partitions`, `swaps`, `interrupts`, `softirqs`, `vmstat`, `zoneinfo`,
//!   `buddyinfo`, `iomem`, `ioports`, `locks`, `cgroups`, `devices`, `misc`, `crypto`,
//!   `consoles`, `dma`, `mtrr`, `execdomains`, `filesystems`, and `modules`, `schedstat`,
//!   `sched_debug`, `timer_list` where a kernel has them readable) or an empty read-only
//!   directory (`pressure`, `fs`, `irq`, `bus`, `acpi`, `tty`, `driver`, `scsi`, …). Left
//!   live: the pid directories, `self`, `thread-self`, `mounts` and `net` (the run's mount
//!   and network namespaces) and `sysvipc` (its IPC namespace). Left as they are: entries the
//!   jail's user cannot read at all (mode 0400 root here: `kmsg`, `kpage*`, `slabinfo`,
//!   `timer_list`, `vmallocinfo`, `pagetypeinfo`; uid 65534 has no capability to bypass
//!   that), which saves a mount each.
//! - **`/proc/sys` is a generated read-only tree** of what runtimes read there:
//!   `kernel/random/boot_id` (random per run), a live `kernel/random/uuid` (a fresh UUID per
//!   read), `kernel/threads-max` (the pids limit; the host's value derives from its RAM), and
//!   copies of host settings the kernel applies to the run too: `kernel/osrelease` (as
//!   `uname -r`), `kernel/pid_max` and `vm/max_map_count` (the JVM), `vm/overcommit_memory`
//!   (jemalloc), `crypto/fips_enabled` (OpenSSL, Go) where present. Nothing else: no `net`,
//!   `fs/file-max`, `binfmt_misc`, `kernel/core_pattern`, `tainted`, `random/entropy_avail`;
//!   files with a libc fallback (`kernel/ngroups_max`) or a syscall equivalent
//!   (`kernel/hostname`, `ostype`, `version`) are left out too, as each staged file costs
//!   ~15 µs per run.
//! - **The run's own clocks**: a time namespace whose `monotonic` and `boottime` offsets start
//!   the run at 0, so `CLOCK_MONOTONIC`/`CLOCK_BOOTTIME`, `sysinfo(2)`'s uptime and the start
//!   times in `/proc/<pid>/stat` are the run's, consistent with the generated `uptime` and
//!   `btime` (the kernel's `/proc/uptime` would add the host's summed idle time, so it stays
//!   generated). These clocks are live.
//! - **Neutral mount sources** (module `sources`): the read-only binds show `livexec`, not the
//!   host's block device, in `/proc/self/mountinfo`.
//!
//! ## What still shows the host
//!
//! Per-pid files cannot be covered (every new process has its own): `/proc/<pid>/status`
//! (`Cpus_allowed`: the affinity mask is the host's, as `sched_getaffinity` is),
//! `timens_offsets` (the offsets are minus the host's uptime at the start), `loginuid` and
//! `sessionid` (the service's audit session), and the global views under `net/`
//! (`softnet_stat`, `ptype`, `protocols`). Outside `/proc`: `sysinfo(2)` (host RAM and load;
//! glibc's `sysconf(_SC_PHYS_PAGES)` uses it), `uname(2)`, `cpuid`, and `major:minor` of the
//! host's device in `stat(2)` and `mountinfo`.
//!
//! ## Fallbacks
//!
//! Without time namespaces the clocks stay the host's and the generated files agree with
//! them; without a mountable block device the binds show the host's device name. Both are
//! reported by [`crate::Sandbox::proc_isolation`].
//!
//! ## Cost
//!
//! About 1 ms of CPU per run (a jail running `/usr/bin/true`: ~2.5 → ~3.5 ms, minimum of 200
//! runs): ~40 binds over procfs files at ~13 µs each (mount and teardown), the stage (a tmpfs
//! and ~19 inodes, ~15 µs each), the time namespace (~50 µs), the neutral device mount
//! (~40 µs).

mod files;
mod host;
mod sources;

use std::ffi::CString;
use std::fmt;
use std::os::raw::c_ulong;
use std::path::{Path, PathBuf};

pub(crate) use host::ProcHost;
use sources::RunSources;
pub(crate) use sources::Sources;

use crate::jail::Shape;
use crate::layout::{Entry, HostLayout};
use crate::plan::{cpath, under, Op};
use crate::sys::{self, MOUNT_ATTR_NODEV, MOUNT_ATTR_NOEXEC, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY};
use crate::SandboxError;

/// The host directory next to the jails' root the stage is mounted on.
pub(crate) const STAGE_DIR: &str = "stage";
/// What the jail's init shows as its command line and name.
/// Read-only, no set-uid, no devices, no execution: the stage and what is bound from it.
const SEALED: u64 = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;

/// How isolated the jail's `/proc` is on this host ([`crate::Sandbox::proc_isolation`]).
///
/// Always: a procfs of the run's pid namespace, host files covered, generated `meminfo`,
/// `cpuinfo`, `stat`, `uptime`, `loadavg`, `version` and `/proc/sys`, and the jail's init
/// showing `livexec-init`. The fields say what depends on the kernel and the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProcIsolation {
    /// The run has its own clocks (a time namespace, Linux ≥ 5.6 with `CONFIG_TIME_NS`):
    /// uptime, boot time and process start times count from the run's start. Without it they
    /// are the host's.
    pub own_clocks: bool,
    /// Read-only binds show the source `livexec` instead of the host's block device in
    /// `/proc/self/mountinfo` (the device could be mounted again under that name at start-up).
    pub neutral_mount_sources: bool,
}

impl ProcIsolation {
    /// A one-line description for `livexec runtimes` and `/health`.
    pub fn as_str(&self) -> &'static str {
        match (self.own_clocks, self.neutral_mount_sources) {
            (true, true) => "masked, generated from limits, own clocks, neutral mount sources",
            (true, false) => "masked, generated from limits, own clocks, host device names",
            (false, true) => "masked, generated from limits, host clocks, neutral mount sources",
            (false, false) => "masked, generated from limits, host clocks, host device names",
        }
    }
}

impl fmt::Display for ProcIsolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ProcHost {
    /// What this host supports.
    pub(crate) fn isolation(&self) -> ProcIsolation {
        ProcIsolation {
            own_clocks: self.time_ns,
            neutral_mount_sources: self.sources.usr_neutral,
        }
    }
}

/// The `/proc` of one run: its generated files, the sources of its binds, its clock offsets.
pub(crate) struct RunProc<'a> {
    host: &'a ProcHost,
    files: Vec<(String, Vec<u8>)>,
    sources: RunSources,
    offsets: Option<Vec<u8>>,
}

/// `monotonic` and `boottime` offsets that bring clocks read as `mono` and `boot` to 0.
fn offsets_text(mono: (i64, i64), boot: (i64, i64)) -> Vec<u8> {
    let neg = |(s, ns): (i64, i64)| {
        if ns == 0 {
            (-s, 0)
        } else {
            (-s - 1, 1_000_000_000 - ns)
        }
    };
    let ((ms, mn), (bs, bn)) = (neg(mono), neg(boot));
    format!("monotonic {ms} {mn}\nboottime {bs} {bn}\n").into_bytes()
}

impl<'a> RunProc<'a> {
    /// Generates the files of a jail of `shape` and resolves the sources of its binds.
    pub(crate) fn new(layout: &'a HostLayout, shape: &Shape) -> Result<RunProc<'a>, SandboxError> {
        let host = &layout.proc;
        let real = sys::clock_now(libc::CLOCK_REALTIME);
        let mono = sys::clock_now(libc::CLOCK_MONOTONIC);
        let boot = sys::clock_now(libc::CLOCK_BOOTTIME);
        // With a time namespace the run's clocks start at 0 now; without, they are the host's.
        let uptime = if host.time_ns { (0, 0) } else { boot };
        let uuid = Path::new("/proc/sys/kernel/random/uuid");
        let boot_id = std::fs::read_to_string(uuid).map_err(|source| SandboxError::Fs {
            op: "read",
            path: uuid.to_path_buf(),
            source,
        })?;
        let l = &shape.limits;
        let facts = files::Facts {
            memory_bytes: l.memory_bytes,
            cpus: files::cpus_for(l.cpu_millicores, host.host_cpus),
            pids: l.pids,
            boot_id,
            btime: real.0 - uptime.0,
            uptime,
        };
        let mut out: Vec<(String, Vec<u8>)> = [
            ("cpuinfo", files::cpuinfo(&host.cpu_block, facts.cpus)),
            ("meminfo", files::meminfo(facts.memory_bytes)),
            ("stat", files::stat(facts.cpus, facts.btime)),
            ("uptime", files::uptime(facts.uptime)),
            ("loadavg", files::LOADAVG.to_owned()),
            ("version", host.version.clone()),
            ("empty", String::new()),
        ]
        .into_iter()
        .map(|(n, c)| (n.to_owned(), c.into_bytes()))
        .collect();
        for (p, c) in files::sys_tree(host, &facts) {
            out.push((format!("sys/{p}"), c.into_bytes()));
        }
        let binds = layout
            .top
            .iter()
            .chain(&layout.etc)
            .filter_map(|e| match e {
                Entry::Dir(p) | Entry::File(p) => Some(p.as_path()),
                Entry::Link(..) => None,
            })
            .chain(shape.mounts.iter().map(PathBuf::as_path));
        Ok(RunProc {
            host,
            files: out,
            sources: host.sources.resolve(binds),
            offsets: host.time_ns.then(|| offsets_text(mono, boot)),
        })
    }

    fn staged(&self, rel: &str) -> Result<CString, SandboxError> {
        cpath(&self.host.stage.join(rel))
    }

    /// Steps before the first bind: the stage tmpfs (no `nodev` yet: the device nodes of the
    /// neutral mounts are made in it), the generated files, the neutral device mounts.
    pub(crate) fn stage(&mut self, ops: &mut Vec<Op<'_>>) -> Result<(), SandboxError> {
        ops.push(Op::Tmpfs {
            target: self.staged("")?,
            data: CString::from(c"size=4m,mode=0755"),
            flags: (libc::MS_NOSUID | libc::MS_NOEXEC) as c_ulong,
        });
        let tree: Vec<(String, String)> = self
            .files
            .iter()
            .filter_map(|(p, _)| Some((p.strip_prefix("sys/")?.to_owned(), String::new())))
            .collect();
        for dir in ["empty.d".to_owned()].into_iter().chain(
            files::sys_dirs(&tree)
                .into_iter()
                .map(|d| format!("sys/{d}")),
        ) {
            ops.push(Op::Mkdir {
                path: self.staged(&dir)?,
                mode: 0o555,
            });
        }
        for (rel, data) in std::mem::take(&mut self.files) {
            ops.push(Op::WriteOwned {
                path: self.staged(&rel)?,
                data,
            });
        }
        self.sources.steps(&self.host.stage, ops)
    }

    /// The source to bind `host_path` from: its neutral device mount, or the path itself.
    pub(crate) fn source(&self, host_path: &Path) -> Result<CString, SandboxError> {
        match self.sources.source(&self.host.stage, host_path) {
            Some(p) => cpath(&p),
            None => cpath(host_path),
        }
    }

    /// The `/proc` steps: seal the stage, mount procfs at `<root>/proc`, cover the host's
    /// files, replace `/proc/sys`, enter the run's clocks.
    pub(crate) fn mount(&mut self, ops: &mut Vec<Op<'_>>, root: &Path) -> Result<(), SandboxError> {
        let proc = |rel: &str| under(root, &Path::new("/proc").join(rel));
        ops.push(Op::SetAttrs {
            target: self.staged("")?,
            attrs: SEALED,
        });
        ops.push(Op::Proc { target: proc("")? });
        for name in host::GENERATED {
            ops.push(Op::Cover {
                src: self.staged(name)?,
                dst: proc(name)?,
            });
        }
        for (name, dir) in &self.host.masked {
            ops.push(Op::Cover {
                src: self.staged(if *dir { "empty.d" } else { "empty" })?,
                dst: proc(name)?,
            });
        }
        ops.push(Op::Cover {
            src: proc("sys/kernel/random/uuid")?,
            dst: self.staged("sys/kernel/random/uuid")?,
        });
        ops.push(Op::Bind {
            src: self.staged("sys")?,
            dst: proc("sys")?,
            attrs: SEALED,
        });
        if let Some(data) = self.offsets.take() {
            ops.push(Op::Unshare {
                flags: libc::CLONE_NEWTIME,
            });
            ops.push(Op::WriteTo {
                path: proc("self/timens_offsets")?,
                data,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_bring_the_clocks_to_zero() {
        assert_eq!(
            offsets_text((100, 250_000_000), (120, 0)),
            b"monotonic -101 750000000\nboottime -120 0\n"
        );
    }

    #[test]
    fn isolation_is_described() {
        let all = ProcIsolation {
            own_clocks: true,
            neutral_mount_sources: true,
        };
        assert_eq!(
            all.to_string(),
            "masked, generated from limits, own clocks, neutral mount sources"
        );
    }
}
