//! The jail's init (pid 1): a separate tiny static program, not a fork of the supervisor.
//!
//! This file is compiled twice: as a module of the library (the wire format of the *go*
//! message, [`encode`]/[`decode`], and the report codes are shared with the supervisor, and
//! unit-tested here), and by `build.rs` into a static executable (`init/main.rs` includes it
//! with `#[path]`) that the library embeds and loads into a sealed `memfd` once per
//! [`crate::Sandbox`]. Because the jail's pid 1 is a fresh `execve` of this program with the
//! argv `["livexec-init"]` and an empty environment, nothing of the server — its argv, its
//! environment, its memory — exists inside the jail.
//!
//! So that the standalone build needs no crate but `std`, the few libc calls are declared
//! here (module `ffi`), not taken from the `libc` crate.
//!
//! What the init does, after the supervisor's child (stage 1: namespaces, mounts, limits,
//! privilege drop, Landlock, seccomp) `execveat`s it:
//! 1. makes itself non-dumpable (the program, same uid, cannot read its memory or environ);
//! 2. reports *ready* on the status pipe and blocks reading the go pipe to EOF — in a warm
//!    sandbox this is where it waits for a request;
//! 3. forks the program (pid 2), which marks the status pipe close-on-exec and `execve`s it
//!    (so the supervisor sees EOF on the status pipe exactly when the program starts); an
//!    `execve` failure is reported on the status pipe with [`STEP_EXEC`];
//! 4. closes its copies of the program's stdio, reaps every process, writes the program's raw
//!    wait status (4 bytes, little-endian) on the exit pipe when pid 2 ends, and exits — the
//!    kernel then kills whatever is left in the pid namespace.

/// Fd of the status pipe (write end) in the jail: setup errors and *ready* as
/// `(step u32, errno i32)` little-endian records; EOF when the program has `execve`d.
pub(crate) const STATUS_FD: i32 = 3;
/// Fd of the exit pipe: the program's raw wait status, written by the init.
pub(crate) const EXIT_FD: i32 = 4;
/// Fd of the go pipe (read end): the program to run, [`encode`]d, then EOF.
pub(crate) const GO_FD: i32 = 6;
/// Length of one status record.
pub(crate) const REPORT_LEN: usize = 8;
/// Status-record step: the init is waiting for the go message (errno field 0).
pub(crate) const STEP_READY: u32 = u32::MAX;
/// Status-record step: `execve` of the program failed (errno field set).
pub(crate) const STEP_EXEC: u32 = u32::MAX - 1;
/// Status-record step: the init could not fork the program.
pub(crate) const STEP_FORK: u32 = u32::MAX - 2;
/// Status-record step: the go message was malformed or unreadable.
pub(crate) const STEP_GO: u32 = u32::MAX - 3;
/// Largest go message accepted (bytes): argv and environment of the program.
pub(crate) const MAX_GO_BYTES: usize = 4 << 20;

/// One status record.
pub(crate) fn record(step: u32, errno: i32) -> [u8; REPORT_LEN] {
    let mut rec = [0u8; REPORT_LEN];
    rec[..4].copy_from_slice(&step.to_le_bytes());
    rec[4..].copy_from_slice(&errno.to_le_bytes());
    rec
}

/// The go message: `u32 argc, u32 envc`, then the program path, the `argc` arguments
/// (`argv[0]` included) and the `envc` `KEY=VALUE` entries, each NUL-terminated.
/// `None` when a string contains NUL or the message would exceed [`MAX_GO_BYTES`].
pub(crate) fn encode(program: &[u8], argv: &[&[u8]], envp: &[&[u8]]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&u32::try_from(argv.len()).ok()?.to_le_bytes());
    out.extend_from_slice(&u32::try_from(envp.len()).ok()?.to_le_bytes());
    for s in std::iter::once(&program).chain(argv).chain(envp) {
        if s.contains(&0) {
            return None;
        }
        out.extend_from_slice(s);
        out.push(0);
    }
    (out.len() <= MAX_GO_BYTES).then_some(out)
}

/// A decoded go message: program path, argv, envp (each without its NUL).
pub(crate) struct Go<'a> {
    pub program: &'a [u8],
    pub argv: Vec<&'a [u8]>,
    pub envp: Vec<&'a [u8]>,
}

