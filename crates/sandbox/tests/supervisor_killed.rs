//! A supervisor killed with SIGKILL in the middle of a run: its jail dies with it
//! (`PR_SET_PDEATHSIG` on the jail's init), and the next `Sandbox::new` sweeps the cgroups and
//! run directory it left behind.

mod common;

use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::*;
use livexec_sandbox::{Sandbox, SandboxConfig};

const ROLE: &str = "LIVEXEC_TEST_DOOMED_SUPERVISOR";

/// Run cgroups `<pid>-…` under our bases (v2 or v1), and run dirs `<pid>.…` in the run dir.
fn state_of(pid: u32) -> Vec<PathBuf> {
    let mut found = cgroupfs::runs_of(pid, &cgroupfs::bases(sandbox().cgroup_mode()));
    let run_dir = SandboxConfig::default().run_dir;
    for e in fs::read_dir(&run_dir).into_iter().flatten().flatten() {
        if e.file_name()
            .to_string_lossy()
            .starts_with(&format!("{pid}."))
        {
            found.push(e.path());
        }
    }
    found
}

/// The doomed supervisor, killed when the test ends early so it never outlives it.
struct Doomed(std::process::Child);

impl Drop for Doomed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn killed_supervisor_takes_its_jail_down_and_is_swept() {
    if let Ok(m) = std::env::var(ROLE) {
        // The doomed supervisor: start a long run and wait to be killed.
        let mut cmd = py(&format!(
            "import os, sys\nos.execv(sys.executable, [sys.executable, '-c', 'import time; time.sleep(60)', '{m}'])"
        ));
        let mut l = small();
        l.wall_ms = scaled(60_000);
        cmd.limits(l);
        let _ = sandbox().run(&cmd, &mut |_, _| {});
        return;
    }
    // Our own sandbox first: on cgroup v2 it moves this process into the supervisor leaf of
    // the delegated subtree, and the doomed supervisor, started from here, shares it.
    let _ = sandbox();
    let m = marker("doomed");
    // Its panics (stderr) show here; its test harness's lines (stdout) would read like this
    // test's own result.
    let mut child = Doomed(
        std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "killed_supervisor_takes_its_jail_down_and_is_swept",
                "--nocapture",
            ])
            .env(ROLE, &m)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let t = Instant::now();
    while host_procs_with(&m).is_empty() {
        if let Some(status) = child.0.try_wait().unwrap() {
            panic!("the doomed supervisor ended ({status}) before its run started");
        }
        assert!(
            t.elapsed() < Duration::from_secs(scaled(20)),
            "the doomed run never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let sup = child.0.id();
    assert!(
        !state_of(sup).is_empty(),
        "the run's cgroups should exist mid-run"
    );
    child.0.kill().unwrap(); // SIGKILL
    child.0.wait().unwrap();
    let t = Instant::now();
    while !host_procs_with(&m).is_empty() {
        assert!(
            t.elapsed() < Duration::from_secs(scaled(5)),
            "the jail outlived its supervisor"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let _sweeper = Sandbox::new(SandboxConfig::default()).unwrap();
    assert_eq!(
        state_of(sup),
        Vec::<PathBuf>::new(),
        "stale state not swept"
    );
}
