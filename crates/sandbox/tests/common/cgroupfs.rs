//! Where the run cgroups of this process's sandbox must be, worked out from
//! `/proc/self/mountinfo` and `/proc/*/cgroup` without the crate's code, so tests can check that
//! the crate put them there: on cgroup v2 `<cgroup2 mount>/<our cgroup>/livexec` (the delegated
//! subtree; "our cgroup" is the parent of the `livexec-supervisor` leaf the supervisor moves
//! itself into), on v1 `<controller mount>/<our cgroup>/livexec` per controller.

use std::fs;
use std::path::{Path, PathBuf};

use livexec_sandbox::{CgroupMode, SandboxConfig};

/// The v1 controllers the sandbox uses (freezer only where mounted).
pub const V1_CONTROLLERS: [&str; 5] = ["memory", "cpu", "cpuacct", "pids", "freezer"];

/// The subtree name (`SandboxConfig::default().name`).
pub fn name() -> String {
    SandboxConfig::default().name
}

/// A cgroup mount: `(mount point, root in the hierarchy, None for cgroup2 or the v1 options)`.
type Mount = (PathBuf, String, Option<Vec<String>>);

fn mounts() -> Vec<Mount> {
    let text = fs::read_to_string("/proc/self/mountinfo").unwrap();
    text.lines()
        .filter_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let pre: Vec<&str> = pre.split(' ').collect();
            let post: Vec<&str> = post.split(' ').collect();
            let (point, root) = (PathBuf::from(pre[4]), pre[3].to_owned());
            match post[0] {
                "cgroup2" => Some((point, root, None)),
                "cgroup" => Some((
                    point,
                    root,
                    Some(post[2].split(',').map(str::to_owned).collect()),
                )),
                _ => None,
            }
        })
        .collect()
}

/// `path` (as in `/proc/<pid>/cgroup`) inside `mount`.
fn dir_in(mount: &Mount, path: &str) -> PathBuf {
    let rel = path.strip_prefix(mount.1.as_str()).unwrap_or(path);
    mount.0.join(rel.trim_start_matches('/'))
}

/// `/proc/<pid>/cgroup` as `(controllers, path)` lines (v2's line has no controllers).
fn proc_cgroup(pid: &str) -> Vec<(Vec<String>, String)> {
    fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ':');
            let _ = it.next()?;
            let c = it.next()?.split(',').filter(|c| !c.is_empty());
            Some((c.map(str::to_owned).collect(), it.next()?.to_owned()))
        })
        .collect()
}

/// The cgroup directories process `pid` (`"self"` for us) is in, in the hierarchies `mode`
/// uses: one on v2, one per used controller on v1 (co-mounted controllers share one).
pub fn cgroups_of(pid: &str, mode: CgroupMode) -> Vec<PathBuf> {
    let mounts = mounts();
    let lines = proc_cgroup(pid);
    let mut dirs: Vec<PathBuf> = Vec::new();
    match mode {
        CgroupMode::V2 => {
            let mount = mounts
                .iter()
                .find(|m| m.2.is_none())
                .expect("cgroup2 mount");
            if let Some((_, p)) = lines.iter().find(|(c, _)| c.is_empty()) {
                dirs.push(dir_in(mount, p));
            }
        }
        CgroupMode::V1 => {
            for ctrl in V1_CONTROLLERS {
                let has = |cs: &Vec<String>| cs.iter().any(|c| c == ctrl);
                let Some(mount) = mounts.iter().find(|m| m.2.as_ref().is_some_and(has)) else {
                    continue;
                };
                let Some((_, p)) = lines.iter().find(|(c, _)| has(c)) else {
                    continue;
                };
                let d = dir_in(mount, p);
                if !dirs.contains(&d) {
                    dirs.push(d);
                }
            }
        }
        CgroupMode::RlimitsOnly => panic!("no cgroup in use (rlimits-only mode)"),
    }
    dirs
}

/// The base directories of our run cgroups (one on v2, one per used controller on v1), for a
/// supervisor in the cgroup this process is in now.
pub fn bases(mode: CgroupMode) -> Vec<PathBuf> {
    let leaf = format!("{}-supervisor", name());
    cgroups_of("self", mode)
        .into_iter()
        .map(|d| {
            let parent = match mode {
                CgroupMode::V2 if d.file_name().is_some_and(|n| *n == *leaf) => {
                    d.parent().unwrap().to_path_buf()
                }
                _ => d,
            };
            parent.join(name())
        })
        .filter(|b| b.is_dir())
        .collect()
}

/// The run cgroups `<pid>-<seq>` of supervisor `pid` under `bases`.
pub fn runs_of(pid: u32, bases: &[PathBuf]) -> Vec<PathBuf> {
    let prefix = format!("{pid}-");
    bases
        .iter()
        .flat_map(|b| fs::read_dir(b).into_iter().flatten().flatten())
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .collect()
}

/// A control file's content, trimmed.
pub fn read(dir: &Path, file: &str) -> String {
    let p = dir.join(file);
    fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .trim()
        .to_owned()
}

/// The pids listed in `<dir>/cgroup.procs`.
pub fn procs(dir: &Path) -> Vec<u32> {
    read(dir, "cgroup.procs")
        .lines()
        .map(|l| l.parse().unwrap())
        .collect()
}
