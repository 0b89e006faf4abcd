//! Shared helpers for the integration tests: one `Sandbox` per test binary, the real python3
//! and node found on the host, small builders, the wall-clock scale ([`scaled`]) and where the
//! run cgroups live ([`cgroupfs`]).
#![allow(dead_code)]

pub mod cgroupfs;

use std::path::PathBuf;
use std::process::Command as Std;
use std::sync::OnceLock;

use livexec_sandbox::{Command, Limits, Outcome, Sandbox, SandboxConfig, SandboxError, Stream};

/// The process-wide sandbox (fails loudly when not root or without cgroups).
pub fn sandbox() -> &'static Sandbox {
    static SB: OnceLock<Sandbox> = OnceLock::new();
    SB.get_or_init(|| {
        // SAFETY: geteuid has no preconditions.
        assert_eq!(
            unsafe { libc::geteuid() },
            0,
            "the sandbox tests must run as root (they build real jails)"
        );
        Sandbox::new(SandboxConfig::default()).expect("Sandbox::new (needs cgroups)")
    })
}

/// The uids runs get with the default [`SandboxConfig`] (never a host account's, never 65534).
pub fn run_uids() -> std::ops::Range<u32> {
    let c = SandboxConfig::default();
    c.uid_base..c.uid_base + c.uid_count
}

/// `(executable, prefix)` of the real Python interpreter (not the pyenv shim).
pub fn python() -> &'static (PathBuf, PathBuf) {
    static PY: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    PY.get_or_init(|| {
        let out = Std::new("python3")
            .args([
                "-c",
                "import sys;print(sys.executable);print(sys.base_prefix)",
            ])
            .output()
            .expect("python3 must be on PATH");
        let s = String::from_utf8(out.stdout).unwrap();
        let mut l = s.lines();
        let exe = PathBuf::from(l.next().expect("sys.executable"));
        let prefix = PathBuf::from(l.next().expect("sys.base_prefix"));
        (exe.canonicalize().unwrap_or(exe), prefix)
    })
}

/// `(executable, prefix to mount or None when under /usr)` of node.
pub fn node() -> &'static (PathBuf, Option<PathBuf>) {
    static NODE: OnceLock<(PathBuf, Option<PathBuf>)> = OnceLock::new();
    NODE.get_or_init(|| {
        let out = Std::new("sh")
            .args(["-c", "command -v node"])
            .output()
            .expect("sh");
        let p = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
        assert!(p.is_absolute(), "node must be on PATH");
        let p = p.canonicalize().unwrap();
        let prefix = p.parent().and_then(|b| b.parent()).map(PathBuf::from);
        let prefix = prefix.filter(|x| !x.starts_with("/usr"));
        (p, prefix)
    })
}

/// How many times slower than a native run the programs may start and run here:
/// `LIVEXEC_TEST_TIME_FACTOR`, 1 when unset. `scripts/test-cgroup-v2.sh` sets it in its
/// emulated guest, where an interpreter starts about 30 times slower. Anything else than a whole
/// number ≥ 1 fails the test with the reason.
pub fn time_factor() -> u64 {
    static F: OnceLock<u64> = OnceLock::new();
    *F.get_or_init(|| match std::env::var("LIVEXEC_TEST_TIME_FACTOR") {
        Err(std::env::VarError::NotPresent) => 1,
        Ok(s) => s
            .trim()
            .parse()
            .ok()
            .filter(|f| *f >= 1)
            .unwrap_or_else(|| {
                panic!("LIVEXEC_TEST_TIME_FACTOR must be a whole number >= 1, got {s:?}")
            }),
        Err(e) => panic!("LIVEXEC_TEST_TIME_FACTOR: {e}"),
    })
}

/// A wall-clock limit of `ms` on a native machine, scaled by [`time_factor`]. For limits the
/// program is meant to finish within; a test whose verdict *is* the timeout keeps its own
/// figure (scaling it would only make the run longer).
pub fn scaled(ms: u64) -> u64 {
    ms * time_factor()
}

/// Small limits so hostile tests stay fast (the wall clock [`scaled`]).
pub fn small() -> Limits {
    Limits {
        wall_ms: scaled(3_000),
        ..Limits::default()
    }
}

/// A Python program as `/work/main.py`.
pub fn py(code: &str) -> Command {
    let (exe, prefix) = python();
    let mut c = Command::new(exe);
    c.arg("-u")
        .arg("main.py")
        .file("main.py", code)
        .mount_ro(prefix)
        .limits(small());
    c
}

/// A JavaScript program as `/work/main.js`.
pub fn js(code: &str) -> Command {
    let (exe, prefix) = node();
    let mut c = Command::new(exe);
    c.arg("main.js").file("main.js", code).limits(small());
    if let Some(p) = prefix {
        c.mount_ro(p);
    }
    c
}

/// Runs `cmd` and waits until its jail is torn down too. The process-wide sandbox is never
/// dropped, so without the wait the last run of a test binary could still be in the reaper's
/// hands when the process exits, and its run cgroup would be left for the next start's sweep
/// (the cgroup v2 guest checks that nothing is left behind).
pub fn run_with(
    cmd: &Command,
    on_output: &mut dyn FnMut(Stream, &[u8]),
) -> Result<Outcome, SandboxError> {
    let r = sandbox().run(cmd, on_output);
    sandbox().wait_torn_down();
    r
}

/// Runs and returns the outcome (panics on a platform error); the jail is torn down on return.
pub fn run(cmd: &Command) -> Outcome {
    run_with(cmd, &mut |_: Stream, _: &[u8]| {}).unwrap_or_else(|e| panic!("platform error: {e}"))
}

/// stdout as a trimmed string.
pub fn out(o: &Outcome) -> String {
    String::from_utf8_lossy(&o.stdout).trim().to_owned()
}

/// Asserts a clean exit and returns stdout.
pub fn ok(o: &Outcome) -> String {
    assert_eq!(
        o.exit_code,
        Some(0),
        "expected exit 0; signal {:?}, timed out {}, OOM-killed {}, wall {} ms, cpu {} ms; stderr:\n{}",
        o.signal,
        o.timed_out,
        o.oom_killed,
        o.wall_ms,
        o.cpu_ms,
        String::from_utf8_lossy(&o.stderr)
    );
    out(o)
}

/// Host pids whose command line contains `marker`.
pub fn host_procs_with(marker: &str) -> Vec<u32> {
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Ok(c) = std::fs::read(e.path().join("cmdline")) {
            if String::from_utf8_lossy(&c).contains(marker) && pid != std::process::id() {
                v.push(pid);
            }
        }
    }
    v
}

/// A marker unique to this test process and call site.
pub fn marker(tag: &str) -> String {
    format!("livexec-test-{tag}-{}-{}", std::process::id(), rand_u32())
}

fn rand_u32() -> u32 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    t.subsec_nanos() ^ (t.as_secs() as u32)
}
