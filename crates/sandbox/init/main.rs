//! The jail's init as a standalone static executable, built by `build.rs` and embedded in the
//! library. The protocol (fds, status records, the go message) is `src/init.rs`; this file is
//! the program: `#![no_std]`, no C library, no Rust runtime start-up, raw system calls only
//! (x86-64 Linux), so that its start costs an `execve` of a few kilobytes and nothing else.
//! What it does is listed in `src/init.rs`.
#![no_std]
#![no_main]

#[path = "../src/init.rs"]
mod init;

use core::arch::{asm, naked_asm};
use core::ptr;
use init::{EXIT_FD, GO_FD, MAX_GO_BYTES, STATUS_FD, STEP_EXEC, STEP_FORK, STEP_GO, STEP_READY};

const SYS_READ: usize = 0;
const SYS_WRITE: usize = 1;
const SYS_CLOSE: usize = 3;
const SYS_MMAP: usize = 9;
const SYS_CLONE: usize = 56;
const SYS_EXECVE: usize = 59;
const SYS_WAIT4: usize = 61;
const SYS_FCNTL: usize = 72;
const SYS_PRCTL: usize = 157;
const SYS_EXIT_GROUP: usize = 231;

const EINTR: isize = 4;
const E2BIG: i32 = 7;
const EINVAL: i32 = 22;
const ENOMEM: i32 = 12;
const F_SETFD: usize = 2;
const FD_CLOEXEC: usize = 1;
const PR_SET_DUMPABLE: usize = 4;
const PR_SET_NAME: usize = 15;
const WALL: usize = 0x4000_0000;
const SIGCHLD: usize = 17;
const PROT_READ_WRITE: usize = 0x1 | 0x2;
const MAP_PRIVATE_ANONYMOUS_NORESERVE: usize = 0x02 | 0x20 | 0x4000;

/// A raw system call with up to six arguments; returns the kernel's result (`-errno` on
/// failure).
///
/// # Safety
/// The arguments must be valid for system call `nr` (pointers to memory of the size it
/// reads or writes).
unsafe fn syscall(nr: usize, a: [usize; 6]) -> isize {
    let ret: isize;
    // SAFETY: the x86-64 Linux system call convention: number in rax, arguments in rdi, rsi,
    // rdx, r10, r8, r9; the kernel clobbers rcx and r11 and returns in rax. The caller vouches for
    // the arguments.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") nr as isize => ret,
            in("rdi") a[0],
            in("rsi") a[1],
            in("rdx") a[2],
            in("r10") a[3],
            in("r8") a[4],
            in("r9") a[5],
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

/// A system call whose arguments are plain numbers (fds, flags, codes).
fn call(nr: usize, a: [usize; 6]) -> isize {
    // SAFETY: used only for calls that take no pointers (close, fcntl F_SETFD, prctl
    // PR_SET_DUMPABLE, clone without pointers, exit_group).
    unsafe { syscall(nr, a) }
}

fn exit(code: i32) -> ! {
    call(SYS_EXIT_GROUP, [code as usize, 0, 0, 0, 0, 0]);
    // SAFETY: exit_group does not return.
    unsafe { core::hint::unreachable_unchecked() }
}

fn close(fd: i32) {
    call(SYS_CLOSE, [fd as usize, 0, 0, 0, 0, 0]);
}

fn write_all(fd: i32, mut buf: &[u8]) {
    while !buf.is_empty() {
        // SAFETY: buf is valid for reads of buf.len() bytes.
        let r = unsafe {
            syscall(
                SYS_WRITE,
                [fd as usize, buf.as_ptr() as usize, buf.len(), 0, 0, 0],
            )
        };
        if r == -EINTR {
            continue;
        }
        if r <= 0 {
            return;
        }
        buf = &buf[r as usize..];
    }
}

/// Reports `(step, errno)` on the status pipe and exits with 127.
fn fail(step: u32, errno: i32) -> ! {
    write_all(STATUS_FD, &init::record(step, errno));
    exit(127)
}

/// `len` bytes of fresh zeroed memory (anonymous, reserved lazily), or `None`.
fn alloc(len: usize) -> Option<&'static mut [u8]> {
    // SAFETY: an anonymous private mapping: no pointer is passed to the kernel.
    let p = unsafe {
        syscall(
            SYS_MMAP,
            [
                0,
                len.max(1),
                PROT_READ_WRITE,
                MAP_PRIVATE_ANONYMOUS_NORESERVE,
                usize::MAX,
                0,
            ],
        )
    };
    if p < 0 {
        return None;
    }
    // SAFETY: the kernel mapped `len` writable bytes at `p`, owned by nothing else, for the
    // life of the process.
    Some(unsafe { core::slice::from_raw_parts_mut(p as *mut u8, len) })
}

/// Entry point: the stack aligned, then [`main`] (there is no C runtime to do it).
#[unsafe(naked)]
#[no_mangle]
pub extern "C" fn _start() -> ! {
    naked_asm!("xor ebp, ebp", "and rsp, -16", "call {main}", "ud2", main = sym main)
}

