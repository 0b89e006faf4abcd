//! The seccomp filter: an allow-list of syscalls compiled once per [`crate::Sandbox`] into a
//! classic-BPF program (the policy itself is data in `policy`).
//!
//! The program has two parts:
//!
//! 1. a preamble kills the process on a foreign architecture or an x32 syscall number, and
//!    makes `clone3` fail with `ENOSYS` (its flags live in memory a filter cannot read, so libc
//!    falls back to `clone`, whose flags are checked);
//! 2. a binary search over the syscall number: the numbers from 0 to the x32 bit are cut into
//!    ranges of one verdict each, and the search ends, after about eight comparisons, on the
//!    range's verdict — allow, `EPERM` for the calls refused on purpose (mounts, namespaces,
//!    other processes, kernel facilities, administration, file handles, page-cache probes,
//!    file watches), 0 without making the call for the flushes to disk (`fsync` & co.:
//!    `policy::SUCCEED_UNDONE`), `ENOSYS` for every number not listed (as on a kernel without
//!    the call, so libc and the runtimes take their fallbacks, and calls added to later kernels
//!    stay closed until reviewed) — or on an argument check: `clone` with namespace flags,
//!    `fcntl` `F_NOTIFY`, `fadvise64`
//!    `DONTNEED`/`NOREUSE`, `madvise` `MADV_COLD`/`MADV_PAGEOUT`, `preadv2`/`pwritev2` with
//!    `RWF_NOWAIT`, `ioctl` requests that name the host's file system or map its blocks
//!    (`policy::IOCTL_REFUSED`) and `personality` other than the query and `PER_LINUX` get
//!    `EPERM`;
//!    `socket`/`socketpair` outside `AF_UNIX`, `AF_INET`, `AF_INET6` get `EAFNOSUPPORT`.
//!
//! Integer arguments (advice, family, persona, ioctl request) are compared on their low 32 bits, as the kernel
//! reads an `int`: a caller cannot slip past a check with garbage in the upper half.
//!
//! Why a search and not a list (as `seccompiler` and the container runtimes compile it): the
//! kernel (Linux >= 5.11) runs the program once for every syscall number of both x86
//! architectures when the filter is installed, to cache the verdict of every call allowed
//! whatever its arguments; only the argument-checked and refused calls run the program after
//! that. A linear list of ~350 calls made that set-up walk hundreds of instructions per number,
//! the largest single cost of starting a jail; the search walks about sixteen. The tests check
//! every number and argument against the linear compilation of the same policy.

mod policy;

use std::collections::BTreeMap;

use seccompiler::{sock_filter, BpfProgram};

use crate::SandboxError;

