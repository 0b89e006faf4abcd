//! Files into and out of a run's working directory: the command's files and artifacts are
//! written before the program starts ([`write_files`]); files are got out of a run
//! ([`crate::Command::collect`]) like this: the supervisor opens the jail's
//! `/work` through `/proc/<init>/root/work` before the program starts and, once it has ended,
//! reads the regular files whose names match through that open directory. The open directory
//! keeps the tmpfs alive even when the jail's mount namespace is already gone, and nothing is
//! ever resolved through a path the program controls: names are plain (no `/`), the last
//! component is opened with `O_NOFOLLOW | O_NONBLOCK` and only regular files are read.

use std::fs;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::{Command, SandboxError};

/// The most files one run hands back.
pub const MAX_FILES: usize = 1024;

/// Files read back: `(name, contents)`.
type Files = Vec<(String, Vec<u8>)>;

/// Writes the command's files into the `/work` of the jail whose init is `pid` (through
/// `/proc/<init>/root`, as root; nothing in the jail runs yet), owned by the run's uid, and
/// its artifacts, owned by root, mode 0555.
///
/// The writing is done by a short-lived thread with an fd table of its own
/// (`unshare(CLONE_FILES)`, every inherited fd above stderr closed), so a file being written
/// is never open in the table that a jail's `clone3` copies. Were it there, the new child
/// would hold it open for writing until its first step closes what it does not need, and an
/// `execve` of that artifact by its own run at that moment (test cases side by side, the warm
/// pool refilling beside a run) would fail with `ETXTBSY`. A lock between writes and clones
/// did that job before, at the price of a run waiting for a whole jail's set-up (~1.5 ms)
/// whenever the pool was refilling.
pub(crate) fn write_files(pid: i32, cmd: &Command, uid: u32) -> Result<(), SandboxError> {
    if cmd.files.is_empty() && cmd.artifacts.is_empty() {
        return Ok(());
    }
    let work = PathBuf::from(format!("/proc/{pid}/root/work"));
    let apart = || -> Result<(), SandboxError> {
        let own_table = |e| SandboxError::Fs {
            op: "give the writing thread an fd table of its own (unshare CLONE_FILES) for",
            path: work.clone(),
            source: io::Error::from_raw_os_error(e),
        };
        crate::sys::unshare(libc::CLONE_FILES).map_err(own_table)?;
        crate::sys::close_from(3).map_err(own_table)?;
        write_all_files(&work, cmd, uid)
    };
    std::thread::scope(|s| {
        let writer = std::thread::Builder::new()
            .name("livexec-files".into())
            .stack_size(WRITER_STACK)
            .spawn_scoped(s, apart)
            .map_err(|source| SandboxError::Fs {
                op: "start the thread that writes the files of",
                path: work.clone(),
                source,
            })?;
        writer
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// Stack of the thread that writes a run's files (bytes): it only opens and writes.
const WRITER_STACK: usize = 128 << 10;

/// [`write_files`]' work, on its own thread: into `work`, the jail's `/work` seen from here.
fn write_all_files(work: &Path, cmd: &Command, uid: u32) -> Result<(), SandboxError> {
    let fs_err = |op: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| SandboxError::Fs { op, path, source }
    };
    for (name, data) in &cmd.files {
        let path = work.join(name);
        let mut dir = work.to_path_buf();
        for c in Path::new(name)
            .parent()
            .into_iter()
            .flat_map(Path::components)
        {
            dir.push(c);
            if let Err(e) = fs::DirBuilder::new().mode(0o755).create(&dir) {
                if e.kind() != io::ErrorKind::AlreadyExists {
                    return Err(fs_err("mkdir", &dir)(e));
                }
                continue;
            }
            std::os::unix::fs::chown(&dir, Some(uid), Some(uid)).map_err(fs_err("chown", &dir))?;
        }
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(fs_err("create", &path))?;
        f.write_all(data).map_err(fs_err("write", &path))?;
        std::os::unix::fs::fchown(&f, Some(uid), Some(uid)).map_err(fs_err("chown", &path))?;
    }
    // Artifacts: root's, readable and executable, not writable by the program.
    for (name, data) in &cmd.artifacts {
        let path = work.join(name);
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o555)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(fs_err("create", &path))?;
        f.write_all(data).map_err(fs_err("write", &path))?;
        f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o555))
            .map_err(fs_err("chmod", &path))?;
    }
    Ok(())
}

/// Checks a [`crate::Command::collect`] pattern: a plain file name with at most one `*`.
pub(crate) fn check_pattern(pattern: &str) -> Result<(), SandboxError> {
    let ok = !pattern.is_empty()
        && !pattern.contains(['/', '\0'])
        && pattern != "."
        && pattern != ".."
        && pattern.matches('*').count() <= 1;
    if ok {
        Ok(())
    } else {
        Err(SandboxError::BadFileName {
            name: pattern.to_owned(),
        })
    }
}

