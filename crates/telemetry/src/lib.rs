//! Prometheus metrics of livexec: one place for every metric's name, labels and meaning, the
//! process-wide recorder (`metrics-exporter-prometheus`), and the text a `/metrics` endpoint
//! answers with.
//!
//! Code records through the small functions here ([`execution_finished`], [`http_request`],
//! …) rather than through `metrics` macros with literal names, so a metric is named once and
//! its labels are always from a closed set: a language id of the registry, a status, an error
//! type, a route template. Nothing a client typed (an execution id, a raw path, code) ever
//! becomes a label value.
//!
//! Recording before [`install`] is a no-op (the `metrics` facade drops it), so binaries call
//! [`install`] first thing; [`render`] installs on demand too, so a router built in a test
//! serves metrics without ceremony.

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::time::Duration;

/// The `Content-Type` of [`render`]'s text (the Prometheus text exposition format 0.0.4).
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Executions that reached a terminal status: `language`, `status`, `error_type` (`none`
/// when the run had no error).
pub const EXECUTIONS: &str = "livexec_executions_total";
/// Executions waiting for a worker (status QUEUED), sampled when metrics are scraped.
pub const QUEUE_DEPTH: &str = "livexec_queue_depth";
/// Age in seconds of the oldest QUEUED execution (0 when none), sampled at scrape.
pub const QUEUE_OLDEST_AGE: &str = "livexec_queue_oldest_age_seconds";
/// Seconds from an execution's acceptance to a worker starting it, by `language`.
pub const QUEUE_WAIT: &str = "livexec_queue_wait_seconds";
/// Seconds of a run spent outside the program and its compiler: preparing the jail (or
/// taking a warm one), starting it and tearing it down.
pub const SANDBOX_STARTUP: &str = "livexec_sandbox_startup_seconds";
/// Wall-clock seconds of the program itself (the run stage), by `language`.
pub const RUN_TIME: &str = "livexec_run_seconds";
/// Seconds from acceptance to the result being recorded, by `language`.
pub const END_TO_END: &str = "livexec_end_to_end_seconds";
/// HTTP requests answered: `method`, `route` (the matched template such as
/// `/executions/{id}`, or `unmatched`) and `status`.
pub const HTTP_REQUESTS: &str = "livexec_http_requests_total";
/// Seconds to answer an HTTP request (until the head of the response), by `method`, `route`.
pub const HTTP_DURATION: &str = "livexec_http_request_duration_seconds";
/// Open live event streams (SSE) of this process.
pub const EVENT_STREAMS: &str = "livexec_event_streams";
/// Open HTTP connections of this process's API (refused ones included until they close).
pub const HTTP_CONNECTIONS: &str = "livexec_http_connections";
/// Connections answered 429 because their client address held its limit
/// (`LIVEXEC_MAX_CONNECTIONS_PER_ADDRESS`).
pub const HTTP_CONNECTIONS_REFUSED: &str = "livexec_http_connections_refused_total";
/// Connections closed because their client read nothing of an answer for
/// `LIVEXEC_WRITE_STALL_TIMEOUT_MS`, or read a large one slower than
/// `LIVEXEC_MIN_READ_RATE_KIB`.
pub const HTTP_WRITE_STALLS: &str = "livexec_http_write_stalls_total";
/// Bytes of large answers (bodies of 1 MiB and more, and the batches that add up to that)
/// being built or sent right now, against `LIVEXEC_RESPONSE_MEMORY_MB`.
pub const RESPONSE_MEMORY: &str = "livexec_response_memory_bytes";
/// Large answers refused for memory, by `reason`: `full` (the budget is in use: 503) or
/// `share` (the caller holds its share: 429).
pub const RESPONSES_REFUSED: &str = "livexec_responses_refused_total";
/// Execution slots of this process's workers (its concurrency).
pub const WORKER_SLOTS: &str = "livexec_worker_slots";
/// Worker slots running an execution right now; utilisation is this over
/// `livexec_worker_slots` (`avg_over_time` of the ratio for a window).
pub const WORKER_BUSY: &str = "livexec_worker_busy_slots";

/// Histogram buckets in seconds: 1 ms to 2 min, for waits, start-ups, runs and requests.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Install the process-wide Prometheus recorder (idempotent) and describe every metric.
/// If another recorder was installed first, metrics are not collected and [`render`] answers
/// with an empty exposition.
pub fn install() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new();
        // `Suffix` never fails for a non-empty bucket list; fall back to summaries if it does.
        let builder =
            match builder.set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), BUCKETS) {
                Ok(b) => b,
                Err(_) => PrometheusBuilder::new(),
            };
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_ok() {
            describe();
        }
        handle
    })
}

/// The current metrics in the Prometheus text format (installs the recorder if needed).
pub fn render() -> String {
    let handle = install();
    // Drains histogram samples into their buckets; without it they accumulate in memory.
    handle.run_upkeep();
    handle.render()
}

