//! `GET /usage?from=YYYY-MM-DD&to=YYYY-MM-DD[&key_id=UUID]`: what a key ran, enough to bill
//! from — executions, CPU seconds, wall seconds and peak-memory-seconds (MiB·s), by UTC day,
//! by language, and in total.
//!
//! Read from the `usage_daily` rollup, which every finished execution adds to, so deleting
//! executions (or retention emptying them) does not change it. A key sees its own usage; an
//! admin key any key's (`key_id`) or, without `key_id`, everyone's; an open service everyone's.
//! Executions the platform gave up on (retries exhausted) are not counted: nothing was run.

use crate::auth::Authed;
use crate::error::ApiError;
use crate::extract::{parse_uuid, QueryMap};
use crate::validate::Problems;
use crate::AppState;
use axum::extract::State;
use axum::Json;
use chrono::{Duration, NaiveDate, Utc};
use livexec_core::{Caller, UsageRow, UsageScope};
use serde::Serialize;
use std::collections::BTreeMap;

/// The window when `from` is not given: the 30 days up to `to`, both included.
const DEFAULT_DAYS: i64 = 30;
/// The longest window, in days (both ends included).
const MAX_DAYS: i64 = 366;

/// Figures of one group of executions.
#[derive(Debug, Default, Clone, Serialize, utoipa::ToSchema)]
pub struct UsageFigures {
    /// Executions finished.
    executions: u64,
    /// CPU time, seconds.
    cpu_seconds: f64,
    /// Wall-clock run time, seconds.
    wall_seconds: f64,
    /// Peak memory × wall-clock time, MiB·s (a run of 2 s at a 64 MiB peak is 128).
    memory_mib_seconds: f64,
    /// CPU time, milliseconds (exact).
    cpu_ms: u64,
    /// Wall-clock run time, milliseconds (exact).
    wall_ms: u64,
    /// Peak memory × wall-clock time, KiB·ms (exact).
    memory_kib_ms: u64,
}

impl UsageFigures {
    fn add(&mut self, row: &UsageRow) {
        self.executions += row.executions;
        self.cpu_ms += row.cpu_ms;
        self.wall_ms += row.wall_ms;
        self.memory_kib_ms += row.memory_kib_ms;
        self.cpu_seconds = self.cpu_ms as f64 / 1000.0;
        self.wall_seconds = self.wall_ms as f64 / 1000.0;
        self.memory_mib_seconds = self.memory_kib_ms as f64 / 1024.0 / 1000.0;
    }
}

/// Figures of one day.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DayUsage {
    /// The UTC day (`YYYY-MM-DD`) the executions finished.
    day: String,
    #[serde(flatten)]
    figures: UsageFigures,
}

/// Figures of one language.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LanguageUsage {
    /// The runtime id.
    language: String,
    #[serde(flatten)]
    figures: UsageFigures,
}

/// The answer of `GET /usage`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Usage {
    /// First day of the window (UTC, included).
    from: String,
    /// Last day of the window (UTC, included).
    to: String,
    /// Whose usage: a key id, or null for every key's (admin without `key_id`, open service).
    #[schema(value_type = Option<uuid::Uuid>)]
    key_id: Option<uuid::Uuid>,
    /// The whole window.
    total: UsageFigures,
    /// Per day with any execution, oldest first.
    by_day: Vec<DayUsage>,
    /// Per language with any execution, by id.
    by_language: Vec<LanguageUsage>,
}

/// A `YYYY-MM-DD` query value.
fn day(
    query: &std::collections::HashMap<String, String>,
    name: &str,
    p: &mut Problems,
) -> Option<NaiveDate> {
    let raw = query.get(name)?;
    let parsed = NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d").ok();
    if parsed.is_none() {
        p.push(format!("{name} must be a date as YYYY-MM-DD"));
    }
    parsed
}

/// Whose usage `caller` asks for with `key_id` (a normal key only its own: else 403).
fn scope(caller: &Caller, key_id: Option<uuid::Uuid>) -> Result<UsageScope, ApiError> {
    match (key_id, caller) {
        (Some(id), c) if c.is_admin() || c.owner() == Some(id) => Ok(UsageScope::Owner(Some(id))),
        (Some(_), _) => Err(ApiError::Forbidden(
            "key_id names another key: only an admin key may read another key's usage".to_owned(),
        )),
        (None, Caller::Open) => Ok(UsageScope::All),
        (None, Caller::Key(key)) if key.admin => Ok(UsageScope::All),
        (None, Caller::Key(key)) => Ok(UsageScope::Owner(Some(key.id))),
    }
}

/// Usage of the caller's key (admin: any key's, or every key's), by day and language.
#[utoipa::path(get, path = "/usage", tag = "system",
    params(
        ("from" = Option<String>, Query, description = "First UTC day, YYYY-MM-DD (default: 29 days before `to`)"),
        ("to" = Option<String>, Query, description = "Last UTC day, YYYY-MM-DD (default: today)"),
        ("key_id" = Option<uuid::Uuid>, Query, description = "Admin keys: whose usage (default: everyone's)"),
    ),
    responses(
        (status = 200, description = "Usage of the window", body = Usage),
        (status = 400, description = "Bad dates, window over 366 days, or a bad key_id", body = crate::error::ErrorBody),
        (status = 403, description = "key_id names another key and the caller is not an admin key", body = crate::error::ErrorBody),
    ))]
pub async fn usage(
    State(state): State<AppState>,
    Authed(caller): Authed,
    QueryMap(query): QueryMap,
) -> Result<Json<Usage>, ApiError> {
    let mut p = Problems::default();
    let to = day(&query, "to", &mut p);
    let from = day(&query, "from", &mut p);
    let key_id = query.get("key_id").and_then(|raw| {
        let id = parse_uuid(raw.trim());
        if id.is_none() {
            p.push("key_id must be a UUID");
        }
        id
    });
    let to = to.unwrap_or_else(|| Utc::now().date_naive());
    let from = from.unwrap_or(to - Duration::days(DEFAULT_DAYS - 1));
    if from > to {
        p.push("from must not be after to");
    } else if (to - from).num_days() + 1 > MAX_DAYS {
        p.push(format!("from and to may span at most {MAX_DAYS} days"));
    }
    p.finish(|| ())?;
    let scope = scope(&caller, key_id)?;
    let rows = state.store.usage(scope, from, to).await?;
    let mut total = UsageFigures::default();
    let mut days: BTreeMap<NaiveDate, UsageFigures> = BTreeMap::new();
    let mut languages: BTreeMap<String, UsageFigures> = BTreeMap::new();
    for row in &rows {
        total.add(row);
        days.entry(row.day).or_default().add(row);
        languages.entry(row.language.clone()).or_default().add(row);
    }
    Ok(Json(Usage {
        from: from.to_string(),
        to: to.to_string(),
        key_id: match scope {
            UsageScope::All => None,
            UsageScope::Owner(owner) => owner,
        },
        total,
        by_day: days
            .into_iter()
            .map(|(d, figures)| DayUsage {
                day: d.to_string(),
                figures,
            })
            .collect(),
        by_language: languages
            .into_iter()
            .map(|(language, figures)| LanguageUsage { language, figures })
            .collect(),
    }))
}
