//! A uid (and gid of the same number) of its own for every concurrent run ([`UidPool`]).
//!
//! The kernel counts some resources per user — pending signals, POSIX message queue bytes,
//! pipe buffer pages, inotify instances — so runs sharing one uid could starve each other (and
//! the host's `nobody`, uid 65534, is shared with host daemons). Like isolate's per-box uids,
//! each run gets an id from a configured range that belongs to no host account.
//!
//! Across processes (several workers on one host), an id is owned by whoever holds an
//! exclusive `flock` on `<run_dir>/uids/<uid>`; the lock dies with its process, so a crashed
//! supervisor frees its ids. Within a process, ids that were locked once are kept (locked)
//! and reused by later runs once the run holding them is over: every process of that run is
//! dead by then, and so is every per-user resource it held, with its namespaces.

use std::fs::{self, File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::SandboxError;

/// The ids of one run. Give it back with [`UidPool::release`] after the run's teardown.
#[derive(Debug)]
pub(crate) struct Lease {
    /// The uid, also used as the gid.
    pub uid: u32,
    /// Holds the `flock` on `<run_dir>/uids/<uid>` while open.
    _lock: File,
}

/// The pool of run ids of one [`crate::Sandbox`].
#[derive(Debug)]
pub(crate) struct UidPool {
    base: u32,
    count: u32,
    dir: PathBuf,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Ids this process holds the lock of and no run uses.
    idle: Vec<Lease>,
    /// Next offset in the range to try locking.
    next: u32,
}

impl UidPool {
    /// A pool over `base .. base + count`, locked under `<run_dir>/uids`. Fails when the
    /// range is empty, overflows, or overlaps a user or group of the host's `/etc/passwd` or
    /// `/etc/group` (or the host's `nobody`).
    pub(crate) fn new(base: u32, count: u32, run_dir: &Path) -> Result<UidPool, SandboxError> {
        let bad = |reason: String| SandboxError::UidRange {
            base,
            count,
            reason,
        };
        let end = base
            .checked_add(count)
            .filter(|e| count > 0 && *e < u32::MAX)
            .ok_or_else(|| bad("empty, or past the largest uid".into()))?;
        if base == 0 || (base..end).contains(&65534) {
            return Err(bad("includes uid 0 or 65534 (nobody)".into()));
        }
        for db in ["/etc/passwd", "/etc/group"] {
            let text = fs::read_to_string(db).unwrap_or_default();
            let taken = host_ids(&text).find(|id| (base..end).contains(id));
            if let Some(id) = taken {
                return Err(bad(format!("id {id} belongs to a host account in {db}")));
            }
        }
        let dir = run_dir.join("uids");
        fs::create_dir_all(&dir).map_err(|source| SandboxError::Fs {
            op: "mkdir",
            path: dir.clone(),
            source,
        })?;
        Ok(UidPool {
            base,
            count,
            dir,
            state: Mutex::new(State::default()),
        })
    }

    /// `(first id, how many)`.
    pub(crate) fn range(&self) -> (u32, u32) {
        (self.base, self.count)
    }

    /// An id no other run (of this or another process) is using.
    pub(crate) fn acquire(&self) -> Result<Lease, SandboxError> {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(l) = st.idle.pop() {
            return Ok(l);
        }
        for _ in 0..self.count {
            let uid = self.base + st.next;
            st.next = (st.next + 1) % self.count;
            if let Some(lock) = self.try_lock(uid)? {
                return Ok(Lease { uid, _lock: lock });
            }
        }
        Err(SandboxError::UidRange {
            base: self.base,
            count: self.count,
            reason: "every id of the range is in use (raise the range's size)".into(),
        })
    }

    /// Gives an id back once every process of its run is gone.
    pub(crate) fn release(&self, lease: Lease) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        st.idle.push(lease);
    }

    fn try_lock(&self, uid: u32) -> Result<Option<File>, SandboxError> {
        let path = self.dir.join(uid.to_string());
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(&path)
            .map_err(|source| SandboxError::Fs {
                op: "open",
                path: path.clone(),
                source,
            })?;
        // SAFETY: flock on an fd we own; LOCK_NB never blocks.
        let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        Ok((r == 0).then_some(f))
    }
}

/// The uid/gid fields (third column) of `/etc/passwd` or `/etc/group` lines.
fn host_ids(text: &str) -> impl Iterator<Item = u32> + '_ {
    text.lines()
        .filter_map(|l| l.split(':').nth(2))
        .filter_map(|id| id.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_that_touch_host_accounts_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert!(UidPool::new(0, 10, dir.path()).is_err());
        assert!(UidPool::new(65500, 100, dir.path()).is_err());
        assert!(UidPool::new(u32::MAX - 5, 10, dir.path()).is_err());
        assert!(UidPool::new(5, 0, dir.path()).is_err());
        // root (0) and every account in /etc/passwd are below this range.
        assert!(UidPool::new(2_000_000_000, 16, dir.path()).is_ok());
    }

    #[test]
    fn ids_are_exclusive_across_pools_and_reused_within_one() {
        let dir = tempfile::tempdir().unwrap();
        let a = UidPool::new(2_000_000_000, 2, dir.path()).unwrap();
        let b = UidPool::new(2_000_000_000, 2, dir.path()).unwrap();
        let a1 = a.acquire().unwrap();
        let b1 = b.acquire().unwrap();
        assert_ne!(
            a1.uid, b1.uid,
            "a lock held by one pool is skipped by the other"
        );
        assert!(
            a.acquire().is_err() && b.acquire().is_err(),
            "range exhausted"
        );
        let uid = a1.uid;
        a.release(a1);
        let again = a.acquire().unwrap();
        assert_eq!(again.uid, uid);
        drop(again);
        drop(b1);
        // Dropped leases (their process gone, say) free the ids for other pools.
        let c = UidPool::new(2_000_000_000, 2, dir.path()).unwrap();
        assert!(c.acquire().is_ok());
    }

    #[test]
    fn host_ids_reads_the_third_column() {
        let ids: Vec<u32> =
            host_ids("root:x:0:0::/root:/bin/sh\nbad\nn:x:65534:65534::/:/x\n").collect();
        assert_eq!(ids, vec![0, 65534]);
    }
}
