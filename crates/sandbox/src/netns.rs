//! Fresh, empty network namespaces (only `lo`, down), made ahead of need so that creating one
//! (~0.5 ms) stays off a run's critical path.
//!
//! Every run gets a namespace no earlier run used, and its namespace dies with it (the last
//! fd and process gone, the kernel tears it down in the background). A namespace is never
//! handed to a second run: even without any capability in it, a run leaves state there that
//! outlives its processes and that the next run could read — IPv6 flow labels, which linger
//! up to 150 s after their socket closed and carry 16 bytes of the run's choosing each, and the
//! namespace's counters (`/proc/net/snmp`, `netstat`, `snmp6`), which never reset, so a run
//! could count a number into `OutNoRoutes` for the next one to read.

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::{sys, SandboxError};

/// Fresh namespaces waiting for a run.
#[derive(Debug, Default)]
pub(crate) struct NetnsPool {
    fresh: Mutex<Vec<OwnedFd>>,
    /// How many fresh ones to keep ready: each one taken is replaced in the background.
    spare: usize,
    /// Replacements being made now.
    making: AtomicUsize,
}

impl NetnsPool {
    /// A pool that keeps `spare` fresh namespaces ready once one has been taken (those made
    /// at start come through [`NetnsPool::add`]).
    pub(crate) fn new(spare: usize) -> NetnsPool {
        NetnsPool {
            spare,
            ..NetnsPool::default()
        }
    }

    /// A fresh namespace, made ahead or, when none is ready, now; starts making its
    /// replacement in the background. The caller owns it: dropping it lets it die.
    pub(crate) fn take(self: &Arc<Self>) -> Result<OwnedFd, SandboxError> {
        let ready = self.fresh.lock().ok().and_then(|mut v| v.pop());
        self.refill();
        match ready {
            Some(fd) => Ok(fd),
            None => create(),
        }
    }

    /// Adds a namespace no run has used.
    pub(crate) fn add(&self, fd: OwnedFd) {
        if let Ok(mut v) = self.fresh.lock() {
            v.push(fd);
        }
    }

    /// Creates `n` namespaces ahead of need.
    pub(crate) fn prewarm(&self, n: usize) -> Result<(), SandboxError> {
        let mut made = Vec::with_capacity(n);
        for _ in 0..n {
            made.push(create()?);
        }
        for fd in made {
            self.add(fd);
        }
        Ok(())
    }

    /// Starts making replacements, each on a short-lived thread of its own, until `spare`
    /// are ready or being made. Best effort: a namespace that cannot be made now is made on
    /// the spot when a run needs it (and that run reports the error).
    fn refill(self: &Arc<Self>) {
        let ready = self.fresh.lock().map_or(0, |v| v.len());
        while ready + self.making.load(Ordering::Acquire) < self.spare {
            self.making.fetch_add(1, Ordering::AcqRel);
            let pool = Arc::clone(self);
            let spawned = std::thread::Builder::new()
                .name("livexec-netns".into())
                .spawn(move || {
                    let made = create_here();
                    pool.making.fetch_sub(1, Ordering::AcqRel);
                    match made {
                        Ok(fd) => pool.add(fd),
                        Err(e) => tracing::debug!(error = %e, "no spare network namespace"),
                    }
                });
            if spawned.is_err() {
                self.making.fetch_sub(1, Ordering::AcqRel);
                return;
            }
        }
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
