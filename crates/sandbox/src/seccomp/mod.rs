//! The seccomp filter: an allow-list of syscalls, compiled once per [`crate::Sandbox`] with
//! `seccompiler` (the policy itself is data in `policy`).
//!
//! The program runs in four parts, each deciding or falling through to the next:
//!
//! 1. a hand-written preamble kills the process on a foreign architecture or an x32 syscall
//!    number, and makes `clone3` fail with `ENOSYS` (its flags live in memory a filter cannot
//!    read, so libc falls back to `clone`, whose flags are checked);
//! 2. `EPERM` for the calls refused on purpose (mounts, namespaces, other processes, kernel
//!    facilities, administration, file handles, page-cache probes, file watches) and for
//!    refused arguments: `clone` with namespace flags, `fadvise64` `DONTNEED`/`NOREUSE`,
//!    `madvise` `MADV_COLD`/`MADV_PAGEOUT`, `preadv2`/`pwritev2` with `RWF_NOWAIT`,
//!    `personality` other than the query and `PER_LINUX`;
//! 3. `EAFNOSUPPORT` for `socket`/`socketpair` outside `AF_UNIX`, `AF_INET`, `AF_INET6`;
//! 4. the allow-list; anything else gets `ENOSYS`, as on a kernel without the call, so libc
//!    and the runtimes take their fallbacks (and calls added to later kernels stay closed
//!    until reviewed).
//!
//! `seccompiler` compiles one match action per filter, so parts 2–4 are three filters, and
//! the "no match" return of parts 2 and 3 is rewritten into a jump to the next part. Integer
//! arguments (advice, family, persona) are compared on their low 32 bits, as the kernel reads
//! an `int`: a caller cannot slip past a check with garbage in the upper half. The kernel
//! (Linux >= 5.11) caches the verdict of every call allowed whatever its arguments, so only
//! the argument-checked calls and the refused ones run the program.

mod policy;

use std::collections::BTreeMap;

use seccompiler::{
    sock_filter, BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition,
    SeccompFilter, SeccompRule, TargetArch,
};

use crate::SandboxError;