fn describe() {
    describe_counter!(EXECUTIONS, "Executions that reached a terminal status.");
    describe_gauge!(QUEUE_DEPTH, "Executions waiting for a worker.");
    describe_gauge!(
        QUEUE_OLDEST_AGE,
        metrics::Unit::Seconds,
        "Age of the oldest queued execution."
    );
    describe_histogram!(
        QUEUE_WAIT,
        metrics::Unit::Seconds,
        "From acceptance to a worker starting the execution."
    );
    describe_histogram!(
        SANDBOX_STARTUP,
        metrics::Unit::Seconds,
        "Time of a run spent outside the program: jail set-up, start and teardown."
    );
    describe_histogram!(
        RUN_TIME,
        metrics::Unit::Seconds,
        "Wall-clock time of the program."
    );
    describe_histogram!(
        END_TO_END,
        metrics::Unit::Seconds,
        "From acceptance to the recorded result."
    );
    describe_counter!(HTTP_REQUESTS, "HTTP requests answered.");
    describe_histogram!(
        HTTP_DURATION,
        metrics::Unit::Seconds,
        "Time to answer an HTTP request."
    );
    describe_gauge!(EVENT_STREAMS, "Open live event streams (SSE).");
    describe_gauge!(HTTP_CONNECTIONS, "Open HTTP connections of the API.");
    describe_counter!(
        HTTP_CONNECTIONS_REFUSED,
        "Connections refused with 429: their client address held its limit."
    );
    describe_counter!(
        HTTP_WRITE_STALLS,
        "Connections closed: their client read nothing of an answer for the stall timeout, or a large one below the minimum rate."
    );
    describe_gauge!(
        RESPONSE_MEMORY,
        metrics::Unit::Bytes,
        "Memory of large answers being built or sent."
    );
    describe_counter!(
        RESPONSES_REFUSED,
        "Large answers refused for memory: full (503) or the caller's share (429)."
    );
    describe_gauge!(WORKER_SLOTS, "Execution slots of this process's workers.");
    describe_gauge!(WORKER_BUSY, "Worker slots running an execution.");
}

/// An execution reached `status` (`COMPLETED`, `FAILED`, `TIMEOUT`, …). `language` is a
/// registry id, `error_type` the execution's error type (`None` → `none`).
pub fn execution_finished(language: &str, status: &str, error_type: Option<&str>) {
    counter!(
        EXECUTIONS,
        "language" => language.to_owned(),
        "status" => status.to_owned(),
        "error_type" => error_type.unwrap_or("none").to_owned()
    )
    .increment(1);
}

/// A worker started an execution in `language` that had waited `waited` in the queue.
pub fn queue_wait(language: &str, waited: Duration) {
    histogram!(QUEUE_WAIT, "language" => language.to_owned()).record(waited.as_secs_f64());
}

/// A run spent `overhead` outside the program and its compiler.
pub fn sandbox_startup(overhead: Duration) {
    histogram!(SANDBOX_STARTUP).record(overhead.as_secs_f64());
}

/// The program in `language` ran for `wall`.
pub fn run_time(language: &str, wall: Duration) {
    histogram!(RUN_TIME, "language" => language.to_owned()).record(wall.as_secs_f64());
}

/// An execution in `language` was recorded `total` after it was accepted.
pub fn end_to_end(language: &str, total: Duration) {
    histogram!(END_TO_END, "language" => language.to_owned()).record(total.as_secs_f64());
}

/// The queue as sampled now: `depth` executions waiting, the oldest for `oldest`.
pub fn queue_sample(depth: u64, oldest: Duration) {
    gauge!(QUEUE_DEPTH).set(depth as f64);
    gauge!(QUEUE_OLDEST_AGE).set(oldest.as_secs_f64());
}

/// An HTTP request was answered. `method` is mapped to a fixed set (`other` for the rest);
/// `route` must be a route template or `unmatched`, never the raw path.
pub fn http_request(method: &str, route: &str, status: u16, took: Duration) {
    let method: &'static str = match method {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    };
    counter!(
        HTTP_REQUESTS,
        "method" => method,
        "route" => route.to_owned(),
        "status" => status.to_string()
    )
    .increment(1);
    histogram!(HTTP_DURATION, "method" => method, "route" => route.to_owned())
        .record(took.as_secs_f64());
}

/// This process's workers have `slots` execution slots.
pub fn worker_slots(slots: usize) {
    gauge!(WORKER_SLOTS).set(slots as f64);
}

/// Holds one unit of a gauge (`+1` now, `-1` when dropped).
struct Held(&'static str);

impl Held {
    fn up(gauge: &'static str) -> Held {
        gauge!(gauge).increment(1.0);
        Held(gauge)
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        gauge!(self.0).decrement(1.0);
    }
}

/// Counts one open event stream until dropped.
#[must_use = "the stream counts as open only while the guard lives"]
pub struct StreamGuard {
    _held: Held,
}

impl StreamGuard {
    /// An event stream opened.
    pub fn open() -> StreamGuard {
        StreamGuard {
            _held: Held::up(EVENT_STREAMS),
        }
    }
}

/// Counts one open HTTP connection until dropped.
#[must_use = "the connection counts as open only while the guard lives"]
pub struct ConnectionGuard {
    _held: Held,
}

impl ConnectionGuard {
    /// A connection was accepted.
    pub fn open() -> ConnectionGuard {
        ConnectionGuard {
            _held: Held::up(HTTP_CONNECTIONS),
        }
    }
}

/// A connection was refused because its client address held its limit.
pub fn connection_refused() {
    counter!(HTTP_CONNECTIONS_REFUSED).increment(1);
}

/// A connection was closed because its client read an answer too slowly (nothing for the
/// stall timeout, or a large one below the minimum rate).
pub fn write_stalled() {
    counter!(HTTP_WRITE_STALLS).increment(1);
}

/// Large answers now hold `bytes` of memory.
pub fn response_memory(bytes: u64) {
    gauge!(RESPONSE_MEMORY).set(bytes as f64);
}

/// A large answer was refused for memory: `full` (503) or `share` (429).
pub fn response_refused(reason: &'static str) {
    counter!(RESPONSES_REFUSED, "reason" => reason).increment(1);
}

/// Counts one busy worker slot until dropped.
#[must_use = "the slot counts as busy only while the guard lives"]
pub struct BusyGuard {
    _held: Held,
}

impl BusyGuard {
    /// A worker slot started on an execution.
    pub fn start() -> BusyGuard {
        BusyGuard {
            _held: Held::up(WORKER_BUSY),
        }
    }
}
