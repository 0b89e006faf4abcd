//! The seccomp filter: what namespaces do not cover, compiled once with `seccompiler`.
//!
//! A hand-written preamble kills the process on a foreign architecture or an x32 syscall
//! number, and makes `clone3` fail with `ENOSYS` (its flags live in memory a filter cannot read,
//! so libc falls back to `clone`, whose flags are checked). `seccompiler` then compiles the
//! deny list: each entry returns `EPERM`; `clone` only when it asks for a new namespace.

use std::collections::BTreeMap;

use seccompiler::{
    sock_filter, BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition,
    SeccompFilter, SeccompRule, TargetArch,
};

use crate::SandboxError;

/// Syscalls denied outright with `EPERM`.
pub(crate) const DENIED: &[(&str, i64)] = &[
    ("mount", libc::SYS_mount),
    ("umount2", libc::SYS_umount2),
    ("pivot_root", libc::SYS_pivot_root),
    ("chroot", libc::SYS_chroot),
    ("move_mount", libc::SYS_move_mount),
    ("open_tree", libc::SYS_open_tree),
    ("fsopen", libc::SYS_fsopen),
    ("fsconfig", libc::SYS_fsconfig),
    ("fsmount", libc::SYS_fsmount),
    ("fspick", libc::SYS_fspick),
    ("mount_setattr", libc::SYS_mount_setattr),
    ("unshare", libc::SYS_unshare),
    ("setns", libc::SYS_setns),
    ("ptrace", libc::SYS_ptrace),
    ("process_vm_readv", libc::SYS_process_vm_readv),
    ("process_vm_writev", libc::SYS_process_vm_writev),
    ("kcmp", libc::SYS_kcmp),
    ("pidfd_getfd", libc::SYS_pidfd_getfd),
    ("keyctl", libc::SYS_keyctl),
    ("add_key", libc::SYS_add_key),
    ("request_key", libc::SYS_request_key),
    ("bpf", libc::SYS_bpf),
    ("perf_event_open", libc::SYS_perf_event_open),
    ("io_uring_setup", libc::SYS_io_uring_setup),
    ("io_uring_enter", libc::SYS_io_uring_enter),
    ("io_uring_register", libc::SYS_io_uring_register),
    ("kexec_load", libc::SYS_kexec_load),
    ("kexec_file_load", libc::SYS_kexec_file_load),
    ("init_module", libc::SYS_init_module),
    ("finit_module", libc::SYS_finit_module),
    ("delete_module", libc::SYS_delete_module),
    ("reboot", libc::SYS_reboot),
    ("swapon", libc::SYS_swapon),
    ("swapoff", libc::SYS_swapoff),
    ("open_by_handle_at", libc::SYS_open_by_handle_at),
    ("name_to_handle_at", libc::SYS_name_to_handle_at),
    ("userfaultfd", libc::SYS_userfaultfd),
    ("acct", libc::SYS_acct),
    ("quotactl", libc::SYS_quotactl),
    ("syslog", libc::SYS_syslog),
    ("lookup_dcookie", libc::SYS_lookup_dcookie),
    ("vhangup", libc::SYS_vhangup),
    ("iopl", libc::SYS_iopl),
    ("ioperm", libc::SYS_ioperm),
    ("settimeofday", libc::SYS_settimeofday),
    ("clock_settime", libc::SYS_clock_settime),
    ("clock_adjtime", libc::SYS_clock_adjtime),
    ("adjtimex", libc::SYS_adjtimex),
];

/// `clone` flags that create namespaces; `clone` with any of them gets `EPERM`.
const NAMESPACE_FLAGS: &[i32] = &[
    libc::CLONE_NEWUSER,
    libc::CLONE_NEWNS,
    libc::CLONE_NEWPID,
    libc::CLONE_NEWNET,
    libc::CLONE_NEWIPC,
    libc::CLONE_NEWUTS,
    libc::CLONE_NEWCGROUP,
];

const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const X32_SYSCALL_BIT: u32 = 0x4000_0000;
const RET_KILL_PROCESS: u32 = 0x8000_0000;
const RET_ERRNO: u32 = 0x0005_0000;

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

