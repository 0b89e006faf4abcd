//! Builds the [`Op`] list of one jail from the host layout and its [`Shape`]: the filesystem
//! (fresh tmpfs root, read-only binds, `/dev` with a private `/dev/shm`, `/proc`, `/tmp`,
//! `/work`), then limits, the drop to the run's own uid, Landlock, seccomp and the `execveat`
//! of the jail's init. The program itself is not part of the plan: the init gets it later,
//! on the go pipe (see [`crate::init`]), so a jail can be prepared before the request.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::ffi::CString;
use std::os::raw::{c_int, c_ulong};
use std::path::{Component, Path, PathBuf};

use crate::layout::{Entry, HostLayout, DEVICES};
use crate::plan::{self, cpath, under, Op};
use crate::procfs::RunProc;
use crate::sys::{MOUNT_ATTR_NODEV, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY};
use crate::{Command, Limits, SandboxError};

/// What a prepared jail depends on: its read-only mounts and its limits (without the two the
/// supervisor enforces, `wall_ms` and `output_bytes`). Two commands of one shape can use
/// each other's prepared jails.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Shape {
    /// [`Command::mount_ro`] paths, sorted and deduplicated.
    pub mounts: Vec<PathBuf>,
    /// The limits that go into the jail (cgroup, rlimits, tmpfs sizes).
    pub limits: Limits,
}

impl Shape {
    /// The shape of a command.
    pub(crate) fn of(cmd: &Command) -> Shape {
        let mut mounts = cmd.mounts.clone();
        mounts.sort();
        mounts.dedup();
        Shape {
            mounts,
            limits: Limits {
                wall_ms: 0,
                output_bytes: 0,
                ..cmd.limits.clone()
            },
        }
    }
}

/// `RLIMIT_SIGPENDING`: queued signals (and POSIX timers) of the run's uid.
const SIGPENDING: u64 = 1024;
/// `RLIMIT_MSGQUEUE`: bytes in POSIX message queues of the run's uid.
const MSGQUEUE: u64 = 256 << 10;
/// The jail's `/etc/hosts`.
const HOSTS: &[u8] = b"127.0.0.1 localhost livexec\n::1 localhost\n";

