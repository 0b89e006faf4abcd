//! Files into and out of a run: `Command::collect` hands back the regular files a program left
//! in `/work` (never what a link points at, never a FIFO, a socket or a directory), and
//! `Command::artifact` places a file the program may run but not change.

mod common;

use common::*;
use livexec_sandbox::{Command, Limits, SandboxError, Stream};

fn sh(script: &str) -> Command {
    let mut c = Command::new("/bin/sh");
    c.args(["-c", script]).limits(small());
    c
}

#[test]
fn collect_hands_back_matching_regular_files_only() {
    let mut c = sh(
        "printf 'bin' > out.bin; printf A > A.class; printf 'B$' > 'A$1.class'; \
         ln -s /etc/passwd link.class; mkfifo fifo.class; mkdir dir.class; \
         python3 -c 'import socket; socket.socket(socket.AF_UNIX).bind(\"sock.class\")'; \
         test -S sock.class || exit 9; printf x > other.txt; exit 3",
    );
    c.collect("out.bin").collect("*.class").collect("missing");
    let o = run(&c);
    assert_eq!(
        o.exit_code,
        Some(3),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let got: Vec<(&str, &[u8])> = o
        .files
        .iter()
        .map(|(n, d)| (n.as_str(), d.as_slice()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("A$1.class", &b"B$"[..]),
            ("A.class", &b"A"[..]),
            ("out.bin", &b"bin"[..])
        ]
    );
}

#[test]
fn nothing_is_collected_unless_asked() {
    let o = run(&sh("printf x > out.bin"));
    assert_eq!(o.exit_code, Some(0));
    assert!(o.files.is_empty());
}

#[test]
fn files_of_a_killed_run_are_still_collected() {
    let mut c = sh("printf partial > out.bin; kill -KILL $$");
    c.collect("out.bin");
    let o = run(&c);
    assert_eq!(o.signal, Some(libc::SIGKILL));
    assert_eq!(o.files, vec![("out.bin".to_owned(), b"partial".to_vec())]);
}

#[test]
fn an_artifact_runs_but_the_program_cannot_change_it() {
    let mut c = sh(
        "./prog; stat -c '%u %a' prog; echo changed > prog && echo WROTE; \
         chmod 777 prog && echo CHMODDED; ./prog",
    );
    c.artifact("prog", "#!/bin/sh\necho artifact ran\n");
    let o = run(&c);
    assert_eq!(
        o.exit_code,
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(out(&o), "artifact ran\n0 555\nartifact ran");
}

#[test]
fn bad_collect_patterns_and_artifact_names_are_refused() {
    for pattern in ["../x", "a/b", "", "*a*"] {
        let mut c = sh("true");
        c.collect(pattern);
        let err = sandbox()
            .run(&c, &mut |_: Stream, _: &[u8]| {})
            .unwrap_err();
        assert!(
            matches!(err, SandboxError::BadFileName { .. }),
            "{pattern}: {err}"
        );
    }
    let mut c = sh("true");
    c.artifact("dir/prog", "x");
    let err = sandbox()
        .run(&c, &mut |_: Stream, _: &[u8]| {})
        .unwrap_err();
    assert!(matches!(err, SandboxError::BadFileName { .. }), "{err}");
}

#[test]
fn hard_links_past_the_tmpfs_size_are_left_out_not_a_failure() {
    // One 3 MiB file linked ten times: 33 MiB of names over a 4 MiB tmpfs. The run is the
    // program's; collecting what it left must not fail it (it was a platform error, retried).
    let mut c = sh(
        "head -c 3145728 /dev/zero > big; for i in 1 2 3 4 5 6 7 8 9 10; do ln big big$i; done; \
         printf small > small",
    );
    c.limits(Limits {
        tmpfs_bytes: 4 << 20,
        ..small()
    });
    c.collect("*");
    let o = run(&c);
    assert_eq!(
        o.exit_code,
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let names: Vec<&str> = o.files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["big", "small"], "what fits, in name order");
    assert_eq!(o.files[0].1.len(), 3 << 20);
}

/// Names that the writer could only fail on (or normalize into another name) are refused
/// before the jail is built, as a bad request rather than a file-system error: `a` beside
/// `a/b`, a name twice, an artifact named like a file, `a//b`, `d/`, a 256-byte part.
#[test]
fn file_sets_that_cannot_be_written_are_refused_up_front() {
    let long = "x".repeat(256);
    for names in [
        &["a", "a/b"][..],
        &["a/b", "a"],
        &["same", "same"],
        &["a//b"],
        &["a/./b"],
        &["d/"],
        &[long.as_str()],
    ] {
        let mut c = sh("true");
        for name in names {
            c.file(name, "x");
        }
        let err = sandbox()
            .run(&c, &mut |_: Stream, _: &[u8]| {})
            .unwrap_err();
        assert!(
            matches!(
                err,
                SandboxError::FilesCollide { .. } | SandboxError::BadFileName { .. }
            ),
            "{names:?}: {err}"
        );
    }
    let mut c = sh("true");
    c.file("prog", "x");
    c.artifact("prog", "y");
    let err = sandbox()
        .run(&c, &mut |_: Stream, _: &[u8]| {})
        .unwrap_err();
    assert!(matches!(err, SandboxError::FilesCollide { .. }), "{err}");
}
