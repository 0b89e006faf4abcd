//! What ordinary programs need works in the jail: their stdio reopened by path, POSIX shared
//! memory, and output written in one go just before exit.

mod common;

use common::*;

#[test]
fn stdio_reopened_by_path_works_in_python() {
    let mut c = py(r#"
import sys
data = open("/dev/stdin").read()
open("/dev/stdout", "w").write("stdout:" + data.strip() + "\n")
open("/proc/self/fd/1", "w").write("fd1\n")
open("/dev/stderr", "w").write("stderr\n")
with open("/proc/self/fd/0") as again:
    print("eof:", repr(again.read()))
"#);
    c.stdin("given input\n");
    let o = run(&c);
    assert_eq!(ok(&o), "stdout:given input\nfd1\neof: ''");
    assert_eq!(o.stderr, b"stderr\n");
}

#[test]
fn read_file_sync_dev_stdin_works_in_node_with_and_without_input() {
    let code = r#"
const fs = require("fs");
const input = fs.readFileSync("/dev/stdin", "utf8");
fs.writeFileSync("/dev/stdout", JSON.stringify(input.split("\n").filter(Boolean).map(Number)) + "\n");
"#;
    let mut c = js(code);
    c.stdin("1\n2\n3\n");
    assert_eq!(ok(&run(&c)), "[1,2,3]");
    assert_eq!(ok(&run(&js(code))), "[]", "no stdin: EOF at once");
}

/// The init hands the program its argv and environment straight from the go message (no
/// copies): many entries, empty ones and the last of each must all arrive, in order.
#[test]
fn many_arguments_and_environment_entries_reach_the_program_in_order() {
    let mut c = livexec_sandbox::Command::new("/bin/sh");
    c.args([
        "-c",
        r#"echo "$# [$1] [$2] [${30000}]"; echo "$V0 $V1999"; env | grep -c '^V'"#,
        "sh",
        "",
    ]);
    c.args((2..=30_000).map(|i| format!("a{i}")));
    for i in 0..2000 {
        c.env(format!("V{i}"), format!("v{i}"));
    }
    c.limits(small());
    assert_eq!(ok(&run(&c)), "30000 [] [a2] [a30000]\nv0 v1999\n2000");
}

#[test]
fn shell_scripts_write_to_dev_stdout() {
    let mut c = livexec_sandbox::Command::new("/bin/sh");
    c.args([
        "-c",
        "echo out > /dev/stdout; echo err > /dev/stderr; cat /dev/stdin",
    ])
    .stdin("in\n")
    .limits(small());
    let o = run(&c);
    assert_eq!(ok(&o), "out\nin");
    assert_eq!(o.stderr, b"err\n");
}

#[test]
fn multiprocessing_pool_and_posix_semaphores_work() {
    let mut c = py(r#"
from multiprocessing import Pool, Semaphore
def sq(x):
    return x * x
if __name__ == "__main__":
    s = Semaphore(2)
    s.acquire(); s.release()
    with Pool(2) as p:
        print(sum(p.map(sq, range(10))))
"#);
    let mut l = small();
    l.wall_ms = 30_000;
    c.limits(l);
    assert_eq!(ok(&run(&c)), "285");
}

#[test]
fn dev_shm_is_private_and_counted_against_the_memory_limit() {
    let first = run(&py(r#"
import os
open("/dev/shm/left-behind", "w").write("x")
print(sorted(os.listdir("/dev/shm")))
"#));
    assert_eq!(ok(&first), "['left-behind']");
    assert_eq!(
        ok(&run(&py("import os; print(os.listdir('/dev/shm'))"))),
        "[]"
    );
    // 24 MiB in /dev/shm (files under the 16 MiB file-size limit) shows in the run's memory.
    let o = run(&py(r#"
for i in range(3):
    with open(f"/dev/shm/f{i}", "wb") as f:
        f.write(b"x" * (8 << 20))
print("ok")
"#));
    assert_eq!(ok(&o), "ok");
    assert!(
        o.memory_peak_bytes >= 24 << 20,
        "shm pages are not counted in the run's memory: peak {}",
        o.memory_peak_bytes
    );
    // Under a 32 MiB memory limit the same writes cannot all land.
    let mut c = py(r#"
import errno
try:
    for i in range(4):
        with open(f"/dev/shm/f{i}", "wb") as f:
            f.write(b"x" * (8 << 20))
    print("WROTE 32 MiB")
except OSError as e:
    print(errno.errorcode[e.errno])
"#);
    let mut l = small();
    l.memory_bytes = 32 << 20;
    c.limits(l);
    let o = run(&c);
    assert!(
        o.oom_killed || out(&o) == "ENOSPC",
        "shm was not limited: {o:?}"
    );
}

#[test]
fn node_output_written_just_before_process_exit_is_kept_whole() {
    for _ in 0..3 {
        let o = run(&js(
            "process.stdout.write('x'.repeat(900000)); process.exit(0);",
        ));
        assert_eq!(o.exit_code, Some(0), "{o:?}");
        assert_eq!(o.stdout.len(), 900_000, "node lost output at exit");
    }
}

#[test]
fn input_up_to_the_pipe_maximum_is_all_there_when_the_program_starts_and_more_still_arrives() {
    // FIONREAD at start: every byte of a 1 MiB input is already in the stdin pipe (no round
    // trip through the supervisor per 64 KiB); a larger input arrives whole, in order.
    let code = r#"
import fcntl, hashlib, struct, sys, termios
ready = struct.unpack("i", fcntl.ioctl(0, termios.FIONREAD, b"\0\0\0\0"))[0]
data = sys.stdin.buffer.read()
print(ready, len(data), hashlib.sha256(data).hexdigest())
"#;
    let max: usize = std::fs::read_to_string("/proc/sys/fs/pipe-max-size")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1 << 20);
    for len in [1000, 1 << 20, (1 << 20) * 3 + 7] {
        let input: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        let sha = sha256_hex(&input);
        let mut c = py(code);
        c.stdin(input);
        let o = run(&c);
        assert_eq!(
            ok(&o),
            format!("{} {len} {sha}", len.min(max)),
            "{len} bytes of input"
        );
    }
}

/// SHA-256 of `data` in hex, by the host's `sha256sum`.
fn sha256_hex(data: &[u8]) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("sha256sum");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(data)
        .expect("write");
    let out = child.wait_with_output().expect("sha256sum output");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned()
}
