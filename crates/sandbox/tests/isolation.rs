//! Isolation properties of the jail, each checked from inside with real python3 / node: every
//! test here fails if the corresponding layer is removed.

mod common;

use std::net::TcpListener;

use common::*;
use livexec_sandbox::{Command, SandboxError};

#[test]
fn runs_as_unprivileged_uid_without_capabilities_with_nnp_and_seccomp() {
    let o = run(&py(r#"
import os
st = dict(l.split(":\t", 1) for l in open("/proc/self/status").read().splitlines() if ":\t" in l)
print(os.getuid(), os.geteuid(), os.getgid(), os.getgroups())
for k in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp"]:
    print(k, st[k].strip())
"#));
    let s = ok(&o);
    let lines: Vec<&str> = s.lines().collect();
    let ids: Vec<&str> = lines[0].split(' ').collect();
    let uid: u32 = ids[0].parse().unwrap();
    assert!(run_uids().contains(&uid), "uid {uid} is not a run uid");
    assert_eq!(
        ids,
        [ids[0], ids[0], ids[0], "[]"],
        "uid = euid = gid, no groups"
    );
    for cap in &lines[1..6] {
        assert!(cap.ends_with(" 0000000000000000"), "{cap}");
    }
    assert_eq!(lines[6], "NoNewPrivs 1");
    assert_eq!(lines[7], "Seccomp 2");
}

#[test]
fn host_processes_are_invisible() {
    let o = run(&py(r#"
import os
pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
print(pids, os.getpid(), os.getppid())
"#));
    let s = ok(&o);
    assert_eq!(
        s, "[1, 2] 2 1",
        "only the jail's init (1) and the program (2) in its own pid namespace"
    );
}

#[test]
fn sys_is_absent_and_host_files_outside_mounts_are_invisible() {
    let secret_var = format!("/var/tmp/{}", marker("secret"));
    let secret_root = format!("/root/{}", marker("secret"));
    std::fs::write(&secret_var, "top secret").unwrap();
    std::fs::write(&secret_root, "top secret").unwrap();
    let o = run(&py(&format!(
        r#"
import os
for p in ["/sys", "/var", "{secret_var}", "{secret_root}", "/etc/shadow", "/run", "/home", "/boot"]:
    print(p, os.path.exists(p))
print(sorted(os.listdir("/root")))
"#
    )));
    std::fs::remove_file(&secret_var).unwrap();
    std::fs::remove_file(&secret_root).unwrap();
    let s = ok(&o);
    for line in s.lines().take(8) {
        assert!(line.ends_with(" False"), "visible inside the jail: {line}");
    }
    // Only the interpreter prefix is bound under /root (pyenv keeps it there on this host).
    let last = s.lines().last().unwrap();
    assert!(!last.contains("livexec-test"), "{last}");
}

#[test]
fn host_paths_are_read_only() {
    let (_, prefix) = python();
    let target = format!("{}/{}", prefix.display(), marker("w"));
    let o = run(&py(&format!(
        r#"
import errno
for p in ["/usr/livexec-w", "/etc/livexec-w", "{target}", "/livexec-w", "/proc/livexec-w"]:
    try:
        open(p, "w").write("x")
        print(p, "WRITTEN")
    except OSError as e:
        print(p, errno.errorcode[e.errno])
open("/dev/null", "w").write("fine")
open("/work/out.txt", "w").write("fine")
print("ok")
"#
    )));
    let s = ok(&o);
    assert!(!s.contains("WRITTEN"), "{s}");
    assert!(s.ends_with("ok"));
    assert!(!std::path::Path::new(&target).exists());
    assert!(!std::path::Path::new("/usr/livexec-w").exists());
}

#[test]
fn tmp_is_private_and_size_limited() {
    let host_file = format!("/tmp/{}", marker("host"));
    std::fs::write(&host_file, "host").unwrap();
    let inside = marker("inside");
    let mut cmd = py(&format!(
        r#"
import os, errno
print(os.listdir("/tmp"))
open("/tmp/{inside}", "w").write("x")
try:
    with open("/tmp/big", "wb") as f:
        for _ in range(64):
            f.write(b"x" * (1 << 20))
    print("NO LIMIT")
except OSError as e:
    print(errno.errorcode[e.errno], os.path.getsize("/tmp/big") <= 4 << 20)
"#
    ));
    let mut l = small();
    l.tmpfs_bytes = 4 << 20;
    cmd.limits(l);
    let o = run(&cmd);
    std::fs::remove_file(&host_file).unwrap();
    let s = ok(&o);
    let mut lines = s.lines();
    assert_eq!(lines.next(), Some("[]"), "the host's /tmp leaked in");
    assert_eq!(lines.next(), Some("ENOSPC True"));
    assert!(!std::path::Path::new(&format!("/tmp/{inside}")).exists());
}

#[test]
fn network_is_cut_off() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let o = run(&py(&format!(
        r#"
import socket
try:
    socket.create_connection(("127.0.0.1", {port}), timeout=1)
    print("CONNECTED")
except OSError as e:
    print("connect failed", type(e).__name__)
try:
    print("RESOLVED", socket.getaddrinfo("example.com", 80))
except OSError as e:
    print("dns failed", type(e).__name__)
try:
    socket.if_nameindex()  # netlink: refused by seccomp
    print("NETLINK")
except OSError as e:
    print("netlink", e.errno)
print(sorted(l.split(":")[0].strip() for l in open("/proc/net/dev").readlines()[2:]))
"#
    )));
    let s = ok(&o);
    assert!(s.contains("connect failed"), "{s}");
    assert!(s.contains("dns failed"), "{s}");
    assert!(
        s.contains(&format!("netlink {}", libc::EAFNOSUPPORT)),
        "{s}"
    );
    assert!(s.ends_with("['lo']"), "{s}");
    assert!(
        listener.accept().is_err(),
        "the listener must not see a connection"
    );
}

#[test]
fn hostname_and_environment_are_the_jails() {
    let o = run(&py(r#"
import os, socket
print(socket.gethostname())
print(sorted(os.environ.items()))
print(os.getcwd(), sorted(os.listdir(".")))
"#));
    let s = ok(&o);
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let mut l = s.lines();
    let name = l.next().unwrap();
    assert_eq!(name, "livexec");
    assert_ne!(name, host.trim());
    assert_eq!(
        l.next().unwrap(),
        "[('HOME', '/tmp'), ('LANG', 'C.UTF-8'), ('PATH', '/usr/local/bin:/usr/bin:/bin')]"
    );
    assert_eq!(l.next().unwrap(), "/work ['main.py']");
}

#[test]
fn mount_unshare_ptrace_and_clone3_are_denied() {
    let o = run(&py(r#"
import ctypes, errno
libc = ctypes.CDLL(None, use_errno=True)
def check(name, r):
    print(name, r, errno.errorcode.get(ctypes.get_errno(), ctypes.get_errno()))
check("mount", libc.mount(b"none", b"/tmp", b"tmpfs", 0, None))
check("unshare_user", libc.unshare(0x10000000))
check("unshare_ns", libc.unshare(0x00020000))
check("ptrace", libc.ptrace(0, 0, None, None))
check("clone3", libc.syscall(435, None, 0))
check("setns", libc.setns(0, 0))
check("bpf", libc.syscall(321, 0, None, 0))
check("keyctl", libc.syscall(250, 0, 0, 0))
"#));
    let s = ok(&o);
    let want = [
        "mount -1 EPERM",
        "unshare_user -1 EPERM",
        "unshare_ns -1 EPERM",
        "ptrace -1 EPERM",
        "clone3 -1 ENOSYS",
        "setns -1 EPERM",
        "bpf -1 EPERM",
        "keyctl -1 EPERM",
    ];
    assert_eq!(s.lines().collect::<Vec<_>>(), want);
}

#[test]
fn stdin_is_empty_by_default_and_delivers_given_bytes() {
    let code = "import sys; print(repr(sys.stdin.buffer.read()))";
    assert_eq!(ok(&run(&py(code))), "b''");
    let mut cmd = py(code);
    let big: Vec<u8> = (0..300_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    cmd.stdin(b"hello\n\x00\xff".to_vec());
    assert_eq!(ok(&run(&cmd)), r"b'hello\n\x00\xff'");
    let mut cmd = py("import sys, hashlib; d = sys.stdin.buffer.read(); print(len(d))");
    cmd.stdin(big);
    assert_eq!(ok(&run(&cmd)), "300000");
}

#[test]
fn binary_output_is_byte_exact_and_streamed_in_chunks() {
    let cmd = py("import sys; sys.stdout.buffer.write(bytes(range(256)) * 3); sys.stderr.buffer.write(b'\\x00\\xfe')");
    let mut chunks = Vec::new();
    let o = sandbox()
        .run(&cmd, &mut |s, b| chunks.push((s, b.to_vec())))
        .unwrap();
    let want: Vec<u8> = (0..=255u8).cycle().take(768).collect();
    assert_eq!(o.stdout, want);
    assert_eq!(o.stderr, b"\x00\xfe");
    let streamed: Vec<u8> = chunks
        .iter()
        .filter(|(s, _)| *s == livexec_sandbox::Stream::Stdout)
        .flat_map(|(_, b)| b.clone())
        .collect();
    assert_eq!(
        streamed, want,
        "on_output must see exactly the accumulated bytes"
    );
}

#[test]
fn node_runs_isolated_too() {
    let o = run(&js(r#"
const fs = require("fs"), os = require("os");
console.log(process.getuid(), os.hostname(), fs.existsSync("/sys"), fs.readdirSync("/proc").filter(p => /^\d+$/.test(p)).length);
"#));
    let s = ok(&o);
    let mut parts = s.split(' ');
    let uid: u32 = parts.next().unwrap().parse().unwrap();
    assert!(run_uids().contains(&uid), "{uid}");
    assert_eq!(parts.next(), Some("livexec"));
    assert_eq!(parts.next(), Some("false"));
}

#[test]
fn exit_codes_and_metrics_are_reported() {
    let o = run(&py("import sys; x = sum(range(3_000_000)); sys.exit(3)"));
    assert_eq!(o.exit_code, Some(3));
    assert_eq!(o.signal, None);
    assert!(!o.timed_out && !o.oom_killed && o.output_limited.is_none());
    assert!(
        o.memory_peak_bytes > 1 << 20,
        "peak {}",
        o.memory_peak_bytes
    );
    assert!(o.cpu_ms > 0, "cpu {}", o.cpu_ms);
}

#[test]
fn platform_errors_name_what_failed() {
    let mut bad = py("print(1)");
    bad.file("../escape.py", "x");
    assert!(matches!(
        run_with(&bad, &mut |_, _| {}),
        Err(SandboxError::BadFileName { .. })
    ));
    let mut abs = py("print(1)");
    abs.file("/etc/passwd", "x");
    assert!(matches!(
        run_with(&abs, &mut |_, _| {}),
        Err(SandboxError::BadFileName { .. })
    ));
    let missing = Command::new("/opt/livexec-no-such-interpreter");
    match run_with(&missing, &mut |_, _| {}) {
        Err(SandboxError::Exec { program, source }) => {
            assert_eq!(program.to_str(), Some("/opt/livexec-no-such-interpreter"));
            assert_eq!(source.raw_os_error(), Some(libc::ENOENT));
        }
        other => panic!("expected Exec error, got {other:?}"),
    }
    let relative = Command::new("python3");
    assert!(matches!(
        run_with(&relative, &mut |_, _| {}),
        Err(SandboxError::BadPath { .. })
    ));
}

/// Every run gets a network namespace no earlier run used. A namespace keeps, after all of a
/// run's processes are gone, state the next run could read: IPv6 flow labels (they linger up
/// to 150 s after their socket, 16 bytes of the run's choosing each, listed in
/// `/proc/net/ip6_flowlabel`) and counters that never reset (`/proc/net/snmp`: a run can count
/// any number into `OutNoRoutes`). A sandbox of its own, runs one after another: a pool that
/// handed namespaces back would give the second run the first one's.
#[test]
fn no_run_finds_what_an_earlier_run_left_in_its_network_namespace() {
    let sb = livexec_sandbox::Sandbox::new(livexec_sandbox::SandboxConfig::default()).unwrap();
    let name = marker("abstract");
    let state = r#"
labels = open("/proc/self/net/ip6_flowlabel").read().splitlines()[1:]
ip = [l.split() for l in open("/proc/self/net/snmp") if l.startswith("Ip:")]
print(len(labels), dict(zip(ip[0][1:], ip[1][1:]))["OutNoRoutes"])
"#;
    let leave = py(&format!(
        r#"
import socket, struct
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind("\0{name}")
s.listen(1)
f = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
for i, label in enumerate([0x12345, 0x12346]):
    # struct in6_flowlabel_req: destination, label, GET, share ANY, CREATE, expires, linger
    req = b"LIVEXEC-LEFTOVR" + bytes([i]) + struct.pack("!I", label)
    f.setsockopt(41, 32, req + struct.pack("=BBHHH", 0, 255, 1, 150, 150) + bytes(4))
f.close()
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(321):
    try:
        u.sendto(b"x", ("192.0.2.1", 9))
    except OSError:
        pass
{state}"#
    ));
    let find = py(&format!(
        r#"
import socket
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    s.connect("\0{name}")
    print("CONNECTED")
except OSError as e:
    print("refused", type(e).__name__)
{state}"#
    ));
    let run_here = |cmd: &livexec_sandbox::Command| {
        let o = sb.run(cmd, &mut |_, _| {}).unwrap();
        sb.wait_torn_down();
        ok(&o)
    };
    for _ in 0..3 {
        // The state is really there while the run lives...
        assert_eq!(run_here(&leave), "2 321");
        // ... and the next run finds none of it.
        assert_eq!(
            run_here(&find),
            "refused ConnectionRefusedError\n0 0",
            "a run found an earlier run's network state"
        );
    }
    drop(sb);
}

#[test]
fn a_panicking_output_callback_still_tears_the_jail_down() {
    let m = marker("panic");
    let cmd = py(&format!(
        "import os, sys, time\nprint('x', flush=True)\nos.execv(sys.executable, [sys.executable, '-c', 'import time; time.sleep(60)', '{m}'])"
    ));
    let r = std::panic::catch_unwind(|| sandbox().run(&cmd, &mut |_, _| panic!("callback failed")));
    assert!(r.is_err(), "the panic propagates");
    sandbox().wait_torn_down();
    assert_eq!(
        host_procs_with(&m),
        Vec::<u32>::new(),
        "the jail outlived the panic"
    );
}

#[test]
fn dev_has_working_devices_only_and_is_read_only() {
    let o = run(&py(r#"
import os, errno
print(sorted(os.listdir("/dev")))
open("/dev/null", "w").write("gone")
print(open("/dev/zero", "rb").read(4), len(open("/dev/urandom", "rb").read(16)))
for attempt in [lambda: open("/dev/evil", "w"), lambda: os.mknod("/tmp/null2", 0o20666, os.makedev(1, 3))]:
    try:
        attempt()
        print("ALLOWED")
    except OSError as e:
        print(errno.errorcode[e.errno])
"#));
    let s = ok(&o);
    let mut l = s.lines();
    assert_eq!(
        l.next().unwrap(),
        "['fd', 'full', 'null', 'random', 'shm', 'stderr', 'stdin', 'stdout', 'urandom', 'zero']"
    );
    assert_eq!(l.next().unwrap(), r"b'\x00\x00\x00\x00' 16");
    assert_eq!(l.next().unwrap(), "EROFS");
    assert_eq!(l.next().unwrap(), "EPERM");
}

#[test]
fn landlock_confines_writes_to_tmp_work_and_dev() {
    // /proc/self/comm and oom_score_adj are writable by any process for itself: only
    // Landlock (writes allowed beneath /tmp, /work and /dev only) refuses them here.
    let o = run(&py(r#"
import errno
for p in ["/proc/self/comm", "/proc/self/oom_score_adj"]:
    try:
        with open(p, "w") as f:
            f.write("1000\n" if p.endswith("adj") else "renamed\n")
        print(p, "WRITTEN")
    except OSError as e:
        print(p, errno.errorcode[e.errno])
"#));
    assert_eq!(
        ok(&o),
        "/proc/self/comm EACCES\n/proc/self/oom_score_adj EACCES"
    );
}

/// A network namespace made while the sandbox starts (`SandboxConfig::netns_ahead`, what
/// `livexec run` asks for) is as empty as one made on demand: only `lo`, nothing reachable.
#[test]
fn a_network_namespace_made_ahead_is_empty_too() {
    let sb = livexec_sandbox::Sandbox::new(livexec_sandbox::SandboxConfig {
        netns_ahead: 1,
        ..livexec_sandbox::SandboxConfig::default()
    })
    .unwrap();
    for _ in 0..2 {
        let o = sb
            .run(
                &py(r#"
import socket
try:
    socket.create_connection(("127.0.0.1", 5432), timeout=1)
    print("CONNECTED")
except OSError as e:
    print("connect failed")
print(sorted(l.split(":")[0].strip() for l in open("/proc/net/dev").readlines()[2:]))
"#),
                &mut |_, _| {},
            )
            .unwrap();
        sb.wait_torn_down();
        let s = ok(&o);
        assert!(s.contains("connect failed"), "{s}");
        assert!(s.ends_with("['lo']"), "{s}");
    }
    drop(sb);
}
