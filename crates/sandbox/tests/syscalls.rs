//! The seccomp allow-list seen from inside the jail: every syscall number swept, socket
//! families, the page-cache and file-watch refusals, and the runtimes still at work (Python
//! processes and threads, node worker threads, `execveat`, sh with coreutils).

mod common;

use std::collections::BTreeMap;

use common::*;
use livexec_sandbox::{Command, Limits};

/// Syscall numbers that may never reach seccomp: recent kernels pass `uretprobe` (335, Linux
/// 6.11) and `uprobe` (336) through without running the filter, and outside the kernel's own
/// uprobe trampolines they only fail (`SIGILL`, `ENXIO`). Older kernels filter them (`ENOSYS`).
const KERNEL_PASSTHROUGH: &[i64] = &[335, 336];

/// A swept call's end: `Ret(value, errno)` when the child reported, else how it died.
#[derive(Debug, PartialEq)]
enum Verdict {
    Ret(i64, i32),
    Exit(i32),
    Signal(i32),
}

/// Calls `syscall(nr, 0, 0, 0, 0, 0, 0)` in a forked child per number (a 50 ms timer ends
/// the calls that block, like `pause`), then reads the verdicts.
fn sweep(numbers: &[i64]) -> BTreeMap<i64, Verdict> {
    let list = numbers
        .iter()
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let code = format!(
        r#"
import ctypes, os, signal
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
for nr in [{list}]:
    pid = os.fork()
    if pid == 0:
        me = os.getpid()
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        r = libc.syscall(ctypes.c_long(nr), 0, 0, 0, 0, 0, 0)
        if os.getpid() != me:
            os._exit(0)  # the process that clone or fork just made
        os.write(1, f"{{nr}} ret {{r}} {{ctypes.get_errno()}}\n".encode())
        os._exit(0)
    _, st = os.waitpid(pid, 0)
    if os.WIFSIGNALED(st):
        os.write(1, f"{{nr}} sig {{os.WTERMSIG(st)}}\n".encode())
    else:
        os.write(1, f"{{nr}} exit {{os.WEXITSTATUS(st)}}\n".encode())
os.write(1, b"done\n")
"#
    );
    let mut cmd = py(&code);
    cmd.limits(Limits {
        wall_ms: 60_000,
        cpu_millicores: 1_000,
        ..Limits::default()
    });
    let s = ok(&run(&cmd));
    assert!(s.ends_with("done"), "the sweep did not finish:\n{s}");
    let mut out = BTreeMap::new();
    for line in s.lines().filter(|l| *l != "done") {
        let f: Vec<&str> = line.split(' ').collect();
        let nr: i64 = f[0].parse().unwrap();
        let v = match f[1] {
            "ret" => Verdict::Ret(f[2].parse().unwrap(), f[3].parse().unwrap()),
            "sig" => Verdict::Signal(f[2].parse().unwrap()),
            _ => Verdict::Exit(f[2].parse().unwrap()),
        };
        // The child's report comes before its parent's account of how it ended.
        out.entry(nr).or_insert(v);
    }
    out
}

#[test]
fn every_syscall_off_the_allow_list_fails_with_enosys_or_eperm() {
    let allowed = livexec_sandbox::allowed_syscalls();
    // vfork would run the sweep's own Python in its parent's memory: it is allowed, not swept.
    let numbers: Vec<i64> = (0..=1000).filter(|&n| n != libc::SYS_vfork).collect();
    let x32: Vec<i64> = [0, 1, 39, 59, 231].map(|n| 0x4000_0000 | n).to_vec();
    let got = sweep(&[numbers.clone(), x32.clone()].concat());

    let (mut enosys, mut eperm) = (0, 0);
    for nr in numbers.iter().filter(|n| !allowed.contains(n)) {
        let v = got.get(nr).unwrap_or_else(|| panic!("no verdict for {nr}"));
        if [
            libc::SYS_fsync,
            libc::SYS_fdatasync,
            libc::SYS_sync_file_range,
        ]
        .contains(nr)
        {
            // Answered "done" without flushing the host's disk.
            assert!(matches!(v, Verdict::Ret(0, _)), "{nr}: {v:?}");
            continue;
        }
        if KERNEL_PASSTHROUGH.contains(nr) {
            let refused =
                matches!(v, Verdict::Ret(-1, e) if [libc::ENOSYS, libc::ENXIO].contains(e));
            assert!(
                refused || *v == Verdict::Signal(libc::SIGILL),
                "{nr}: {v:?}"
            );
            continue;
        }
        match v {
            Verdict::Ret(-1, libc::ENOSYS) => enosys += 1,
            Verdict::Ret(-1, libc::EPERM) => eperm += 1,
            other => panic!("syscall {nr} is off the allow-list but got {other:?}"),
        }
    }
    eprintln!("off the allow-list: {enosys} ENOSYS, {eperm} EPERM");
    for (name, nr) in [
        ("mount", libc::SYS_mount),
        ("ptrace", libc::SYS_ptrace),
        ("bpf", libc::SYS_bpf),
        ("inotify_init1", libc::SYS_inotify_init1),
        ("mincore", libc::SYS_mincore),
        ("modify_ldt", libc::SYS_modify_ldt),
        ("open_tree_attr", 467),
    ] {
        assert_eq!(got[&nr], Verdict::Ret(-1, libc::EPERM), "{name}");
    }
    for (name, nr) in [("sysfs", libc::SYS_sysfs), ("uselib", libc::SYS_uselib)] {
        assert_eq!(got[&nr], Verdict::Ret(-1, libc::ENOSYS), "{name}");
    }
    // Every allowed number got a verdict too (and none took the sweep or the host down).
    for nr in allowed.iter().filter(|&&n| n != libc::SYS_vfork) {
        assert!(got.contains_key(nr), "no verdict for allowed {nr}");
    }
    for nr in x32 {
        assert_eq!(got[&nr], Verdict::Signal(libc::SIGSYS), "x32 {nr:#x}");
    }
    assert_eq!(ok(&run(&py("print('after')"))), "after");
}

