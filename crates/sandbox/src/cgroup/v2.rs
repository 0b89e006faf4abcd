//! cgroup v2: one directory per run under a base with `+memory +cpu +pids` in its
//! `cgroup.subtree_control`. The child is created directly inside it with
//! `clone3(CLONE_INTO_CGROUP)`, so there is no migration at all.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use super::fsutil;
use super::{Stats, CPU_PERIOD_US};
use crate::{Limits, SandboxError};

/// The controllers we need enabled for run cgroups.
pub(crate) const CONTROLLERS: [&str; 3] = ["memory", "cpu", "pids"];

/// One run's directory (and an open fd of it for `CLONE_INTO_CGROUP`).
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) dir: PathBuf,
    fd: Option<File>,
}

impl Run {
    /// The run's path without touching the file system.
    pub(crate) fn open(dir: &Path) -> Run {
        Run {
            dir: dir.to_path_buf(),
            fd: None,
        }
    }

    /// Creates the directory and opens it.
    pub(crate) fn create(dir: &Path) -> Result<Run, SandboxError> {
        fsutil::mkdir(dir)?;
        let fd = File::open(dir).map_err(|source| SandboxError::Cgroup {
            op: "open",
            path: dir.to_path_buf(),
            source,
        })?;
        Ok(Run {
            dir: dir.to_path_buf(),
            fd: Some(fd),
        })
    }

    /// The directory fd.
    pub(crate) fn fd(&self) -> Option<i32> {
        self.fd.as_ref().map(AsRawFd::as_raw_fd)
    }

    /// memory.max, memory.swap.max, cpu.max (+ cpu.max.burst), pids.max.
    pub(crate) fn apply(&self, l: &Limits) -> Result<(), SandboxError> {
        fsutil::write(&self.dir.join("memory.max"), &l.memory_bytes.to_string())?;
        let swap = self.dir.join("memory.swap.max");
        if swap.exists() {
            fsutil::write(&swap, "0")?;
        }
        let quota = super::quota_us(l);
        fsutil::write(
            &self.dir.join("cpu.max"),
            &format!("{quota} {CPU_PERIOD_US}"),
        )?;
        if l.cpu_burst {
            super::set_burst(&self.dir.join("cpu.max.burst"), quota);
        }
        fsutil::write(&self.dir.join("pids.max"), &l.pids.to_string())
    }

    /// cpu.stat `usage_usec`, memory.peak, memory.events `oom_kill`.
    pub(crate) fn stats(&self) -> Stats {
        Stats {
            cpu_ms: fsutil::keyed(&self.dir.join("cpu.stat"), "usage_usec").unwrap_or(0) / 1000,
            memory_peak_bytes: fsutil::read_u64(&self.dir.join("memory.peak")),
            oom_killed: fsutil::keyed(&self.dir.join("memory.events"), "oom_kill").unwrap_or(0) > 0,
        }
    }

    /// `cgroup.kill` when the kernel has it (5.14+), else a SIGKILL loop under `cgroup.freeze`.
    pub(crate) fn kill_all(&self) {
        let procs = self.dir.join("cgroup.procs");
        let kill = self.dir.join("cgroup.kill");
        if kill.exists() && fsutil::write(&kill, "1").is_ok() {
            fsutil::kill_loop(&procs, &|| {}, &|| {});
            return;
        }
        let freeze = self.dir.join("cgroup.freeze");
        fsutil::kill_loop(
            &procs,
            &|| {
                let _ = fsutil::write(&freeze, "1");
            },
            &|| {
                let _ = fsutil::write(&freeze, "0");
            },
        );
    }

    /// Removes the directory.
    pub(crate) fn remove(&self) -> Result<(), SandboxError> {
        fsutil::rmdir(&self.dir)
    }
}

/// Makes `base` (= `<parent>/<name>`) a cgroup whose children get our controllers.
///
/// `parent` is the cgroup the supervisor is in (or the parent of the `<name>-supervisor` leaf
/// it is already in, see `detect`). Unless it is the root, a cgroup whose children get
/// controllers may hold no process ("no internal processes" rule), so every process in
/// `parent` first moves into the leaf `<parent>/<name>-supervisor`: this one, and any other —
/// a child another thread of ours has just spawned, or another process of the service the
/// subtree is delegated to. Then the controllers are enabled in `parent`
/// and in `base`.
pub(crate) fn prepare_base(parent: &Path, name: &str, is_root: bool) -> Result<PathBuf, String> {
    let available = fsutil::read(&parent.join("cgroup.controllers"))
        .map_err(|e| format!("{}: {e}", parent.join("cgroup.controllers").display()))?;
    let missing: Vec<&str> = CONTROLLERS
        .iter()
        .copied()
        .filter(|c| !available.split_whitespace().any(|a| a == *c))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "controllers {missing:?} not available in {}",
            parent.display()
        ));
    }
    let enable = CONTROLLERS.map(|c| format!("+{c}")).join(" ");
    let subtree = parent.join("cgroup.subtree_control");
    let enabled = fsutil::read(&subtree).unwrap_or_default();
    let already = CONTROLLERS
        .iter()
        .all(|c| enabled.split_whitespace().any(|a| a == *c));
    if !already {
        if is_root {
            fsutil::write(&subtree, &enable).map_err(|e| e.to_string())?;
        } else {
            let leaf = parent.join(format!("{name}-supervisor"));
            fsutil::mkdir(&leaf).map_err(|e| e.to_string())?;
            enable_after_vacating(parent, &leaf, &enable)?;
        }
    }
    let base = parent.join(name);
    fsutil::mkdir(&base).map_err(|e| e.to_string())?;
    fsutil::write(&base.join("cgroup.subtree_control"), &enable).map_err(|e| e.to_string())?;
    Ok(base)
}

