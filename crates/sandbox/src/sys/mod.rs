//! Every raw syscall of the crate, in one place.
//!
//! Functions here are safe to call in the child between `clone` and `execve`: they never
//! allocate, lock or panic; they return the raw `errno` on failure ([`Errno`]). The caller (the
//! plan executor in the child, or the supervisor) attaches the call's name and arguments to the
//! error: the child through the step description of its plan, the supervisor through
//! [`crate::SandboxError::Syscall`].

use std::os::raw::{c_int, c_long};

mod fs;
mod process;
mod security;

pub(crate) use fs::*;
pub(crate) use process::*;
pub(crate) use security::*;

/// A raw OS error number.
pub(crate) type Errno = i32;

pub(super) fn errno() -> Errno {
    // SAFETY: __errno_location always returns a valid pointer to this thread's errno.
    unsafe { *libc::__errno_location() }
}

pub(super) fn check(ret: c_long) -> Result<c_long, Errno> {
    if ret < 0 {
        Err(errno())
    } else {
        Ok(ret)
    }
}

pub(super) fn check_int(ret: c_int) -> Result<c_int, Errno> {
    if ret < 0 {
        Err(errno())
    } else {
        Ok(ret)
    }
}