/// A syscall: `(name, x86_64 number)`.
pub(crate) type Syscall = (&'static str, i64);

const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const X32_SYSCALL_BIT: u32 = 0x4000_0000;
const RET_KILL_PROCESS: u32 = 0x8000_0000;
const RET_ALLOW: u32 = 0x7fff_0000;
const RET_ERRNO: u32 = 0x0005_0000;
const EPERM: u32 = RET_ERRNO | libc::EPERM as u32;
const ENOSYS: u32 = RET_ERRNO | libc::ENOSYS as u32;
/// `SECCOMP_RET_ERRNO` with 0: the call is skipped and returns 0.
const SUCCEED: u32 = RET_ERRNO;
const EAFNOSUPPORT: u32 = RET_ERRNO | libc::EAFNOSUPPORT as u32;
const LD_W_ABS: u16 = 0x20;
const JA: u16 = 0x05;
const JEQ_K: u16 = 0x15;
const JGE_K: u16 = 0x35;
const JSET_K: u16 = 0x45;
const RET_K: u16 = 0x06;
/// Offset of `args[0]` in `struct seccomp_data` (after `nr`, `arch`, `instruction_pointer`).
const ARGS_OFFSET: u32 = 16;
/// The kernel's limit on a filter's length (`BPF_MAXINSNS`).
const MAX_INSNS: usize = 4096;

/// Every syscall number on the allow-list (some only for some arguments). For the tests.
pub fn allowed_syscalls() -> Vec<i64> {
    policy::ALLOWED
        .iter()
        .flat_map(|(_, calls)| calls.iter().map(|&(_, nr)| nr))
        .collect()
}

fn stmt(code: u16, k: u32) -> sock_filter {
    sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

/// Part 1, described in the module docs (8 instructions); ends with the syscall number in
/// the accumulator, where part 2 expects it.
fn preamble() -> Vec<sock_filter> {
    vec![
        stmt(LD_W_ABS, 4),                          // 0: A = arch
        jump(JEQ_K, AUDIT_ARCH_X86_64, 0, 4),       // 1: foreign arch -> 6
        stmt(LD_W_ABS, 0),                          // 2: A = nr
        jump(JGE_K, X32_SYSCALL_BIT, 2, 0),         // 3: x32 -> 6
        jump(JEQ_K, libc::SYS_clone3 as u32, 2, 0), // 4: clone3 -> 7
        stmt(JA, 2),                                // 5: -> 8 (the search)
        stmt(RET_K, RET_KILL_PROCESS),              // 6
        stmt(RET_K, ENOSYS),                        // 7
    ]
}

fn seccomp_err(reason: String) -> SandboxError {
    SandboxError::Seccomp { reason }
}

/// A test on one argument of the call.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Test {
    /// The argument's low 32 bits equal one of these.
    LowIsAny(&'static [u32]),
    /// The argument has any bit of this mask set (all 64 bits).
    AnyBit(u64),
}

/// What the program answers for one syscall number.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Verdict {
    /// Always this `SECCOMP_RET_*` value.
    Ret(u32),
    /// `hit` when `test` holds for argument `arg`, else `miss`.
    Check {
        arg: u8,
        test: Test,
        hit: u32,
        miss: u32,
    },
}

/// Which arguments of an allowed call an argument check refuses, and with which
/// `SECCOMP_RET_ERRNO` value.
enum Refuse {
    /// Those for which the test holds.
    When(u32),
    /// Those for which it does not.
    Unless(u32),
}

/// The policy as one verdict per listed syscall number (unlisted numbers get `ENOSYS`).
fn verdicts() -> Result<BTreeMap<u32, Verdict>, SandboxError> {
    use policy::*;
    let mut map = BTreeMap::new();
    for (ret, groups) in [
        (RET_ALLOW, ALLOWED),
        (EPERM, REFUSED),
        (SUCCEED, SUCCEED_UNDONE),
    ] {
        for &(name, nr) in groups.iter().flat_map(|(_, calls)| calls.iter()) {
            let nr = u32::try_from(nr)
                .ok()
                .filter(|&nr| nr < X32_SYSCALL_BIT && nr != libc::SYS_clone3 as u32)
                .ok_or_else(|| seccomp_err(format!("{name} has number {nr}")))?;
            if map.insert(nr, Verdict::Ret(ret)).is_some() {
                return Err(seccomp_err(format!("{name} ({nr}) is listed twice")));
            }
        }
    }
    // Argument checks refine an allowed call: the other arguments keep its verdict.
    let namespace_flags = NAMESPACE_FLAGS
        .iter()
        .fold(0u64, |m, &f| m | f as u32 as u64);
    use Refuse::{Unless, When};
    let checks: [(i64, u8, Test, Refuse); 10] = [
        (
            libc::SYS_fcntl,
            1,
            Test::LowIsAny(FCNTL_REFUSED),
            When(EPERM),
        ),
        (
            libc::SYS_clone,
            0,
            Test::AnyBit(namespace_flags),
            When(EPERM),
        ),
        (
            libc::SYS_fadvise64,
            3,
            Test::LowIsAny(FADVISE_REFUSED),
            When(EPERM),
        ),
        (
            libc::SYS_madvise,
            2,
            Test::LowIsAny(MADVISE_REFUSED),
            When(EPERM),
        ),
        (
            libc::SYS_ioctl,
            1,
            Test::LowIsAny(IOCTL_REFUSED),
            When(EPERM),
        ),
        (libc::SYS_preadv2, 5, Test::AnyBit(RWF_NOWAIT), When(EPERM)),
        (libc::SYS_pwritev2, 5, Test::AnyBit(RWF_NOWAIT), When(EPERM)),
        (
            libc::SYS_personality,
            0,
            Test::LowIsAny(PERSONALITY_ALLOWED),
            Unless(EPERM),
        ),
        (
            libc::SYS_socket,
            0,
            Test::LowIsAny(SOCKET_FAMILIES),
            Unless(EAFNOSUPPORT),
        ),
        (
            libc::SYS_socketpair,
            0,
            Test::LowIsAny(SOCKET_FAMILIES),
            Unless(EAFNOSUPPORT),
        ),
    ];
    for (nr, arg, test, refuse) in checks {
        let nr = nr as u32;
        let Some(Verdict::Ret(RET_ALLOW)) = map.get(&nr) else {
            return Err(seccomp_err(format!("argument check on {nr}, not allowed")));
        };
        let (hit, miss) = match refuse {
            When(errno) => (errno, RET_ALLOW),
            Unless(errno) => (RET_ALLOW, errno),
        };
        map.insert(
            nr,
            Verdict::Check {
                arg,
                test,
                hit,
                miss,
            },
        );
    }
    Ok(map)
}

/// Cuts the numbers `0..X32_SYSCALL_BIT` into ranges `(first number, verdict)`, neighbours
/// with the same verdict merged.
fn ranges(verdicts: BTreeMap<u32, Verdict>) -> Vec<(u32, Verdict)> {
    let mut out: Vec<(u32, Verdict)> = Vec::new();
    let mut push = |first: u32, v: Verdict| {
        if out.last().map(|(_, last)| *last != v).unwrap_or(true) {
            out.push((first, v));
        }
    };
    let mut next = 0;
    for (nr, v) in verdicts {
        if nr > next {
            push(next, Verdict::Ret(ENOSYS));
        }
        push(nr, v);
        next = nr + 1;
    }
    push(next, Verdict::Ret(ENOSYS));
    out
}

/// The instructions of one verdict; the accumulator holds the syscall number on entry.
fn leaf(v: &Verdict) -> Result<Vec<sock_filter>, SandboxError> {
    let (arg, test, hit, miss) = match v {
        Verdict::Ret(k) => return Ok(vec![stmt(RET_K, *k)]),
        Verdict::Check {
            arg,
            test,
            hit,
            miss,
        } => (arg, test, hit, miss),
    };
    let low = ARGS_OFFSET + 8 * u32::from(*arg);
    // (offset, test) pairs, each jumping to `ret hit` when it holds: the two returns follow
    // the tests, `ret miss` first.
    let mut out = Vec::new();
    match test {
        Test::LowIsAny(values) => {
            let n = values.len();
            out.push(stmt(LD_W_ABS, low));
            for (i, &v) in values.iter().enumerate() {
                let to_hit = u8::try_from(n - i).map_err(|e| seccomp_err(e.to_string()))?;
                out.push(jump(JEQ_K, v, to_hit, 0));
            }
        }
        Test::AnyBit(mask) => {
            let halves: Vec<(u32, u32)> = [(low, *mask as u32), (low + 4, (*mask >> 32) as u32)]
                .into_iter()
                .filter(|&(_, bits)| bits != 0)
                .collect();
            let n = halves.len();
            for (i, (offset, bits)) in halves.into_iter().enumerate() {
                out.push(stmt(LD_W_ABS, offset));
                // Past the other halves' two instructions each and `ret miss`.
                out.push(jump(JSET_K, bits, (2 * (n - 1 - i) + 1) as u8, 0));
            }
        }
    }
    out.push(stmt(RET_K, *miss));
    out.push(stmt(RET_K, *hit));
    Ok(out)
}

/// A balanced search over `ranges` (sorted by first number, the first starting at 0).
fn search(ranges: &[(u32, Verdict)]) -> Result<Vec<sock_filter>, SandboxError> {
    if let [(_, only)] = ranges {
        return leaf(only);
    }
    let mid = ranges.len() / 2;
    let below = search(&ranges[..mid])?;
    let above = search(&ranges[mid..])?;
    let first_above = ranges[mid].0;
    let mut out = Vec::with_capacity(2 + below.len() + above.len());
    match u8::try_from(below.len()) {
        Ok(skip) => out.push(jump(JGE_K, first_above, skip, 0)),
        Err(_) => {
            // Too far for a conditional jump: through a `ja` (32-bit offset).
            out.push(jump(JGE_K, first_above, 0, 1));
            out.push(stmt(JA, below.len() as u32));
        }
    }
    out.extend(below);
    out.extend(above);
    Ok(out)
}

/// Compiles the whole filter.
pub(crate) fn build() -> Result<BpfProgram, SandboxError> {
    let mut prog = preamble();
    prog.extend(search(&ranges(verdicts()?))?);
    if prog.len() > MAX_INSNS {
        return Err(seccomp_err(format!(
            "{} instructions, over the kernel's {MAX_INSNS}",
            prog.len()
        )));
    }
    Ok(prog)
}

#[cfg(test)]
mod tests;
