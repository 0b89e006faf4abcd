//! The compiled program checked three ways: evaluated for every syscall number by a small
//! classic-BPF interpreter here, compared verdict for verdict with the same policy compiled as
//! a linear list by `seccompiler` (an independent compiler), and installed for real in a
//! forked child.

use std::collections::BTreeSet;

use seccompiler::{
    SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule,
    TargetArch,
};

use super::*;

const ALLOW: u32 = RET_ALLOW;

/// Runs `prog` on a `struct seccomp_data` and returns its verdict (panics on an instruction
/// the compiler is not expected to emit, or a jump out of the program).
fn eval(prog: &[sock_filter], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
    walk(prog, arch, nr, Some(args))
        .0
        .expect("every argument is known")
}

/// Follows `prog` for `nr` on `arch` and returns its verdict and the instructions it took.
/// Without `args` it walks as the kernel does when it builds its cache of allowed calls: the
/// number and arch known, nothing else; a load of an argument ends the walk with no verdict.
fn walk(prog: &[sock_filter], arch: u32, nr: u32, args: Option<[u64; 6]>) -> (Option<u32>, usize) {
    let mut data = [0u8; 64];
    data[0..4].copy_from_slice(&nr.to_le_bytes());
    data[4..8].copy_from_slice(&arch.to_le_bytes());
    for (i, a) in args.unwrap_or_default().iter().enumerate() {
        data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_le_bytes());
    }
    let (mut a, mut pc, mut steps) = (0u32, 0usize, 0);
    loop {
        let i = &prog[pc];
        let k = i.k;
        pc += 1;
        steps += 1;
        let jump = |taken: bool| usize::from(if taken { i.jt } else { i.jf });
        match i.code {
            0x20 if k != 0 && k != 4 && args.is_none() => return (None, steps),
            0x20 => {
                let o = k as usize;
                a = u32::from_le_bytes(data[o..o + 4].try_into().unwrap());
            }
            0x54 => a &= k,
            0x05 => pc += k as usize,
            0x15 => pc += jump(a == k),
            0x25 => pc += jump(a > k),
            0x35 => pc += jump(a >= k),
            0x45 => pc += jump(a & k != 0),
            0x06 => return (Some(k), steps),
            c => panic!("unexpected BPF code {c:#x} at {}", pc - 1),
        }
    }
}

fn x86(prog: &[sock_filter], nr: i64, args: [u64; 6]) -> u32 {
    eval(prog, AUDIT_ARCH_X86_64, nr as u32, args)
}

fn names(groups: &[(&str, &[Syscall])]) -> Vec<Syscall> {
    groups.iter().flat_map(|(_, c)| c.iter().copied()).collect()
}

#[test]
fn preamble_jumps_land_on_the_returns() {
    let p = preamble();
    // jf of insn 1 and jt of insn 3 reach the kill; jt of insn 4 reaches ENOSYS.
    assert_eq!(p[1 + 1 + p[1].jf as usize].k, RET_KILL_PROCESS);
    assert_eq!(p[3 + 1 + p[3].jt as usize].k, RET_KILL_PROCESS);
    assert_eq!(p[4 + 1 + p[4].jt as usize].k, ENOSYS);
    assert_eq!(5 + 1 + p[5].k as usize, p.len());
}

#[test]
fn lists_are_disjoint_without_duplicates() {
    let allowed = names(policy::ALLOWED);
    let refused = names(policy::REFUSED);
    let undone = names(policy::SUCCEED_UNDONE);
    let mut seen = BTreeSet::new();
    for (name, nr) in allowed.iter().chain(&refused).chain(&undone) {
        assert!(seen.insert(*nr), "{name} ({nr}) is listed twice");
        assert_ne!(*nr, libc::SYS_clone3, "clone3 belongs to the preamble");
    }
    // Every argument-checked call is allowed for the arguments that pass.
    let allowed: BTreeSet<i64> = allowed.iter().map(|c| c.1).collect();
    for (nr, v) in verdicts().unwrap() {
        if matches!(v, Verdict::Check { .. }) {
            assert!(allowed.contains(&i64::from(nr)), "{nr}");
        }
    }
}

