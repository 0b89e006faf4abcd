//! The worker's metrics (`livexec-telemetry`): queue wait and busy slots when a run starts,
//! the program's time and the sandbox's overhead when it ends, the final status and the
//! end-to-end latency when it is recorded.

use livexec_core::{ErrorType, Execution, RunResult, Status};
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

/// The executor returned `result` after `took`: the program's wall time, and everything else
/// (the jails' set-up, start and teardown; the compile stage excluded) are recorded apart.
pub(super) fn ran(exec: &Execution, result: &RunResult, took: Duration) {
    let ms = |v: i64| Duration::from_millis(u64::try_from(v).unwrap_or(0));
    let program = ms(result.report.execution_time_ms);
    let compile = result
        .report
        .compile
        .as_ref()
        .map_or(Duration::ZERO, |c| ms(c.time_ms));
    telemetry::run_time(&exec.language, program);
    telemetry::sandbox_startup(took.saturating_sub(program + compile));
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
