//! Tears finished jails down off the request path ([`Reaper`]).
//!
//! When a run's outcome is known (its init reaped, the cgroup's figures read), what is left
//! — killing stragglers in the cgroup (none: the pid namespace died with its init), removing
//! the cgroup directories, giving the network namespace and the uid back — need not delay the
//! answer. One background thread drops the jails it is handed, in order.

use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use crate::run::Jail;

/// The teardown thread of one [`crate::Sandbox`].
pub(crate) struct Reaper {
    tx: Mutex<Option<Sender<Jail>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// Jails handed over and not yet torn down.
    pending: Arc<(Mutex<usize>, Condvar)>,
}

impl Reaper {
    /// Starts the thread; without one (it could not be spawned), jails are torn down inline.
    pub(crate) fn start() -> Reaper {
        let (tx, rx) = mpsc::channel::<Jail>();
        let pending = Arc::new((Mutex::new(0usize), Condvar::new()));
        let counter = Arc::clone(&pending);
        let thread = std::thread::Builder::new()
            .name("livexec-reaper".into())
            .spawn(move || {
                for jail in rx {
                    drop(jail);
                    let (n, cv) = &*counter;
                    *n.lock().unwrap_or_else(|p| p.into_inner()) -= 1;
                    cv.notify_all();
                }
            });
        match thread {
            Ok(t) => Reaper {
                tx: Mutex::new(Some(tx)),
                thread: Mutex::new(Some(t)),
                pending,
            },
            Err(e) => {
                tracing::warn!(error = %e, "no teardown thread: jails are torn down inline");
                Reaper {
                    tx: Mutex::new(None),
                    thread: Mutex::new(None),
                    pending,
                }
            }
        }
    }

    /// Tears `jail` down in the background (inline if the thread is gone).
    pub(crate) fn dispose(&self, jail: Jail) {
        let tx = self.tx.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let Some(tx) = tx else {
            return drop(jail);
        };
        *self.pending.0.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        if let Err(mpsc::SendError(jail)) = tx.send(jail) {
            // The thread is gone: tear down here.
            drop(jail);
            *self.pending.0.lock().unwrap_or_else(|p| p.into_inner()) -= 1;
        }
    }

    /// Blocks until every jail handed over so far is torn down.
    pub(crate) fn wait_idle(&self) {
        let (n, cv) = &*self.pending;
        let mut left = n.lock().unwrap_or_else(|p| p.into_inner());
        while *left > 0 {
            left = cv.wait(left).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Tears down every jail handed over so far, then stops the thread.
    pub(crate) fn shut_down(&self) {
        self.tx.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(t) = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = t.join();
        }
    }
}
