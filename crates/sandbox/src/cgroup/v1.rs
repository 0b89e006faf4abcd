//! cgroup v1: one directory per controller (memory, cpu, cpuacct, pids, and freezer when
//! mounted). The child joins by writing `0` to each `tasks` file, which moves only itself (a
//! single thread) and so skips the global threadgroup lock that makes `cgroup.procs` writes
//! slow.

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::fsutil;
use super::{Stats, CPU_PERIOD_US};
use crate::plan::cpath;
use crate::{Limits, SandboxError};

/// The base directory of our subtree in each controller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Bases {
    pub memory: PathBuf,
    pub cpu: PathBuf,
    pub cpuacct: PathBuf,
    pub pids: PathBuf,
    pub freezer: Option<PathBuf>,
}

impl Bases {
    /// Every distinct base directory (cpu and cpuacct may be co-mounted).
    pub(crate) fn all(&self) -> Vec<&Path> {
        let mut v: Vec<&Path> = vec![&self.memory, &self.cpu, &self.cpuacct, &self.pids];
        if let Some(f) = &self.freezer {
            v.push(f);
        }
        v.dedup();
        let mut out: Vec<&Path> = Vec::new();
        for p in v {
            if !out.contains(&p) {
                out.push(p);
            }
        }
        out
    }
}

/// One run's directories.
#[derive(Debug)]
pub(crate) struct Run {
    memory: PathBuf,
    pub(crate) cpu: PathBuf,
    cpuacct: PathBuf,
    pids: PathBuf,
    freezer: Option<PathBuf>,
}

impl Run {
    /// The run's paths without touching the file system.
    pub(crate) fn open(bases: &Bases, id: &str) -> Run {
        Run {
            memory: bases.memory.join(id),
            cpu: bases.cpu.join(id),
            cpuacct: bases.cpuacct.join(id),
            pids: bases.pids.join(id),
            freezer: bases.freezer.as_ref().map(|f| f.join(id)),
        }
    }

    /// Creates the run's directory in every controller.
    pub(crate) fn create(bases: &Bases, id: &str) -> Result<Run, SandboxError> {
        let run = Run::open(bases, id);
        for d in run.dirs() {
            if let Err(e) = fsutil::mkdir(&d) {
                let _ = run.remove();
                return Err(e);
            }
        }
        Ok(run)
    }

    /// Distinct directories of the run.
    pub(crate) fn dirs(&self) -> Vec<PathBuf> {
        let mut v = vec![
            self.memory.clone(),
            self.cpu.clone(),
            self.cpuacct.clone(),
            self.pids.clone(),
        ];
        v.extend(self.freezer.clone());
        let mut out: Vec<PathBuf> = Vec::new();
        for p in v {
            if !out.contains(&p) {
                out.push(p);
            }
        }
        out
    }

    /// memory.limit_in_bytes (+ memsw), cpu.cfs_quota_us (+ cpu.cfs_burst_us), pids.max.
    pub(crate) fn apply(&self, l: &Limits) -> Result<(), SandboxError> {
        let mem = l.memory_bytes.to_string();
        fsutil::write(&self.memory.join("memory.limit_in_bytes"), &mem)?;
        let memsw = self.memory.join("memory.memsw.limit_in_bytes");
        if memsw.exists() {
            fsutil::write(&memsw, &mem)?;
        }
        fsutil::write(
            &self.cpu.join("cpu.cfs_period_us"),
            &CPU_PERIOD_US.to_string(),
        )?;
        let quota = super::quota_us(l);
        fsutil::write(&self.cpu.join("cpu.cfs_quota_us"), &quota.to_string())?;
        if l.cpu_burst {
            super::set_burst(&self.cpu.join("cpu.cfs_burst_us"), quota);
        }
        fsutil::write(&self.pids.join("pids.max"), &l.pids.to_string())
    }

    /// The `tasks` files to join, as C strings for the child.
    pub(crate) fn tasks_files(&self) -> Result<Vec<CString>, SandboxError> {
        self.dirs()
            .iter()
            .map(|d| cpath(&d.join("tasks")))
            .collect()
    }

    /// cpuacct.usage, memory.max_usage_in_bytes, memory.oom_control `oom_kill`.
    pub(crate) fn stats(&self) -> Stats {
        let oom = fsutil::keyed(&self.memory.join("memory.oom_control"), "oom_kill")
            .unwrap_or_else(|| fsutil::read_u64(&self.memory.join("memory.failcnt")));
        Stats {
            cpu_ms: fsutil::read_u64(&self.cpuacct.join("cpuacct.usage")) / 1_000_000,
            memory_peak_bytes: fsutil::read_u64(&self.memory.join("memory.max_usage_in_bytes")),
            oom_killed: oom > 0,
        }
    }

    /// Freeze, SIGKILL every pid, thaw; repeat until empty.
    pub(crate) fn kill_all(&self) {
        let state = self.freezer.as_ref().map(|f| f.join("freezer.state"));
        let freeze = || {
            if let Some(s) = &state {
                if fsutil::write(s, "FROZEN").is_ok() {
                    for _ in 0..50 {
                        if fsutil::read(s).map(|v| v != "FREEZING").unwrap_or(true) {
                            break;
                        }
                        std::thread::sleep(Duration::from_micros(200));
                    }
                }
            }
        };
        let thaw = || {
            if let Some(s) = &state {
                let _ = fsutil::write(s, "THAWED");
            }
        };
        fsutil::kill_loop(&self.pids.join("cgroup.procs"), &freeze, &thaw);
    }

