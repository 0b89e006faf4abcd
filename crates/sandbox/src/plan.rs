//! The jail as a list of steps ([`Op`]), built by the supervisor before `clone` and executed by
//! the child ([`crate::child`]) without allocating.
//!
//! Every string the child needs is a ready `CString`, every array a ready `Vec`, the seccomp
//! program is compiled; the child only walks the list making syscalls. When a step fails the
//! child reports its index and `errno`, and the supervisor turns the index back into a
//! description naming the call and path ([`Op::describe`]).

use std::borrow::Cow;
use std::ffi::{CStr, CString, OsStr};
use std::os::raw::{c_char, c_int, c_ulong};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::SandboxError;

/// The host name inside the jail.
pub(crate) const JAIL_HOSTNAME: &str = "livexec";

/// One step of building the jail.
pub(crate) enum Op<'a> {
    /// Move the pipes to fds 0, 1, 2, the status pipe to 3, the exit pipe to 4, the
    /// supervisor's pidfd to 5, the go pipe to 6 and the init executable to 7 (see
    /// [`crate::child::FD_LAYOUT`]); close every other fd.
    Stdio {
        stdin: c_int,
        stdout: c_int,
        stderr: c_int,
        status: c_int,
        exit: c_int,
        parent: c_int,
        go: c_int,
        init: c_int,
    },
    /// `setns(fd, CLONE_NEWNET)`: enter the run's own fresh network namespace (only `lo`, down).
    EnterNetns { fd: c_int },
    /// `prctl(PR_SET_PDEATHSIG, SIGKILL)`: a dying supervisor takes the jail down; then
    /// give up if the supervisor (pidfd at [`crate::child::PARENT_FD`]) already died.
    DeathSignal,
    /// Write `0` to a cgroup v1 `tasks` file (moves this single thread: no global lock).
    JoinCgroup { tasks: CString },
    /// `unshare(flags)`.
    Unshare { flags: c_int },
    /// `mount(NULL, "/", MS_REC|MS_PRIVATE)`.
    MakePrivate,
    /// A tmpfs at `target` with `data` options.
    Tmpfs {
        target: CString,
        data: CString,
        flags: c_ulong,
    },
    /// `mkdir(path, mode)`.
    Mkdir { path: CString, mode: u32 },
    /// Create an empty file (a bind-mount target).
    Touch { path: CString },
    /// `symlink(target, link)`.
    Symlink { target: CString, link: CString },
    /// Recursive bind of `src` at `dst`, then `mount_setattr(dst, AT_RECURSIVE, attrs)`.
    Bind {
        src: CString,
        dst: CString,
        attrs: u64,
    },
    /// `mknod(path, S_IFCHR | 0666, makedev(major, minor))`.
    Mknod {
        path: CString,
        major: u32,
        minor: u32,
    },
    /// A new procfs at `target`.
    Proc { target: CString },
    /// Create `path` with `data`, mode 0644 (owned by root).
    WriteFile { path: CString, data: Cow<'a, [u8]> },
    /// Make the mount at `target` read-only (not recursive).
    RemountRo { target: CString },
    /// `chdir(root)`, `pivot_root(".", ".")`, `umount2(".", MNT_DETACH)`.
    PivotRoot { root: CString },
    /// `chdir(path)`.
    Chdir { path: CString },
    /// `sethostname`.
    Hostname,
    /// `setrlimit(resource, soft, hard)`.
    Rlimit {
        resource: c_int,
        name: &'static str,
        soft: u64,
        hard: u64,
    },
    /// `prctl(PR_CAPBSET_DROP, cap)` for every capability up to `last`.
    DropBoundingSet { last: c_ulong },
    /// `setpriority(PRIO_PROCESS, 0, 0)`: the normal priority back (a jail prepared by the
    /// warm pool's low-priority thread inherits its nice value; the program must not).
    Renice,
    /// `setgroups(0)`, `setresgid`, `setresuid`.
    DropIds { uid: u32, gid: u32 },
    /// `capset` to all-zero sets.
    ClearCaps,
    /// `prctl(PR_SET_NO_NEW_PRIVS, 1)`.
    NoNewPrivs,
    /// A Landlock ruleset handling `handled` accesses with `(path, allowed)` rules, then
    /// `landlock_restrict_self`.
    Landlock {
        handled: u64,
        rules: Vec<(CString, u64)>,
    },
    /// Default signal actions and an empty mask (both survive `execve`).
    ResetSignals,
    /// Install the seccomp filter.
    Seccomp {
        prog: &'a [seccompiler::sock_filter],
    },
    /// `execveat(init fd, "", argv, envp, AT_EMPTY_PATH)`: become the jail's init (module
    /// [`crate::init`]), a fresh image with a neutral argv and an empty environment.
    ExecInit {
        argv: [*const c_char; 2],
        envp: [*const c_char; 1],
    },
    /// Create `path` (mode 0444, owned by root) holding `data`, generated for this run.
    WriteOwned { path: CString, data: Vec<u8> },
    /// `mount(src, dst, MS_BIND)`: one bind, not recursive, that keeps the flags of the
    /// mount `src` is on; a `dst` that does not exist is skipped (nothing there to cover).
    Cover { src: CString, dst: CString },
    /// Write `data` to the existing file `path`.
    WriteTo { path: CString, data: Vec<u8> },
    /// `mount_setattr(target, attrs)`, not recursive.
    SetAttrs { target: CString, attrs: u64 },
    /// Mount the block device `dev` at `target` under the source name `name` instead of the
    /// host's device path ([`crate::sys::mount_device_as`], the node made in `dir`).
    MountDevice {
        dir: CString,
        name: &'static CStr,
        dev: (u32, u32),
        fstype: CString,
        target: CString,
        flags: c_ulong,
    },
}

