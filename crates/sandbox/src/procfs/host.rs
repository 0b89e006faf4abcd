//! What the jail's `/proc` is built from, learnt once from the host ([`ProcHost`]): which
//! top-level entries to cover, the host's CPU description, the `/proc/sys` values worth
//! keeping, whether time namespaces exist, where the supervisor's argv lies.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::sources::Sources;
use crate::SandboxError;

/// Top-level entries left live: views the jail's own namespaces already limit to the run.
pub(crate) const NAMESPACED: &[&str] = &["self", "thread-self", "mounts", "net", "sysvipc"];
/// Top-level files replaced by a file generated for the run.
pub(crate) const GENERATED: &[&str] =
    &["cpuinfo", "meminfo", "stat", "uptime", "loadavg", "version"];
/// The directory replaced by a generated tree.
pub(crate) const SYS: &str = "sys";
/// Host `/proc/sys` files copied as they are: settings the kernel applies to the run too,
/// that runtimes read: `kernel/osrelease` (what `uname -r` shows), `kernel/pid_max` and
/// `vm/max_map_count` (the JVM), `vm/overcommit_memory` (jemalloc), `crypto/fips_enabled`
/// (OpenSSL, Go). Missing ones are left out. A staged file costs ~15 µs per run (a tmpfs inode
/// and its teardown), so files with a libc fallback or a syscall equivalent are not copied.
const SYS_COPIED: &[&str] = &[
    "kernel/osrelease",
    "kernel/pid_max",
    "vm/overcommit_memory",
    "vm/max_map_count",
    "crypto/fips_enabled",
];
/// `/proc/cpuinfo` lines that describe the host rather than the CPU model.
const CPUINFO_DROPPED: &[&str] = &["microcode", "bugs"];

/// What happens to one top-level entry of the jail's `/proc`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Top {
    /// A pid directory or a namespaced view: left as the kernel shows it.
    Live,
    /// Covered by a generated file.
    Generated,
    /// `/proc/sys`: covered by a generated tree.
    Sys,
    /// Readable by the jail's user: covered by an empty read-only file (or directory).
    Masked { dir: bool },
    /// Not readable by the jail's user (uid 65534 without capabilities): the kernel's own
    /// permission check already refuses it, so no mount is spent on it.
    Unreadable,
}

/// Classifies a top-level `/proc` entry from its name, type and mode.
pub(crate) fn classify(name: &str, dir: bool, link: bool, mode: u32) -> Top {
    if name.bytes().all(|b| b.is_ascii_digit()) || NAMESPACED.contains(&name) {
        Top::Live
    } else if GENERATED.contains(&name) {
        Top::Generated
    } else if name == SYS {
        Top::Sys
    } else if link {
        // A mount on a symlink lands on its target; none but the namespaced ones exist.
        Top::Live
    } else if (dir && mode & 0o005 != 0o005) || (!dir && mode & 0o004 == 0) {
        Top::Unreadable
    } else {
        Top::Masked { dir }
    }
}

