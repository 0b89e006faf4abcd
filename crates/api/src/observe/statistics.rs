//! `GET /statistics?days=N`: what the executions of the last N days (default 30, at most 366)
//! add up to — per day and language, failure shares by error type, p50/p95 run time per
//! language, busiest hours — computed by the database (`Store::statistics`).
//!
//! They add up every key's executions, so once keys are in use they are for admin keys only
//! (a normal key gets 403; its own figures are `GET /usage`). An open service answers anyone.

use crate::auth::Authed;
use crate::error::ApiError;
use crate::extract::QueryMap;
use crate::AppState;
use axum::extract::State;
use axum::Json;
use livexec_core::Statistics;

/// The window when `days` is not given.
const DEFAULT_DAYS: i64 = 30;
/// The longest window, in days.
const MAX_DAYS: i64 = 366;

/// The statistics of the executions accepted in the last `days` days.
#[utoipa::path(get, path = "/statistics", tag = "system",
    params(("days" = Option<u32>, Query, description = "Window in days, 1–366 (default 30)")),
    responses(
        (status = 200, description = "Statistics of the window", body = Statistics),
        (status = 400, description = "Bad `days`", body = crate::error::ErrorBody),
        (status = 403, description = "A key that is not an admin key", body = crate::error::ErrorBody),
    ))]
pub(crate) async fn statistics(
    State(state): State<AppState>,
    Authed(caller): Authed,
    QueryMap(query): QueryMap,
) -> Result<Json<Statistics>, ApiError> {
    if !caller.is_admin() {
        return Err(ApiError::Forbidden(
            "GET /statistics adds up every key's executions and needs an admin key; \
             GET /usage gives this key's own"
                .to_owned(),
        ));
    }
    let days = match query.get("days").map(|d| d.trim().parse::<i64>()) {
        None => DEFAULT_DAYS,
        Some(Ok(d)) if (1..=MAX_DAYS).contains(&d) => d,
        Some(_) => {
            return Err(ApiError::Validation(vec![format!(
                "days must be an integer from 1 to {MAX_DAYS}"
            )]))
        }
    };
    let since = chrono::Utc::now() - chrono::Duration::days(days);
    Ok(Json(state.store.statistics(since).await?))
}
