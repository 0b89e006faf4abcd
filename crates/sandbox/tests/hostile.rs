//! Hostile programs and the verdict each must get. Limits are small so the suite stays fast.

mod common;

use common::*;
use livexec_sandbox::{Limits, Stream};

fn with(
    mut cmd: livexec_sandbox::Command,
    f: impl FnOnce(&mut Limits),
) -> livexec_sandbox::Command {
    let mut l = small();
    f(&mut l);
    cmd.limits(l);
    cmd
}

#[test]
fn fork_bomb_hits_the_pids_limit_and_the_host_survives() {
    let cmd = with(
        py(r#"
import os, time
n = 0
for _ in range(300):
    try:
        if os.fork() == 0:
            time.sleep(60)
            os._exit(0)
        n += 1
    except OSError:
        pass
print("forked", n, flush=True)
"#),
        // 300 attempts on a 0.5-core quota can take seconds on a loaded CI machine: the wall
        // limit here is generous so that only the pids limit decides the outcome.
        |l| {
            l.pids = 20;
            l.wall_ms = scaled(20_000);
        },
    );
    let o = run(&cmd);
    let s = ok(&o);
    let n: u32 = s.strip_prefix("forked ").unwrap().parse().unwrap();
    assert!(n < 20, "pids.max must cap the processes, forked {n}");
    // The sleeping children died with the namespace: the next run works.
    assert_eq!(ok(&run(&py("print('after')"))), "after");
}

#[test]
fn thread_bomb_is_capped() {
    let o = run(&with(
        py(r#"
import threading, time
n = 0
try:
    while True:
        threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
        n += 1
except RuntimeError as e:
    print("capped", n, e, flush=True)
"#),
        |l| l.pids = 30,
    ));
    let s = ok(&o);
    assert!(s.starts_with("capped"), "{s}");
    let n: u32 = s.split(' ').nth(1).unwrap().parse().unwrap();
    assert!(n < 30, "{n}");
}

#[test]
fn python_memory_bomb_is_oom_killed() {
    let o = run(&with(
        py("a = []\nwhile True:\n    a.append(b'x' * (1 << 20))\n"),
        |l| l.memory_bytes = 64 << 20,
    ));
    assert!(o.oom_killed, "{o:?}");
    assert_eq!(o.signal, Some(libc::SIGKILL));
    assert!(!o.timed_out);
}

#[test]
fn node_memory_bomb_is_oom_killed() {
    let o = run(&with(
        js("const a = []; for (;;) a.push(Buffer.alloc(1 << 20, 1));"),
        |l| l.memory_bytes = 96 << 20,
    ));
    assert!(o.oom_killed, "{o:?}");
    assert_eq!(o.exit_code, None);
}

#[test]
fn infinite_loop_times_out() {
    // The timeout is the verdict: the wall limit is not scaled (a slow start changes nothing).
    let o = run(&with(py("while True: pass"), |l| l.wall_ms = 1_500));
    assert!(o.timed_out);
    assert_eq!(o.signal, Some(libc::SIGKILL));
    assert!(o.wall_ms >= 1_500, "{}", o.wall_ms);
}

#[test]
fn long_sleep_times_out() {
    let o = run(&with(
        py("import time; print('zz', flush=True); time.sleep(600)"),
        // Scaled: the interpreter must start and print before the limit.
        |l| l.wall_ms = scaled(1_000),
    ));
    assert!(o.timed_out);
    assert_eq!(out(&o), "zz", "output before the kill is kept");
}

/// The CPU quota holds a busy loop to its share of the wall clock, burst included: at half a
/// core the run gets at most half its time plus one period's burst (50 ms). "Its time" is the
/// whole `run` call, not the program's `wall_ms` (from `execve`): the jail is set up inside the
/// run's cgroup before `execve`, on its quota, which takes ~2 ms natively but hundreds under
/// emulation. Load on the machine can only lower the figure, so the bound is safe to assert.
/// The loop is the shell's, which starts at once even on a slow (emulated) machine, so the
/// window, which is the measurement and ends by the timeout, is not scaled.
#[test]
fn cpu_quota_caps_a_busy_loop_with_and_without_burst() {
    for burst in [true, false] {
        let mut cmd = livexec_sandbox::Command::new("/bin/sh");
        cmd.args(["-c", "while :; do :; done"]);
        let cmd = with(cmd, |l| {
            l.cpu_millicores = 500;
            l.cpu_burst = burst;
            l.wall_ms = 2_000;
        });
        let started = std::time::Instant::now();
        let o = run(&cmd);
        let lifetime_ms = started.elapsed().as_millis() as u64;
        assert!(o.timed_out, "{o:?}");
        let allowed = lifetime_ms / 2 + 50 + 100; // half the time + burst + accounting slack
        assert!(
            o.cpu_ms <= allowed,
            "burst {burst}: {} ms of CPU in a {lifetime_ms} ms run ({} ms from execve) at 0.5 \
             core (allowed {allowed})",
            o.cpu_ms,
            o.wall_ms
        );
        assert!(o.cpu_ms > 0, "the loop ran: {o:?}");
    }
}

#[test]
fn cpu_time_limit_counts_as_timeout() {
    let o = run(&with(py("while True: pass"), |l| {
        l.cpu_ms = Some(1_000);
        l.cpu_millicores = 1_000;
        l.wall_ms = scaled(10_000);
    }));
    assert!(o.timed_out, "{o:?}");
    assert!(o.signal == Some(libc::SIGXCPU) || o.signal == Some(libc::SIGKILL));
}

#[test]
fn stdout_flood_keeps_exactly_the_cap() {
    let cap = 100_000;
    let cmd = with(
        py("import sys\nwhile True:\n    sys.stdout.write('y' * 65536)\n"),
        |l| l.output_bytes = cap,
    );
    let mut streamed = 0usize;
    let o = sandbox()
        .run(&cmd, &mut |s, b| {
            assert_eq!(s, Stream::Stdout);
            streamed += b.len();
        })
        .unwrap();
    assert_eq!(o.output_limited, Some(Stream::Stdout));
    assert_eq!(o.stdout.len(), cap);
    assert_eq!(streamed, cap);
    assert!(o.stdout.iter().all(|&c| c == b'y'));
    assert!(!o.timed_out);
}

#[test]
fn stderr_flood_keeps_exactly_the_cap() {
    let cap = 50_001;
    let o = run(&with(
        js("const s = 'e'.repeat(65536); for (;;) process.stderr.write(s);"),
        |l| l.output_bytes = cap,
    ));
    assert_eq!(o.output_limited, Some(Stream::Stderr));
    assert_eq!(o.stderr.len(), cap);
    assert!(o.stdout.is_empty());
}

#[test]
fn disk_fill_and_big_files_are_refused() {
    let o = run(&with(
        py(r#"
import errno
for path in ["/tmp/fill", "/work/fill"]:
    try:
        with open(path, "wb") as f:
            while True:
                f.write(b"z" * (1 << 20))
    except OSError as e:
        print(path, errno.errorcode[e.errno])
"#),
        |l| {
            l.tmpfs_bytes = 8 << 20;
            l.file_size_bytes = 4 << 20;
        },
    ));
    // RLIMIT_FSIZE (4 MiB) comes before the tmpfs size (8 MiB); Python ignores SIGXFSZ.
    assert_eq!(ok(&o), "/tmp/fill EFBIG\n/work/fill EFBIG");
    let o = run(&with(
        py(r#"
import errno
try:
    for i in range(100):
        with open(f"/tmp/f{i}", "wb") as f:
            f.write(b"z" * (1 << 20))
except OSError as e:
    print(errno.errorcode[e.errno])
"#),
        |l| l.tmpfs_bytes = 8 << 20,
    ));
    assert_eq!(ok(&o), "ENOSPC");
}

#[test]
fn detached_daemon_does_not_outlive_the_run() {
    let m = marker("daemon");
    let o = run(&py(&format!(
        r#"
import os, sys, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(60)", "{m}"])
    os._exit(0)
time.sleep(0.3)
print("parent done")
"#
    )));
    assert_eq!(ok(&o), "parent done");
    assert!(!o.timed_out);
    assert_eq!(
        host_procs_with(&m),
        Vec::<u32>::new(),
        "the daemon survived"
    );
}

#[test]
fn kill_minus_one_only_hits_the_jail() {
    // The child kills everything it may signal: in its pid namespace that is the program
    // (its parent); the init, the supervisor and the host are out of reach.
    let o = run(&py(r#"
import os, signal, time
print("before", flush=True)
pid = os.fork()
if pid == 0:
    os.kill(-1, signal.SIGKILL)
    time.sleep(5)
    os._exit(0)
os.waitpid(pid, 0)
print("NOT KILLED")
"#));
    assert_eq!(out(&o), "before");
    assert_eq!(o.signal, Some(libc::SIGKILL));
    assert!(!o.timed_out && !o.oom_killed);
    assert_eq!(ok(&run(&py("print('host fine')"))), "host fine");
}

#[test]
fn fd_exhaustion_hits_rlimit_nofile() {
    let o = run(&with(
        py(r#"
import errno
fds = []
try:
    while True:
        fds.append(open("/dev/null"))
except OSError as e:
    print(errno.errorcode[e.errno], len(fds) < 64)
"#),
        |l| l.open_files = 64,
    ));
    assert_eq!(ok(&o), "EMFILE True");
}

#[test]
fn concurrent_runs_are_independent() {
    // Many threads cloning at once (regression: glibc's setxid broadcast hung raw-clone children).
    let handles: Vec<_> = (0..12)
        .map(|i| {
            std::thread::spawn(move || {
                // 12 interpreters at once on a loaded 2-core machine: a generous wall limit,
                // so that only independence is tested here, not speed.
                let o = run(&with(
                    py(&format!(
                        "import os, time\nopen('/tmp/x','w').write('{i}')\ntime.sleep(0.3)\nprint(open('/tmp/x').read(), os.getpid())"
                    )),
                    |l| l.wall_ms = 20_000,
                ));
                ok(&o)
            })
        })
        .collect();
    for (i, h) in handles.into_iter().enumerate() {
        assert_eq!(h.join().unwrap(), format!("{i} 2"));
    }
}

#[test]
fn crashes_and_signals_are_reported_as_the_programs_own() {
    let cases = [
        ("import ctypes; ctypes.string_at(0)", libc::SIGSEGV),
        ("import os; os.abort()", libc::SIGABRT),
        (
            "import os, signal; os.kill(os.getpid(), signal.SIGTERM)",
            libc::SIGTERM,
        ),
    ];
    for (code, sig) in cases {
        let o = run(&py(code));
        assert_eq!((o.exit_code, o.signal), (None, Some(sig)), "{code}");
        assert!(!o.timed_out);
    }
}

#[test]
fn orphans_are_reaped_by_the_init() {
    // Orphans that exit would stay zombies under a non-reaping pid 1 and eat the pids limit.
    let o = run(&with(
        py(r#"
import os, time
for i in range(40):
    if os.fork() == 0:
        if os.fork() == 0:
            time.sleep(0.01)
            os._exit(0)
        os._exit(0)
    os.wait()
time.sleep(0.3)
zombies = [p for p in os.listdir("/proc") if p.isdigit() and open(f"/proc/{p}/stat").read().split()[2] == "Z"]
print("zombies", len(zombies))
"#),
        |l| l.pids = 10,
    ));
    assert_eq!(ok(&o), "zombies 0");
}

/// A program writing one byte at a time cannot make the supervisor, outside the run's quota,
/// read and hand on one chunk per byte: while output trickles the pipes rest 2 ms between
/// reads, so the chunks are bounded by the run's duration, not by its write calls. Every byte
/// still arrives, in order.
#[test]
fn output_written_a_byte_at_a_time_is_read_in_batches() {
    const BYTES: usize = 20_000;
    let (mut chunks, mut got) = (0usize, Vec::new());
    let start = std::time::Instant::now();
    let o = run_with(
        &py(&format!(
            "import os\nfor i in range({BYTES}): os.write(1, b'%c' % (48 + i % 10))\n"
        )),
        &mut |_: Stream, c: &[u8]| {
            chunks += 1;
            got.extend_from_slice(c);
        },
    )
    .unwrap();
    let took_ms = start.elapsed().as_millis() as usize;
    let want: Vec<u8> = (0..BYTES).map(|i| b'0' + (i % 10) as u8).collect();
    assert_eq!(o.stdout, want);
    assert_eq!(got, want);
    // One chunk per 2 ms of the whole call at most (plus the first and the last reads).
    assert!(
        chunks <= took_ms / 2 + 10,
        "{chunks} chunks for {BYTES} one-byte writes in {took_ms} ms"
    );
}
