//! A pool of empty network namespaces (only `lo`, down), so creating one (~0.5 ms) and
//! tearing it down stay off a run's critical path.
//!
//! A namespace is used by one run at a time and returned when the run's init has been reaped:
//! by then every process of the run is dead and its sockets closed. The jail has no
//! capability in it (it cannot bring `lo` up, add devices, routes, firewall rules or change
//! its sysctls), so nothing a run does outlives it there.

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Mutex;

use crate::{sys, SandboxError};

/// Most idle namespaces kept.
const MAX_IDLE: usize = 64;

/// The pool.
#[derive(Debug, Default)]
pub(crate) struct NetnsPool {
    idle: Mutex<Vec<OwnedFd>>,
}

impl NetnsPool {
    /// An idle namespace, or a new one.
    pub(crate) fn take(&self) -> Result<OwnedFd, SandboxError> {
        if let Some(fd) = self.idle.lock().ok().and_then(|mut v| v.pop()) {
            return Ok(fd);
        }
        create()
    }

    /// Returns a namespace after its run's init was reaped.
    pub(crate) fn give_back(&self, fd: OwnedFd) {
        if let Ok(mut v) = self.idle.lock() {
            if v.len() < MAX_IDLE {
                v.push(fd);
            }
        }
    }

    /// Creates `n` namespaces ahead of need.
    pub(crate) fn prewarm(&self, n: usize) -> Result<(), SandboxError> {
        let mut made = Vec::with_capacity(n);
        for _ in 0..n {
            made.push(create()?);
        }
        for fd in made {
            self.give_back(fd);
        }
        Ok(())
    }
}

/// Creates a network namespace in a short-lived thread (namespaces belong to threads, so
/// the caller's own stays untouched) and returns an fd that keeps it alive.
pub(crate) fn create() -> Result<OwnedFd, SandboxError> {
    let worker = std::thread::Builder::new()
        .name("livexec-netns".into())
        .spawn(create_here)
        .map_err(|source| SandboxError::Fs {
            op: "spawn thread for",
            path: "/proc/thread-self/ns/net".into(),
            source,
        })?;
    worker.join().unwrap_or_else(|_| {
        Err(SandboxError::SetupFailed {
            reason: "the netns thread panicked".into(),
        })
    })
}

/// Creates a network namespace *for the calling thread*, which must be a thread of ours
/// that ends without touching the network (each call moves it into another fresh one), and
/// returns an fd that keeps the namespace alive.
pub(crate) fn create_here() -> Result<OwnedFd, SandboxError> {
    sys::unshare(libc::CLONE_NEWNET).map_err(|e| SandboxError::Syscall {
        call: "unshare",
        args: "CLONE_NEWNET (netns pool)".into(),
        source: std::io::Error::from_raw_os_error(e),
    })?;
    let f = File::open("/proc/thread-self/ns/net").map_err(|source| SandboxError::Fs {
        op: "open",
        path: "/proc/thread-self/ns/net".into(),
        source,
    })?;
    Ok(OwnedFd::from(f))
}

/// The raw fd (for the child's plan).
pub(crate) fn raw(fd: &OwnedFd) -> i32 {
    fd.as_raw_fd()
}
