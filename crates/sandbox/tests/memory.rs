//! The jail's first process shares the supervisor's memory until its `execveat` of the init
//! (`CLONE_VM | CLONE_VFORK`, x86-64): building a jail copies nothing of the supervisor's
//! address space, so the supervisor's threads take no copy-on-write fault afterwards on
//! pages they had written before (a fork-like clone makes every one of them copy-on-write).

mod common;

use common::*;

/// Pages of the buffer written before and after a run.
const PAGES: usize = 1024;
const PAGE: usize = 4096;

/// Minor page faults of the calling thread so far.
fn minor_faults() -> i64 {
    // SAFETY: getrusage fills the zeroed struct we pass; RUSAGE_THREAD is this thread.
    unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::getrusage(libc::RUSAGE_THREAD, &mut ru), 0);
        ru.ru_minflt
    }
}

/// Writes one byte in every page of `buf`.
fn write_every_page(buf: *mut u8, round: u8) {
    for page in 0..PAGES {
        // SAFETY: `buf` maps PAGES * PAGE writable bytes.
        unsafe { std::ptr::write_volatile(buf.add(page * PAGE), round) };
    }
}

#[cfg(target_arch = "x86_64")]
#[test]
fn building_a_jail_leaves_the_supervisors_memory_as_it_was() {
    let len = PAGES * PAGE;
    // SAFETY: a fresh private anonymous mapping, unmapped at the end of the test.
    let buf = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert_ne!(buf, libc::MAP_FAILED);
    // Small pages only, so that one fault is one page on every kernel configuration.
    // SAFETY: advice on the mapping made above.
    unsafe { libc::madvise(buf, len, libc::MADV_NOHUGEPAGE) };
    let buf = buf as *mut u8;
    write_every_page(buf, 1);
    // The common sandbox is cold: this run's jail is cloned from this very thread.
    let o = run(&py("print('ok')"));
    assert_eq!(out(&o), "ok", "{o:?}");
    let before = minor_faults();
    write_every_page(buf, 2);
    let faults = minor_faults() - before;
    // SAFETY: the mapping made above, no longer used.
    unsafe { libc::munmap(buf as *mut libc::c_void, len) };
    assert!(
        faults < (PAGES / 10) as i64,
        "{faults} page faults writing {PAGES} pages written before the jail's clone: \
         the clone made the supervisor's memory copy-on-write"
    );
}
