//! Builds the [`Op`] list of one run from the host layout and the [`Command`]: the filesystem
//! (fresh tmpfs root, read-only binds, `/dev`, `/proc`, `/tmp`, `/work`), then limits,
//! privilege drop, Landlock, seccomp and `execve`.

use std::collections::BTreeSet;
use std::ffi::CString;
use std::os::raw::{c_char, c_int, c_ulong};
use std::path::{Component, Path, PathBuf};

use crate::layout::{Entry, HostLayout, DEVICES};
use crate::plan::{self, cpath, under, Op, JAIL_GID, JAIL_UID};
use crate::procfs::RunProc;
use crate::sys::{MOUNT_ATTR_NODEV, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY};
use crate::{Command, SandboxError};

/// Files written into the jail's `/etc`.
const ETC_WRITTEN: &[(&str, &[u8])] = &[
    (
        "passwd",
        b"root:x:0:0:root:/root:/bin/false\nnobody:x:65534:65534:nobody:/tmp:/bin/false\n",
    ),
    ("group", b"root:x:0:\nnogroup:x:65534:\n"),
    ("hosts", b"127.0.0.1 localhost livexec\n::1 localhost\n"),
];

const RO: u64 = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;

/// The pipe ends the child moves to fds 0–3.
pub(crate) struct ChildFds {
    pub stdin: c_int,
    pub stdout: c_int,
    pub stderr: c_int,
    pub status: c_int,
    /// The exit pipe (write end) for the init's report.
    pub exit: c_int,
    /// A pidfd of the supervisor process.
    pub parent: c_int,
    /// A network namespace to enter (from the pool), before the fds are rearranged.
    pub netns: c_int,
}

/// A plan plus the C strings its `execve` pointers point into.
pub(crate) struct Prepared<'a> {
    pub ops: Vec<Op<'a>>,
    _strings: Vec<CString>,
}

struct Builder<'a> {
    ops: Vec<Op<'a>>,
    root: PathBuf,
    made: BTreeSet<PathBuf>,
    /// The run's `/proc` and the sources of its binds.
    proc: RunProc<'a>,
}

impl<'a> Builder<'a> {
    fn push(&mut self, op: Op<'a>) {
        self.ops.push(op);
    }

    /// `mkdir -p` of an in-jail path (each level once).
    fn mkdirs(&mut self, inside: &Path) -> Result<(), SandboxError> {
        let mut cur = PathBuf::from("/");
        for c in inside.components() {
            if let Component::Normal(n) = c {
                cur.push(n);
                if self.made.insert(cur.clone()) {
                    let path = under(&self.root, &cur)?;
                    self.ops.push(Op::Mkdir { path, mode: 0o755 });
                }
            }
        }
        Ok(())
    }

    fn bind(&mut self, src: &Path, is_dir: bool, attrs: u64) -> Result<(), SandboxError> {
        let dst = under(&self.root, src)?;
        if is_dir {
            self.mkdirs(src)?;
        } else {
            if let Some(parent) = src.parent() {
                self.mkdirs(parent)?;
            }
            self.push(Op::Touch { path: dst.clone() });
        }
        self.push(Op::Bind {
            src: self.proc.source(src)?,
            dst,
            attrs,
        });
        Ok(())
    }

    fn entry(&mut self, e: &Entry) -> Result<(), SandboxError> {
        match e {
            Entry::Dir(p) => self.bind(p, true, RO),
            Entry::File(p) => self.bind(p, false, RO),
            Entry::Link(p, target) => {
                if let Some(parent) = p.parent() {
                    self.mkdirs(parent)?;
                }
                self.push(Op::Symlink {
                    target: cpath(target)?,
                    link: under(&self.root, p)?,
                });
                Ok(())
            }
        }
    }

    fn tmpfs(&mut self, at: &str, data: String, flags: c_ulong) -> Result<(), SandboxError> {
        self.mkdirs(Path::new(at))?;
        self.push(Op::Tmpfs {
            target: under(&self.root, Path::new(at))?,
            data: plan::cbytes(data.as_bytes(), || data.clone())?,
            flags,
        });
        Ok(())
    }
}