impl Op<'_> {
    /// Human description of the step: the syscall and its arguments.
    pub(crate) fn describe(&self) -> String {
        let s = |c: &CString| c.to_string_lossy().into_owned();
        match self {
            Op::Stdio { .. } => "dup3 stdio / close_range(6, ~0)".into(),
            Op::EnterNetns { fd } => format!("setns(fd {fd}, CLONE_NEWNET)"),
            Op::DeathSignal => "prctl(PR_SET_PDEATHSIG, SIGKILL)".into(),
            Op::JoinCgroup { tasks } => format!("write 0 > {}", s(tasks)),
            Op::Unshare { flags } => format!("unshare({flags:#x})"),
            Op::MakePrivate => "mount(/, MS_REC|MS_PRIVATE)".into(),
            Op::Tmpfs { target, data, .. } => format!("mount tmpfs {} ({})", s(target), s(data)),
            Op::Mkdir { path, .. } => format!("mkdir {}", s(path)),
            Op::Touch { path } => format!("create {}", s(path)),
            Op::Symlink { target, link } => format!("symlink {} -> {}", s(link), s(target)),
            Op::Bind { src, dst, .. } => format!("bind-mount {} at {} read-only", s(src), s(dst)),
            Op::Proc { target } => format!("mount proc {}", s(target)),
            Op::Mknod {
                path, major, minor, ..
            } => format!("mknod {} c {major} {minor}", s(path)),
            Op::WriteFile { path, .. } => format!("write file {}", s(path)),
            Op::RemountRo { target } => format!("remount {} read-only", s(target)),
            Op::PivotRoot { root } => format!("pivot_root {}", s(root)),
            Op::Chdir { path } => format!("chdir {}", s(path)),
            Op::Hostname => format!("sethostname {JAIL_HOSTNAME}"),
            Op::Rlimit { name, soft, .. } => format!("setrlimit({name}, {soft})"),
            Op::DropBoundingSet { last } => format!("prctl(PR_CAPBSET_DROP, 0..={last})"),
            Op::Renice => "setpriority(PRIO_PROCESS, 0, 0)".into(),
            Op::DropIds { uid, gid } => format!("setgroups/setresgid({gid})/setresuid({uid})"),
            Op::ClearCaps => "capset(0, 0, 0)".into(),
            Op::NoNewPrivs => "prctl(PR_SET_NO_NEW_PRIVS, 1)".into(),
            Op::Landlock { rules, .. } => format!(
                "landlock ruleset ({})",
                rules
                    .iter()
                    .map(|(p, _)| s(p))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Op::ResetSignals => "reset signal actions and mask".into(),
            Op::Seccomp { prog } => format!("seccomp(SET_MODE_FILTER, {} insns)", prog.len()),
            Op::ExecInit { .. } => "execveat(the jail's init, AT_EMPTY_PATH)".into(),
            Op::WriteOwned { path, .. } => format!("write file {}", s(path)),
            Op::Cover { src, dst } => format!("bind-mount {} over {}", s(src), s(dst)),
            Op::WriteTo { path, .. } => format!("write to {}", s(path)),
            Op::SetAttrs { target, attrs } => format!("mount_setattr({}, {attrs:#x})", s(target)),
            Op::MountDevice {
                name, dev, target, ..
            } => format!(
                "mount block device {}:{} at {} as {:?}",
                dev.0,
                dev.1,
                s(target),
                name
            ),
        }
    }
}

/// A path as a `CString`, rejecting interior NULs.
pub(crate) fn cpath(p: &Path) -> Result<CString, SandboxError> {
    cbytes(p.as_os_str().as_bytes(), || p.display().to_string())
}

/// Bytes as a `CString`; `what` names the value in the error.
pub(crate) fn cbytes(b: &[u8], what: impl FnOnce() -> String) -> Result<CString, SandboxError> {
    CString::new(b).map_err(|_| SandboxError::NulByte { what: what() })
}

