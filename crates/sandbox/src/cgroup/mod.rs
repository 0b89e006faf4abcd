//! cgroups: detection of a usable hierarchy ([`Hierarchy`]), one cgroup per run
//! ([`RunCgroup`]), and the stale-state sweep.
//!
//! Layout: our subtree `<name>` sits under the cgroup the supervisor process is in (per
//! controller on v1); each run gets `<name>/<supervisor pid>-<seq>`, so a sweep can tell runs of
//! dead supervisors from live ones. Every function takes its paths as arguments, so the unit
//! tests drive them against a fake cgroupfs in a temp dir.

mod detect;
mod fsutil;
mod v1;
mod v2;

use std::ffi::CString;
use std::path::{Path, PathBuf};

pub(crate) use detect::detect;

use crate::{Limits, SandboxError};

/// The CFS period used for CPU quotas, in microseconds.
pub(crate) const CPU_PERIOD_US: u64 = 100_000;

/// The CFS quota per [`CPU_PERIOD_US`] for `l.cpu_millicores` (at least 1 ms).
fn quota_us(l: &Limits) -> u64 {
    (u64::from(l.cpu_millicores) * CPU_PERIOD_US / 1000).max(1000)
}

/// Allows a burst of one period's `quota` through `file` (`cpu.cfs_burst_us` / `cpu.max.burst`).
/// A kernel without CPU burst (before 5.14) has no such file: the run keeps the plain quota.
/// A failed write is logged and ignored, since it can only leave the run with less CPU.
fn set_burst(file: &Path, quota: u64) {
    if !file.exists() {
        return;
    }
    if let Err(e) = fsutil::write(file, &quota.to_string()) {
        tracing::warn!(error = %e, "cannot allow a CPU burst; the run keeps the plain quota");
    }
}

/// A usable hierarchy: where our subtree lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Hierarchy {
    /// cgroup v2: the base directory `<our cgroup>/<name>` with controllers enabled for children.
    V2 { base: PathBuf },
    /// cgroup v1: one base directory per controller.
    V1(v1::Bases),
}

/// Resource usage read back after a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Stats {
    pub cpu_ms: u64,
    pub memory_peak_bytes: u64,
    pub oom_killed: bool,
}

/// The cgroup(s) of one run.
#[derive(Debug)]
pub(crate) enum RunCgroup {
    /// v2: the run's directory.
    V2(v2::Run),
    /// v1: the run's directory in each controller.
    V1(v1::Run),
}

impl Hierarchy {
    /// Creates the run's cgroup(s) `<base>/<id>` and writes the limits.
    pub(crate) fn create_run(&self, id: &str, limits: &Limits) -> Result<RunCgroup, SandboxError> {
        match self {
            Hierarchy::V2 { base } => {
                let run = v2::Run::create(&base.join(id))?;
                let cg = RunCgroup::V2(run);
                cg.apply(limits)?;
                Ok(cg)
            }
            Hierarchy::V1(bases) => {
                let run = v1::Run::create(bases, id)?;
                let cg = RunCgroup::V1(run);
                cg.apply(limits)?;
                Ok(cg)
            }
        }
    }

    /// Base directories (one for v2; one per controller for v1).
    pub(crate) fn bases(&self) -> Vec<PathBuf> {
        match self {
            Hierarchy::V2 { base } => vec![base.clone()],
            Hierarchy::V1(b) => b.all().into_iter().map(Path::to_path_buf).collect(),
        }
    }

