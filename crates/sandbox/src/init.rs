//! The jail's init (pid 1): a separate tiny static program, not a fork of the supervisor.
//!
//! This file is the init's protocol, compiled twice: as a module of the library (the
//! supervisor [`encode`]s the *go* message and reads the status records) and into the init
//! itself (`init/main.rs`, built by `build.rs` with `--cfg livexec_init`, includes it with
//! `#[path]` and [`decode`]s the message), so both sides share one wire format, unit-tested
//! here. The init is `#![no_std]`: no C library and no Rust runtime start-up, only raw
//! system calls, so that starting it costs its `execve` and a few page faults (a static C
//! library's start-up probes the CPU with `cpuid`, which traps to the hypervisor on a VM). The
//! library embeds it and loads it into a sealed `memfd` once per [`crate::Sandbox`]. Because
//! the jail's pid 1 is a fresh `execve` of this program with the argv `["livexec-init"]` and
//! an empty environment, nothing of the server — its argv, its environment, its memory —
//! exists inside the jail.
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
#[cfg(not(livexec_init))]
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

#[cfg(any(test, livexec_init))]
/// A checked go message: the program path, then `argc` arguments and `envc` environment
/// entries, read in place (no copies: each string is followed by its NUL in the buffer, so
/// the init hands pointers into the message straight to `execve`).
pub(crate) struct Go<'a> {
    /// Number of arguments (`argv[0]` included).
    pub argc: usize,
    /// Number of `KEY=VALUE` entries.
    pub envc: usize,
    /// The strings, NUL-separated, without the final NUL.
    strings: &'a [u8],
}

#[cfg(any(test, livexec_init))]
impl<'a> Go<'a> {
    /// Every string in order, each without its NUL: the program, the arguments, the
    /// environment.
    pub(crate) fn strings(&self) -> core::slice::Split<'a, u8, fn(&u8) -> bool> {
        self.strings.split(is_nul as fn(&u8) -> bool)
    }

    /// The program path.
    pub(crate) fn program(&self) -> &'a [u8] {
        self.strings().next().unwrap_or_default()
    }
}

#[cfg(any(test, livexec_init))]
fn is_nul(b: &u8) -> bool {
    *b == 0
}

#[cfg(any(test, livexec_init))]
/// Parses a go message; `None` when it is malformed (a count that does not match the
/// strings, an empty program path, a missing final NUL). Needs only `core`: the init uses it.
pub(crate) fn decode(buf: &[u8]) -> Option<Go<'_>> {
    let argc = u32::from_le_bytes(buf.get(0..4)?.try_into().ok()?) as usize;
    let envc = u32::from_le_bytes(buf.get(4..8)?.try_into().ok()?) as usize;
    let strings = buf.get(8..)?.strip_suffix(&[0])?;
    let go = Go {
        argc,
        envc,
        strings,
    };
    let expected = argc.checked_add(envc)?.checked_add(1)?;
    (go.strings().count() == expected && !go.program().is_empty()).then_some(go)
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
        assert_eq!(g.program(), b"/usr/bin/python3");
        assert_eq!((g.argc, g.envc), (3, 1));
        let all: Vec<&[u8]> = g.strings().collect();
        assert_eq!(
            all,
            vec![
                &b"/usr/bin/python3"[..],
                b"/usr/bin/python3",
                b"main.py",
                b"",
                b"A=1"
            ]
        );
        let empty = encode(b"/x", &[b"/x"], &[]).unwrap();
        assert_eq!(decode(&empty).unwrap().envc, 0);
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
