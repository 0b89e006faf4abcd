//! How a worker behaves ([`WorkerConfig`]) and how its store writes survive a hiccup.

use std::time::Duration;
use tracing::warn;

/// How a worker behaves.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Name of this worker in the queue's claims (host and process make a good one).
    pub worker_id: String,
    /// How long a claim lasts; extended every third of it while the program runs.
    pub lease: Duration,
    /// Attempts in all (first run plus platform retries) before FAILED/`InternalError`.
    pub max_attempts: i32,
    /// How long an idle loop waits before it asks the queue again.
    pub idle_poll: Duration,
    /// Writes of a finished result before the worker gives up on it (the program is never
    /// run again for a failed write: the result is kept in memory and written again, while
    /// the lease is kept). Default 10.
    pub record_attempts: u32,
    /// Pause after the first failed write of a result; doubled after each further one, up to
    /// [`MAX_RECORD_BACKOFF`]. Default 100 ms (10 writes then span about 25 s).
    pub record_backoff: Duration,
}

/// The longest pause between two writes of a result.
pub const MAX_RECORD_BACKOFF: Duration = Duration::from_secs(5);

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            worker_id: format!("worker-{}", std::process::id()),
            lease: Duration::from_secs(30),
            max_attempts: 3,
            idle_poll: Duration::from_millis(50),
            record_attempts: 10,
            record_backoff: Duration::from_millis(100),
        }
    }
}

/// A store write that matters (a result, a retry) survives a short database hiccup.
pub(crate) async fn retry_store<T, F, Fut>(mut op: F) -> Result<T, livexec_core::StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, livexec_core::StoreError>>,
{
    let mut delay = Duration::from_millis(100);
    let mut tries = 0;
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) if tries < 4 => {
                warn!(error = %e, "store write failed; retrying");
                tokio::time::sleep(delay).await;
                delay *= 2;
                tries += 1;
            }
            Err(e) => return Err(e),
        }
    }
}