#[test]
fn only_unix_and_inet_sockets_can_be_created() {
    let o = run(&py(r#"
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
for fam in range(51):
    for typ in (1, 2, 3):  # STREAM, DGRAM, RAW
        fd = libc.socket(fam, typ, 0)
        print(fam, typ, "ok" if fd >= 0 else ctypes.get_errno())
        if fd >= 0:
            os.close(fd)
    pair = (ctypes.c_int * 2)()
    r = libc.socketpair(fam, 1, 0, pair)
    print(fam, "pair", "ok" if r == 0 else ctypes.get_errno())
"#));
    let s = ok(&o);
    let got: BTreeMap<(i32, String), String> = s
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            ((f[0].parse().unwrap(), f[1].to_owned()), f[2].to_owned())
        })
        .collect();
    assert_eq!(got.len(), 51 * 4, "{s}");
    let refused = libc::EAFNOSUPPORT.to_string();
    for ((fam, what), res) in &got {
        if [libc::AF_UNIX, libc::AF_INET, libc::AF_INET6].contains(fam) {
            if what == "1" || what == "2" || (*fam == libc::AF_UNIX && what == "pair") {
                assert_eq!(res, "ok", "family {fam} {what}");
            }
            assert_ne!(res, &refused, "family {fam} {what}");
        } else {
            assert_eq!(res, &refused, "family {fam} {what}");
        }
    }
    for fam in [libc::AF_VSOCK, libc::AF_NETLINK, libc::AF_PACKET] {
        assert_eq!(got[&(fam, "3".to_owned())], refused, "family {fam}");
    }
}