/// `KEY=VALUE` as a `CString`.
pub(crate) fn cenv(k: &OsStr, v: &OsStr) -> Result<CString, SandboxError> {
    let mut b = k.as_bytes().to_vec();
    if b.is_empty() || b.contains(&b'=') {
        return Err(SandboxError::NulByte {
            what: format!("environment name {:?} (empty or with '=')", k),
        });
    }
    b.push(b'=');
    b.extend_from_slice(v.as_bytes());
    cbytes(&b, || format!("environment variable {:?}", k))
}

/// `root` joined with an absolute in-jail path.
pub(crate) fn under(root: &Path, inside: &Path) -> Result<CString, SandboxError> {
    let rel = inside.strip_prefix("/").unwrap_or(inside);
    cpath(&root.join(rel))
}

/// Longest component of a working-dir file name, bytes (the kernel's `NAME_MAX`).
const NAME_MAX: usize = 255;
/// Longest working-dir file name, bytes (under the kernel's `PATH_MAX` with `/work/`).
const PATH_MAX: usize = 4000;

/// Checks a working-dir file name: a plain relative path written as it is meant — non-empty,
/// no NUL, every `/`-separated part non-empty and neither `.` nor `..` (so `a//b`, `a/./b`
/// and `d/` are refused rather than normalized), each part at most `NAME_MAX` bytes.
pub(crate) fn check_file_name(name: &str) -> Result<(), SandboxError> {
    let ok = !name.is_empty()
        && name.len() <= PATH_MAX
        && !name.contains('\0')
        && name
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != ".." && c.len() <= NAME_MAX);
    if ok {
        Ok(())
    } else {
        Err(SandboxError::BadFileName {
            name: name.to_owned(),
        })
    }
}

/// The most directories a run's files may need: each is made (as root, outside the run's
/// limits) before the program starts.
pub(crate) const MAX_DIRECTORIES: usize = 4096;

/// Checks that `names` (a run's files and artifacts, each already a valid name) can all be
/// written: none twice, none where another needs a directory (`a` and `a/b`), at most
/// [`MAX_DIRECTORIES`] directories in all.
pub(crate) fn check_file_set<'a>(names: impl Iterator<Item = &'a str>) -> Result<(), SandboxError> {
    let mut seen = std::collections::BTreeSet::new();
    let names: Vec<&str> = names.collect();
    for &name in &names {
        if !seen.insert(name) {
            return Err(SandboxError::FilesCollide {
                first: name.to_owned(),
                second: name.to_owned(),
            });
        }
    }
    let dirs: std::collections::BTreeSet<&str> = names
        .iter()
        .flat_map(|name| name.match_indices('/').map(|(at, _)| &name[..at]))
        .collect();
    if dirs.len() > MAX_DIRECTORIES {
        return Err(SandboxError::TooManyDirectories {
            needed: dirs.len(),
            max: MAX_DIRECTORIES,
        });
    }
    for &name in &names {
        // Every directory the file needs must not be a file of the set.
        let dirs = name.match_indices('/').map(|(i, _)| &name[..i]);
        if let Some(dir) = dirs.into_iter().find(|d| seen.contains(d)) {
            return Err(SandboxError::FilesCollide {
                first: dir.to_owned(),
                second: name.to_owned(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_checked() {
        for good in ["main.py", "a/b.js", "x"] {
            assert!(check_file_name(good).is_ok(), "{good}");
        }
        let long = "x".repeat(256);
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "./x",
            "a\0b",
            "a//b",
            "a/./b",
            "d/",
            ".",
            long.as_str(),
        ] {
            assert!(
                matches!(check_file_name(bad), Err(SandboxError::BadFileName { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn file_sets_that_cannot_be_written_are_refused() {
        assert!(check_file_set(["a", "b/c", "b/d"].into_iter()).is_ok());
        for bad in [
            &["a", "a"][..],
            &["a", "a/b"],
            &["a/b/c", "a/b"],
            &["x/y", "x"],
        ] {
            assert!(
                matches!(
                    check_file_set(bad.iter().copied()),
                    Err(SandboxError::FilesCollide { .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_file_set_needing_too_many_directories_is_refused() {
        let deep: Vec<String> = (0..40)
            .map(|i| format!("{i}/{}f", "d/".repeat(110)))
            .collect();
        assert!(matches!(
            check_file_set(deep.iter().map(String::as_str)),
            Err(SandboxError::TooManyDirectories { needed: 4440, .. })
        ));
    }

    #[test]
    fn env_entries_are_checked() {
        assert_eq!(
            cenv(OsStr::new("A"), OsStr::new("b=c")).unwrap().as_bytes(),
            b"A=b=c"
        );
        assert!(cenv(OsStr::new("A=B"), OsStr::new("x")).is_err());
        assert!(cenv(OsStr::new("A"), OsStr::new("x\0")).is_err());
    }

    #[test]
    fn steps_are_described_with_their_paths() {
        let op = Op::Bind {
            src: CString::new("/usr").unwrap(),
            dst: CString::new("/run/x/root/usr").unwrap(),
            attrs: 0,
        };
        assert_eq!(
            op.describe(),
            "bind-mount /usr at /run/x/root/usr read-only"
        );
    }
}
