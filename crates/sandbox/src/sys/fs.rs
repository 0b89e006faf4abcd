//! Files, fds and mounts.

use std::ffi::CStr;
use std::os::raw::{c_int, c_uint, c_ulong, c_void};

use super::{check, check_int, errno, Errno};

/// `struct mount_attr` of `mount_setattr(2)`.
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// `MOUNT_ATTR_RDONLY`.
pub(crate) const MOUNT_ATTR_RDONLY: u64 = 0x1;
/// `MOUNT_ATTR_NOSUID`.
pub(crate) const MOUNT_ATTR_NOSUID: u64 = 0x2;
/// `MOUNT_ATTR_NODEV`.
pub(crate) const MOUNT_ATTR_NODEV: u64 = 0x4;

/// `mount(2)`.
pub(crate) fn mount(
    src: Option<&CStr>,
    target: &CStr,
    fstype: Option<&CStr>,
    flags: c_ulong,
    data: Option<&CStr>,
) -> Result<(), Errno> {
    let p = |s: Option<&CStr>| s.map_or(std::ptr::null(), |s| s.as_ptr());
    // SAFETY: all pointers are NUL-terminated strings or null, valid for the call.
    let r = unsafe {
        libc::mount(
            p(src),
            target.as_ptr(),
            p(fstype),
            flags,
            p(data) as *const c_void,
        )
    };
    check_int(r).map(drop)
}

/// `mount_setattr(AT_FDCWD, path, AT_RECURSIVE?, {attr_set})`.
pub(crate) fn mount_setattr(path: &CStr, recursive: bool, attr_set: u64) -> Result<(), Errno> {
    let attr = MountAttr {
        attr_set,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    let flags = if recursive { libc::AT_RECURSIVE } else { 0 };
    // SAFETY: path is NUL-terminated; attr is a valid mount_attr of the size passed.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            path.as_ptr(),
            flags as c_uint,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    check(r).map(drop)
}

/// `umount2(2)`.
pub(crate) fn umount2(target: &CStr, flags: c_int) -> Result<(), Errno> {
    // SAFETY: target is NUL-terminated.
    check_int(unsafe { libc::umount2(target.as_ptr(), flags) }).map(drop)
}

/// `pivot_root(new_root, put_old)`.
pub(crate) fn pivot_root(new_root: &CStr, put_old: &CStr) -> Result<(), Errno> {
    // SAFETY: both paths are NUL-terminated.
    let r = unsafe { libc::syscall(libc::SYS_pivot_root, new_root.as_ptr(), put_old.as_ptr()) };
    check(r).map(drop)
}

/// `chdir(2)`.
pub(crate) fn chdir(path: &CStr) -> Result<(), Errno> {
    // SAFETY: path is NUL-terminated.
    check_int(unsafe { libc::chdir(path.as_ptr()) }).map(drop)
}

/// `mkdir(2)`; an existing directory is not an error.
pub(crate) fn mkdir(path: &CStr, mode: u32) -> Result<(), Errno> {
    // SAFETY: path is NUL-terminated.
    match check_int(unsafe { libc::mkdir(path.as_ptr(), mode) }) {
        Err(libc::EEXIST) | Ok(_) => Ok(()),
        Err(e) => Err(e),
    }
}

/// `mknod(path, S_IFCHR | 0666, makedev(major, minor))` (then `chmod`, the umask may bite).
pub(crate) fn mknod_char(path: &CStr, major: u32, minor: u32) -> Result<(), Errno> {
    let dev = libc::makedev(major, minor);
    // SAFETY: path is NUL-terminated; plain syscalls.
    unsafe {
        check_int(libc::mknod(path.as_ptr(), libc::S_IFCHR | 0o666, dev))?;
        check_int(libc::chmod(path.as_ptr(), 0o666)).map(drop)
    }
}

/// `symlink(2)`.
pub(crate) fn symlink(target: &CStr, link: &CStr) -> Result<(), Errno> {
    // SAFETY: both paths are NUL-terminated.
    check_int(unsafe { libc::symlink(target.as_ptr(), link.as_ptr()) }).map(drop)
}

/// `open(2)`, always with `O_CLOEXEC`.
pub(crate) fn open(path: &CStr, flags: c_int, mode: u32) -> Result<c_int, Errno> {
    // SAFETY: path is NUL-terminated.
    check_int(unsafe { libc::open(path.as_ptr(), flags | libc::O_CLOEXEC, mode) })
}

/// `write(2)` of the whole buffer (retrying short writes and `EINTR`).
pub(crate) fn write_all(fd: c_int, mut buf: &[u8]) -> Result<(), Errno> {
    while !buf.is_empty() {
        // SAFETY: buf is valid for buf.len() bytes.
        let r = unsafe { libc::write(fd, buf.as_ptr() as *const c_void, buf.len()) };
        if r < 0 {
            let e = errno();
            if e == libc::EINTR {
                continue;
            }
            return Err(e);
        }
        buf = &buf[r as usize..];
    }
    Ok(())
}

/// `fchown(2)`.
pub(crate) fn fchown(fd: c_int, uid: u32, gid: u32) -> Result<(), Errno> {
    // SAFETY: plain syscall on an fd.
    check_int(unsafe { libc::fchown(fd, uid, gid) }).map(drop)
}

/// `close(2)`; errors are ignored (nothing useful can be done).
pub(crate) fn close(fd: c_int) {
    // SAFETY: closing an fd we own.
    unsafe { libc::close(fd) };
}

/// `fcntl(fd, F_DUPFD_CLOEXEC, min)`: a copy of `fd` numbered at least `min`.
pub(crate) fn dup_above(fd: c_int, min: c_int) -> Result<c_int, Errno> {
    // SAFETY: plain fcntl on an fd.
    check_int(unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, min) })
}