#[test]
fn page_cache_probes_file_watches_and_odd_personalities_are_refused() {
    let o = run(&py(r#"
import ctypes, errno, fcntl, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
libc.mmap.restype = ctypes.c_void_p
def res(f):
    try:
        f()
        return "ok"
    except OSError as e:
        return errno.errorcode[e.errno]
def raw(r):
    return "ok" if r >= 0 else errno.errorcode[ctypes.get_errno()]
fd = os.open(sys.executable, os.O_RDONLY)  # a file shared with the host and other runs
lib = os.open(os.path.dirname(os.__file__), os.O_RDONLY | os.O_DIRECTORY)  # and a directory
mine = os.open("/tmp/mine", os.O_WRONLY | os.O_CREAT)
os.write(mine, b"x")
m = ctypes.c_void_p(libc.mmap(None, 4096, 1, 1, fd, 0))  # PROT_READ, MAP_SHARED
anon = ctypes.c_void_p(libc.mmap(None, 4096, 3, 0x22, -1, 0))
vec = ctypes.create_string_buffer(1)
checks = {
    "fadvise DONTNEED": res(lambda: os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)),
    "fadvise NOREUSE": res(lambda: os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_NOREUSE)),
    "fadvise DONTNEED high bits": raw(libc.syscall(221, fd, 0, 0, ctypes.c_long(4 | 1 << 32))),
    "fadvise SEQUENTIAL": res(lambda: os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)),
    "preadv2 NOWAIT": res(lambda: os.preadv(fd, [bytearray(16)], 0, os.RWF_NOWAIT)),
    "preadv2 HIPRI": res(lambda: os.preadv(fd, [bytearray(16)], 0, os.RWF_HIPRI)),
    "madvise PAGEOUT": raw(libc.madvise(m, 4096, 21)),
    "madvise COLD": raw(libc.madvise(m, 4096, 20)),
    "madvise WILLNEED": raw(libc.madvise(m, 4096, 3)),
    "mincore": raw(libc.mincore(anon, 4096, vec)),
    "cachestat": raw(libc.syscall(451, fd, 0, 0, 0)),
    "inotify_init1": raw(libc.inotify_init1(0)),
    "fanotify_init": raw(libc.fanotify_init(0x200, os.O_RDONLY)),  # FAN_REPORT_FID
    "dnotify": res(lambda: fcntl.fcntl(lib, fcntl.F_NOTIFY, fcntl.DN_ACCESS | fcntl.DN_MULTISHOT)),
    "fcntl F_GETFL": res(lambda: fcntl.fcntl(lib, fcntl.F_GETFL)),
    "lease": res(lambda: fcntl.fcntl(mine, fcntl.F_SETLEASE, fcntl.F_WRLCK)),
    "fsync a host file": res(lambda: os.fsync(fd)),
    "fsync its own file": res(lambda: os.fsync(mine)),
    "fdatasync": res(lambda: os.fdatasync(mine)),
    "modify_ldt": raw(libc.syscall(154, 0, vec, 1)),
    "personality PER_BSD": raw(libc.personality(6)),
    "personality query": raw(libc.personality(0xFFFFFFFF)),
    "sysfs": raw(libc.syscall(139, 1, b"ext4")),
    "memfd_secret": raw(libc.syscall(447, 0)),
    "memfd_create": res(lambda: os.close(os.memfd_create("x"))),
}
for k, v in checks.items():
    print(f"{k}: {v}")
"#));
    let s = ok(&o);
    let want =
        "fadvise DONTNEED: EPERM\nfadvise NOREUSE: EPERM\nfadvise DONTNEED high bits: EPERM\n\
        fadvise SEQUENTIAL: ok\npreadv2 NOWAIT: EPERM\npreadv2 HIPRI: ok\nmadvise PAGEOUT: EPERM\n\
        madvise COLD: EPERM\nmadvise WILLNEED: ok\nmincore: EPERM\ncachestat: EPERM\n\
        inotify_init1: EPERM\nfanotify_init: EPERM\ndnotify: EPERM\nfcntl F_GETFL: ok\nlease: EPERM\n\
        fsync a host file: ok\nfsync its own file: ok\nfdatasync: ok\nmodify_ldt: EPERM\n\
        personality PER_BSD: EPERM\npersonality query: ok\nsysfs: ENOSYS\nmemfd_secret: EPERM\n\
        memfd_create: ok";
    assert_eq!(s, want);
}