/// Whether `name` matches `pattern` (one optional `*` matching any run of characters).
pub(crate) fn matches(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((pre, post)) => {
            name.len() >= pre.len() + post.len() && name.starts_with(pre) && name.ends_with(post)
        }
    }
}

/// The jail's working directory, held open by the supervisor.
pub(crate) struct WorkDir {
    dir: fs::File,
}

impl WorkDir {
    /// Opens `/work` of the jail whose init is `pid` (as root; nothing in the jail runs yet).
    pub(crate) fn open(pid: i32) -> Result<WorkDir, SandboxError> {
        let path = PathBuf::from(format!("/proc/{pid}/root/work"));
        let dir = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(&path)
            .map_err(|source| SandboxError::Fs {
                op: "open",
                path,
                source,
            })?;
        Ok(WorkDir { dir })
    }

    /// Reads the regular files matching any of `patterns`, sorted by name, at most
    /// `max_bytes` in all and [`MAX_FILES`] files; a file that would go over `max_bytes` is
    /// left out. Also returns how many matching names were past [`MAX_FILES`] (not read).
    pub(crate) fn read(
        &self,
        patterns: &[String],
        max_bytes: u64,
    ) -> Result<(Files, usize), SandboxError> {
        let base = PathBuf::from(format!("/proc/self/fd/{}", self.dir.as_raw_fd()));
        let fs_err =
            |op: &'static str, path: PathBuf| move |source| SandboxError::Fs { op, path, source };
        let mut names: Vec<String> = fs::read_dir(&base)
            .map_err(fs_err("list", PathBuf::from("/work")))?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| patterns.iter().any(|p| matches(p, n)))
            .collect();
        names.sort();
        let past_max = names.len().saturating_sub(MAX_FILES);
        names.truncate(MAX_FILES);
        let mut files = Vec::with_capacity(names.len());
        let mut left = max_bytes;
        for name in names {
            let shown = PathBuf::from("/work").join(&name);
            // Only regular files are handed back: a socket, a FIFO, a device, a directory or a
            // link the program left is skipped before it is opened (opening a socket fails
            // with ENXIO, a FIFO could block), never a failure of the run.
            match fs::symlink_metadata(base.join(&name)) {
                Ok(meta) if meta.file_type().is_file() => {}
                Ok(_) => continue,
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
                Err(e) => return Err(fs_err("stat", shown)(e)),
            }
            let f = match fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
                .open(base.join(&name))
            {
                Ok(f) => f,
                // Anything the program can make an open fail with — a link (ELOOP), a socket
                // (ENXIO) or nothing (ENOENT) put there meanwhile, a lease still held by a
                // descriptor kept alive in a socket cycle (EWOULDBLOCK) — means it is not a
                // file to hand back; only this process running out of something is an error.
                Err(e)
                    if !matches!(
                        e.raw_os_error(),
                        Some(libc::EMFILE) | Some(libc::ENFILE) | Some(libc::ENOMEM)
                    ) =>
                {
                    tracing::debug!(file = %shown.display(), error = %e, "a collected file could not be opened; left out");
                    continue;
                }
                Err(e) => return Err(fs_err("open", shown)(e)),
            };
            let meta = f.metadata().map_err(fs_err("stat", shown.clone()))?;
            if !meta.is_file() {
                continue;
            }
            // Hard links make the files add up to more than the tmpfs holds: what does not
            // fit is left out (the program's doing, never a failure of the run).
            if meta.len() > left {
                tracing::warn!(
                    file = %shown.display(),
                    bytes = meta.len(),
                    "a collected file over the {max_bytes} bytes left of the run was left out"
                );
                continue;
            }
            let mut data = Vec::new();
            f.take(left)
                .read_to_end(&mut data)
                .map_err(fs_err("read", shown.clone()))?;
            left -= data.len() as u64;
            files.push((name, data));
        }
        Ok((files, past_max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_plain_names_with_one_star() {
        assert!(matches("main", "main"));
        assert!(!matches("main", "main2"));
        assert!(matches("*.class", "Main.class"));
        assert!(matches("*.class", "Main$1.class"));
        assert!(!matches("*.class", "Main.java"));
        assert!(matches("a*a", "aa"));
        assert!(!matches("a*a", "a"));
        for good in ["main", "*.class", "*"] {
            assert!(check_pattern(good).is_ok(), "{good}");
        }
        for bad in ["", "a/b", "../x", "..", "*.*x*", "a\0"] {
            assert!(check_pattern(bad).is_err(), "{bad}");
        }
    }
}
