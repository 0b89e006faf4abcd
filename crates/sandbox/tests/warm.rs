//! The warm pool: jails prepared ahead of need are used once each, carry nothing from one
//! run to the next, and enforce every limit like a jail built on the spot.

mod common;

use std::time::{Duration, Instant};

use common::*;
use livexec_sandbox::{Limits, Outcome, Sandbox, SandboxConfig, Stream};

/// A sandbox of its own (the shared one of `common` stays cold for the other suites).
fn warm_sandbox() -> Sandbox {
    assert_eq!(
        // SAFETY: geteuid has no preconditions.
        unsafe { libc::geteuid() },
        0,
        "the sandbox tests must run as root (they build real jails)"
    );
    Sandbox::new(SandboxConfig::default()).expect("Sandbox::new")
}

fn run_in(sb: &Sandbox, cmd: &livexec_sandbox::Command) -> Outcome {
    sb.run(cmd, &mut |_: Stream, _: &[u8]| {}).unwrap()
}

/// Runs `cmd` until a run takes a prepared jail (the pool fills in the background).
fn run_warm(sb: &Sandbox, cmd: &livexec_sandbox::Command) -> Outcome {
    let deadline = Instant::now() + Duration::from_millis(scaled(60_000));
    loop {
        let o = run_in(sb, cmd);
        if o.warm_start || Instant::now() > deadline {
            return o;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn warm_runs_get_prepared_jails_and_carry_nothing_over() {
    let sb = warm_sandbox();
    let writer = py(r#"
import os
open("/tmp/left", "w").write("secret")
open("/dev/shm/left", "w").write("secret")
print(os.getuid(), sorted(os.listdir("/work")), sorted(os.listdir("/tmp")))
"#);
    sb.keep_warm(&writer, 2).unwrap();
    let first = run_warm(&sb, &writer);
    assert!(first.warm_start, "the pool never handed out a jail");
    let s1 = ok(&first);
    assert!(s1.ends_with("['main.py'] ['left']"), "{s1}");
    // The same shape again: a different prepared jail, nothing of the first one left.
    let reader = py(r#"
import os
print(os.getuid(), sorted(os.listdir("/tmp")), sorted(os.listdir("/dev/shm")), os.nice(0), os.getpid())
"#);
    let second = run_warm(&sb, &reader);
    assert!(second.warm_start);
    let s2 = ok(&second);
    // Nothing of the first run left; the normal priority (the pool's thread runs at nice 10).
    assert!(
        s2.ends_with("[] [] 0 2"),
        "state leaked between warm runs: {s2}"
    );
    let (u1, u2) = (s1.split(' ').next(), s2.split(' ').next());
    assert!(run_uids().contains(&u2.unwrap().parse().unwrap()), "{s2}");
    assert_eq!(u1.map(str::len), u2.map(str::len));
}

#[test]
fn warm_jails_enforce_the_limits_and_the_wall_clock() {
    let sb = warm_sandbox();
    let mut bomb = py("a = []\nwhile True:\n    a.append(b'x' * (1 << 20))\n");
    let mut l = small();
    l.memory_bytes = 64 << 20;
    bomb.limits(l.clone());
    sb.keep_warm(&bomb, 1).unwrap();
    let o = run_warm(&sb, &bomb);
    assert!(o.warm_start && o.oom_killed, "{o:?}");
    // A jail sits warm for a while before its run: the wall clock starts at the program.
    std::thread::sleep(Duration::from_millis(1500));
    let mut sleeper = py("import time; time.sleep(0.2); print('on time')");
    sleeper.limits(Limits {
        wall_ms: scaled(1_000),
        ..l.clone()
    });
    let o = run_warm(&sb, &sleeper);
    assert!(o.warm_start);
    assert_eq!(ok(&o), "on time");
    let mut spin = py("while True: pass");
    spin.limits(Limits {
        wall_ms: scaled(500),
        ..l
    });
    let o = run_warm(&sb, &spin);
    assert!(o.warm_start && o.timed_out, "{o:?}");
}

#[test]
fn another_shape_is_built_on_the_spot_and_a_stopped_shape_empties() {
    let sb = warm_sandbox();
    let template = py("print(1)");
    sb.keep_warm(&template, 1).unwrap();
    assert!(run_warm(&sb, &template).warm_start);
    let mut other = py("print(2)");
    let mut l = small();
    l.memory_bytes = 96 << 20;
    other.limits(l);
    let o = run_in(&sb, &other);
    assert!(!o.warm_start, "a jail of another shape was used");
    assert_eq!(ok(&o), "2");
    sb.keep_warm(&template, 0).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let o = run_in(&sb, &template);
    assert!(!o.warm_start, "a stopped shape still handed out a jail");
    assert_eq!(ok(&o), "1");
}

#[test]
fn a_bad_program_in_a_warm_jail_is_a_clear_error() {
    let sb = warm_sandbox();
    let cmd = py("print(1)");
    sb.keep_warm(&cmd, 1).unwrap();
    assert!(run_warm(&sb, &cmd).warm_start);
    std::thread::sleep(Duration::from_millis(300));
    let mut missing = livexec_sandbox::Command::new("/usr/bin/does-not-exist");
    missing.limits(cmd.get_limits().clone());
    let (_, prefix) = python();
    missing.mount_ro(prefix);
    let e = sb.run(&missing, &mut |_, _| {}).unwrap_err();
    assert!(
        matches!(e, livexec_sandbox::SandboxError::Exec { .. }),
        "{e}"
    );
    assert_eq!(ok(&run_in(&sb, &cmd)), "1", "the sandbox still works");
}

#[test]
fn jails_prepared_ahead_set_up_at_the_lowest_cpu_weight_and_run_at_the_default() {
    let sb = warm_sandbox();
    let cmd = py("print('ran')");
    let (lowest, default) = match sb.cgroup_mode() {
        livexec_sandbox::CgroupMode::V1 => (2, 1024),
        livexec_sandbox::CgroupMode::V2 => (1, 100),
        livexec_sandbox::CgroupMode::RlimitsOnly => return,
    };
    let ahead = sb.prepare_ahead(&cmd).unwrap();
    assert_eq!(
        ahead.cpu_weight(),
        Some(lowest),
        "set-up off the request path"
    );
    let now = sb.prepare(&cmd).unwrap();
    assert_eq!(
        now.cpu_weight(),
        Some(default),
        "set-up on the request path"
    );
    // The program gets the default weight back: it runs, and the prepared jail of the
    // other kind is torn down unused.
    let o = sb.run_prepared(ahead, &cmd, &mut |_, _| {}).unwrap();
    assert_eq!(ok(&o), "ran");
    sb.discard(now);
    // A warm pool's jail is prepared in the background too.
    sb.keep_warm(&cmd, 1).unwrap();
    let deadline = Instant::now() + Duration::from_millis(scaled(60_000));
    let pooled = loop {
        let p = sb.prepare(&cmd).unwrap();
        if p.is_warm() || Instant::now() > deadline {
            break p;
        }
        sb.discard(p);
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(pooled.is_warm(), "the pool never handed out a jail");
    assert_eq!(pooled.cpu_weight(), Some(lowest));
    assert_eq!(
        ok(&sb.run_prepared(pooled, &cmd, &mut |_, _| {}).unwrap()),
        "ran"
    );
}
