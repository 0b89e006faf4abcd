//! The compiled program checked two ways: evaluated for every syscall number by a small
//! classic-BPF interpreter here, and installed for real in a forked child.

use std::collections::BTreeSet;

use super::*;

const ALLOW: u32 = 0x7fff_0000;
const EPERM: u32 = RET_ERRNO | libc::EPERM as u32;
const ENOSYS: u32 = RET_ERRNO | libc::ENOSYS as u32;
const EAFNOSUPPORT: u32 = RET_ERRNO | libc::EAFNOSUPPORT as u32;

/// Runs `prog` on a `struct seccomp_data` and returns its verdict (panics on an instruction
/// the compiler is not expected to emit, or a jump out of the program).
fn eval(prog: &[sock_filter], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
    let mut data = [0u8; 64];
    data[0..4].copy_from_slice(&nr.to_le_bytes());
    data[4..8].copy_from_slice(&arch.to_le_bytes());
    for (i, a) in args.iter().enumerate() {
        data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_le_bytes());
    }
    let (mut a, mut pc) = (0u32, 0usize);
    loop {
        let i = &prog[pc];
        let k = i.k;
        pc += 1;
        let jump = |taken: bool| usize::from(if taken { i.jt } else { i.jf });
        match i.code {
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
            0x06 => return k,
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
    let mut seen = BTreeSet::new();
    for (name, nr) in allowed.iter().chain(&refused) {
        assert!(seen.insert(*nr), "{name} ({nr}) is listed twice");
        assert_ne!(*nr, libc::SYS_clone3, "clone3 belongs to the preamble");
    }
    // Every argument-checked call is allowed for the arguments that pass.
    let allowed: BTreeSet<i64> = allowed.iter().map(|c| c.1).collect();
    for nr in refusals().unwrap().keys().chain(&[libc::SYS_socket]) {
        let refused_outright = refused.iter().any(|c| c.1 == *nr);
        assert!(refused_outright || allowed.contains(nr), "{nr}");
    }
}

#[test]
fn program_fits_and_every_jump_stays_inside() {
    let prog = build().unwrap();
    eprintln!("seccomp program: {} instructions", prog.len());
    assert!(prog.len() <= MAX_INSNS);
    for (i, insn) in prog.iter().enumerate() {
        assert!(
            !(insn.code == RET_K && insn.k == u32::from(FALL_THROUGH)),
            "fall-through left at {i}"
        );
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
    for nr in 0..=1000i64 {
        let got = x86(&prog, nr, [0; 6]);
        let want = if nr == libc::SYS_socket || nr == libc::SYS_socketpair {
            EAFNOSUPPORT // family 0 (AF_UNSPEC)
        } else if allowed.contains(&nr) {
            ALLOW
        } else if refused.contains(&nr) {
            EPERM
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
        (libc::SYS_fadvise64, [3, 0, 0, 2, 0, 0], ALLOW), // SEQUENTIAL
        (libc::SYS_fadvise64, [3, 0, 0, 4, 0, 0], EPERM), // DONTNEED
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