    /// Removes run cgroups left by supervisors that are no longer alive (their processes are
    /// killed first). Never touches a run of a live process.
    pub(crate) fn sweep_stale(&self, is_alive: &dyn Fn(u32) -> bool) -> Vec<PathBuf> {
        let mut removed = Vec::new();
        let mut ids: Vec<String> = Vec::new();
        for base in self.bases() {
            for id in fsutil::stale_ids(&base, is_alive) {
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
        }
        for id in ids {
            let run = match self {
                Hierarchy::V2 { base } => RunCgroup::V2(v2::Run::open(&base.join(&id))),
                Hierarchy::V1(bases) => RunCgroup::V1(v1::Run::open(bases, &id)),
            };
            run.kill_all();
            if run.remove().is_ok() {
                removed.extend(run.dirs());
            }
        }
        removed
    }
}

/// CPU weight of a jail prepared in the background, until its program is handed over:
/// `cpu.shares` on v1 (minimum 2; the default is 1024) and `cpu.weight` on v2 (minimum 1;
/// the default is 100). The setup of a jail prepared ahead of need (its mounts, its init's
/// start) runs in the jail's own cgroup, which on both versions competes with each running
/// jail as an equal; at the lowest weight it only takes the CPU time running programs leave.
const BACKGROUND_WEIGHT: (&str, &str) = ("2", "1");
/// The default weights, (v1 `cpu.shares`, v2 `cpu.weight`), given back before the program runs.
const NORMAL_WEIGHT: (&str, &str) = ("1024", "100");

impl RunCgroup {
    /// Sets the CPU weight of the run's cgroup: the lowest while a jail is prepared in the
    /// background, the default (`background` false) before its program runs. The weight only
    /// decides how CPU time is shared when CPUs are busy; the quota still caps the run.
    pub(crate) fn set_background(&self, background: bool) -> Result<(), SandboxError> {
        let (v1, v2) = if background {
            BACKGROUND_WEIGHT
        } else {
            NORMAL_WEIGHT
        };
        match self {
            RunCgroup::V2(r) => fsutil::write(&r.dir.join("cpu.weight"), v2),
            RunCgroup::V1(r) => fsutil::write(&r.cpu.join("cpu.shares"), v1),
        }
    }

    /// The CPU weight of the run's cgroup now (`cpu.shares` on v1, `cpu.weight` on v2).
    pub(crate) fn cpu_weight(&self) -> u64 {
        match self {
            RunCgroup::V2(r) => fsutil::read_u64(&r.dir.join("cpu.weight")),
            RunCgroup::V1(r) => fsutil::read_u64(&r.cpu.join("cpu.shares")),
        }
    }

    /// Writes the limits.
    pub(crate) fn apply(&self, limits: &Limits) -> Result<(), SandboxError> {
        match self {
            RunCgroup::V2(r) => r.apply(limits),
            RunCgroup::V1(r) => r.apply(limits),
        }
    }

    /// v1: the `tasks` files the child writes `0` to (one thread moved: cheap).
    pub(crate) fn tasks_files(&self) -> Result<Vec<CString>, SandboxError> {
        match self {
            RunCgroup::V2(_) => Ok(Vec::new()),
            RunCgroup::V1(r) => r.tasks_files(),
        }
    }

    /// v2: an fd of the directory for `clone3(CLONE_INTO_CGROUP)`.
    pub(crate) fn clone_fd(&self) -> Option<i32> {
        match self {
            RunCgroup::V2(r) => r.fd(),
            RunCgroup::V1(_) => None,
        }
    }

    /// CPU time, peak memory and OOM kills so far.
    pub(crate) fn stats(&self) -> Stats {
        match self {
            RunCgroup::V2(r) => r.stats(),
            RunCgroup::V1(r) => r.stats(),
        }
    }

    /// Kills every process in the cgroup until it is empty (v2 `cgroup.kill`; v1 freeze,
    /// SIGKILL each, thaw, repeat).
    pub(crate) fn kill_all(&self) {
        match self {
            RunCgroup::V2(r) => r.kill_all(),
            RunCgroup::V1(r) => r.kill_all(),
        }
    }

    /// Removes the directories (retrying while the last processes exit).
    pub(crate) fn remove(&self) -> Result<(), SandboxError> {
        match self {
            RunCgroup::V2(r) => r.remove(),
            RunCgroup::V1(r) => r.remove(),
        }
    }

    /// The run's directories.
    pub(crate) fn dirs(&self) -> Vec<PathBuf> {
        match self {
            RunCgroup::V2(r) => vec![r.dir.clone()],
            RunCgroup::V1(r) => r.dirs(),
        }
    }
}