/// Checks the command's paths and files (the run's bad-input errors).
pub(crate) fn validate(cmd: &Command) -> Result<(), SandboxError> {
    if !cmd.program.is_absolute() {
        return Err(SandboxError::BadPath {
            path: cmd.program.clone(),
            reason: "the program must be an absolute path",
        });
    }
    for (name, _) in &cmd.files {
        plan::check_file_name(name)?;
    }
    for m in &cmd.mounts {
        if !m.is_absolute() || m.components().any(|c| c == Component::ParentDir) {
            return Err(SandboxError::BadPath {
                path: m.clone(),
                reason: "read-only mounts must be absolute paths without `..`",
            });
        }
        if !m.exists() {
            return Err(SandboxError::BadPath {
                path: m.clone(),
                reason: "read-only mount source does not exist on the host",
            });
        }
    }
    Ok(())
}

/// Builds the whole plan. `tasks` are the v1 cgroup files to join (empty on v2/rlimits).
pub(crate) fn build<'a>(
    layout: &'a HostLayout,
    cmd: &'a Command,
    root: &Path,
    tasks: Vec<CString>,
    fds: ChildFds,
) -> Result<Prepared<'a>, SandboxError> {
    validate(cmd)?;
    let mut b = Builder {
        ops: Vec::new(),
        root: root.to_path_buf(),
        made: BTreeSet::new(),
        proc: RunProc::new(layout, cmd)?,
    };
    b.push(Op::EnterNetns { fd: fds.netns });
    b.push(Op::Stdio {
        stdin: fds.stdin,
        stdout: fds.stdout,
        stderr: fds.stderr,
        status: fds.status,
        exit: fds.exit,
        parent: fds.parent,
    });
    b.push(Op::DeathSignal);
    for t in tasks {
        b.push(Op::JoinCgroup { tasks: t });
    }
    b.push(Op::Unshare {
        flags: libc::CLONE_NEWCGROUP,
    });
    b.push(Op::MakePrivate);
    let nosuid_nodev = (libc::MS_NOSUID | libc::MS_NODEV) as c_ulong;
    b.push(Op::Tmpfs {
        target: cpath(root)?,
        data: CString::from(c"size=4m,mode=0755"),
        flags: nosuid_nodev,
    });
    b.made.insert(PathBuf::from("/"));
    b.proc.stage(&mut b.ops)?;

    let mut bound: Vec<PathBuf> = Vec::new();
    for e in &layout.top {
        b.entry(e)?;
        if let Entry::Dir(p) = e {
            bound.push(p.clone());
        }
    }
    for e in &layout.etc {
        b.entry(e)?;
    }
    b.mkdirs(Path::new("/etc"))?;
    for (name, data) in ETC_WRITTEN {
        b.push(Op::WriteFile {
            path: under(root, &Path::new("/etc").join(name))?,
            data,
            chown: false,
        });
    }
    let mut mounts: Vec<&PathBuf> = cmd.mounts.iter().collect();
    mounts.sort_by_key(|m| m.components().count());
    for m in mounts {
        let canon = m.canonicalize().unwrap_or_else(|_| m.to_path_buf());
        if bound
            .iter()
            .any(|b| m.starts_with(b) || canon.starts_with(b))
        {
            continue; // already visible read-only
        }
        b.bind(m, m.is_dir(), RO)?;
        bound.push(m.to_path_buf());
    }

    b.tmpfs(
        "/dev",
        "size=64k,mode=0755".into(),
        (libc::MS_NOSUID | libc::MS_NOEXEC) as c_ulong,
    )?;
    // mknod (we still hold CAP_MKNOD here) instead of bind mounts: no mounts to set up or
    // tear down. The jail cannot make nodes itself (no capabilities) and /dev goes read-only.
    for (name, major, minor) in DEVICES {
        b.push(Op::Mknod {
            path: under(root, &Path::new("/dev").join(name))?,
            major: *major,
            minor: *minor,
        });
    }
    for (name, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        b.push(Op::Symlink {
            target: cpath(Path::new(target))?,
            link: under(root, &Path::new("/dev").join(name))?,
        });
    }
    b.push(Op::RemountRo {
        target: under(root, Path::new("/dev"))?,
    });
    b.mkdirs(Path::new("/proc"))?;
    b.proc.mount(&mut b.ops, root)?;
    let size = cmd.limits.tmpfs_bytes;
    b.tmpfs("/tmp", format!("size={size},mode=1777"), nosuid_nodev)?;
    b.tmpfs(
        "/work",
        format!("size={size},mode=0755,uid={JAIL_UID},gid={JAIL_GID}"),
        nosuid_nodev,
    )?;
    for (name, data) in &cmd.files {
        let inside = Path::new("/work").join(name);
        if let Some(parent) = inside.parent() {
            b.mkdirs(parent)?;
        }
        b.push(Op::WriteFile {
            path: under(root, &inside)?,
            data,
            chown: true,
        });
    }
    b.push(Op::RemountRo {
        target: cpath(root)?,
    });
    b.push(Op::PivotRoot { root: cpath(root)? });
    b.push(Op::Chdir {
        path: CString::from(c"/work"),
    });
    b.push(Op::Hostname);
    privileges(&mut b, layout, cmd);
    exec(b, cmd)
}

