//! What the host looks like, learnt once at start-up ([`HostLayout`]): usrmerge links, the
//! `/etc` files the dynamic loader wants, the last capability number, the Landlock ABI, and the
//! compiled seccomp filter.

use std::fs;
use std::path::{Path, PathBuf};

use landlock::{AccessFs, BitFlags, ABI};

use crate::SandboxError;

/// Top-level directories that are either bound read-only or replicated as symlinks.
const TOP_LEVEL: &[&str] = &["bin", "sbin", "lib", "lib32", "lib64", "libx32"];
/// `/etc` entries the runtimes need (the loader cache, the time zone).
const ETC_FILES: &[&str] = &["ld.so.cache", "localtime"];
/// Character devices created in the jail's `/dev`: name, major, minor.
pub(crate) const DEVICES: &[(&str, u32, u32)] = &[
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
];

/// A top-level entry of the host root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Entry {
    /// A directory (bound read-only).
    Dir(PathBuf),
    /// A regular file (bound read-only).
    File(PathBuf),
    /// A symlink (re-created with the same target).
    Link(PathBuf, PathBuf),
}

/// The host facts the jail is built from.
#[derive(Debug)]
pub(crate) struct HostLayout {
    /// `/usr` plus the top-level dirs and links.
    pub top: Vec<Entry>,
    /// `/etc` files and links.
    pub etc: Vec<Entry>,
    /// `/proc/sys/kernel/cap_last_cap`.
    pub cap_last: u64,
    /// Landlock: `(handled, write rule for /tmp and /work, write rule for /dev)`; `None`
    /// when the kernel has no Landlock.
    pub landlock: Option<(u64, u64, u64)>,
    /// The compiled seccomp filter.
    pub seccomp: seccompiler::BpfProgram,
    /// What the jail's `/proc` is generated from.
    pub proc: crate::procfs::ProcHost,
}

fn entry(path: &Path) -> Option<Entry> {
    let meta = fs::symlink_metadata(path).ok()?;
    if meta.file_type().is_symlink() {
        Some(Entry::Link(path.to_path_buf(), fs::read_link(path).ok()?))
    } else if meta.is_dir() {
        Some(Entry::Dir(path.to_path_buf()))
    } else if meta.is_file() {
        Some(Entry::File(path.to_path_buf()))
    } else {
        None
    }
}

impl HostLayout {
    /// Inspects the host.
    pub(crate) fn detect() -> Result<HostLayout, SandboxError> {
        let mut top = vec![Entry::Dir(PathBuf::from("/usr"))];
        top.extend(
            TOP_LEVEL
                .iter()
                .filter_map(|n| entry(&Path::new("/").join(n))),
        );
        let etc = ETC_FILES
            .iter()
            .filter_map(|n| entry(&Path::new("/etc").join(n)))
            .collect();
        let cap_path = Path::new("/proc/sys/kernel/cap_last_cap");
        let cap_last = fs::read_to_string(cap_path)
            .map_err(|source| SandboxError::Fs {
                op: "read",
                path: cap_path.to_path_buf(),
                source,
            })?
            .trim()
            .parse()
            .unwrap_or(40);
        Ok(HostLayout {
            top,
            etc,
            cap_last,
            landlock: landlock_masks(crate::sys::landlock_abi()),
            seccomp: crate::seccomp::build()?,
            proc: crate::procfs::ProcHost::detect()?,
        })
    }
}

/// Landlock access masks for an ABI version (0 = unavailable).
pub(crate) fn landlock_masks(abi: i32) -> Option<(u64, u64, u64)> {
    if abi < 1 {
        return None;
    }
    let abi = ABI::from(abi);
    let handled: BitFlags<AccessFs> = AccessFs::from_write(abi);
    let dev: BitFlags<AccessFs> = AccessFs::WriteFile | AccessFs::Truncate | AccessFs::IoctlDev;
    Some((handled.bits(), handled.bits(), (dev & handled).bits()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn landlock_masks_follow_the_abi() {
        assert_eq!(landlock_masks(0), None);
        let (h1, w1, d1) = landlock_masks(1).unwrap();
        assert_eq!(h1, w1);
        assert_eq!(d1, AccessFs::WriteFile as u64);
        let (h5, _, d5) = landlock_masks(5).unwrap();
        assert!(h5 > h1);
        assert_eq!(d5 & (AccessFs::IoctlDev as u64), AccessFs::IoctlDev as u64);
    }

    #[test]
    fn host_layout_has_usr_and_the_seccomp_filter() {
        let l = HostLayout::detect().unwrap();
        assert_eq!(l.top[0], Entry::Dir(PathBuf::from("/usr")));
        assert!(l.cap_last >= 30);
        assert!(!l.seccomp.is_empty());
    }
}
