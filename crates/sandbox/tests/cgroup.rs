//! The run's cgroup seen from outside while the program runs, on cgroup v2 and v1 alike: it sits
//! under the delegated subtree, holds every process of the run (on v2 from birth, through
//! `clone3(CLONE_INTO_CGROUP)`), its control files hold the limits given, and it is gone after
//! the run; peak memory and CPU time are read back from it.
//!
//! The tests take turns (`SERIAL`) so the process-wide `CLONE_INTO_CGROUP` count moves by
//! exactly this test's runs.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use common::*;
use livexec_sandbox::{CgroupMode, Limits, Sandbox, Stream};

static SERIAL: Mutex<()> = Mutex::new(());

/// What the output callback saw while the program was waiting at its gate.
#[derive(Debug, Default)]
struct Seen {
    /// The program's processes (python and its forked child), host pids.
    program: Vec<u32>,
    /// The cgroup directories each of them is in.
    cgroups: Vec<Vec<PathBuf>>,
    /// `cgroup.procs` of the run's cgroup(s).
    procs: Vec<Vec<u32>>,
    /// `(file, content)` of the limit files.
    files: Vec<(String, String)>,
}

/// The one directory among `dirs` holding `file` (v1 keeps each controller's files apart).
fn holder<'a>(dirs: &'a [PathBuf], file: &str) -> Option<&'a Path> {
    dirs.iter()
        .map(PathBuf::as_path)
        .find(|d| d.join(file).exists())
}

/// The limit files the crate writes, for `mode`; `optional` ones exist only on some kernels.
fn limit_files(mode: CgroupMode) -> (&'static [&'static str], &'static [&'static str]) {
    match mode {
        CgroupMode::V2 => (
            &["memory.max", "cpu.max", "pids.max"],
            &["memory.swap.max", "cpu.max.burst"],
        ),
        _ => (
            &[
                "memory.limit_in_bytes",
                "cpu.cfs_period_us",
                "cpu.cfs_quota_us",
                "pids.max",
            ],
            &["memory.memsw.limit_in_bytes", "cpu.cfs_burst_us"],
        ),
    }
}

fn expected(mode: CgroupMode, file: &str, burst: bool) -> &'static str {
    match (mode, file) {
        (CgroupMode::V2, "memory.max") => "100663296",
        (CgroupMode::V2, "memory.swap.max") => "0",
        (CgroupMode::V2, "cpu.max") => "70000 100000",
        (CgroupMode::V2, "cpu.max.burst") | (_, "cpu.cfs_burst_us") if burst => "70000",
        (CgroupMode::V2, "cpu.max.burst") | (_, "cpu.cfs_burst_us") => "0",
        (_, "pids.max") => "17",
        (_, "memory.limit_in_bytes" | "memory.memsw.limit_in_bytes") => "100663296",
        (_, "cpu.cfs_period_us") => "100000",
        (_, "cpu.cfs_quota_us") => "70000",
        _ => unreachable!("{file}"),
    }
}