/// The host facts the jail's `/proc` is generated from.
#[derive(Debug)]
pub(crate) struct ProcHost {
    /// Top-level entries covered with an empty read-only file or directory: `(name, dir)`.
    pub masked: Vec<(String, bool)>,
    /// Top-level entries left because the jail cannot read them.
    pub unreadable: Vec<String>,
    /// The host's first `/proc/cpuinfo` block without [`CPUINFO_DROPPED`] lines.
    pub cpu_block: String,
    /// CPUs the supervisor may run on: the most a run can use.
    pub host_cpus: u32,
    /// `(path under /proc/sys, contents)` copied from the host.
    pub sys: Vec<(&'static str, String)>,
    /// The generated `/proc/version` (release and version as `uname(2)` shows them).
    pub version: String,
    /// Whether the kernel has time namespaces (Linux ≥ 5.6, `CONFIG_TIME_NS`).
    pub time_ns: bool,
    /// Mount sources: the host's mount table and which devices can be mounted neutrally.
    pub sources: Sources,
    /// Host directory the per-run staging tmpfs is mounted on (in the jail's mount namespace
    /// only); set by [`ProcHost::attach`].
    pub stage: PathBuf,
}

fn read(path: &Path) -> Result<String, SandboxError> {
    fs::read_to_string(path).map_err(|source| SandboxError::Fs {
        op: "read",
        path: path.to_path_buf(),
        source,
    })
}

impl ProcHost {
    /// Reads the host's `/proc`. The mount sources are [`Sources::none`] until
    /// [`ProcHost::attach`].
    pub(crate) fn detect() -> Result<ProcHost, SandboxError> {
        let proc = Path::new("/proc");
        let entries = fs::read_dir(proc).map_err(|source| SandboxError::Fs {
            op: "list",
            path: proc.to_path_buf(),
            source,
        })?;
        let (mut masked, mut unreadable) = (Vec::new(), Vec::new());
        for e in entries.filter_map(Result::ok) {
            let Ok(name) = e.file_name().into_string() else {
                continue;
            };
            // Pid directories (most of the listing) stay live whatever their metadata: no
            // `stat` for each process on the host.
            if name.bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            let Ok(meta) = fs::symlink_metadata(e.path()) else {
                continue; // vanished (a pid that exited)
            };
            let ft = meta.file_type();
            let mode = meta.permissions().mode();
            match classify(&name, ft.is_dir(), ft.is_symlink(), mode) {
                Top::Masked { dir } => masked.push((name, dir)),
                Top::Unreadable => unreadable.push(name),
                _ => {}
            }
        }
        masked.sort();
        unreadable.sort();
        let cpuinfo = read(Path::new("/proc/cpuinfo"))?;
        let sys_dir = Path::new("/proc/sys");
        let sys: Vec<(&'static str, String)> = SYS_COPIED
            .iter()
            .filter_map(|p| Some((*p, fs::read_to_string(sys_dir.join(p)).ok()?)))
            .collect();
        let value = |k: &str| {
            fs::read_to_string(sys_dir.join(k))
                .map(|v| v.trim().to_owned())
                .unwrap_or_default()
        };
        let version = format!(
            "Linux version {} {}\n",
            value("kernel/osrelease"),
            value("kernel/version")
        );
        Ok(ProcHost {
            masked,
            unreadable,
            cpu_block: cpu_block(&cpuinfo),
            host_cpus: host_cpus(),
            version,
            sys,
            time_ns: Path::new("/proc/self/ns/time").exists(),
            sources: Sources::none(),
            stage: PathBuf::new(),
        })
    }

    /// Takes the host's mount sources, probed ([`Sources::probe`]) with `stage` as scratch
    /// space, and the staging directory.
    pub(crate) fn attach(&mut self, sources: Sources, stage: PathBuf) {
        self.sources = sources;
        self.stage = stage;
        tracing::debug!(
            masked = ?self.masked,
            unreadable = ?self.unreadable,
            time_ns = self.time_ns,
            neutral_sources = self.sources.usr_neutral,
            "the jails' /proc"
        );
    }
}

/// The first block of `/proc/cpuinfo` (one CPU), without [`CPUINFO_DROPPED`] lines.
pub(crate) fn cpu_block(cpuinfo: &str) -> String {
    let mut out = String::new();
    for line in cpuinfo.lines().take_while(|l| !l.trim().is_empty()) {
        let key = line.split(':').next().unwrap_or("").trim();
        if !CPUINFO_DROPPED.contains(&key) {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// CPUs in this process's affinity mask (what a run inherits), at least 1.
fn host_cpus() -> u32 {
    use nix::sched::{sched_getaffinity, CpuSet};
    use nix::unistd::Pid;
    match sched_getaffinity(Pid::from_raw(0)) {
        Ok(set) => (0..CpuSet::count())
            .filter(|&i| set.is_set(i).unwrap_or(false))
            .count()
            .max(1) as u32,
        Err(_) => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_classified() {
        assert_eq!(classify("1234", true, false, 0o555), Top::Live);
        assert_eq!(classify("self", false, true, 0o777), Top::Live);
        assert_eq!(classify("sysvipc", true, false, 0o555), Top::Live);
        assert_eq!(classify("meminfo", false, false, 0o444), Top::Generated);
        assert_eq!(classify("sys", true, false, 0o555), Top::Sys);
        assert_eq!(
            classify("cmdline", false, false, 0o444),
            Top::Masked { dir: false }
        );
        assert_eq!(
            classify("pressure", true, false, 0o555),
            Top::Masked { dir: true }
        );
        assert_eq!(
            classify("mtrr", false, false, 0o644),
            Top::Masked { dir: false }
        );
        assert_eq!(classify("kmsg", false, false, 0o400), Top::Unreadable);
        assert_eq!(classify("secret", true, false, 0o500), Top::Unreadable);
        assert_eq!(
            classify("brand-new", false, false, 0o444),
            Top::Masked { dir: false }
        );
    }

    #[test]
    fn cpu_block_is_the_first_cpu_without_host_lines() {
        let info =
            "processor\t: 0\nmodel name\t: X\nmicrocode\t: 0x1\nbugs\t\t: a b\n\nprocessor\t: 1\n";
        assert_eq!(cpu_block(info), "processor\t: 0\nmodel name\t: X\n");
    }

    #[test]
    fn the_host_is_read() {
        let h = ProcHost::detect().unwrap();
        assert!(h.masked.iter().any(|(n, d)| n == "cmdline" && !d));
        assert!(!h.masked.iter().any(|(n, _)| n == "meminfo" || n == "self"));
        assert!(h.cpu_block.starts_with("processor"));
        assert!(h.host_cpus >= 1);
        assert!(h.version.starts_with("Linux version "));
    }
}