/// `dup3(2)` (or `fcntl(F_SETFD)` when `old == new`).
pub(crate) fn dup3(old: c_int, new: c_int, cloexec: bool) -> Result<(), Errno> {
    if old == new {
        let flags = if cloexec { libc::FD_CLOEXEC } else { 0 };
        // SAFETY: plain fcntl on an fd.
        return check_int(unsafe { libc::fcntl(new, libc::F_SETFD, flags) }).map(drop);
    }
    let flags = if cloexec { libc::O_CLOEXEC } else { 0 };
    // SAFETY: plain syscall on fds.
    check_int(unsafe { libc::dup3(old, new, flags) }).map(drop)
}

/// `close_range(first, ~0, 0)`.
pub(crate) fn close_from(first: c_uint) -> Result<(), Errno> {
    // SAFETY: closes fds only.
    check(unsafe { libc::syscall(libc::SYS_close_range, first, c_uint::MAX, 0) }).map(drop)
}

/// `MOUNT_ATTR_NOEXEC`.
pub(crate) const MOUNT_ATTR_NOEXEC: u64 = 0x8;

/// `unlink(2)`.
pub(crate) fn unlink(path: &CStr) -> Result<(), Errno> {
    // SAFETY: path is NUL-terminated.
    check_int(unsafe { libc::unlink(path.as_ptr()) }).map(drop)
}

/// The id of the mount `path` resolves to (`statx(STATX_MNT_ID)`, Linux ≥ 5.8; the ids of
/// `/proc/self/mountinfo`).
pub(crate) fn mount_id(path: &CStr) -> Result<u64, Errno> {
    // SAFETY: an all-zero statx is a valid out-buffer.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: path is NUL-terminated; stx is a valid statx buffer.
    check_int(unsafe {
        libc::statx(
            libc::AT_FDCWD,
            path.as_ptr(),
            0,
            libc::STATX_MNT_ID,
            &mut stx,
        )
    })?;
    if stx.stx_mask & libc::STATX_MNT_ID == 0 {
        return Err(libc::ENOSYS);
    }
    Ok(stx.stx_mnt_id)
}

/// Mounts the block device `major:minor` (file system `fstype`) at `target`, with the source
/// name `name` instead of the host's device path: in `dir`, `mknod name b major:minor`,
/// `mount(name, target, fstype, flags)` (the kernel records the string given as the mount's
/// source), `unlink name`. A device that is already mounted gets a new mount of the same
/// superblock. Changes the working directory to `dir`.
pub(crate) fn mount_device_as(
    dir: &CStr,
    name: &CStr,
    (major, minor): (u32, u32),
    fstype: &CStr,
    target: &CStr,
    flags: c_ulong,
) -> Result<(), Errno> {
    chdir(dir)?;
    let dev = libc::makedev(major, minor);
    // SAFETY: name is NUL-terminated; plain syscall.
    check_int(unsafe { libc::mknod(name.as_ptr(), libc::S_IFBLK | 0o600, dev) })?;
    let r = mount(Some(name), target, Some(fstype), flags, None);
    let _ = unlink(name);
    r
}