    /// Removes every directory of the run.
    pub(crate) fn remove(&self) -> Result<(), SandboxError> {
        let mut first_err = None;
        for d in self.dirs() {
            if let Err(e) = fsutil::rmdir(&d) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    /// A fake v1 cgroupfs: one dir per controller, and the control files a fresh cgroup has.
    fn fake(root: &Path) -> Bases {
        let b = |c: &str| root.join(c).join("livexec");
        let bases = Bases {
            memory: b("memory"),
            cpu: b("cpu"),
            cpuacct: b("cpuacct"),
            pids: b("pids"),
            freezer: Some(b("freezer")),
        };
        for d in bases.all() {
            fs::create_dir_all(d).unwrap();
        }
        bases
    }

    fn populate(run: &Run) {
        let files: &[(&Path, &[&str])] = &[
            (
                &run.memory,
                &[
                    "memory.limit_in_bytes",
                    "memory.memsw.limit_in_bytes",
                    "tasks",
                ],
            ),
            (
                &run.cpu,
                &[
                    "cpu.cfs_period_us",
                    "cpu.cfs_quota_us",
                    "cpu.cfs_burst_us",
                    "cpu.shares",
                    "tasks",
                ],
            ),
            (&run.pids, &["pids.max", "tasks", "cgroup.procs"]),
        ];
        for (dir, names) in files {
            for n in *names {
                fs::write(dir.join(n), "").unwrap();
            }
        }
    }

    #[test]
    fn create_apply_and_remove() {
        let t = tempfile::tempdir().unwrap();
        let bases = fake(t.path());
        let run = Run::create(&bases, "42-1").unwrap();
        assert_eq!(run.dirs().len(), 5);
        populate(&run);
        let limits = Limits {
            memory_bytes: 64 << 20,
            cpu_millicores: 250,
            pids: 7,
            ..Limits::default()
        };
        run.apply(&limits).unwrap();
        let r = |p: PathBuf| fs::read_to_string(p).unwrap();
        assert_eq!(r(run.memory.join("memory.limit_in_bytes")), "67108864");
        assert_eq!(
            r(run.memory.join("memory.memsw.limit_in_bytes")),
            "67108864"
        );
        assert_eq!(r(run.cpu.join("cpu.cfs_period_us")), "100000");
        assert_eq!(r(run.cpu.join("cpu.cfs_quota_us")), "25000");
        assert_eq!(r(run.cpu.join("cpu.cfs_burst_us")), "25000");
        assert_eq!(r(run.pids.join("pids.max")), "7");
        let cg = super::super::RunCgroup::V1(Run::open(&bases, "42-1"));
        cg.set_background(true).unwrap();
        assert_eq!(r(run.cpu.join("cpu.shares")), "2");
        assert_eq!(cg.cpu_weight(), 2);
        fs::write(run.cpu.join("cpu.shares"), "").unwrap();
        cg.set_background(false).unwrap();
        assert_eq!(cg.cpu_weight(), 1024);
        let tasks = run.tasks_files().unwrap();
        assert_eq!(tasks.len(), 5);
        assert!(tasks[0]
            .to_str()
            .unwrap()
            .ends_with("memory/livexec/42-1/tasks"));
        for d in run.dirs() {
            for f in fs::read_dir(&d).unwrap() {
                fs::remove_file(f.unwrap().path()).unwrap();
            }
        }
        run.remove().unwrap();
        assert!(!run.memory.exists());
    }

    #[test]
    fn apply_without_memsw_and_missing_files_fail_with_the_path() {
        let t = tempfile::tempdir().unwrap();
        let bases = fake(t.path());
        let run = Run::create(&bases, "1-1").unwrap();
        let err = run.apply(&Limits::default()).unwrap_err();
        assert!(err.to_string().contains("memory.limit_in_bytes"), "{err}");
        populate(&run);
        fs::remove_file(run.memory.join("memory.memsw.limit_in_bytes")).unwrap();
        run.apply(&Limits::default()).unwrap();
    }

    #[test]
    fn stats_come_from_cpuacct_and_memory() {
        let t = tempfile::tempdir().unwrap();
        let bases = fake(t.path());
        let run = Run::create(&bases, "1-2").unwrap();
        fs::write(run.cpuacct.join("cpuacct.usage"), "25000000\n").unwrap();
        fs::write(run.memory.join("memory.max_usage_in_bytes"), "1048576\n").unwrap();
        fs::write(
            run.memory.join("memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n",
        )
        .unwrap();
        let s = run.stats();
        assert_eq!(s.cpu_ms, 25);
        assert_eq!(s.memory_peak_bytes, 1 << 20);
        assert!(s.oom_killed);
        fs::write(run.memory.join("memory.oom_control"), "oom_kill 0\n").unwrap();
        assert!(!run.stats().oom_killed);
    }

    #[test]
    fn co_mounted_cpu_and_cpuacct_share_a_directory() {
        let t = tempfile::tempdir().unwrap();
        let both = t.path().join("cpu,cpuacct/livexec");
        fs::create_dir_all(&both).unwrap();
        let mut bases = fake(t.path());
        bases.cpu = both.clone();
        bases.cpuacct = both;
        bases.freezer = None;
        assert_eq!(bases.all().len(), 3);
        let run = Run::create(&bases, "5-5").unwrap();
        assert_eq!(run.dirs().len(), 3);
        run.remove().unwrap();
    }
}
