//! Small cgroupfs helpers shared by v1 and v2: write/read a control file, list pids, kill
//! loop, rmdir with retries, and finding stale run directories.

use std::fs;
use std::io::{self, Write};
use std::path::Path;
use std::time::Duration;

use crate::SandboxError;

/// Writes `value` to an existing control file (no create, no truncate: cgroupfs semantics).
pub(crate) fn write(path: &Path, value: &str) -> Result<(), SandboxError> {
    fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|mut f| f.write_all(value.as_bytes()))
        .map_err(|source| SandboxError::Cgroup {
            op: "write",
            path: path.to_path_buf(),
            source,
        })
}

/// Reads a control file as a trimmed string.
pub(crate) fn read(path: &Path) -> io::Result<String> {
    fs::read_to_string(path).map(|s| s.trim().to_owned())
}

/// Reads a numeric control file; 0 when missing or unparsable.
pub(crate) fn read_u64(path: &Path) -> u64 {
    read(path).ok().and_then(|s| s.parse().ok()).unwrap_or(0)
}

/// The value of `key` in a flat-keyed file (`key value` lines, e.g. `memory.events`).
pub(crate) fn keyed(path: &Path, key: &str) -> Option<u64> {
    let text = read(path).ok()?;
    text.lines().find_map(|l| {
        let mut it = l.split_whitespace();
        (it.next() == Some(key)).then(|| it.next()?.parse().ok())?
    })
}

/// The pids listed in a `cgroup.procs`/`tasks` file.
pub(crate) fn read_pids(path: &Path) -> Vec<i32> {
    read(path)
        .map(|s| s.lines().filter_map(|l| l.trim().parse().ok()).collect())
        .unwrap_or_default()
}

/// `mkdir`, tolerating an existing directory.
pub(crate) fn mkdir(path: &Path) -> Result<(), SandboxError> {
    match fs::create_dir(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(SandboxError::Cgroup {
            op: "mkdir",
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// `rmdir`, retrying on `EBUSY` while the last processes exit (about one second at most).
/// A missing directory counts as removed.
pub(crate) fn rmdir(path: &Path) -> Result<(), SandboxError> {
    let mut last = None;
    for attempt in 0..100 {
        match fs::remove_dir(path) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => last = Some(e),
        }
        std::thread::sleep(Duration::from_millis(if attempt < 10 { 1 } else { 10 }));
    }
    Err(SandboxError::Cgroup {
        op: "rmdir",
        path: path.to_path_buf(),
        source: last.unwrap_or_else(|| io::Error::from_raw_os_error(libc::EBUSY)),
    })
}

/// SIGKILLs every pid in `procs` until the file lists none (bounded number of rounds).
pub(crate) fn kill_loop(procs: &Path, before_round: &dyn Fn(), after_round: &dyn Fn()) {
    for _ in 0..200 {
        let pids = read_pids(procs);
        if pids.is_empty() {
            return;
        }
        before_round();
        for pid in pids {
            let _ = crate::sys::kill(pid, libc::SIGKILL);
        }
        after_round();
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Names `<pid>-<seq>` in `base` whose pid is not alive.
pub(crate) fn stale_ids(base: &Path, is_alive: &dyn Fn(u32) -> bool) -> Vec<String> {
    let Ok(entries) = fs::read_dir(base) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| owner_pid(n).is_some_and(|pid| !is_alive(pid)))
        .collect()
}

/// The supervisor pid embedded in a run name `<pid>-<seq>` (or a run dir `<pid>.<n>`).
pub(crate) fn owner_pid(name: &str) -> Option<u32> {
    let head = name.split(['-', '.']).next()?;
    let rest = &name[head.len()..];
    if rest.len() < 2 {
        return None;
    }
    head.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_pid_parses_our_names_only() {
        assert_eq!(owner_pid("1234-7"), Some(1234));
        assert_eq!(owner_pid("99.3"), Some(99));
        assert_eq!(owner_pid("1234"), None);
        assert_eq!(owner_pid("user.slice"), None);
        assert_eq!(owner_pid("abc-1"), None);
    }

    #[test]
    fn stale_ids_skip_live_owners() {
        let d = tempfile::tempdir().unwrap();
        for n in ["10-1", "10-2", "20-1", "other"] {
            fs::create_dir(d.path().join(n)).unwrap();
        }
        let mut ids = stale_ids(d.path(), &|pid| pid == 20);
        ids.sort();
        assert_eq!(ids, ["10-1", "10-2"]);
    }

    #[test]
    fn keyed_reads_flat_keyed_files() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("memory.events");
        fs::write(&p, "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n").unwrap();
        assert_eq!(keyed(&p, "oom_kill"), Some(1));
        assert_eq!(keyed(&p, "max"), Some(3));
        assert_eq!(keyed(&p, "nope"), None);
    }
}
