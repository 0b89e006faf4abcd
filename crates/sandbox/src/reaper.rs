//! Tears finished jails down off the request path ([`Reaper`]).
//!
//! When a run's outcome is known (its init reaped, the cgroup's figures read), what is left
//! — killing stragglers in the cgroup (none: the pid namespace died with its init), removing
//! the cgroup directories, giving the network namespace and the uid back — need not delay the
//! answer. One background thread drops the jails it is handed, in order.

use std::sync::mpsc::{self, Sender};
use std::sync::Mutex;
use std::thread::JoinHandle;

use crate::run::Jail;

/// The teardown thread of one [`crate::Sandbox`].
pub(crate) struct Reaper {
    tx: Mutex<Option<Sender<Jail>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Reaper {
    /// Starts the thread; without one (it could not be spawned), jails are torn down inline.
    pub(crate) fn start() -> Reaper {
        let (tx, rx) = mpsc::channel::<Jail>();
        let thread = std::thread::Builder::new()
            .name("livexec-reaper".into())
            .spawn(move || rx.into_iter().for_each(drop));
        match thread {
            Ok(t) => Reaper {
                tx: Mutex::new(Some(tx)),
                thread: Mutex::new(Some(t)),
            },
            Err(e) => {
                tracing::warn!(error = %e, "no teardown thread: jails are torn down inline");
                Reaper {
                    tx: Mutex::new(None),
                    thread: Mutex::new(None),
                }
            }
        }
    }

    /// Tears `jail` down in the background (inline if the thread is gone).
    pub(crate) fn dispose(&self, jail: Jail) {
        let tx = self.tx.lock().unwrap_or_else(|p| p.into_inner()).clone();
        match tx {
            // A closed channel hands the jail back: drop it here.
            Some(tx) => drop(tx.send(jail)),
            None => drop(jail),
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
