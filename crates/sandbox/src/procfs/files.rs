//! The contents of the files generated for one run: `/proc/meminfo`, `cpuinfo`, `stat`,
//! `uptime`, `loadavg`, `version` and the `/proc/sys` tree, from the run's limits and the host
//! facts of [`super::ProcHost`]. Each is a snapshot taken when the plan is built.

use std::fmt::Write as _;

use super::ProcHost;

/// What describes the run.
#[derive(Clone, Debug)]
pub(crate) struct Facts {
    /// The memory limit.
    pub memory_bytes: u64,
    /// CPUs the run is said to have.
    pub cpus: u32,
    /// The pids limit (shown as `kernel/threads-max`).
    pub pids: u32,
    /// A random UUID for `kernel/random/boot_id`.
    pub boot_id: String,
    /// The run's boot time in seconds since the epoch (`btime` of `/proc/stat`).
    pub btime: i64,
    /// The run's uptime when the plan is built `(seconds, nanoseconds)`.
    pub uptime: (i64, i64),
}

/// As many CPUs as the quota rounded up, at least 1, at most what the host lets us run on.
pub(crate) fn cpus_for(millicores: u32, host_cpus: u32) -> u32 {
    millicores.div_ceil(1000).clamp(1, host_cpus.max(1))
}

/// `/proc/meminfo` keys in the kernel's order; all but the first three and `CommitLimit` are
/// 0 for a run that has just started.
const MEMINFO_KEYS: &[&str] = &[
    "MemTotal",
    "MemFree",
    "MemAvailable",
    "Buffers",
    "Cached",
    "SwapCached",
    "Active",
    "Inactive",
    "Active(anon)",
    "Inactive(anon)",
    "Active(file)",
    "Inactive(file)",
    "Unevictable",
    "Mlocked",
    "SwapTotal",
    "SwapFree",
    "Dirty",
    "Writeback",
    "AnonPages",
    "Mapped",
    "Shmem",
    "KReclaimable",
    "Slab",
    "SReclaimable",
    "SUnreclaim",
    "KernelStack",
    "PageTables",
    "CommitLimit",
    "Committed_AS",
    "AnonHugePages",
    "ShmemHugePages",
    "FileHugePages",
];

/// `/proc/meminfo`: the memory limit as `MemTotal`, all of it free and available, no swap.
pub(crate) fn meminfo(memory_bytes: u64) -> String {
    let total = memory_bytes / 1024;
    let mut s = String::new();
    for key in MEMINFO_KEYS {
        let kb = match *key {
            "MemTotal" | "MemFree" | "MemAvailable" | "CommitLimit" => total,
            _ => 0,
        };
        let _ = writeln!(s, "{:<16}{kb:>8} kB", format!("{key}:"));
    }
    for key in [
        "HugePages_Total",
        "HugePages_Free",
        "HugePages_Rsvd",
        "HugePages_Surp",
    ] {
        let _ = writeln!(s, "{:<16}{:>8}", format!("{key}:"), 0);
    }
    let _ = writeln!(s, "{:<16}{:>8} kB", "Hugepagesize:", 2048);
    s
}

/// `/proc/cpuinfo`: the host's CPU description `cpus` times, numbered as one package.
pub(crate) fn cpuinfo(block: &str, cpus: u32) -> String {
    let mut s = String::new();
    for i in 0..cpus {
        for line in block.lines() {
            let (key, _) = line.split_once(':').unwrap_or((line, ""));
            let value = match key.trim() {
                "processor" | "core id" | "apicid" | "initial apicid" => Some(i),
                "physical id" => Some(0),
                "siblings" | "cpu cores" => Some(cpus),
                _ => None,
            };
            match value {
                Some(v) => {
                    let _ = writeln!(s, "{key}: {v}");
                }
                None => {
                    s.push_str(line);
                    s.push('\n');
                }
            }
        }
        s.push('\n');
    }
    s
}

/// `/proc/stat`: `cpus` idle CPUs (glibc's `get_nprocs` without `/sys` and libuv's
/// `uv_cpu_info` count the `cpuN` lines), the run's boot time, its two processes.
pub(crate) fn stat(cpus: u32, btime: i64) -> String {
    let zeros = " 0".repeat(10);
    let mut s = format!("cpu {zeros}\n");
    for i in 0..cpus {
        let _ = writeln!(s, "cpu{i}{zeros}");
    }
    let _ = write!(
        s,
        "intr 0\nctxt 0\nbtime {btime}\nprocesses 2\nprocs_running 1\nprocs_blocked 0\nsoftirq{}\n",
        " 0".repeat(11)
    );
    s
}

