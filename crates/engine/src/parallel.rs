//! What lets an execution's test cases run fast without using more than a worker may:
//! [`Slots`], the process's budget of sandboxes running at once, and [`Feed`], the jails of
//! one request's run stage prepared ahead of need (while the compile stage runs and while
//! earlier cases run), each used once.
//!
//! **Memory and CPU.** A worker slot is sized for one run at its limits (the host is sized
//! for `LIVEXEC_WORKERS` runs at once). Every execution holds one slot; its test cases may
//! borrow slots that are idle at that moment, up to the number of CPUs, and never wait for
//! one. So this process never runs more sandboxes at once than it has slots (or than
//! executions in flight, when those exceed the slots), each case keeps the run's own limits
//! (memory, CPU quota, pids, time) in its own cgroup, and the memory the cases of one
//! execution use together is at most `parallelism × memory limit`, within what the idle
//! workers they borrow from could have used. A busy service runs cases one after another.
//!
//! **Prepared jails** hold no program and no data of a request (only the init waiting for
//! one), by one background thread at a low priority. With a compile stage, the jails of up
//! to [`COMPILE_AHEAD_MAX`] cases are prepared while the compiler runs: a compiler is one
//! busy process, the other cores are idle meanwhile, and the cases then only run their
//! program. Without one, the jails prepared ahead are at most [`AHEAD_EXTRA`] more than the
//! cases running at once. Jails not used (a failed compile, `stop_on_failure`) are torn down
//! in the background.

use livexec_sandbox::{Command, Prepared, Sandbox, SandboxError};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};

/// Jails the [`Feed`] keeps prepared beyond the cases that run at once, so a case that ends
/// finds the next jail ready while its own is torn down.
pub(crate) const AHEAD_EXTRA: usize = 2;

/// Most jails the [`Feed`] prepares ahead for a runtime with a compile stage (every case's,
/// up to this many), while the compiler runs. A prepared jail holds an init process, a uid of
/// the sandbox's range, a network namespace and its kernel objects (~0.2 MB), no memory of
/// the run's.
pub(crate) const COMPILE_AHEAD_MAX: usize = 64;

/// The process's budget of sandboxes running at once (see the module doc).
#[derive(Debug)]
pub(crate) struct Slots {
    cap: AtomicUsize,
    used: Mutex<usize>,
}

/// Slots held until dropped.
#[derive(Debug)]
pub(crate) struct Held<'a> {
    slots: &'a Slots,
    /// How many slots this holds.
    pub n: usize,
}

impl Slots {
    /// A budget of `cap` sandboxes at once (at least 1).
    pub(crate) fn new(cap: usize) -> Self {
        Slots {
            cap: AtomicUsize::new(cap.max(1)),
            used: Mutex::new(0),
        }
    }

    /// Changes the budget (at least 1); holders keep what they hold.
    pub(crate) fn set_cap(&self, cap: usize) {
        self.cap.store(cap.max(1), Ordering::Relaxed);
    }

    /// The budget.
    pub(crate) fn cap(&self) -> usize {
        self.cap.load(Ordering::Relaxed)
    }

    fn lock(&self) -> MutexGuard<'_, usize> {
        self.used.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One slot for an execution, held even over the budget: an execution the worker runs
    /// always runs (the workers' own count bounds them).
    pub(crate) fn hold_one(&self) -> Held<'_> {
        *self.lock() += 1;
        Held { slots: self, n: 1 }
    }

    /// Up to `want` of the slots idle now (maybe none); never waits.
    pub(crate) fn borrow(&self, want: usize) -> Held<'_> {
        let mut used = self.lock();
        let n = want.min(self.cap().saturating_sub(*used));
        *used += n;
        Held { slots: self, n }
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        let mut used = self.slots.lock();
        *used = used.saturating_sub(self.n);
    }
}

/// Jails of one run-stage shape prepared ahead of need by one background thread
/// ([`Feed::fill`]), handed out by [`Feed::next`] (which builds one on the spot when none is
/// ready, never waiting for the thread). [`Feed::close`] stops the thread and discards what
/// was not used.
pub(crate) struct Feed<'a> {
    sandbox: &'a Sandbox,
    template: Command,
    /// Most jails kept ready at once.
    ahead: usize,
    state: Mutex<FeedState>,
    wake: Condvar,
}

struct FeedState {
    ready: VecDeque<Prepared>,
    /// Jails still to hand out (cases not started yet).
    left: usize,
    closed: bool,
}

impl<'a> Feed<'a> {
    /// A feed of `total` jails of `template`'s shape, at most `ahead` ready at once.
    pub(crate) fn new(sandbox: &'a Sandbox, template: Command, ahead: usize, total: usize) -> Self {
        Feed {
            sandbox,
            template,
            ahead,
            state: Mutex::new(FeedState {
                ready: VecDeque::new(),
                left: total,
                closed: false,
            }),
            wake: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, FeedState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The preparing loop (run it on a thread of its own): keeps `ahead` jails ready while
    /// jails are still wanted, until [`Feed::close`]. A jail that fails to prepare ends the
    /// loop: the cases then build their own, and report the error if it persists. At most
    /// one jail prepared here goes unused when the cases end normally (the one in the
    /// making when the last case took its jail elsewhere).
    pub(crate) fn fill(&self) {
        let mut st = self.lock();
        loop {
            if st.closed {
                return;
            }
            if st.ready.len() >= self.ahead.min(st.left) {
                st = self.wake.wait(st).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            drop(st);
            let prepared = self.sandbox.prepare_ahead(&self.template);
            st = self.lock();
            match prepared {
                Ok(p) if !st.closed => {
                    st.ready.push_back(p);
                    self.wake.notify_all();
                }
                Ok(p) => {
                    drop(st);
                    self.sandbox.discard(p);
                    return;
                }
                Err(e) => {
                    tracing::debug!(error = %e, "could not prepare a jail ahead for the test cases");
                    return;
                }
            }
        }
    }

    /// A jail for the next case: a prepared one, or one built now.
    pub(crate) fn next(&self) -> Result<Prepared, SandboxError> {
        let taken = {
            let mut st = self.lock();
            st.left = st.left.saturating_sub(1);
            st.ready.pop_front()
        };
        self.wake.notify_all();
        match taken {
            Some(p) => Ok(p),
            None => self.sandbox.prepare(&self.template),
        }
    }

    /// Stops the preparing loop and discards the jails not handed out.
    pub(crate) fn close(&self) {
        let unused = {
            let mut st = self.lock();
            st.closed = true;
            std::mem::take(&mut st.ready)
        };
        self.wake.notify_all();
        for p in unused {
            self.sandbox.discard(p);
        }
    }
}

/// Closes a [`Feed`] when dropped (also on an early return), so the scope that runs its
/// thread can end.
pub(crate) struct CloseOnDrop<'f, 'a>(pub &'f Feed<'a>);

impl Drop for CloseOnDrop<'_, '_> {
    fn drop(&mut self) {
        self.0.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_execution_always_runs_and_cases_borrow_only_idle_slots() {
        let slots = Slots::new(3);
        let a = slots.hold_one();
        let extra = slots.borrow(5);
        assert_eq!(extra.n, 2, "3 slots, 1 held: 2 idle");
        let b = slots.hold_one();
        assert_eq!(slots.borrow(1).n, 0, "over the budget: nothing to borrow");
        drop((a, extra, b));
        assert_eq!(slots.borrow(9).n, 3, "all given back");
        slots.set_cap(0);
        assert_eq!(slots.cap(), 1, "at least one");
    }
}