/// The preamble described in the module docs (8 instructions).
fn preamble() -> Vec<sock_filter> {
    const LD_W_ABS: u16 = 0x20;
    const JEQ_K: u16 = 0x15;
    const JGE_K: u16 = 0x35;
    const JA: u16 = 0x05;
    const RET_K: u16 = 0x06;
    vec![
        stmt(LD_W_ABS, 4),                            // 0: A = arch
        jump(JEQ_K, AUDIT_ARCH_X86_64, 0, 4),         // 1: foreign arch -> 6
        stmt(LD_W_ABS, 0),                            // 2: A = nr
        jump(JGE_K, X32_SYSCALL_BIT, 2, 0),           // 3: x32 -> 6
        jump(JEQ_K, libc::SYS_clone3 as u32, 2, 0),   // 4: clone3 -> 7
        stmt(JA, 2),                                  // 5: -> 8 (compiled filter)
        stmt(RET_K, RET_KILL_PROCESS),                // 6
        stmt(RET_K, RET_ERRNO | libc::ENOSYS as u32), // 7
    ]
}

/// Compiles the whole filter.
pub(crate) fn build() -> Result<BpfProgram, SandboxError> {
    let err = |e: &dyn std::fmt::Display| SandboxError::Seccomp {
        reason: e.to_string(),
    };
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> =
        DENIED.iter().map(|&(_, nr)| (nr, Vec::new())).collect();
    let mut clone_rules = Vec::new();
    for &flag in NAMESPACE_FLAGS {
        let cond = SeccompCondition::new(
            0,
            SeccompCmpArgLen::Qword,
            SeccompCmpOp::MaskedEq(flag as u64),
            flag as u64,
        )
        .map_err(|e| err(&e))?;
        clone_rules.push(SeccompRule::new(vec![cond]).map_err(|e| err(&e))?);
    }
    rules.insert(libc::SYS_clone, clone_rules);
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        TargetArch::x86_64,
    )
    .map_err(|e| err(&e))?;
    let compiled: BpfProgram = filter
        .try_into()
        .map_err(|e: seccompiler::BackendError| err(&e))?;
    let mut prog = preamble();
    prog.extend(compiled);
    Ok(prog)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preamble_jumps_land_on_the_returns() {
        let p = preamble();
        // jf of insn 1 and jt of insn 3 reach the kill; jt of insn 4 reaches ENOSYS.
        assert_eq!(p[1 + 1 + p[1].jf as usize].k, RET_KILL_PROCESS);
        assert_eq!(p[3 + 1 + p[3].jt as usize].k, RET_KILL_PROCESS);
        assert_eq!(
            p[4 + 1 + p[4].jt as usize].k,
            RET_ERRNO | libc::ENOSYS as u32
        );
        assert_eq!(5 + 1 + p[5].k as usize, p.len());
    }

    #[test]
    fn filter_compiles() {
        let prog = build().unwrap();
        assert!(prog.len() > preamble().len() + DENIED.len());
        assert!(
            prog.len() < 4096,
            "BPF programs are capped at 4096 instructions"
        );
    }

    /// Installs the filter in a forked child and checks what it denies there.
    #[test]
    fn filter_denies_in_a_forked_child() {
        let prog = build().unwrap();
        // SAFETY: the child only makes raw syscalls and exits with _exit.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let code = (|| {
                if crate::sys::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0).is_err()
                    || crate::sys::seccomp_filter(&prog).is_err()
                {
                    return 10;
                }
                if crate::sys::unshare(libc::CLONE_NEWUSER) != Err(libc::EPERM) {
                    return 11;
                }
                if crate::sys::mount(None, c"/", None, 0, None) != Err(libc::EPERM) {
                    return 12;
                }
                // SAFETY: raw syscalls with no pointers the kernel may write through.
                let (clone3, ptrace, getpid) = unsafe {
                    (
                        libc::syscall(libc::SYS_clone3, 0usize, 0usize),
                        libc::syscall(libc::SYS_ptrace, 0, 0, 0, 0),
                        libc::syscall(libc::SYS_getpid),
                    )
                };
                // SAFETY: reading this thread's errno.
                let e = unsafe { *libc::__errno_location() };
                if clone3 != -1 || ptrace != -1 || e != libc::EPERM || getpid <= 0 {
                    return 13;
                }
                0
            })();
            crate::sys::exit_now(code);
        }
        let (code, sig) = crate::sys::wait_pid(pid).unwrap();
        assert_eq!((code, sig), (Some(0), None));
    }
}