/// The jail's `/etc/passwd` and `/etc/group`: root, nobody and the run's own user.
fn accounts(uid: u32) -> [(&'static str, Vec<u8>); 2] {
    [
        (
            "passwd",
            format!(
                "root:x:0:0:root:/root:/bin/false\n\
                 nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n\
                 livexec:x:{uid}:{uid}:livexec:/tmp:/bin/false\n"
            )
            .into_bytes(),
        ),
        (
            "group",
            format!("root:x:0:\nnogroup:x:65534:\nlivexec:x:{uid}:\n").into_bytes(),
        ),
    ]
}

const RO: u64 = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;

/// The pipe ends the child moves to the fds of [`crate::child::FD_LAYOUT`].
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
    /// The go pipe (read end).
    pub go: c_int,
    /// The init executable (a sealed memfd).
    pub init: c_int,
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
    for (name, _) in &cmd.artifacts {
        plan::check_file_name(name)?;
        if name.contains(['/', '*']) {
            return Err(SandboxError::BadFileName { name: name.clone() });
        }
    }
    plan::check_file_set(
        cmd.files
            .iter()
            .chain(&cmd.artifacts)
            .map(|(name, _)| name.as_str()),
    )?;
    for pattern in &cmd.collect {
        crate::workdir::check_pattern(pattern)?;
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

/// Builds the whole plan of a jail whose program runs as `uid` (and gid `uid`). `tasks` are
/// the v1 cgroup files to join (empty on v2/rlimits).
pub(crate) fn build<'a>(
    layout: &'a HostLayout,
    shape: &'a Shape,
    root: &Path,
    tasks: Vec<CString>,
    fds: ChildFds,
    uid: u32,
) -> Result<Vec<Op<'a>>, SandboxError> {
    let mut b = Builder {
        ops: Vec::new(),
        root: root.to_path_buf(),
        made: BTreeSet::new(),
        proc: RunProc::new(layout, shape)?,
    };
    b.push(Op::EnterNetns { fd: fds.netns });
    b.push(Op::Stdio {
        stdin: fds.stdin,
        stdout: fds.stdout,
        stderr: fds.stderr,
        status: fds.status,
        exit: fds.exit,
        parent: fds.parent,
        go: fds.go,
        init: fds.init,
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
    let [passwd, group] = accounts(uid);
    for (name, data) in [passwd, group]
        .map(|(n, d)| (n, Cow::Owned(d)))
        .into_iter()
        .chain([("hosts", Cow::Borrowed(HOSTS))])
    {
        b.push(Op::WriteFile {
            path: under(root, &Path::new("/etc").join(name))?,
            data,
        });
    }
    let mut mounts: Vec<&PathBuf> = shape.mounts.iter().collect();
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
    // POSIX shared memory and semaphores (Python's multiprocessing): private, size-limited,
    // its pages counted in the run's memory cgroup like every tmpfs page.
    let size = shape.limits.tmpfs_bytes;
    b.tmpfs(
        "/dev/shm",
        format!("size={size},mode=1777"),
        (libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC) as c_ulong,
    )?;
    b.push(Op::RemountRo {
        target: under(root, Path::new("/dev"))?,
    });
    b.mkdirs(Path::new("/proc"))?;
    b.proc.mount(&mut b.ops, root)?;
    b.tmpfs("/tmp", format!("size={size},mode=1777"), nosuid_nodev)?;
    // The command's files are written here by the supervisor when the jail is started.
    b.tmpfs(
        "/work",
        format!("size={size},mode=0755,uid={uid},gid={uid}"),
        nosuid_nodev,
    )?;
    b.push(Op::RemountRo {
        target: cpath(root)?,
    });
    b.push(Op::PivotRoot { root: cpath(root)? });
    b.push(Op::Chdir {
        path: CString::from(c"/work"),
    });
    b.push(Op::Hostname);
    privileges(&mut b, layout, &shape.limits, uid);
    b.push(Op::ExecInit {
        argv: [c"livexec-init".as_ptr(), std::ptr::null()],
        envp: [std::ptr::null()],
    });
    Ok(b.ops)
}

fn privileges<'a>(b: &mut Builder<'a>, layout: &'a HostLayout, l: &Limits, uid: u32) {
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
    rl(
        libc::RLIMIT_SIGPENDING as c_int,
        "RLIMIT_SIGPENDING",
        SIGPENDING,
        SIGPENDING,
    );
    rl(
        libc::RLIMIT_MSGQUEUE as c_int,
        "RLIMIT_MSGQUEUE",
        MSGQUEUE,
        MSGQUEUE,
    );
    if let Some(ms) = l.cpu_ms {
        let secs = ms.div_ceil(1000).max(1);
        rl(libc::RLIMIT_CPU as c_int, "RLIMIT_CPU", secs, secs + 1);
    }
    b.push(Op::DropBoundingSet {
        last: layout.cap_last as c_ulong,
    });
    b.push(Op::Renice);
    b.push(Op::DropIds { uid, gid: uid });
    // A credential change clears the parent-death signal: set it again.
    b.push(Op::DeathSignal);
    b.push(Op::ClearCaps);
    b.push(Op::NoNewPrivs);
    if let Some((handled, write, dev)) = layout.landlock {
        let rules = vec![
            (CString::from(c"/tmp"), write),
            (CString::from(c"/work"), write),
            (CString::from(c"/dev"), dev),
            (CString::from(c"/dev/shm"), write),
        ];
        b.push(Op::Landlock { handled, rules });
    }
    b.push(Op::ResetSignals);
    b.push(Op::Seccomp {
        prog: &layout.seccomp,
    });
}