#[test]
fn program_fits_and_every_jump_stays_inside() {
    let prog = build().unwrap();
    eprintln!("seccomp program: {} instructions", prog.len());
    assert!(prog.len() <= MAX_INSNS);
    for (i, insn) in prog.iter().enumerate() {
        let targets = match insn.code {
            0x05 => vec![insn.k as usize],
            0x15 | 0x25 | 0x35 | 0x45 => vec![insn.jt as usize, insn.jf as usize],
            _ => vec![],
        };
        for t in targets {
            assert!(i + 1 + t < prog.len(), "jump out of the program at {i}");
        }
    }
}

#[test]
fn every_number_gets_its_verdict() {
    let prog = build().unwrap();
    let allowed = allowed_syscalls();
    let refused: Vec<i64> = names(policy::REFUSED).iter().map(|c| c.1).collect();
    let undone: Vec<i64> = names(policy::SUCCEED_UNDONE).iter().map(|c| c.1).collect();
    for nr in 0..=1000i64 {
        let got = x86(&prog, nr, [0; 6]);
        let want = if nr == libc::SYS_socket || nr == libc::SYS_socketpair {
            EAFNOSUPPORT // family 0 (AF_UNSPEC)
        } else if allowed.contains(&nr) {
            ALLOW
        } else if refused.contains(&nr) {
            EPERM
        } else if undone.contains(&nr) {
            RET_ERRNO // 0 without the call
        } else {
            ENOSYS
        };
        assert_eq!(got, want, "syscall {nr}");
    }
    for nr in [0, 1, 59, 512, 545] {
        assert_eq!(
            x86(&prog, X32_SYSCALL_BIT as i64 | nr, [0; 6]),
            RET_KILL_PROCESS
        );
    }
    let i386 = 0x4000_0003;
    assert_eq!(eval(&prog, i386, 1, [0; 6]), RET_KILL_PROCESS);
    assert_eq!(x86(&prog, libc::SYS_clone3, [0; 6]), ENOSYS);
}

