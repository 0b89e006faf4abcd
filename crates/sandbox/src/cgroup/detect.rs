//! Finding a usable hierarchy from `/proc/self/mountinfo` and `/proc/self/cgroup`: v2 when a
//! delegated subtree with memory, cpu and pids can be made, else v1 with memory, cpu, cpuacct
//! and pids (freezer optional).

use std::path::PathBuf;

use super::v1::Bases;
use super::{fsutil, v2, Hierarchy};

/// A cgroup file-system mount.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Mount {
    /// Where it is mounted.
    pub point: PathBuf,
    /// Its root inside the hierarchy (usually `/`).
    pub root: String,
    /// `None` for cgroup2; the v1 controllers otherwise.
    pub controllers: Option<Vec<String>>,
}

/// The cgroup mounts listed in a mountinfo text.
pub(crate) fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let (pre, post) = line.split_once(" - ")?;
            let pre: Vec<&str> = pre.split(' ').collect();
            let mut post = post.split(' ');
            let fstype = post.next()?;
            let _source = post.next()?;
            let opts = post.next().unwrap_or("");
            let root = pre.get(3)?.to_string();
            let point = PathBuf::from(unescape(pre.get(4)?));
            match fstype {
                "cgroup2" => Some(Mount {
                    point,
                    root,
                    controllers: None,
                }),
                "cgroup" => Some(Mount {
                    point,
                    root,
                    controllers: Some(
                        opts.split(',')
                            .filter(|o| !o.contains('=') && *o != "rw" && *o != "ro")
                            .map(str::to_owned)
                            .collect(),
                    ),
                }),
                _ => None,
            }
        })
        .collect()
}

fn unescape(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// `/proc/self/cgroup` as `(controllers, path)`; v2's line has no controllers.
pub(crate) fn parse_proc_cgroup(text: &str) -> Vec<(Vec<String>, String)> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ':');
            let _id = it.next()?;
            let ctrls = it.next()?;
            let path = it.next()?;
            let ctrls = ctrls
                .split(',')
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .collect();
            Some((ctrls, path.to_owned()))
        })
        .collect()
}

/// The directory of our cgroup `path` in a mount whose root is `root`.
fn dir_in(mount: &Mount, path: &str) -> PathBuf {
    let rel = if mount.root == "/" {
        path
    } else {
        path.strip_prefix(mount.root.as_str()).unwrap_or(path)
    };
    mount.point.join(rel.trim_start_matches('/'))
}

/// Detects and prepares a hierarchy. On failure returns why v2 and why v1 are unusable.
pub(crate) fn detect(
    mountinfo: &str,
    proc_cgroup: &str,
    name: &str,
) -> Result<Hierarchy, (String, String)> {
    let mounts = parse_mountinfo(mountinfo);
    let mine = parse_proc_cgroup(proc_cgroup);
    let v2_err = match try_v2(&mounts, &mine, name) {
        Ok(h) => return Ok(h),
        Err(e) => e,
    };
    match try_v1(&mounts, &mine, name) {
        Ok(h) => Ok(h),
        Err(v1_err) => Err((v2_err, v1_err)),
    }
}

fn try_v2(
    mounts: &[Mount],
    mine: &[(Vec<String>, String)],
    name: &str,
) -> Result<Hierarchy, String> {
    let mount = mounts
        .iter()
        .find(|m| m.controllers.is_none())
        .ok_or("no cgroup2 mount")?;
    let path = mine
        .iter()
        .find(|(c, _)| c.is_empty())
        .map(|(_, p)| p.as_str())
        .ok_or("no cgroup2 entry in /proc/self/cgroup")?;
    // Already in our supervisor leaf (a second `Sandbox` in this process, or a process a
    // supervisor started): the subtree is the leaf's parent. Nesting one more level instead
    // would leave the first level's stale runs unswept, and fail (EBUSY) while another
    // process shares the leaf.
    let leaf = format!("{name}-supervisor");
    let path = match path.rsplit_once('/') {
        Some((up, last)) if last == leaf => {
            if up.is_empty() {
                "/"
            } else {
                up
            }
        }
        _ => path,
    };
    let parent = dir_in(mount, path);
    let base = v2::prepare_base(&parent, name, path == "/")?;
    Ok(Hierarchy::V2 { base })
}

