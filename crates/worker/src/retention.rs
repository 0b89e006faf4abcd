//! Retention (`LIVEXEC_RETENTION_DAYS`, issue 13): in the background, empty the source code,
//! inputs and outputs of executions finished more than N days ago and delete sessions idle for
//! N days, in small batches with a pause between them, so requests are never held up.
//!
//! Every process that serves runs one loop; the store's batch is idempotent (a row it emptied
//! no longer matches, a session it deleted is gone), so passes on several nodes at once only
//! share the work. Nothing is marked: the data is gone, the rows keep their metrics, and usage
//! was added up when each execution finished.

use livexec_core::{Purged, Store, StoreError};
use std::time::Duration;
use tokio::sync::watch;
use tracing::{info, warn};

/// How a retention loop works.
#[derive(Debug, Clone)]
pub struct RetentionConfig {
    /// Data of executions finished (and sessions idle) longer ago than this is removed.
    pub keep_for: Duration,
    /// Rows per statement.
    pub batch: u32,
    /// Pause between two batches of one pass.
    pub pause: Duration,
    /// Time between the starts of two passes.
    pub every: Duration,
}

impl RetentionConfig {
    /// Keep data for `days` days, in batches of 500 rows 200 ms apart, one pass an hour.
    pub fn days(days: u32) -> Self {
        RetentionConfig {
            keep_for: Duration::from_secs(u64::from(days) * 86_400),
            batch: 500,
            pause: Duration::from_millis(200),
            every: Duration::from_secs(3600),
        }
    }
}

/// One pass: batches until one removes less than a full batch (or `shutdown` becomes true).
/// What it removed in total.
pub async fn retention_once(
    store: &dyn Store,
    config: &RetentionConfig,
    shutdown: &watch::Receiver<bool>,
) -> Result<Purged, StoreError> {
    let keep = chrono::Duration::from_std(config.keep_for).unwrap_or(chrono::Duration::MAX);
    let before = chrono::Utc::now()
        .checked_sub_signed(keep)
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC);
    let mut total = Purged::default();
    loop {
        let done = store.purge_before(before, config.batch).await?;
        total.executions += done.executions;
        total.sessions += done.sessions;
        let full = u64::from(config.batch);
        if (done.executions < full && done.sessions < full) || *shutdown.borrow() {
            return Ok(total);
        }
        tokio::time::sleep(config.pause).await;
    }
}

/// [`retention_once`] every `config.every` until `shutdown` becomes true; one log line per pass.
pub async fn retention_loop(
    store: std::sync::Arc<dyn Store>,
    config: RetentionConfig,
    mut shutdown: watch::Receiver<bool>,
) {
    while !*shutdown.borrow() {
        match retention_once(&*store, &config, &shutdown).await {
            Ok(p) => info!(
                executions_emptied = p.executions,
                sessions_deleted = p.sessions,
                keep_days = config.keep_for.as_secs() / 86_400,
                "retention pass done"
            ),
            Err(e) => warn!(error = %e, "retention pass failed; the next pass tries again"),
        }
        tokio::select! {
            _ = tokio::time::sleep(config.every) => {}
            _ = shutdown.changed() => {}
        }
    }
}