/// Moves every process of `parent` into `leaf` (this one first), then enables `controllers`
/// in `parent`. A thread of ours may fork between the two (the child is born in `parent`), and
/// an exiting process cannot be moved but counts until it is gone, so a refused write (`EBUSY`)
/// moves the newcomers and tries again, a few times over some 30 ms.
fn enable_after_vacating(parent: &Path, leaf: &Path, controllers: &str) -> Result<(), String> {
    let procs = leaf.join("cgroup.procs");
    fsutil::write(&procs, &std::process::id().to_string()).map_err(|e| e.to_string())?;
    let mut last = String::new();
    for attempt in 0..5 {
        if attempt > 0 {
            std::thread::sleep(std::time::Duration::from_millis(1 << attempt));
        }
        for pid in fsutil::read_pids(&parent.join("cgroup.procs")) {
            // A process that exited meanwhile cannot be moved, and needs not be.
            let _ = fsutil::write(&procs, &pid.to_string());
        }
        match fsutil::write(&parent.join("cgroup.subtree_control"), controllers) {
            Ok(()) => return Ok(()),
            Err(e) => last = e.to_string(),
        }
    }
    let left = fsutil::read_pids(&parent.join("cgroup.procs"));
    Err(format!("{last} (processes still in it: {left:?})"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn fake_parent(root: &Path, controllers: &str) -> PathBuf {
        let p = root.join("system.slice/app.service");
        fs::create_dir_all(&p).unwrap();
        fs::write(p.join("cgroup.controllers"), controllers).unwrap();
        fs::write(p.join("cgroup.subtree_control"), "").unwrap();
        // What the kernel would create in the new cgroups.
        for d in ["livexec", "livexec-supervisor"] {
            fs::create_dir_all(p.join(d)).unwrap();
            fs::write(p.join(d).join("cgroup.subtree_control"), "").unwrap();
            fs::write(p.join(d).join("cgroup.procs"), "").unwrap();
        }
        p
    }

    #[test]
    fn base_is_prepared_in_a_delegated_subtree() {
        let t = tempfile::tempdir().unwrap();
        let parent = fake_parent(t.path(), "cpuset cpu io memory pids");
        let base = prepare_base(&parent, "livexec", false).unwrap();
        assert_eq!(base, parent.join("livexec"));
        let r = |p: PathBuf| fs::read_to_string(p).unwrap();
        assert_eq!(
            r(parent.join("cgroup.subtree_control")),
            "+memory +cpu +pids"
        );
        assert_eq!(r(base.join("cgroup.subtree_control")), "+memory +cpu +pids");
        assert_eq!(
            r(parent.join("livexec-supervisor/cgroup.procs")),
            std::process::id().to_string()
        );
    }

    #[test]
    fn missing_controllers_are_named() {
        let t = tempfile::tempdir().unwrap();
        let parent = fake_parent(t.path(), "cpu io");
        let err = prepare_base(&parent, "livexec", false).unwrap_err();
        assert!(err.contains("memory") && err.contains("pids"), "{err}");
    }

    #[test]
    fn run_limits_and_stats() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("livexec/7-1");
        fs::create_dir_all(t.path().join("livexec")).unwrap();
        let run = Run::create(&dir).unwrap();
        assert!(run.fd().is_some());
        for f in [
            "memory.max",
            "memory.swap.max",
            "cpu.max",
            "cpu.max.burst",
            "pids.max",
        ] {
            fs::write(dir.join(f), "").unwrap();
        }
        let limits = Limits {
            memory_bytes: 1 << 20,
            cpu_millicores: 1500,
            pids: 9,
            ..Limits::default()
        };
        run.apply(&limits).unwrap();
        let r = |f: &str| fs::read_to_string(dir.join(f)).unwrap();
        assert_eq!(r("memory.max"), "1048576");
        assert_eq!(r("memory.swap.max"), "0");
        assert_eq!(r("cpu.max"), "150000 100000");
        assert_eq!(r("cpu.max.burst"), "150000");
        assert_eq!(r("pids.max"), "9");
        fs::write(dir.join("cpu.stat"), "usage_usec 12345\nuser_usec 1\n").unwrap();
        fs::write(dir.join("memory.peak"), "4096\n").unwrap();
        fs::write(dir.join("memory.events"), "oom 1\noom_kill 2\n").unwrap();
        let s = run.stats();
        assert_eq!(
            (s.cpu_ms, s.memory_peak_bytes, s.oom_killed),
            (12, 4096, true)
        );
    }
}
