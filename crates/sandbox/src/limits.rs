//! Resource limits of one run ([`Limits`]), every one enforced by the kernel.

/// Resource limits of one run. Every limit is enforced by the kernel: cgroups (memory, CPU, pids),
/// rlimits (CPU time, open files, file size), tmpfs sizes, and the supervisor's wall-clock timer
/// and output caps.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Limits {
    /// Memory limit of the whole run (all processes, tmpfs pages included), no swap.
    /// cgroup v1 `memory.limit_in_bytes` (+ `memory.memsw.limit_in_bytes` when present),
    /// v2 `memory.max` + `memory.swap.max = 0`. Default 128 MiB.
    pub memory_bytes: u64,
    /// CPU quota in thousandths of a core (cgroup v1 `cpu.cfs_quota_us`, v2 `cpu.max`).
    /// Default 500 (half a core).
    pub cpu_millicores: u32,
    /// Let a run spend up to one more period's quota at once (cgroup v1 `cpu.cfs_burst_us`,
    /// v2 `cpu.max.burst`, Linux ≥ 5.14; ignored where the kernel lacks it). The sustained
    /// rate stays `cpu_millicores`, and the extra is bounded (50 ms of CPU at half a core), but
    /// an interpreter's CPU-bound start-up is no longer stretched by throttling. Default on.
    pub cpu_burst: bool,
    /// Maximum number of processes plus threads (cgroup `pids.max`). Default 50.
    pub pids: u32,
    /// Wall-clock limit in milliseconds, measured by the supervisor from `execve`; when it
    /// expires every process of the run is killed and [`crate::Outcome::timed_out`] is set.
    /// Default 30 000.
    pub wall_ms: u64,
    /// CPU-time limit in milliseconds (`RLIMIT_CPU`, per process, rounded up to whole
    /// seconds); hitting it counts as a timeout. Default `None`.
    pub cpu_ms: Option<u64>,
    /// Maximum number of open file descriptors (`RLIMIT_NOFILE`). Default 256.
    pub open_files: u64,
    /// Maximum size of a file the program writes (`RLIMIT_FSIZE`). Default 16 MiB.
    pub file_size_bytes: u64,
    /// Cap per output stream; over the cap the run is killed and exactly the first
    /// `output_bytes` bytes are kept. Default 1 MiB.
    pub output_bytes: usize,
    /// Size of the private `/tmp` and of the working directory `/work` (each a tmpfs).
    /// Default 32 MiB.
    pub tmpfs_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 128 << 20,
            cpu_millicores: 500,
            cpu_burst: true,
            pids: 50,
            wall_ms: 30_000,
            cpu_ms: None,
            open_files: 256,
            file_size_bytes: 16 << 20,
            output_bytes: 1 << 20,
            tmpfs_bytes: 32 << 20,
        }
    }
}