/// A run that forks, says `ready` and waits until the test creates `<gate>/go`; the callback
/// looks at the cgroups in between. Returns what it saw and the run's outcome.
fn run_held_at_gate(limits: Limits) -> (Seen, livexec_sandbox::Outcome) {
    let mode = sandbox().cgroup_mode();
    let gate = tempfile::Builder::new()
        .prefix("livexec-gate")
        .tempdir_in("/var/tmp")
        .unwrap();
    std::fs::set_permissions(
        gate.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let m = marker("gate");
    let mut cmd = py(r#"
import os, sys, time
go = os.path.join(sys.argv[2], "go")
def wait():
    while not os.path.exists(go):
        time.sleep(0.01)
if os.fork() == 0:
    wait()
    os._exit(0)
print("ready", flush=True)
wait()
os.wait()
print("done")
"#);
    cmd.arg(&m)
        .arg(gate.path())
        .mount_ro(gate.path())
        .limits(limits);
    let (required, optional) = limit_files(mode);
    let mut seen = Seen::default();
    let mut looked = false;
    let outcome = sandbox()
        .run(&cmd, &mut |s: Stream, chunk: &[u8]| {
            if looked || s != Stream::Stdout || !chunk.starts_with(b"ready") {
                return;
            }
            looked = true;
            seen.program = host_procs_with(&m);
            seen.cgroups = seen
                .program
                .iter()
                .map(|p| cgroupfs::cgroups_of(&p.to_string(), mode))
                .collect();
            let dirs = seen.cgroups.first().cloned().unwrap_or_default();
            seen.procs = dirs.iter().map(|d| cgroupfs::procs(d)).collect();
            for f in required.iter().chain(optional) {
                if let Some(d) = holder(&dirs, f) {
                    seen.files.push((f.to_string(), cgroupfs::read(d, f)));
                }
            }
            std::fs::write(gate.path().join("go"), "").unwrap();
        })
        .unwrap_or_else(|e| panic!("platform error: {e}"));
    (seen, outcome)
}

/// The mode this process's sandbox uses; `LIVEXEC_TEST_EXPECT_CGROUP` (`v1` or `v2`), when set,
/// says which it must be (`scripts/test-cgroup-v2.sh` sets `v2` in its guest, so a guest that
/// fell back to v1 fails here instead of passing on the wrong hierarchy).
#[test]
fn cgroup_mode_is_the_one_expected() {
    let mode = sandbox().cgroup_mode();
    println!("sandbox mode: {mode}");
    assert!(
        matches!(mode, CgroupMode::V1 | CgroupMode::V2),
        "no cgroup in use: {mode}"
    );
    match std::env::var("LIVEXEC_TEST_EXPECT_CGROUP").as_deref() {
        Err(_) => {}
        Ok("v2") => assert_eq!(
            mode,
            CgroupMode::V2,
            "expected cgroup v2, the sandbox uses {mode}"
        ),
        Ok("v1") => assert_eq!(
            mode,
            CgroupMode::V1,
            "expected cgroup v1, the sandbox uses {mode}"
        ),
        Ok(other) => panic!("LIVEXEC_TEST_EXPECT_CGROUP must be v1 or v2, got {other:?}"),
    }
}

#[test]
fn run_cgroup_is_under_the_delegated_subtree_holds_the_limits_and_is_removed() {
    let _turn = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let mode = sandbox().cgroup_mode();
    let bases = cgroupfs::bases(mode);
    assert!(
        !bases.is_empty(),
        "no base of our run cgroups found ({mode})"
    );
    let (required, _) = limit_files(mode);
    for burst in [true, false] {
        let before = Sandbox::runs_cloned_into_cgroup();
        let (seen, o) = run_held_at_gate(Limits {
            memory_bytes: 96 << 20,
            cpu_millicores: 700,
            cpu_burst: burst,
            pids: 17,
            ..small()
        });
        let cloned = Sandbox::runs_cloned_into_cgroup() - before;
        assert_eq!(ok(&o), "ready\ndone");
        assert_eq!(seen.program.len(), 2, "python and its child: {seen:?}");

        // Every process of the program is in the run's cgroup(s), `<base>/<our pid>-<seq>`.
        let dirs = &seen.cgroups[0];
        assert!(seen.cgroups.iter().all(|c| c == dirs), "{seen:?}");
        let want = if mode == CgroupMode::V2 {
            1
        } else {
            bases.len()
        };
        assert_eq!(dirs.len(), want, "one run cgroup per hierarchy: {dirs:?}");
        let prefix = format!("{}-", std::process::id());
        for d in dirs {
            assert!(
                bases.iter().any(|b| d.parent() == Some(b.as_path())),
                "{} is not directly under our bases {bases:?}",
                d.display()
            );
            let name = d.file_name().unwrap().to_string_lossy();
            assert!(name.starts_with(&prefix), "{name}");
        }
        // …and nothing else but the jail's init.
        for procs in &seen.procs {
            assert_eq!(procs.len(), 3, "init + the program's two: {procs:?}");
            assert!(seen.program.iter().all(|p| procs.contains(p)), "{seen:?}");
        }

        // The limit files hold the values written.
        for f in required {
            assert!(
                seen.files.iter().any(|(n, _)| n == f),
                "{f} missing in {dirs:?}"
            );
        }
        for (f, v) in &seen.files {
            assert_eq!(v, expected(mode, f, burst), "{f} (burst {burst})");
        }

        // On v2 the jail was created inside its cgroup; v1 has no such thing.
        match mode {
            CgroupMode::V2 => assert_eq!(cloned, 1, "clone3(CLONE_INTO_CGROUP) per run"),
            _ => assert_eq!(cloned, 0, "CLONE_INTO_CGROUP is v2 only"),
        }

        // Gone once the run's teardown (in the background, after the outcome) is over.
        sandbox().wait_torn_down();
        for d in dirs {
            assert!(!d.exists(), "{} left behind", d.display());
        }
        assert_eq!(
            cgroupfs::runs_of(std::process::id(), &bases),
            Vec::<PathBuf>::new()
        );
    }
}

#[test]
fn peak_memory_and_cpu_time_are_read_back_from_the_cgroup() {
    let _turn = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    // 40 MiB written (not just reserved), and some work; the program reports the CPU time the
    // kernel charged to itself, which the run's cgroup (all its processes) cannot be under.
    let mut cmd = py(r#"
import os
keep = b"x" * (40 << 20)
n = 0
for i in range(1_000_000):
    n += i
t = os.times()
print(int((t.user + t.system) * 1000))
"#);
    cmd.limits(Limits {
        memory_bytes: 96 << 20,
        cpu_millicores: 1000,
        ..small()
    });
    let o = run(&cmd);
    let own_cpu_ms: u64 = ok(&o).parse().unwrap();
    assert!(
        (40 << 20..=96 << 20).contains(&o.memory_peak_bytes),
        "peak {} bytes for 40 MiB written under a 96 MiB limit",
        o.memory_peak_bytes
    );
    assert!(!o.oom_killed);
    // times() counts in clock ticks (10 ms); the cgroup in nanoseconds.
    assert!(
        o.cpu_ms + 10 >= own_cpu_ms && o.cpu_ms > 0,
        "cgroup CPU {} ms < the program's own {own_cpu_ms} ms",
        o.cpu_ms
    );
}