/// The read-only binds are the host's own file systems: the `ioctl`s that would name them
/// (UUID, label, sysfs path such as `ext4/vda`, btrfs fsid) or map a file to the host disk's
/// blocks are refused, while the everyday ones keep working.
#[test]
fn ioctls_that_name_the_host_file_system_are_refused() {
    let o = run(&py(r#"
import errno, fcntl, os, struct, sys, termios
fd = os.open("/usr", os.O_RDONLY)
exe = os.open(sys.executable, os.O_RDONLY)
def res(fd, req, size):
    try:
        fcntl.ioctl(fd, req, bytearray(size))
        return "ok"
    except OSError as e:
        return errno.errorcode[e.errno]
fiemap = bytearray(struct.pack("QQIIII", 0, 1 << 30, 0, 0, 4, 0) + bytes(56 * 4))
checks = {
    "FS_IOC_GETFSUUID": res(fd, 0x80111500, 17),
    "FS_IOC_GETFSSYSFSPATH": res(fd, 0x80811501, 129),
    "FS_IOC_GETFSLABEL": res(fd, 0x81009431, 256),
    "EXT4_IOC_GETFSUUID": res(fd, 0x8008662C, 24),
    "BTRFS_IOC_FS_INFO": res(fd, 0x8400941F, 1024),
    "FS_IOC_FIEMAP": res(exe, 0xC020660B, len(fiemap)),
    "EXT4_IOC_GET_ES_CACHE": res(exe, 0xC020662A, len(fiemap)),
    "EXT4_IOC_PRECACHE_EXTENTS": res(exe, 0x6612, 0),
    "XFS_IOC_GETBMAPX": res(exe, 0xC0205838, 32 * 4),
    "FS_IOC_GETFLAGS": res(exe, 0x80086601, 8) in ("ok", "ENOTTY", "EOPNOTSUPP"),
    "FIONREAD on stdin": res(0, termios.FIONREAD, 4),
    "TCGETS on stdout": res(1, termios.TCGETS, 60),
}
for k, v in checks.items():
    print(f"{k}: {v}")
"#));
    assert_eq!(
        ok(&o),
        "FS_IOC_GETFSUUID: EPERM\nFS_IOC_GETFSSYSFSPATH: EPERM\nFS_IOC_GETFSLABEL: EPERM\n\
         EXT4_IOC_GETFSUUID: EPERM\nBTRFS_IOC_FS_INFO: EPERM\nFS_IOC_FIEMAP: EPERM\n\
         EXT4_IOC_GET_ES_CACHE: EPERM\nEXT4_IOC_PRECACHE_EXTENTS: EPERM\nXFS_IOC_GETBMAPX: EPERM\n\
         FS_IOC_GETFLAGS: True\nFIONREAD on stdin: ok\nTCGETS on stdout: ENOTTY"
    );
}

#[test]
fn python_processes_threads_and_subprocesses_still_work() {
    let o = run(&py(r#"
import multiprocessing as mp, os, subprocess, sys, threading
def sq(x):
    return x * x
if __name__ == "__main__":
    # Pool needs POSIX semaphores in /dev/shm, which the jail does not have yet.
    if os.path.isdir("/dev/shm"):
        with mp.Pool(2) as p:
            print("pool", sum(p.map(sq, range(10))))
    else:
        print("no /dev/shm")
    ctx = mp.get_context("fork")
    a, b = ctx.Pipe()
    ps = [ctx.Process(target=lambda c, i: c.send(sq(i)), args=(b, i)) for i in range(3)]
    for p in ps:
        p.start()
    print("processes", sorted(a.recv() for _ in ps))
    for p in ps:
        p.join()
    out = []
    ts = [threading.Thread(target=out.append, args=(i,)) for i in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    print("threads", sorted(out))
    print(subprocess.run([sys.executable, "-c", "print('child')"], capture_output=True, text=True).stdout.strip())
    print(subprocess.run("echo a b | wc -w", shell=True, capture_output=True, text=True).stdout.strip())
"#));
    let s = ok(&o);
    let first = s.lines().next().unwrap_or_default();
    assert!(first == "pool 285" || first == "no /dev/shm", "{s}");
    assert!(
        s.ends_with("processes [0, 1, 4]\nthreads [0, 1, 2, 3]\nchild\n2"),
        "{s}"
    );
}

#[test]
fn node_worker_threads_still_work() {
    let o = run(&js(r#"
const { Worker } = require('worker_threads');
const code = "require('worker_threads').parentPort.postMessage(6 * 7)";
let n = 0;
for (let i = 0; i < 2; i++) {
  new Worker(code, { eval: true }).on('message', (m) => {
    console.log('worker', m);
    if (++n === 2) console.log(require('child_process').execSync('echo spawned').toString().trim());
  });
}
"#));
    assert_eq!(ok(&o), "worker 42\nworker 42\nspawned");
}

#[test]
fn execveat_with_an_empty_path_runs_the_program() {
    let o = run(&py(r#"
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
fd = os.open(sys.executable, os.O_RDONLY)
argv = (ctypes.c_char_p * 4)(sys.executable.encode(), b"-c", b"print('via execveat')", None)
envp = (ctypes.c_char_p * 1)(None)
libc.syscall(322, fd, b"", argv, envp, 0x1000)  # AT_EMPTY_PATH
print("execveat failed", ctypes.get_errno())
"#));
    assert_eq!(ok(&o), "via execveat");
}

#[test]
fn sh_and_coreutils_still_work() {
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(
            "set -e; cd /tmp; printf 'b\\na\\nb\\n' > f; sort f | uniq | wc -l; cp f g; \
             mv g h; ln -s h l; mkdir -p d/e; touch d/e/x; ls -la d/e | tail -n 1 | cut -c1-10; \
             stat -c %s h; readlink l; chmod 600 h; rm -r d; seq 3 | tr '\\n' ' '; echo; \
             date +%Y >/dev/null; sleep 0.01; id -u; head -c 4 /dev/urandom | od -An | wc -w",
        )
        .limits(small());
    let s = ok(&run(&cmd));
    let lines: Vec<&str> = s.lines().collect();
    assert_eq!(lines[..5], ["2", "-rw-r--r--", "6", "h", "1 2 3 "], "{s}");
    assert!(run_uids().contains(&lines[5].parse().unwrap()), "{s}");
    assert_eq!(lines[6], "2", "{s}");
}
