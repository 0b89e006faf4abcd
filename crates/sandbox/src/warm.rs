//! The warm pool ([`WarmPool`]): jails prepared ahead of need, per [`Shape`], refilled by one
//! background thread, each used once.
//!
//! Preparing a jail (uid, cgroup, pipes, `clone3`, ~30 mount operations, the privilege drop,
//! seccomp, the `execveat` of the init) is most of a run's fixed cost; with a prepared jail of
//! the right shape, a run only writes its files into `/work` and the go message to the
//! waiting init. Prepared jails hold no program and no data of any request; a jail whose init
//! died while waiting is dropped, never handed out.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::jail::Shape;
use crate::run::Jail;
use crate::sandbox::Shared;
use crate::SandboxError;

/// Pause after a failed preparation before trying that shape again.
const BACKOFF: Duration = Duration::from_secs(1);

/// Jails prepared ahead of need.
#[derive(Default)]
pub(crate) struct WarmPool {
    inner: Arc<Inner>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

#[derive(Default)]
struct Inner {
    state: Mutex<State>,
    wake: Condvar,
}

#[derive(Default)]
struct State {
    /// How many prepared jails to keep per shape.
    targets: HashMap<Shape, usize>,
    /// The prepared jails.
    ready: HashMap<Shape, Vec<Jail>>,
    stop: bool,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl WarmPool {
    /// Sets how many jails of `shape` to keep; starts the refill thread on first use.
    pub(crate) fn set_target(
        &self,
        shared: &Arc<Shared>,
        shape: Shape,
        n: usize,
    ) -> Result<(), SandboxError> {
        let dropped = {
            let mut st = self.inner.lock();
            if n == 0 {
                st.targets.remove(&shape);
                st.ready.remove(&shape)
            } else {
                st.targets.insert(shape, n);
                None
            }
        };
        drop(dropped); // torn down outside the lock
        let mut thread = self.thread.lock().unwrap_or_else(|p| p.into_inner());
        if thread.is_none() && n > 0 {
            let inner = Arc::clone(&self.inner);
            let shared = Arc::clone(shared);
            let handle = std::thread::Builder::new()
                .name("livexec-warm".into())
                .spawn(move || refill(&inner, &shared))
                .map_err(|source| SandboxError::Fs {
                    op: "spawn the warm-pool thread for",
                    path: "the warm pool".into(),
                    source,
                })?;
            *thread = Some(handle);
        }
        self.inner.wake.notify_all();
        Ok(())
    }

    /// A prepared jail of `shape`, if one is ready (and its init still alive).
    pub(crate) fn take(&self, shape: &Shape) -> Option<Jail> {
        let mut dead = Vec::new();
        let found = {
            let mut st = self.inner.lock();
            let list = st.ready.get_mut(shape)?;
            let mut found = None;
            while let Some(j) = list.pop() {
                if j.alive() {
                    found = Some(j);
                    break;
                }
                dead.push(j);
            }
            found
        };
        drop(dead);
        self.inner.wake.notify_all();
        found
    }

    /// Stops the refill thread and tears every prepared jail down.
    pub(crate) fn shut_down(&self) {
        self.inner.lock().stop = true;
        self.inner.wake.notify_all();
        let handle = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(h) = handle {
            let _ = h.join();
        }
        let ready = std::mem::take(&mut self.inner.lock().ready);
        drop(ready);
    }
}

/// Nice value of the refill thread: preparing the next jail yields the CPU to running ones
/// (the jail itself takes the normal priority back before its program can run, `Op::Renice`).
/// The jail's own setup runs in its cgroup, at the lowest CPU weight until it is used
/// (`Jail::prepare`'s `background`): a nice value does not count across cgroups.
const REFILL_NICE: i32 = 10;

/// The refill loop: prepares one jail at a time for a shape below its target.
fn refill(inner: &Inner, shared: &Arc<Shared>) {
    if let Err(e) = crate::sys::set_nice(crate::sys::gettid(), REFILL_NICE) {
        tracing::debug!(
            errno = e,
            "the warm pool's thread keeps the normal priority"
        );
    }
    loop {
        let shape = {
            let mut st = inner.lock();
            loop {
                if st.stop {
                    return;
                }
                let short = st
                    .targets
                    .iter()
                    .find(|(s, n)| st.ready.get(*s).map_or(0, Vec::len) < **n)
                    .map(|(s, _)| s.clone());
                match short {
                    Some(s) => break s,
                    None => st = inner.wake.wait(st).unwrap_or_else(|p| p.into_inner()),
                }
            }
        };
        match Jail::prepare(shared, shape.clone(), true) {
            Ok(jail) => {
                let mut st = inner.lock();
                if st.targets.contains_key(&shape) && !st.stop {
                    st.ready.entry(shape).or_default().push(jail);
                } else {
                    drop(st);
                    drop(jail);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not prepare a warm sandbox; retrying");
                let st = inner.lock();
                if !st.stop {
                    let _ = inner.wake.wait_timeout(st, BACKOFF);
                }
            }
        }
    }
}