#[test]
fn argument_checks() {
    let prog = build().unwrap();
    let high = 1u64 << 32; // garbage in the upper half of an int argument
    let cases: &[(i64, [u64; 6], u32)] = &[
        (
            libc::SYS_clone,
            [libc::SIGCHLD as u64, 0, 0, 0, 0, 0],
            ALLOW,
        ),
        (libc::SYS_clone, [0x3d0f00, 0, 0, 0, 0, 0], ALLOW), // pthread_create
        (
            libc::SYS_clone,
            [libc::CLONE_NEWUSER as u64, 0, 0, 0, 0, 0],
            EPERM,
        ),
        (
            libc::SYS_clone,
            [libc::CLONE_NEWNET as u64 | 17, 0, 0, 0, 0, 0],
            EPERM,
        ),
        (
            libc::SYS_socket,
            [libc::AF_UNIX as u64, 1, 0, 0, 0, 0],
            ALLOW,
        ),
        (
            libc::SYS_socket,
            [libc::AF_INET as u64, 2, 0, 0, 0, 0],
            ALLOW,
        ),
        (
            libc::SYS_socket,
            [libc::AF_INET6 as u64, 1, 0, 0, 0, 0],
            ALLOW,
        ),
        (
            libc::SYS_socket,
            [high | libc::AF_INET as u64, 1, 0, 0, 0, 0],
            ALLOW,
        ),
        (
            libc::SYS_socket,
            [libc::AF_NETLINK as u64, 3, 0, 0, 0, 0],
            EAFNOSUPPORT,
        ),
        (
            libc::SYS_socket,
            [libc::AF_VSOCK as u64, 1, 0, 0, 0, 0],
            EAFNOSUPPORT,
        ),
        (
            libc::SYS_socket,
            [libc::AF_PACKET as u64, 3, 0, 0, 0, 0],
            EAFNOSUPPORT,
        ),
        (
            libc::SYS_socketpair,
            [libc::AF_UNIX as u64, 1, 0, 0, 0, 0],
            ALLOW,
        ),
        (libc::SYS_socketpair, [255, 1, 0, 0, 0, 0], EAFNOSUPPORT),
        (libc::SYS_fcntl, [3, 1026, 0x8000_0001, 0, 0, 0], EPERM), // F_NOTIFY
        (libc::SYS_fcntl, [3, high | 1026, 1, 0, 0, 0], EPERM),
        (libc::SYS_fcntl, [3, 4, 0o4000, 0, 0, 0], ALLOW), // F_SETFL
        (libc::SYS_fsync, [3, 0, 0, 0, 0, 0], RET_ERRNO),  // 0, not made
        (libc::SYS_fdatasync, [3, 0, 0, 0, 0, 0], RET_ERRNO),
        (libc::SYS_sync_file_range, [3, 0, 0, 2, 0, 0], RET_ERRNO),
        (libc::SYS_ioctl, [3, 0xc020_662a, 0, 0, 0, 0], EPERM), // EXT4_IOC_GET_ES_CACHE
        (libc::SYS_fadvise64, [3, 0, 0, 2, 0, 0], ALLOW),       // SEQUENTIAL
        (libc::SYS_fadvise64, [3, 0, 0, 4, 0, 0], EPERM),       // DONTNEED
        (libc::SYS_fadvise64, [3, 0, 0, high | 4, 0, 0], EPERM),
        (libc::SYS_fadvise64, [3, 0, 0, 5, 0, 0], EPERM), // NOREUSE
        (libc::SYS_madvise, [0, 4096, 4, 0, 0, 0], ALLOW), // DONTNEED
        (libc::SYS_madvise, [0, 4096, 14, 0, 0, 0], ALLOW), // HUGEPAGE
        (libc::SYS_madvise, [0, 4096, 20, 0, 0, 0], EPERM), // COLD
        (libc::SYS_madvise, [0, 4096, high | 21, 0, 0, 0], EPERM), // PAGEOUT
        (libc::SYS_preadv2, [3, 0, 1, 0, 0, 0], ALLOW),
        (libc::SYS_preadv2, [3, 0, 1, 0, 0, 0x1 | 0x10], ALLOW), // HIPRI | APPEND
        (libc::SYS_preadv2, [3, 0, 1, 0, 0, 0x8], EPERM),
        (libc::SYS_pwritev2, [3, 0, 1, 0, 0, 0x8 | 0x2], EPERM),
        (libc::SYS_personality, [0xffff_ffff, 0, 0, 0, 0, 0], ALLOW),
        (
            libc::SYS_personality,
            [high | 0xffff_ffff, 0, 0, 0, 0, 0],
            ALLOW,
        ),
        (libc::SYS_personality, [0, 0, 0, 0, 0, 0], ALLOW),
        (libc::SYS_personality, [6, 0, 0, 0, 0, 0], EPERM), // PER_BSD
        (libc::SYS_personality, [0x0040000, 0, 0, 0, 0, 0], EPERM), // ADDR_NO_RANDOMIZE
    ];
    for (nr, args, want) in cases {
        assert_eq!(x86(&prog, *nr, *args), *want, "syscall {nr} {args:x?}");
    }
}

