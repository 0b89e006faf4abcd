//! Neutral mount sources. A bind mount copies the source name of the mount it is taken from,
//! so every read-only bind of the jail (`/usr`, `/etc/ld.so.cache`, the
//! [`crate::Command::mount_ro`] paths) would show the host's block device (`/dev/vda`) in
//! `/proc/self/mountinfo`, `mounts` and `mountstats`. Instead, each run mounts that device
//! again in its private staging tmpfs under the name [`NEUTRAL_NAME`] (a node made there,
//! `mount("livexec", …)`: the kernel records the string given; the superblock is the one
//! already mounted, so page and dentry caches are shared and files cost nothing extra), and
//! binds from that mount.
//!
//! Which device a path lives on comes from the host's mount table, read at start-up and again
//! whenever polling `/proc/self/mountinfo` reports a change, and from `statx(STATX_MNT_ID)` of
//! the path itself. A path is bound the old way (host device name visible) when its device
//! did not pass the start-up probe (not a block device, e.g. overlayfs, btrfs, NFS, tmpfs;
//! or the kernel refused the mount), when another mount lies beneath it (the fresh mount would
//! not carry it), or when it cannot be resolved.

use std::ffi::{CStr, CString};
use std::fs::{self, File};
use std::os::fd::AsRawFd;
use std::os::raw::c_ulong;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::plan::{cpath, Op};
use crate::sys;
use crate::SandboxError;

/// The source name the jail's read-only binds show.
pub(crate) const NEUTRAL_NAME: &CStr = c"livexec";
const MOUNTINFO: &str = "/proc/self/mountinfo";

/// One line of `/proc/self/mountinfo`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Mount {
    /// Mount id (what `statx(STATX_MNT_ID)` reports).
    pub id: u64,
    /// `major:minor` of the superblock.
    pub dev: (u32, u32),
    /// Path of the mount's root inside its file system.
    pub root: PathBuf,
    /// Mount point.
    pub point: PathBuf,
    /// File-system type.
    pub fstype: String,
    /// Source (device path for block file systems).
    pub source: String,
    /// Whether the superblock is read-only.
    pub sb_ro: bool,
}

/// Parses `/proc/self/mountinfo` (lines that do not parse are skipped).
pub(crate) fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<Mount> {
    let (left, right) = line.split_once(" - ")?;
    let l: Vec<&str> = left.split(' ').collect();
    let r: Vec<&str> = right.split(' ').collect();
    let (major, minor) = l.get(2)?.split_once(':')?;
    Some(Mount {
        id: l.first()?.parse().ok()?,
        dev: (major.parse().ok()?, minor.parse().ok()?),
        root: PathBuf::from(unescape(l.get(3)?)),
        point: PathBuf::from(unescape(l.get(4)?)),
        fstype: (*r.first()?).to_owned(),
        source: unescape(r.get(1)?),
        sb_ro: r.get(2).is_some_and(|o| o.split(',').next() == Some("ro")),
    })
}

