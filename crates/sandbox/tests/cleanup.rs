//! Teardown leaves nothing behind: no process, mount, run directory or cgroup of ours; and the
//! start-up sweep removes state of dead supervisors but never of live ones.
//! One test function so the checks see only this process's own runs.

mod common;

use std::fs;
use std::path::PathBuf;

use common::*;
use livexec_sandbox::{Sandbox, SandboxConfig};

fn ours_in(dir: &PathBuf, prefix: &str) -> Vec<String> {
    fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(prefix))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn nothing_is_left_behind_and_stale_state_is_swept() {
    let pid = std::process::id();
    let run_dir = SandboxConfig::default().run_dir;

    // Stale state of a dead supervisor, and state of a live one (us).
    let mut dead = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = dead.id();
    dead.wait().unwrap();
    fs::create_dir_all(&run_dir).unwrap();
    let stale_run_dir = run_dir.join(format!("{dead_pid}.0"));
    fs::create_dir_all(stale_run_dir.join("root")).unwrap();
    let live_run_dir = run_dir.join(format!("{pid}.999999"));
    fs::create_dir_all(&live_run_dir).unwrap();

    let sb = Sandbox::new(SandboxConfig::default()).unwrap();
    let mode = sb.cgroup_mode();
    let bases = cgroupfs::bases(mode);
    assert!(
        !bases.is_empty(),
        "no base of our run cgroups found ({mode})"
    );
    let stale_cg: Vec<PathBuf> = bases
        .iter()
        .map(|b| b.join(format!("{dead_pid}-1")))
        .collect();
    let live_cg: Vec<PathBuf> = bases
        .iter()
        .map(|b| b.join(format!("{pid}-999999")))
        .collect();
    for d in stale_cg.iter().chain(&live_cg) {
        fs::create_dir(d).unwrap();
    }
    drop(sb);
    let sb = Sandbox::new(SandboxConfig::default()).unwrap();
    assert!(!stale_run_dir.exists(), "stale run dir not swept");
    assert!(
        live_run_dir.exists(),
        "a live supervisor's run dir was touched"
    );
    for d in &stale_cg {
        assert!(!d.exists(), "stale cgroup {} not swept", d.display());
    }
    for d in &live_cg {
        assert!(
            d.exists(),
            "a live supervisor's cgroup {} was touched",
            d.display()
        );
        fs::remove_dir(d).unwrap();
    }
    fs::remove_dir(&live_run_dir).unwrap();

    // Runs that end every way: normal, timeout, output cap, OOM, daemon.
    let m = marker("cleanup");
    let mut hostile = [
        py("print('hi')"),
        py("while True: pass"),
        py("import sys\nwhile True: sys.stdout.write('x' * 4096)"),
        py("a = []\nwhile True: a.append(b'x' * (1 << 20))"),
        py(&format!(
            "import os, sys\nif os.fork() == 0:\n    os.setsid()\n    os.execv(sys.executable, [sys.executable, '-c', 'import time; time.sleep(60)', '{m}'])\nprint('bye')"
        )),
    ];
    for (i, c) in hostile.iter_mut().enumerate() {
        let mut l = small();
        // The busy loop (1) ends by the timeout whatever the speed; the others must get to
        // their own ending first.
        l.wall_ms = if i == 1 { 1_000 } else { scaled(1_000) };
        l.memory_bytes = 48 << 20;
        l.output_bytes = 10_000;
        c.limits(l);
        sb.run(c, &mut |_, _| {}).unwrap();
    }
    // A panicking output callback unwinds through run: the teardown still happens.
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        sb.run(&py("print('x')"), &mut |_, _| panic!("callback failed"))
    }));
    assert!(r.is_err());
    // Finished jails are torn down in the background; dropping the sandbox waits for that.
    drop(sb);

    assert_eq!(host_procs_with(&m), Vec::<u32>::new(), "a process survived");
    for b in &bases {
        assert_eq!(
            ours_in(b, &format!("{pid}-")),
            Vec::<String>::new(),
            "cgroups left in {}",
            b.display()
        );
    }
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mountinfo.contains(run_dir.to_str().unwrap()),
        "a jail mount leaked into the host namespace"
    );
    assert_eq!(
        ours_in(&run_dir, &format!("{pid}.")),
        Vec::<String>::new(),
        "run dirs left"
    );
}