extern "C" fn main() -> ! {
    call(SYS_PRCTL, [PR_SET_DUMPABLE, 0, 0, 0, 0, 0]);
    let name = c"livexec-init";
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes.
    unsafe { syscall(SYS_PRCTL, [PR_SET_NAME, name.as_ptr() as usize, 0, 0, 0, 0]) };
    write_all(STATUS_FD, &init::record(STEP_READY, 0));

    // The go message, read to EOF into one buffer (pages are only touched as they fill).
    let Some(buf) = alloc(MAX_GO_BYTES + 1) else {
        fail(STEP_GO, ENOMEM)
    };
    let mut len = 0;
    loop {
        let room = &mut buf[len..];
        // SAFETY: room is valid for writes of room.len() bytes.
        let r = unsafe {
            syscall(
                SYS_READ,
                [
                    GO_FD as usize,
                    room.as_mut_ptr() as usize,
                    room.len(),
                    0,
                    0,
                    0,
                ],
            )
        };
        match r {
            0 => break,
            r if r > 0 => len += r as usize,
            r if r == -EINTR => {}
            r => fail(STEP_GO, -r as i32),
        }
        if len > MAX_GO_BYTES {
            fail(STEP_GO, E2BIG);
        }
    }
    close(GO_FD);
    if len == 0 {
        // The supervisor dropped this sandbox unused.
        exit(0);
    }
    let Some(go) = init::decode(&buf[..len]) else {
        fail(STEP_GO, EINVAL)
    };
    // argv and envp: pointers into the message, whose strings each end in a NUL there.
    let slots = go.argc + go.envc + 2;
    let Some(table) = alloc(slots * core::mem::size_of::<*const u8>()) else {
        fail(STEP_GO, ENOMEM)
    };
    // SAFETY: the mapping is page-aligned and `slots` pointers long.
    let table =
        unsafe { core::slice::from_raw_parts_mut(table.as_mut_ptr().cast::<*const u8>(), slots) };
    let mut strings = go.strings();
    let program = strings.next().unwrap_or_default().as_ptr();
    let mut at = 0;
    for (i, s) in strings.enumerate() {
        if i == go.argc {
            table[at] = ptr::null(); // end of argv
            at += 1;
        }
        table[at] = s.as_ptr();
        at += 1;
    }
    if go.envc == 0 {
        table[at] = ptr::null();
        at += 1;
    }
    table[at] = ptr::null(); // end of envp
    let argv = table.as_ptr();
    // SAFETY: argc + 1 <= slots.
    let envp = unsafe { argv.add(go.argc + 1) };

    // fork: clone with only SIGCHLD, no shared memory, no stack given.
    let pid = call(SYS_CLONE, [SIGCHLD, 0, 0, 0, 0, 0]);
    if pid < 0 {
        fail(STEP_FORK, -pid as i32);
    }
    if pid == 0 {
        close(EXIT_FD);
        call(
            SYS_FCNTL,
            [STATUS_FD as usize, F_SETFD, FD_CLOEXEC, 0, 0, 0],
        );
        // SAFETY: program, argv and envp point to NUL-terminated strings and NULL-terminated
        // pointer arrays in memory that lives until the call returns (only on failure).
        let r = unsafe {
            syscall(
                SYS_EXECVE,
                [program as usize, argv as usize, envp as usize, 0, 0, 0],
            )
        };
        fail(STEP_EXEC, -r as i32);
    }
    for fd in [0, 1, 2, STATUS_FD] {
        close(fd);
    }
    loop {
        let mut status: i32 = 0;
        // SAFETY: status is a valid out-pointer; no rusage is asked for.
        let r = unsafe {
            syscall(
                SYS_WAIT4,
                [usize::MAX, &mut status as *mut i32 as usize, WALL, 0, 0, 0],
            )
        };
        if r == pid {
            write_all(EXIT_FD, &status.to_le_bytes());
            exit(0);
        }
        if r < 0 && r != -EINTR {
            exit(1);
        }
    }
}

// The memory routines the compiler may call (slice copies and comparisons, zeroed arrays);
// there is no C library to provide them.

/// `memcpy`: `n` bytes from `src` to `dst` (the regions do not overlap).
///
/// # Safety
/// `src` valid for reads and `dst` for writes of `n` bytes.
#[no_mangle]
pub unsafe extern "C" fn memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: `rep movsb` copies rcx bytes from [rsi] to [rdi], forwards (the direction flag
    // is clear by the ABI); the caller vouches for both regions.
    unsafe {
        asm!(
            "rep movsb",
            inout("rcx") n => _,
            inout("rdi") dst => _,
            inout("rsi") src => _,
            options(nostack, preserves_flags),
        );
    }
    dst
}

/// `memset`: `n` bytes at `dst` set to `c`.
///
/// # Safety
/// `dst` valid for writes of `n` bytes.
#[no_mangle]
pub unsafe extern "C" fn memset(dst: *mut u8, c: i32, n: usize) -> *mut u8 {
    // SAFETY: `rep stosb` stores al into rcx bytes at [rdi], forwards; the caller vouches for
    // the region.
    unsafe {
        asm!(
            "rep stosb",
            inout("rcx") n => _,
            inout("rdi") dst => _,
            in("al") c as u8,
            options(nostack, preserves_flags),
        );
    }
    dst
}

/// `memcmp`: the first differing byte of `a` and `b` within `n` bytes, as a difference.
///
/// # Safety
/// `a` and `b` valid for reads of `n` bytes.
#[no_mangle]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    for i in 0..n {
        // SAFETY: i < n, within both regions the caller vouches for.
        let (x, y) = unsafe { (*a.add(i), *b.add(i)) };
        if x != y {
            return i32::from(x) - i32::from(y);
        }
    }
    0
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    exit(126)
}