/// `/proc/uptime`: the run's uptime, no idle time (the kernel's idle field sums the host's
/// CPUs).
pub(crate) fn uptime((secs, nanos): (i64, i64)) -> String {
    format!(
        "{}.{:02} 0.00\n",
        secs.max(0),
        nanos.clamp(0, 999_999_999) / 10_000_000
    )
}

/// `/proc/loadavg`: nothing has run yet; 1 of 2 tasks runnable, last pid 2.
pub(crate) const LOADAVG: &str = "0.00 0.00 0.00 1/2 2\n";

/// The `/proc/sys` tree: `(path under sys, contents)`. `kernel/random/uuid` is an empty file
/// here: the live one is bound over it.
pub(crate) fn sys_tree(host: &ProcHost, f: &Facts) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = host
        .sys
        .iter()
        .map(|(p, c)| ((*p).to_owned(), c.clone()))
        .collect();
    for (p, c) in [
        ("kernel/threads-max", format!("{}\n", f.pids)),
        ("kernel/random/boot_id", format!("{}\n", f.boot_id.trim())),
        ("kernel/random/uuid", String::new()),
    ] {
        v.push((p.to_owned(), c));
    }
    v.sort();
    v
}

/// Every directory the files of `tree` need under `sys`, parents first.
pub(crate) fn sys_dirs(tree: &[(String, String)]) -> Vec<String> {
    let mut dirs: Vec<String> = vec![String::new()];
    for (p, _) in tree {
        let mut cur = String::new();
        for part in p
            .split('/')
            .collect::<Vec<_>>()
            .split_last()
            .map_or(&[][..], |(_, d)| d)
        {
            cur = if cur.is_empty() {
                (*part).to_owned()
            } else {
                format!("{cur}/{part}")
            };
            if !dirs.contains(&cur) {
                dirs.push(cur.clone());
            }
        }
    }
    dirs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpus_follow_the_quota_within_the_host() {
        assert_eq!(cpus_for(500, 8), 1);
        assert_eq!(cpus_for(1000, 8), 1);
        assert_eq!(cpus_for(1001, 8), 2);
        assert_eq!(cpus_for(0, 8), 1);
        assert_eq!(cpus_for(16_000, 8), 8);
        assert_eq!(cpus_for(500, 0), 1);
    }

    #[test]
    fn meminfo_has_the_limit_in_the_kernel_format() {
        let m = meminfo(128 << 20);
        let mut l = m.lines();
        assert_eq!(l.next(), Some("MemTotal:         131072 kB"));
        assert_eq!(l.next(), Some("MemFree:          131072 kB"));
        assert_eq!(l.next(), Some("MemAvailable:     131072 kB"));
        assert!(m.contains("\nSwapTotal:             0 kB\n"));
        assert!(m.contains("\nHugePages_Total:       0\n"));
    }

    #[test]
    fn cpuinfo_repeats_the_block_per_cpu() {
        let block = "processor\t: 7\nmodel name\t: X\nsiblings\t: 64\ncore id\t\t: 9\n";
        let c = cpuinfo(block, 2);
        assert_eq!(
            c,
            "processor\t: 0\nmodel name\t: X\nsiblings\t: 2\ncore id\t\t: 0\n\n\
             processor\t: 1\nmodel name\t: X\nsiblings\t: 2\ncore id\t\t: 1\n\n"
        );
    }

    #[test]
    fn stat_lists_one_line_per_cpu() {
        let s = stat(3, 1_700_000_000);
        let cpus = s
            .lines()
            .filter(|l| l.starts_with("cpu") && l.as_bytes()[3].is_ascii_digit())
            .count();
        assert_eq!(cpus, 3);
        assert!(s.starts_with("cpu  0 0 0 0 0 0 0 0 0 0\ncpu0 0 0"));
        assert!(s.contains("\nbtime 1700000000\n"));
    }

    #[test]
    fn uptime_has_centiseconds() {
        assert_eq!(uptime((3, 456_000_000)), "3.45 0.00\n");
        assert_eq!(uptime((0, 0)), "0.00 0.00\n");
    }

    #[test]
    fn sys_dirs_come_before_their_files() {
        let tree = vec![
            ("kernel/random/uuid".to_owned(), String::new()),
            ("vm/x".to_owned(), String::new()),
        ];
        assert_eq!(sys_dirs(&tree), ["", "kernel", "kernel/random", "vm"]);
    }
}
