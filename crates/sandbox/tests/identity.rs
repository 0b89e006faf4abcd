//! Nothing of the supervisor is visible inside, and no run can starve another of what the
//! kernel counts per user: each test is the attack, with the verdict it must get.

mod common;

use std::process::Command as Std;
use std::sync::mpsc;
use std::time::Duration;

use common::*;
use livexec_sandbox::Stream;

/// The supervisor's secret, in the child test process's argv and environment.
const SECRET_ENV: &str = "LIVEXEC_TEST_SUPERVISOR_SECRET";

/// Reads every file under /proc it can (pid 1's and its own included, `/proc/<pid>` of
/// others excluded) and prints the paths whose contents hold `secret`.
const PROC_SWEEP: &str = r#"
import os, sys
secret = sys.stdin.read().encode()
assert len(secret) > 20
hits, read = [], 0
def walk(d, depth):
    global read
    try:
        names = os.listdir(d)
    except OSError:
        return
    for n in names:
        p = os.path.join(d, n)
        if d == "/proc" and n.isdigit() and n not in ("1", str(os.getpid())):
            continue
        if n in ("self", "thread-self", "task") or depth > 4:
            continue
        try:
            if os.path.islink(p):
                t = os.readlink(p).encode()
                if secret in t: hits.append(p)
            elif os.path.isdir(p):
                walk(p, depth + 1)
            else:
                with open(p, "rb") as f:
                    b = f.read(1 << 20)
                read += 1
                if secret in b: hits.append(p)
        except OSError:
            pass
walk("/proc", 0)
print("read", read, "files; hits:", hits)
print("pid1", open("/proc/1/cmdline", "rb").read(), open("/proc/1/comm").read().strip())
"#;

/// The jail shows nothing of its supervisor: this test runs itself again as a child process
/// with a secret in its argv and environment (a server started with
/// `--database-url postgres://u:SECRET@db` and a secret variable), and in that child a
/// program sweeps every file under `/proc` it can read for the secret.
#[test]
fn supervisor_argv_and_environment_are_invisible_inside() {
    match std::env::var(SECRET_ENV) {
        Ok(secret) => sweep_proc_for(&secret),
        Err(_) => run_self_with_a_secret(),
    }
}

/// The parent half: start this test binary again, only this test, with the secret.
fn run_self_with_a_secret() {
    let secret = marker("postgres-password-zq");
    let out = Std::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "supervisor_argv_and_environment_are_invisible_inside",
            "--nocapture",
            "--test-threads=1",
        ])
        // A second filter that matches no test: the secret sits in the supervisor's argv.
        .arg(format!("postgres://u:{secret}@db"))
        .env(SECRET_ENV, &secret)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("1 passed") && text.contains("hits: []"),
        "child test failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The child half: the jail must show the secret nowhere.
fn sweep_proc_for(secret: &str) {
    let mut cmd = py(PROC_SWEEP);
    cmd.stdin(secret.as_bytes()); // not argv: the program's own argv is visible inside
    let mut l = small();
    l.wall_ms = 30_000;
    cmd.limits(l);
    let o = run(&cmd);
    let s = ok(&o);
    println!("{s}");
    let first = s.lines().next().unwrap();
    assert!(
        first.ends_with("hits: []"),
        "the secret is visible inside: {s}"
    );
    let files: u32 = first.split(' ').nth(1).unwrap().parse().unwrap();
    assert!(
        files > 100,
        "the sweep read too little to mean anything: {s}"
    );
    assert!(
        s.contains("pid1 b'livexec-init\\x00' livexec-init"),
        "pid 1 is not the fresh init: {s}"
    );
}

