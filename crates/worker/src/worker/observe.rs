//! The worker's metrics (`livexec-telemetry`): queue wait and busy slots when a run starts,
//! the program's time and the sandbox's overhead when it ends, the final status and the
//! end-to-end latency when it is recorded.

use crate::stages::Staged;
use livexec_core::{ErrorType, Execution, Status};
use livexec_telemetry as telemetry;
use std::time::Duration;

/// A worker slot took `exec`: its queue wait is recorded, and the slot counts as busy until
/// the guard drops.
pub(super) fn started(exec: &Execution) -> telemetry::BusyGuard {
    let waited = (chrono::Utc::now() - exec.queued_at)
        .to_std()
        .unwrap_or_default();
    telemetry::queue_wait(&exec.language, waited);
    telemetry::BusyGuard::start()
}

/// The sandbox returned `staged` after `took`: the program's wall time and everything else
/// (the jails' set-up, start and teardown) are recorded apart.
pub(super) fn ran(exec: &Execution, staged: &Staged, took: Duration) {
    let stages = [staged.compile.as_ref(), staged.run.as_ref()];
    let in_programs: u64 = stages.iter().flatten().map(|(o, _)| o.wall_us).sum();
    let warm = stages.iter().flatten().all(|(o, _)| o.warm_start);
    if let Some((run, _)) = &staged.run {
        telemetry::run_time(&exec.language, Duration::from_micros(run.wall_us));
    }
    telemetry::sandbox_startup(
        warm,
        took.saturating_sub(Duration::from_micros(in_programs)),
    );
}

/// `exec` was recorded as `status` with `error_type`.
pub(super) fn finished(exec: &Execution, status: Status, error_type: Option<ErrorType>) {
    telemetry::execution_finished(
        &exec.language,
        status.as_str(),
        error_type.map(ErrorType::as_str),
    );
    let total = (chrono::Utc::now() - exec.queued_at)
        .to_std()
        .unwrap_or_default();
    telemetry::end_to_end(&exec.language, total);
}