/// A syscall: `(name, x86_64 number)`.
pub(crate) type Syscall = (&'static str, i64);

const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const X32_SYSCALL_BIT: u32 = 0x4000_0000;
const RET_KILL_PROCESS: u32 = 0x8000_0000;
const RET_ERRNO: u32 = 0x0005_0000;
const RET_K: u16 = 0x06;
const JA: u16 = 0x05;
/// The "no match" action of parts 2 and 3 before it becomes a jump to the next part (a
/// `SECCOMP_RET_TRACE` value no part otherwise returns).
const FALL_THROUGH: SeccompAction = SeccompAction::Trace(0xfa11);
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

/// Part 1, described in the module docs (8 instructions).
fn preamble() -> Vec<sock_filter> {
    const LD_W_ABS: u16 = 0x20;
    const JEQ_K: u16 = 0x15;
    const JGE_K: u16 = 0x35;
    vec![
        stmt(LD_W_ABS, 4),                            // 0: A = arch
        jump(JEQ_K, AUDIT_ARCH_X86_64, 0, 4),         // 1: foreign arch -> 6
        stmt(LD_W_ABS, 0),                            // 2: A = nr
        jump(JGE_K, X32_SYSCALL_BIT, 2, 0),           // 3: x32 -> 6
        jump(JEQ_K, libc::SYS_clone3 as u32, 2, 0),   // 4: clone3 -> 7
        stmt(JA, 2),                                  // 5: -> 8 (compiled parts)
        stmt(RET_K, RET_KILL_PROCESS),                // 6
        stmt(RET_K, RET_ERRNO | libc::ENOSYS as u32), // 7
    ]
}

fn seccomp_err(e: &dyn std::fmt::Display) -> SandboxError {
    SandboxError::Seccomp {
        reason: e.to_string(),
    }
}

/// `arg op value` on the argument's low 32 bits (`Dword`) or all 64 (`Qword`).
fn cond(
    arg: u8,
    len: SeccompCmpArgLen,
    op: SeccompCmpOp,
    value: u64,
) -> Result<SeccompCondition, SandboxError> {
    SeccompCondition::new(arg, len, op, value).map_err(|e| seccomp_err(&e))
}

fn rule(conds: Vec<SeccompCondition>) -> Result<SeccompRule, SandboxError> {
    SeccompRule::new(conds).map_err(|e| seccomp_err(&e))
}

/// Matches when the `int` argument equals any of `values` (one rule each).
fn int_is_any(arg: u8, values: &[i32]) -> Result<Vec<SeccompRule>, SandboxError> {
    values
        .iter()
        .map(|&v| {
            rule(vec![cond(
                arg,
                SeccompCmpArgLen::Dword,
                SeccompCmpOp::Eq,
                v as u32 as u64,
            )?])
        })
        .collect()
}

/// Matches when the 32-bit argument is none of `values` (one rule, all conditions).
fn int_is_none_of(arg: u8, values: &[u32]) -> Result<Vec<SeccompRule>, SandboxError> {
    let conds = values
        .iter()
        .map(|&v| cond(arg, SeccompCmpArgLen::Dword, SeccompCmpOp::Ne, u64::from(v)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(vec![rule(conds)?])
}

/// Matches when the argument has any of the single-bit `flags` set (one rule each).
fn has_any_flag(arg: u8, flags: &[u64]) -> Result<Vec<SeccompRule>, SandboxError> {
    flags
        .iter()
        .map(|&f| {
            rule(vec![cond(
                arg,
                SeccompCmpArgLen::Qword,
                SeccompCmpOp::MaskedEq(f),
                f,
            )?])
        })
        .collect()
}

/// Compiles one part: `on_match` when a listed call (and its rules, if any) matches, else
/// `otherwise`, or on to the next part when `otherwise` is `None`.
fn part(
    rules: BTreeMap<i64, Vec<SeccompRule>>,
    on_match: SeccompAction,
    otherwise: Option<SeccompAction>,
) -> Result<Vec<sock_filter>, SandboxError> {
    let mismatch = otherwise.clone().unwrap_or(FALL_THROUGH);
    let filter = SeccompFilter::new(rules, mismatch, on_match, TargetArch::x86_64)
        .map_err(|e| seccomp_err(&e))?;
    let mut prog: BpfProgram = filter
        .try_into()
        .map_err(|e: seccompiler::BackendError| seccomp_err(&e))?;
    if otherwise.is_none() {
        let fall = u32::from(FALL_THROUGH);
        let len = prog.len();
        for (i, insn) in prog.iter_mut().enumerate() {
            if insn.code == RET_K && insn.k == fall {
                // `ja k` continues at i + 1 + k: the first instruction after this part.
                *insn = stmt(JA, (len - i - 1) as u32);
            }
        }
    }
    Ok(prog)
}

fn unconditional(groups: &[(&str, &[Syscall])]) -> BTreeMap<i64, Vec<SeccompRule>> {
    groups
        .iter()
        .flat_map(|(_, calls)| calls.iter().map(|&(_, nr)| (nr, Vec::new())))
        .collect()
}

/// Part 2's map: the refused calls, then the refused arguments of allowed calls.
fn refusals() -> Result<BTreeMap<i64, Vec<SeccompRule>>, SandboxError> {
    use policy::*;
    let mut rules = unconditional(REFUSED);
    let flags: Vec<u64> = NAMESPACE_FLAGS.iter().map(|&f| f as u64).collect();
    rules.insert(libc::SYS_clone, has_any_flag(0, &flags)?);
    rules.insert(libc::SYS_fadvise64, int_is_any(3, FADVISE_REFUSED)?);
    rules.insert(libc::SYS_madvise, int_is_any(2, MADVISE_REFUSED)?);
    rules.insert(libc::SYS_preadv2, has_any_flag(5, &[RWF_NOWAIT])?);
    rules.insert(libc::SYS_pwritev2, has_any_flag(5, &[RWF_NOWAIT])?);
    rules.insert(
        libc::SYS_personality,
        int_is_none_of(0, PERSONALITY_ALLOWED)?,
    );
    Ok(rules)
}

/// Compiles the whole filter.
pub(crate) fn build() -> Result<BpfProgram, SandboxError> {
    let families: Vec<u32> = policy::SOCKET_FAMILIES.iter().map(|&f| f as u32).collect();
    let mut other_family = BTreeMap::new();
    other_family.insert(libc::SYS_socket, int_is_none_of(0, &families)?);
    other_family.insert(libc::SYS_socketpair, int_is_none_of(0, &families)?);

    let mut prog = preamble();
    prog.extend(part(
        refusals()?,
        SeccompAction::Errno(libc::EPERM as u32),
        None,
    )?);
    prog.extend(part(
        other_family,
        SeccompAction::Errno(libc::EAFNOSUPPORT as u32),
        None,
    )?);
    prog.extend(part(
        unconditional(policy::ALLOWED),
        SeccompAction::Allow,
        Some(SeccompAction::Errno(libc::ENOSYS as u32)),
    )?);
    if prog.len() > MAX_INSNS {
        return Err(SandboxError::Seccomp {
            reason: format!("{} instructions, over the kernel's {MAX_INSNS}", prog.len()),
        });
    }
    Ok(prog)
}

#[cfg(test)]
mod tests;