/// Undoes the kernel's `\ooo` octal escapes (space, tab, newline, backslash).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let oct = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], oct) {
            (b'\\', Some(d)) => {
                out.push(d.iter().fold(0u8, |v, c| v.wrapping_mul(8) + (c - b'0')));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Flags of a neutral device mount: the superblock's read-only state must match (the kernel
/// refuses to change it), the binds are made read-only per mount afterwards.
fn device_flags(m: &Mount) -> c_ulong {
    let ro = if m.sb_ro { libc::MS_RDONLY } else { 0 };
    (libc::MS_NOSUID | libc::MS_NODEV | ro) as c_ulong
}

/// The host's mount table, and the devices that can be mounted under [`NEUTRAL_NAME`].
#[derive(Debug)]
pub(crate) struct Sources {
    table: Mutex<Table>,
    /// `major:minor` of the devices the start-up probe mounted and verified.
    usable: Vec<(u32, u32)>,
    /// Whether `/usr` resolves to a usable device (what [`super::ProcIsolation`] reports).
    pub usr_neutral: bool,
}

#[derive(Debug)]
struct Table {
    /// An open `/proc/self/mountinfo`: `POLLPRI` on it means the mount table changed.
    watch: Option<File>,
    mounts: Vec<Mount>,
}

impl Table {
    fn refresh(&mut self) {
        let changed = match &self.watch {
            Some(f) => {
                let mut p = [libc::pollfd {
                    fd: f.as_raw_fd(),
                    events: libc::POLLPRI,
                    revents: 0,
                }];
                matches!(sys::poll(&mut p, 0), Ok(n) if n > 0)
            }
            None => true,
        };
        if changed {
            if let Ok(text) = fs::read_to_string(MOUNTINFO) {
                self.mounts = parse_mountinfo(&text);
            }
        }
    }
}

/// Where a run's binds come from: the devices it mounts under [`NEUTRAL_NAME`] and, per
/// host path, the device and the path inside it.
#[derive(Debug, Default)]
pub(crate) struct RunSources {
    devices: Vec<Mount>,
    map: Vec<(PathBuf, usize, PathBuf)>,
}

impl Sources {
    /// Reads the mount table (no device is usable before [`Sources::probe`]).
    pub(crate) fn detect() -> Result<Sources, SandboxError> {
        let text = fs::read_to_string(MOUNTINFO).map_err(|source| SandboxError::Fs {
            op: "read",
            path: PathBuf::from(MOUNTINFO),
            source,
        })?;
        Ok(Sources {
            table: Mutex::new(Table {
                watch: File::open(MOUNTINFO).ok(),
                mounts: parse_mountinfo(&text),
            }),
            usable: Vec::new(),
            usr_neutral: false,
        })
    }

    /// No mount table and no usable device: a jail's binds come from the host paths
    /// themselves (what [`Sources::probe`] leaves when nothing can be mounted neutrally).
    pub(crate) fn none() -> Sources {
        Sources {
            table: Mutex::new(Table {
                watch: None,
                mounts: Vec::new(),
            }),
            usable: Vec::new(),
            usr_neutral: false,
        }
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        let mut t = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        t.refresh();
        t
    }

    /// Mounts each block device of the table under [`NEUTRAL_NAME`] in a throw-away mount
    /// namespace (a thread of its own) with `stage` as scratch space, and keeps those whose
    /// mount shows the same file as the host at the same place.
    pub(crate) fn probe(&mut self, stage: &Path) {
        let mut devices: Vec<Mount> = Vec::new();
        for m in &self.table().mounts {
            if m.dev.0 != 0 && !devices.iter().any(|d| d.dev == m.dev) {
                devices.push(m.clone());
            }
        }
        let checked = std::thread::scope(|s| {
            s.spawn(|| probe_in_own_namespace(stage, &devices))
                .join()
                .unwrap_or_default()
        });
        self.usable = checked;
        self.usr_neutral = self.resolve([Path::new("/usr")]).devices.len() == 1;
        tracing::debug!(usable = ?self.usable, "devices mountable under a neutral name");
    }

    /// The neutral source of each path that has one.
    pub(crate) fn resolve<'p>(&self, paths: impl IntoIterator<Item = &'p Path>) -> RunSources {
        let mut run = RunSources::default();
        if self.usable.is_empty() {
            return run;
        }
        let table = self.table();
        for p in paths {
            let Some((m, rel)) = locate(&table.mounts, &self.usable, p) else {
                continue;
            };
            let i = match run.devices.iter().position(|d| d.dev == m.dev) {
                Some(i) => i,
                None => {
                    run.devices.push(m.clone());
                    run.devices.len() - 1
                }
            };
            run.map.push((p.to_path_buf(), i, rel));
        }
        run
    }
}

/// The mount `path` resolves to and the path inside its file system, when the mount's device
/// is usable and no other mount lies beneath `path`.
fn locate<'m>(
    mounts: &'m [Mount],
    usable: &[(u32, u32)],
    path: &Path,
) -> Option<(&'m Mount, PathBuf)> {
    let canon = fs::canonicalize(path).ok()?;
    let id = sys::mount_id(&cpath(&canon).ok()?).ok()?;
    let m = mounts.iter().find(|m| m.id == id)?;
    let deleted = m.root.to_string_lossy().ends_with("//deleted");
    let covered = mounts
        .iter()
        .any(|o| o.point != canon && o.point.starts_with(&canon));
    if !usable.contains(&m.dev) || deleted || covered {
        return None;
    }
    let rel = canon.strip_prefix(&m.point).ok()?;
    Some((m, m.root.join(rel)))
}

fn device_dir(stage: &Path, i: usize) -> PathBuf {
    stage.join(format!("dev{i}"))
}