/// The same policy compiled the way `seccompiler` compiles it: part 2 `EPERM` for the refused
/// calls and arguments, part 3 `EAFNOSUPPORT` for other socket families, part 4 the
/// allow-list, each a linear list of calls whose "no match" falls through to the next part.
fn linear_reference() -> BpfProgram {
    const FALL_THROUGH: SeccompAction = SeccompAction::Trace(0xfa11);
    let cond = |arg, len, op, value| SeccompCondition::new(arg, len, op, value).unwrap();
    let rule = |conds| SeccompRule::new(conds).unwrap();
    let int_is_any = |arg: u8, values: &[u32]| -> Vec<SeccompRule> {
        values
            .iter()
            .map(|&v| {
                rule(vec![cond(
                    arg,
                    SeccompCmpArgLen::Dword,
                    SeccompCmpOp::Eq,
                    u64::from(v),
                )])
            })
            .collect()
    };
    let int_is_none_of = |arg: u8, values: &[u32]| -> Vec<SeccompRule> {
        let conds = values
            .iter()
            .map(|&v| cond(arg, SeccompCmpArgLen::Dword, SeccompCmpOp::Ne, u64::from(v)))
            .collect();
        vec![rule(conds)]
    };
    let has_any_flag = |arg: u8, flags: &[u64]| -> Vec<SeccompRule> {
        flags
            .iter()
            .map(|&f| {
                rule(vec![cond(
                    arg,
                    SeccompCmpArgLen::Qword,
                    SeccompCmpOp::MaskedEq(f),
                    f,
                )])
            })
            .collect()
    };
    let unconditional = |groups: &[(&str, &[Syscall])]| -> BTreeMap<i64, Vec<SeccompRule>> {
        groups
            .iter()
            .flat_map(|(_, calls)| calls.iter().map(|&(_, nr)| (nr, Vec::new())))
            .collect()
    };
    let part = |rules, on_match, otherwise: Option<SeccompAction>| -> Vec<sock_filter> {
        let mismatch = otherwise.clone().unwrap_or(FALL_THROUGH);
        let filter = SeccompFilter::new(rules, mismatch, on_match, TargetArch::x86_64).unwrap();
        let mut prog: BpfProgram = filter.try_into().unwrap();
        if otherwise.is_none() {
            let fall = u32::from(FALL_THROUGH);
            let len = prog.len();
            for (i, insn) in prog.iter_mut().enumerate() {
                if insn.code == RET_K && insn.k == fall {
                    *insn = stmt(JA, (len - i - 1) as u32);
                }
            }
        }
        prog
    };
    use policy::*;
    let mut refused = unconditional(REFUSED);
    let flags: Vec<u64> = NAMESPACE_FLAGS.iter().map(|&f| f as u64).collect();
    refused.insert(libc::SYS_clone, has_any_flag(0, &flags));
    refused.insert(libc::SYS_fcntl, int_is_any(1, FCNTL_REFUSED));
    refused.insert(libc::SYS_fadvise64, int_is_any(3, FADVISE_REFUSED));
    refused.insert(libc::SYS_madvise, int_is_any(2, MADVISE_REFUSED));
    refused.insert(libc::SYS_ioctl, int_is_any(1, IOCTL_REFUSED));
    refused.insert(libc::SYS_preadv2, has_any_flag(5, &[RWF_NOWAIT]));
    refused.insert(libc::SYS_pwritev2, has_any_flag(5, &[RWF_NOWAIT]));
    refused.insert(
        libc::SYS_personality,
        int_is_none_of(0, PERSONALITY_ALLOWED),
    );
    let mut other_family = BTreeMap::new();
    other_family.insert(libc::SYS_socket, int_is_none_of(0, SOCKET_FAMILIES));
    other_family.insert(libc::SYS_socketpair, int_is_none_of(0, SOCKET_FAMILIES));

    let mut prog = preamble();
    prog.extend(part(
        refused,
        SeccompAction::Errno(libc::EPERM as u32),
        None,
    ));
    prog.extend(part(
        unconditional(SUCCEED_UNDONE),
        SeccompAction::Errno(0),
        None,
    ));
    prog.extend(part(
        other_family,
        SeccompAction::Errno(libc::EAFNOSUPPORT as u32),
        None,
    ));
    prog.extend(part(
        unconditional(ALLOWED),
        SeccompAction::Allow,
        Some(SeccompAction::Errno(libc::ENOSYS as u32)),
    ));
    prog
}

