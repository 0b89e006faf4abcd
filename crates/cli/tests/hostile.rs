//! Probes through the real service: a program that tries every syscall number, every socket
//! family and every `/proc` file ends with its verdict, and the service keeps serving.

mod common;

use common::Server;

/// Every syscall number 0..=1000 with zero arguments, each in a forked child with a timer.
const SYSCALLS: &str = r#"
import ctypes, os, signal
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
worked = 0
for nr in range(1001):
    if nr in (58,):  # vfork would run this Python in its parent's memory
        continue
    pid = os.fork()
    if pid == 0:
        me = os.getpid()
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        r = libc.syscall(ctypes.c_long(nr), 0, 0, 0, 0, 0, 0)
        os._exit(0 if r >= 0 and os.getpid() == me else 1)
    _, st = os.waitpid(pid, 0)
    worked += os.WIFEXITED(st) and os.WEXITSTATUS(st) == 0
print("swept", worked)
"#;

/// Every address family × socket type.
const SOCKETS: &str = r#"
import socket
made = []
for fam in range(0, 64):
    for typ in (socket.SOCK_STREAM, socket.SOCK_DGRAM, socket.SOCK_RAW):
        try:
            socket.socket(fam, typ).close()
            made.append(fam)
        except OSError:
            pass
print(sorted(set(made)))
"#;

/// Every readable file under /proc (own processes included), read whole (symlinks are not
/// followed: `/proc/N/fd/1` would open this very program's output pipe for reading).
const PROC: &str = r#"
import os
n = 0
for d, dirs, files in os.walk("/proc"):
    dirs[:] = [x for x in dirs if x not in ("self", "thread-self") and d.count("/") < 5]
    for f in files:
        p = os.path.join(d, f)
        if os.path.islink(p):
            continue
        try:
            with open(p, "rb") as fh:
                fh.read(1 << 20)
            n += 1
        except OSError:
            pass
print("read", n > 100)
"#;

#[tokio::test]
async fn probes_end_with_their_verdict_and_the_service_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[("LIVEXEC_TIMEOUT_MS", "50000")]).await;
    let mut ids = Vec::new();
    for code in [SYSCALLS, SOCKETS, PROC] {
        ids.push(server.submit("python", code).await);
    }
    let verdicts: Vec<_> = {
        let mut v = Vec::new();
        for id in &ids {
            v.push(server.wait(id).await);
        }
        v
    };
    for v in &verdicts {
        assert_eq!(v["status"], "COMPLETED", "{v}");
    }
    let swept = verdicts[0]["stdout"].as_str().unwrap();
    assert!(swept.starts_with("swept "), "{swept}");
    assert_eq!(
        verdicts[1]["stdout"], "[1, 2, 10]\n",
        "only AF_UNIX, AF_INET, AF_INET6"
    );
    assert_eq!(verdicts[2]["stdout"], "read True\n");
    // The host and the service are unchanged: a plain run still works, health is ok.
    let id = server.submit("javascript", "console.log(6 * 7)").await;
    assert_eq!(server.wait(&id).await["stdout"], "42\n");
    let health: serde_json::Value = reqwest::get(server.url("/health"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok", "{health}");
}