impl RunSources {
    /// The steps mounting the devices in `stage` (a tmpfs without `nodev`).
    pub(crate) fn steps(&self, stage: &Path, ops: &mut Vec<Op<'_>>) -> Result<(), SandboxError> {
        for (i, m) in self.devices.iter().enumerate() {
            let target = cpath(&device_dir(stage, i))?;
            ops.push(Op::Mkdir {
                path: target.clone(),
                mode: 0o755,
            });
            ops.push(Op::MountDevice {
                dir: cpath(stage)?,
                name: NEUTRAL_NAME,
                dev: m.dev,
                fstype: CString::new(m.fstype.as_str()).map_err(|_| SandboxError::NulByte {
                    what: format!("file-system type {:?}", m.fstype),
                })?,
                target,
                flags: device_flags(m),
            });
        }
        Ok(())
    }

    /// Where to bind `host_path` from: inside a neutral device mount, or `None`.
    pub(crate) fn source(&self, stage: &Path, host_path: &Path) -> Option<PathBuf> {
        let (_, i, rel) = self.map.iter().find(|(p, _, _)| p == host_path)?;
        let rel = rel.strip_prefix("/").unwrap_or(rel);
        Some(device_dir(stage, *i).join(rel))
    }
}

/// Runs in a thread that unshares its mount namespace (and with it its working directory):
/// everything mounted here vanishes when the thread ends.
fn probe_in_own_namespace(stage: &Path, devices: &[Mount]) -> Vec<(u32, u32)> {
    let Ok(cstage) = cpath(stage) else {
        return Vec::new();
    };
    let private = (libc::MS_REC | libc::MS_PRIVATE) as c_ulong;
    let scratch = (libc::MS_NOSUID | libc::MS_NOEXEC) as c_ulong;
    let ready = sys::unshare(libc::CLONE_NEWNS)
        .and_then(|()| sys::mount(None, c"/", None, private, None))
        .and_then(|()| sys::mount(Some(c"tmpfs"), &cstage, Some(c"tmpfs"), scratch, None));
    if let Err(e) = ready {
        tracing::info!(errno = e, "cannot probe neutral mount sources");
        return Vec::new();
    }
    let mut usable = Vec::new();
    for (i, m) in devices.iter().enumerate() {
        let target = device_dir(stage, i);
        let mounted = fs::create_dir(&target)
            .map_err(|_| libc::EIO)
            .and_then(|()| {
                let fstype = CString::new(m.fstype.as_str()).map_err(|_| libc::EINVAL)?;
                let ctarget = cpath(&target).map_err(|_| libc::EINVAL)?;
                sys::mount_device_as(
                    &cstage,
                    NEUTRAL_NAME,
                    m.dev,
                    &fstype,
                    &ctarget,
                    device_flags(m),
                )
            });
        let inside = target.join(m.root.strip_prefix("/").unwrap_or(&m.root));
        let same = |a: &Path, b: &Path| match (fs::metadata(a), fs::metadata(b)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        };
        match mounted {
            Ok(()) if same(&m.point, &inside) => usable.push(m.dev),
            Ok(()) => tracing::info!(source = %m.source, "neutral mount shows other files"),
            Err(e) => tracing::info!(source = %m.source, errno = e, "no neutral mount"),
        }
    }
    usable
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_lines_are_parsed() {
        let text = "27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw,discard\n\
                    65 27 0:40 /a\\040b /mnt/x\\134y ro - tmpfs my\\040src ro,size=4k\n\
                    garbage\n";
        let m = parse_mountinfo(text);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].dev, (254, 0));
        assert_eq!(m[0].source, "/dev/vda");
        assert!(!m[0].sb_ro);
        assert_eq!(m[1].root, Path::new("/a b"));
        assert_eq!(m[1].point, Path::new("/mnt/x\\y"));
        assert_eq!(m[1].source, "my src");
        assert!(m[1].sb_ro);
    }

    #[test]
    fn paths_map_into_their_device_mount() {
        let run = RunSources {
            devices: Vec::new(),
            map: vec![(PathBuf::from("/usr"), 1, PathBuf::from("/usr"))],
        };
        let stage = Path::new("/run/x/stage");
        assert_eq!(
            run.source(stage, Path::new("/usr")),
            Some(PathBuf::from("/run/x/stage/dev1/usr"))
        );
        assert_eq!(run.source(stage, Path::new("/opt")), None);
    }
}