/// Every number gets the linear compilation's verdict: with every argument 0 and all ones;
/// the argument-checked calls (and their neighbours) with every policy value, plus garbage in
/// the upper half, in every argument position.
#[test]
fn search_matches_the_linear_compilation() {
    let (tree, linear) = (build().unwrap(), linear_reference());
    eprintln!(
        "search {} instructions, linear {}",
        tree.len(),
        linear.len()
    );
    let mut values: Vec<u64> = [0, 1, 17, 0x3d0f00, 0xffff_ffff, u64::MAX, 1 << 32]
        .into_iter()
        .chain(policy::SOCKET_FAMILIES.iter().map(|&v| u64::from(v)))
        .chain(policy::FADVISE_REFUSED.iter().map(|&v| u64::from(v)))
        .chain(policy::MADVISE_REFUSED.iter().map(|&v| u64::from(v)))
        .chain(policy::IOCTL_REFUSED.iter().map(|&v| u64::from(v)))
        .chain(policy::FCNTL_REFUSED.iter().map(|&v| u64::from(v)))
        .chain(policy::PERSONALITY_ALLOWED.iter().map(|&v| u64::from(v)))
        .chain(policy::NAMESPACE_FLAGS.iter().map(|&v| v as u32 as u64))
        .chain([policy::RWF_NOWAIT, 2, 4, 5, 6, 20, 21, 40, 255])
        .collect();
    values.extend(values.clone().iter().map(|v| v | 0xdead_0000_0000_0000));
    let checked: BTreeSet<u32> = verdicts()
        .unwrap()
        .into_iter()
        .filter(|(_, v)| matches!(v, Verdict::Check { .. }))
        .flat_map(|(nr, _)| [nr.saturating_sub(1), nr, nr + 1])
        .collect();
    let mut compared = 0;
    for arch in [AUDIT_ARCH_X86_64, 0x4000_0003] {
        for nr in (0..=1100u32).chain([X32_SYSCALL_BIT, X32_SYSCALL_BIT | 1, u32::MAX]) {
            let mut argvs = vec![[0u64; 6], [u64::MAX; 6]];
            if checked.contains(&nr) {
                for pos in 0..6 {
                    for &v in &values {
                        let mut args = [0u64; 6];
                        args[pos] = v;
                        argvs.push(args);
                    }
                }
            }
            for args in argvs {
                let (t, l) = (eval(&tree, arch, nr, args), eval(&linear, arch, nr, args));
                assert_eq!(t, l, "arch {arch:#x} nr {nr} args {args:x?}");
                compared += 1;
            }
        }
    }
    assert!(compared > 4000, "{compared}");
}

/// The kernel's set-up walk (`seccomp_cache_prepare`) follows the program for every number
/// with only the number known: the search must reach a verdict (or an argument load) in a few
/// steps, and every unconditionally allowed call must reach `ALLOW` that way, so the kernel
/// caches it and never runs the program for it.
#[test]
fn the_kernel_cache_walk_is_short_and_caches_every_allowed_call() {
    let prog = build().unwrap();
    let allowed: BTreeSet<u32> = verdicts()
        .unwrap()
        .into_iter()
        .filter(|(_, v)| *v == Verdict::Ret(RET_ALLOW))
        .map(|(nr, _)| nr)
        .collect();
    let mut longest = 0;
    for nr in 0..=1100u32 {
        let (verdict, steps) = walk(&prog, AUDIT_ARCH_X86_64, nr, None);
        let cached = verdict == Some(RET_ALLOW);
        assert_eq!(cached, allowed.contains(&nr), "nr {nr}");
        longest = longest.max(steps);
    }
    eprintln!("longest set-up walk: {longest} instructions");
    assert!(longest <= 32, "{longest}");
}

/// Installs the filter in a forked child and checks what the kernel makes of it there.
#[test]
fn filter_works_in_a_forked_child() {
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
            let call = |nr: i64, a0: i64, a1: i64| {
                // SAFETY: raw syscalls with integer arguments only (no pointers to write).
                let r = unsafe { libc::syscall(nr, a0, a1, 0, 0, 0, 0) };
                // SAFETY: reading this thread's errno.
                (r, unsafe { *libc::__errno_location() })
            };
            let expect = [
                (libc::SYS_clone3, 0, 0, libc::ENOSYS),
                (libc::SYS_ptrace, 0, 0, libc::EPERM),
                (libc::SYS_sysfs, 1, 0, libc::ENOSYS),
                (
                    libc::SYS_socket,
                    libc::AF_NETLINK as i64,
                    3,
                    libc::EAFNOSUPPORT,
                ),
            ];
            for (i, (nr, a0, a1, errno)) in expect.into_iter().enumerate() {
                if call(nr, a0, a1) != (-1, errno) {
                    return 20 + i as i32;
                }
            }
            if call(libc::SYS_getpid, 0, 0).0 <= 0 {
                return 30;
            }
            0
        })();
        crate::sys::exit_now(code);
    }
    let (code, sig) = crate::sys::wait_pid(pid).unwrap();
    assert_eq!((code, sig), (Some(0), None));
}