fn try_v1(
    mounts: &[Mount],
    mine: &[(Vec<String>, String)],
    name: &str,
) -> Result<Hierarchy, String> {
    let base_for = |ctrl: &str| -> Result<PathBuf, String> {
        let mount = mounts
            .iter()
            .find(|m| {
                m.controllers
                    .as_ref()
                    .is_some_and(|c| c.iter().any(|x| x == ctrl))
            })
            .ok_or_else(|| format!("controller {ctrl} not mounted"))?;
        let path = mine
            .iter()
            .find(|(c, _)| c.iter().any(|x| x == ctrl))
            .map(|(_, p)| p.as_str())
            .unwrap_or("/");
        let base = dir_in(mount, path).join(name);
        fsutil::mkdir(&base).map_err(|e| e.to_string())?;
        Ok(base)
    };
    let bases = Bases {
        memory: base_for("memory")?,
        cpu: base_for("cpu")?,
        cpuacct: base_for("cpuacct")?,
        pids: base_for("pids")?,
        freezer: base_for("freezer").ok(),
    };
    Ok(Hierarchy::V1(bases))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    const MOUNTINFO: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
";

    #[test]
    fn mountinfo_lists_cgroup_mounts() {
        let m = parse_mountinfo(MOUNTINFO);
        assert_eq!(m.len(), 5);
        assert_eq!(m[0].point, PathBuf::from("/sys/fs/cgroup/cpu,cpuacct"));
        assert_eq!(m[0].controllers.as_deref().unwrap(), ["cpu", "cpuacct"]);
        assert_eq!(m[3].controllers.as_deref().unwrap(), ["xattr"]);
        assert_eq!(m[4].controllers, None);
    }

    #[test]
    fn proc_cgroup_is_parsed() {
        let c = parse_proc_cgroup("4:memory:/process_api/abc\n2:cpu,cpuacct:/\n0::/user.slice\n");
        assert_eq!(
            c[0],
            (vec!["memory".to_owned()], "/process_api/abc".to_owned())
        );
        assert_eq!(c[1].0, ["cpu", "cpuacct"]);
        assert_eq!(c[2], (vec![], "/user.slice".to_owned()));
    }

    #[test]
    fn v1_bases_sit_under_our_own_cgroup_in_each_controller() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        let mi = MOUNTINFO.replace("/sys/fs/cgroup", root.to_str().unwrap());
        for d in ["cpu,cpuacct", "memory/process_api/abc", "pids", "unified"] {
            fs::create_dir_all(root.join(d)).unwrap();
        }
        fs::write(
            root.join("memory/process_api/abc/memory.limit_in_bytes"),
            "",
        )
        .unwrap();
        fs::write(root.join("pids/pids.max"), "").unwrap();
        fs::write(root.join("unified/cgroup.controllers"), "").unwrap();
        let pc = "4:memory:/process_api/abc\n2:cpu,cpuacct:/\n8:pids:/\n0::/\n";
        let h = detect(&mi, pc, "livexec").unwrap();
        let Hierarchy::V1(b) = h else {
            panic!("expected v1")
        };
        assert_eq!(b.memory, root.join("memory/process_api/abc/livexec"));
        assert_eq!(b.cpu, root.join("cpu,cpuacct/livexec"));
        assert_eq!(b.cpu, b.cpuacct);
        assert_eq!(b.freezer, None);
        assert!(b.memory.is_dir());
    }

    #[test]
    fn nothing_usable_explains_both() {
        let (v2, v1) = detect("", "", "livexec").unwrap_err();
        assert!(v2.contains("cgroup2"), "{v2}");
        assert!(v1.contains("memory"), "{v1}");
    }

    #[test]
    fn v2_in_our_supervisor_leaf_reuses_its_parent_subtree() {
        let t = tempfile::tempdir().unwrap();
        let svc = t.path().join("system.slice/app.service");
        for d in ["", "livexec", "livexec-supervisor"] {
            fs::create_dir_all(svc.join(d)).unwrap();
            fs::write(svc.join(d).join("cgroup.subtree_control"), "").unwrap();
        }
        // As the kernel shows it once a first supervisor enabled the controllers.
        fs::write(svc.join("cgroup.controllers"), "cpu io memory pids").unwrap();
        fs::write(svc.join("cgroup.subtree_control"), "cpu memory pids").unwrap();
        let mi = format!(
            "41 31 0:38 / {} rw - cgroup2 cgroup2 rw\n",
            t.path().display()
        );
        let pc = "0::/system.slice/app.service/livexec-supervisor\n";
        let h = detect(&mi, pc, "livexec").unwrap();
        assert_eq!(
            h,
            Hierarchy::V2 {
                base: svc.join("livexec")
            }
        );
        assert!(!svc.join("livexec-supervisor/livexec-supervisor").exists());
    }

    #[test]
    fn empty_cgroup2_falls_back_to_v1_reason() {
        let t = tempfile::tempdir().unwrap();
        fs::write(t.path().join("cgroup.controllers"), "").unwrap();
        let mi = format!(
            "41 31 0:38 / {} rw - cgroup2 cgroup2 rw\n",
            t.path().display()
        );
        let (v2, _) = detect(&mi, "0::/\n", "livexec").unwrap_err();
        assert!(v2.contains("not available"), "{v2}");
    }
}