fn privileges<'a>(b: &mut Builder<'a>, layout: &'a HostLayout, cmd: &Command) {
    let l = &cmd.limits;
    let mut rl = |resource: c_int, name: &'static str, soft: u64, hard: u64| {
        b.push(Op::Rlimit {
            resource,
            name,
            soft,
            hard,
        })
    };
    rl(
        libc::RLIMIT_NOFILE as c_int,
        "RLIMIT_NOFILE",
        l.open_files,
        l.open_files,
    );
    rl(
        libc::RLIMIT_FSIZE as c_int,
        "RLIMIT_FSIZE",
        l.file_size_bytes,
        l.file_size_bytes,
    );
    rl(libc::RLIMIT_CORE as c_int, "RLIMIT_CORE", 0, 0);
    if let Some(ms) = l.cpu_ms {
        let secs = ms.div_ceil(1000).max(1);
        rl(libc::RLIMIT_CPU as c_int, "RLIMIT_CPU", secs, secs + 1);
    }
    b.push(Op::DropBoundingSet {
        last: layout.cap_last as c_ulong,
    });
    b.push(Op::DropIds {
        uid: JAIL_UID,
        gid: JAIL_GID,
    });
    // A credential change clears the parent-death signal: set it again.
    b.push(Op::DeathSignal);
    b.push(Op::ClearCaps);
    b.push(Op::NoNewPrivs);
    if let Some((handled, write, dev)) = layout.landlock {
        let rules = vec![
            (CString::from(c"/tmp"), write),
            (CString::from(c"/work"), write),
            (CString::from(c"/dev"), dev),
        ];
        b.push(Op::Landlock { handled, rules });
    }
    b.push(Op::ResetSignals);
    b.push(Op::Seccomp {
        prog: &layout.seccomp,
    });
    b.push(Op::ForkInit);
}

fn exec<'a>(mut b: Builder<'a>, cmd: &'a Command) -> Result<Prepared<'a>, SandboxError> {
    use std::os::unix::ffi::OsStrExt;
    let path = cpath(&cmd.program)?;
    let mut strings = vec![path.clone()];
    for (i, a) in cmd.args.iter().enumerate() {
        strings.push(plan::cbytes(a.as_bytes(), || {
            format!("argument {}", i + 1)
        })?);
    }
    let argc = strings.len();
    for (k, v) in &cmd.env {
        strings.push(plan::cenv(k, v)?);
    }
    let ptrs: Vec<*const c_char> = strings.iter().map(|s| s.as_ptr()).collect();
    let mut argv = ptrs[..argc].to_vec();
    argv.push(std::ptr::null());
    let mut envp = ptrs[argc..].to_vec();
    envp.push(std::ptr::null());
    b.push(Op::Exec { path, argv, envp });
    Ok(Prepared {
        ops: b.ops,
        _strings: strings,
    })
}
