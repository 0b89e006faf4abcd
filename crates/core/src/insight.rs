//! What the service reports about itself beyond single executions: the queue as sampled for
//! metrics ([`QueueSample`]) and the statistics of `GET /statistics` ([`Statistics`]).

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

/// The queue as the store sees it: executions in status QUEUED.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueSample {
    /// How many executions are QUEUED.
    pub queued: u64,
    /// When the oldest QUEUED execution was accepted; `None` when none is.
    pub oldest_queued_at: Option<DateTime<Utc>>,
}

/// Executions accepted since a moment, added up by the database (all times UTC).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Statistics {
    /// The start of the window (RFC 3339); executions accepted before it are not counted.
    pub since: String,
    /// Executions accepted in the window, in any status.
    pub total: u64,
    /// Of them, those that reached a terminal status.
    pub finished: u64,
    /// Executions per day and language, by day then language.
    pub per_day: Vec<DayCount>,
    /// Finished executions by error type (`null`: no error), with their share of `finished`.
    pub error_types: Vec<ErrorTypeShare>,
    /// Run time percentiles of finished executions, per language.
    pub run_time: Vec<RunTimePercentiles>,
    /// Executions by hour of the day (0–23, only hours that had any), busiest first.
    pub peak_hours: Vec<HourCount>,
}

/// How many executions of one language were accepted on one day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct DayCount {
    /// `YYYY-MM-DD`, UTC.
    pub day: String,
    /// Runtime id.
    pub language: String,
    /// Executions accepted that day.
    pub executions: u64,
}

/// Finished executions of one error type.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ErrorTypeShare {
    /// The error type (API.md), or null for executions without an error.
    pub error_type: Option<String>,
    /// How many.
    pub executions: u64,
    /// Their share of all finished executions, 0–1.
    pub rate: f64,
}

/// Nearest-rank percentiles of `execution_time_ms` of finished executions of a language.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct RunTimePercentiles {
    /// Runtime id.
    pub language: String,
    /// Finished executions counted.
    pub executions: u64,
    /// Median run time, ms.
    pub p50_ms: Option<i64>,
    /// 95th percentile run time, ms.
    pub p95_ms: Option<i64>,
}

/// Executions accepted in one hour of the day, over the window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct HourCount {
    /// Hour of the day, 0–23, UTC.
    pub hour: u8,
    /// Executions accepted in that hour.
    pub executions: u64,
}