/// Parses a go message; `None` when it is malformed.
pub(crate) fn decode(buf: &[u8]) -> Option<Go<'_>> {
    let argc = u32::from_le_bytes(buf.get(0..4)?.try_into().ok()?) as usize;
    let envc = u32::from_le_bytes(buf.get(4..8)?.try_into().ok()?) as usize;
    let body = buf.get(8..)?;
    let body = body.strip_suffix(&[0])?;
    let mut parts = body.split(|&b| b == 0);
    let program = parts.next()?;
    let argv: Vec<&[u8]> = parts.by_ref().take(argc).collect();
    let envp: Vec<&[u8]> = parts.by_ref().take(envc).collect();
    if argv.len() != argc || envp.len() != envc || parts.next().is_some() || program.is_empty() {
        return None;
    }
    Some(Go {
        program,
        argv,
        envp,
    })
}

/// The init's main loop (the static executable's `main`). Never returns.
#[allow(dead_code)] // used by the standalone build (init/main.rs)
pub(crate) fn run() -> ! {
    use std::ffi::CString;

    // SAFETY: plain prctl calls; the name is a NUL-terminated static string.
    unsafe {
        ffi::prctl(ffi::PR_SET_DUMPABLE, 0, 0, 0, 0);
        ffi::prctl(ffi::PR_SET_NAME, c"livexec-init".as_ptr(), 0, 0, 0);
    }
    ffi::write_all(STATUS_FD, &record(STEP_READY, 0));
    let mut msg = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match ffi::read(GO_FD, &mut chunk) {
            Ok(0) => break,
            Ok(n) if msg.len() + n <= MAX_GO_BYTES => msg.extend_from_slice(&chunk[..n]),
            Ok(_) => fail(STEP_GO, 7), // E2BIG
            Err(ffi::EINTR) => {}
            Err(e) => fail(STEP_GO, e),
        }
    }
    ffi::close(GO_FD);
    if msg.is_empty() {
        // The supervisor dropped this sandbox unused.
        ffi::exit(0);
    }
    let Some(go) = decode(&msg) else {
        fail(STEP_GO, 22) // EINVAL
    };
    let cstr = |b: &[u8]| CString::new(b).unwrap_or_default();
    let program = cstr(go.program);
    let argv: Vec<CString> = go.argv.iter().map(|a| cstr(a)).collect();
    let envp: Vec<CString> = go.envp.iter().map(|e| cstr(e)).collect();
    let mut argv_p: Vec<*const std::ffi::c_char> = argv.iter().map(|s| s.as_ptr()).collect();
    argv_p.push(std::ptr::null());
    let mut envp_p: Vec<*const std::ffi::c_char> = envp.iter().map(|s| s.as_ptr()).collect();
    envp_p.push(std::ptr::null());

    // SAFETY: this process is single-threaded; the child only makes async-signal-safe calls.
    let pid = unsafe { ffi::fork() };
    if pid < 0 {
        fail(STEP_FORK, ffi::errno());
    }
    if pid == 0 {
        ffi::close(EXIT_FD);
        // SAFETY: plain fcntl on an fd we own.
        unsafe { ffi::fcntl(STATUS_FD, ffi::F_SETFD, ffi::FD_CLOEXEC) };
        // SAFETY: NULL-terminated arrays of pointers to NUL-terminated strings that live
        // until the call returns (it only returns on failure).
        unsafe { ffi::execve(program.as_ptr(), argv_p.as_ptr(), envp_p.as_ptr()) };
        fail(STEP_EXEC, ffi::errno());
    }
    for fd in [0, 1, 2, STATUS_FD] {
        ffi::close(fd);
    }
    loop {
        let mut status: i32 = 0;
        // SAFETY: status is a valid out-pointer.
        let r = unsafe { ffi::waitpid(-1, &mut status, ffi::WALL) };
        if r == pid {
            ffi::write_all(EXIT_FD, &status.to_le_bytes());
            ffi::exit(0);
        }
        if r < 0 && ffi::errno() != ffi::EINTR {
            ffi::exit(1);
        }
    }
}