#[test]
fn each_concurrent_run_has_its_own_uid_outside_host_accounts() {
    let prog = "import os; print(os.getuid(), os.getgid(), os.stat('/work/main.py').st_uid, \
                open('/etc/passwd').read().count(':'))";
    let handles: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(move || {
                let mut c = py(&format!("import time; time.sleep(0.5)\n{prog}"));
                let mut l = small();
                l.wall_ms = 20_000;
                c.limits(l);
                ok(&run(&c))
            })
        })
        .collect();
    let mut uids: Vec<u32> = handles
        .into_iter()
        .map(|h| {
            let s = h.join().unwrap();
            let f: Vec<u32> = s.split(' ').map(|x| x.parse().unwrap()).collect();
            assert_eq!(f[0], f[1], "gid = uid: {s}");
            assert_eq!(f[0], f[2], "the program's files belong to its uid: {s}");
            f[0]
        })
        .collect();
    let host = std::fs::read_to_string("/etc/passwd").unwrap();
    for u in &uids {
        assert!(run_uids().contains(u), "{u}");
        assert!(!host.contains(&format!(":{u}:")), "{u} is a host account");
    }
    uids.sort();
    uids.dedup();
    assert_eq!(uids.len(), 4, "concurrent runs shared a uid: {uids:?}");
}

/// Exhausts what the kernel counts per user: pending real-time signals (and so POSIX
/// timers), pipe buffer pages; then holds them.
const HOG: &str = r#"
import fcntl, os, signal, threading, time
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGRTMIN])
queued, sig_err, me = 0, None, threading.get_ident()
try:
    while queued < 200000:
        # tgkill (si_code SI_TKILL) is held to RLIMIT_SIGPENDING, like sigqueue; kill is not.
        signal.pthread_kill(me, signal.SIGRTMIN)
        queued += 1
except OSError as e:
    sig_err = e.errno
pipes, grown, pipe_err = [], 0, None
try:
    for _ in range(80):
        r, w = os.pipe()
        pipes.append((r, w))
        fcntl.fcntl(w, 1031, 1 << 20)  # F_SETPIPE_SZ
        grown += 1
except OSError as e:
    pipe_err = e.errno
print("hog", queued, sig_err, grown, pipe_err, flush=True)
time.sleep(8)
"#;

/// What another run must still be able to do meanwhile.
const VICTIM: &str = r#"
import ctypes, fcntl, os, signal, threading
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGRTMIN])
signal.pthread_kill(threading.get_ident(), signal.SIGRTMIN)
r, w = os.pipe()
fcntl.fcntl(w, 1031, 1 << 20)
rt = ctypes.CDLL(None, use_errno=True)
t = ctypes.c_void_p()
ok = rt.timer_create(1, None, ctypes.byref(t))
print("victim ok" if ok == 0 else "timer_create errno %d" % ctypes.get_errno())
"#;

#[test]
fn one_run_exhausting_per_user_limits_leaves_the_others_theirs() {
    let (tx, rx) = mpsc::channel::<String>();
    let hog = std::thread::spawn(move || {
        let mut c = py(HOG);
        let mut l = small();
        l.wall_ms = 40_000;
        l.open_files = 256;
        c.limits(l);
        // `python -u` writes each piece of a print() on its own: collect up to the newline.
        let mut line = Vec::new();
        sandbox()
            .run(&c, &mut |s: Stream, b: &[u8]| {
                if s == Stream::Stdout {
                    line.extend_from_slice(b);
                    if line.ends_with(b"\n") {
                        let _ = tx.send(String::from_utf8_lossy(&line).into_owned());
                    }
                }
            })
            .unwrap()
    });
    let Ok(line) = rx.recv_timeout(Duration::from_secs(60)) else {
        panic!("the hog never reported: {:?}", hog.join());
    };
    let f: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(f[0], "hog", "{line}");
    let queued: u32 = f[1].parse().unwrap();
    assert!(
        queued < 200_000,
        "RLIMIT_SIGPENDING did not stop the hog: {line}"
    );
    assert_eq!(f[2], libc::EAGAIN.to_string(), "{line}");
    assert_ne!(
        f[4], "None",
        "the hog never hit the pipe page limit: {line}"
    );
    let mut v = py(VICTIM);
    let mut l = small();
    l.wall_ms = 20_000;
    v.limits(l);
    let victim = run(&v);
    assert!(!hog.is_finished(), "the hog must still hold its resources");
    assert_eq!(ok(&victim), "victim ok");
    let o = hog.join().unwrap();
    assert!(o.timed_out || o.exit_code == Some(0), "{o:?}");
}