/// Reports `(step, errno)` on the status pipe and exits with 127.
#[allow(dead_code)] // used by the standalone build (init/main.rs)
fn fail(step: u32, errno: i32) -> ! {
    ffi::write_all(STATUS_FD, &record(step, errno));
    ffi::exit(127)
}

/// The libc calls of the init (declared here so the standalone build needs only `std`).
#[allow(dead_code)] // used by the standalone build (init/main.rs)
mod ffi {
    use std::ffi::{c_char, c_int, c_void};

    pub const EINTR: i32 = 4;
    pub const F_SETFD: c_int = 2;
    pub const FD_CLOEXEC: c_int = 1;
    pub const PR_SET_DUMPABLE: c_int = 4;
    pub const PR_SET_NAME: c_int = 15;
    pub const WALL: c_int = 0x4000_0000;

    extern "C" {
        pub fn prctl(option: c_int, ...) -> c_int;
        pub fn fork() -> c_int;
        pub fn execve(
            path: *const c_char,
            argv: *const *const c_char,
            envp: *const *const c_char,
        ) -> c_int;
        pub fn waitpid(pid: c_int, status: *mut c_int, options: c_int) -> c_int;
        pub fn fcntl(fd: c_int, cmd: c_int, ...) -> c_int;
        #[link_name = "read"]
        fn c_read(fd: c_int, buf: *mut c_void, count: usize) -> isize;
        #[link_name = "write"]
        fn c_write(fd: c_int, buf: *const c_void, count: usize) -> isize;
        #[link_name = "close"]
        fn c_close(fd: c_int) -> c_int;
        #[link_name = "_exit"]
        fn c_exit(code: c_int) -> !;
        fn __errno_location() -> *mut c_int;
    }

    pub fn errno() -> i32 {
        // SAFETY: __errno_location returns a valid pointer to this thread's errno.
        unsafe { *__errno_location() }
    }

    pub fn read(fd: c_int, buf: &mut [u8]) -> Result<usize, i32> {
        // SAFETY: buf is valid for writes of buf.len() bytes.
        let r = unsafe { c_read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if r < 0 {
            Err(errno())
        } else {
            Ok(r as usize)
        }
    }

    pub fn write_all(fd: c_int, mut buf: &[u8]) {
        while !buf.is_empty() {
            // SAFETY: buf is valid for buf.len() bytes.
            let r = unsafe { c_write(fd, buf.as_ptr().cast(), buf.len()) };
            if r < 0 && errno() == EINTR {
                continue;
            }
            if r <= 0 {
                return;
            }
            buf = &buf[r as usize..];
        }
    }

    pub fn close(fd: c_int) {
        // SAFETY: closing an fd; errors do not matter here.
        unsafe { c_close(fd) };
    }

    pub fn exit(code: c_int) -> ! {
        // SAFETY: _exit never returns.
        unsafe { c_exit(code) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_message_round_trips() {
        let m = encode(
            b"/usr/bin/python3",
            &[b"/usr/bin/python3", b"main.py", b""],
            &[b"A=1"],
        )
        .unwrap();
        let g = decode(&m).unwrap();
        assert_eq!(g.program, b"/usr/bin/python3");
        assert_eq!(g.argv, vec![&b"/usr/bin/python3"[..], b"main.py", b""]);
        assert_eq!(g.envp, vec![&b"A=1"[..]]);
        let empty = encode(b"/x", &[b"/x"], &[]).unwrap();
        assert_eq!(decode(&empty).unwrap().envp.len(), 0);
    }

    #[test]
    fn bad_go_messages_are_rejected() {
        assert!(encode(b"/x", &[b"a\0b"], &[]).is_none());
        let m = encode(b"/x", &[b"/x", b"y"], &[b"K=V"]).unwrap();
        for cut in 0..m.len() {
            assert!(
                decode(&m[..cut]).is_none(),
                "prefix of {cut} bytes accepted"
            );
        }
        let mut extra = m.clone();
        extra.extend_from_slice(b"z\0");
        assert!(decode(&extra).is_none());
    }

    #[test]
    fn records_are_little_endian() {
        assert_eq!(record(STEP_READY, 0), [255, 255, 255, 255, 0, 0, 0, 0]);
        assert_eq!(record(2, 13)[4], 13);
    }
}
