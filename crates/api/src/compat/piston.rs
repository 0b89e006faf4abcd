//! Piston v2's API (filled in by the next commit).

use crate::AppState;
use axum::Router;

/// Piston's routes.
pub fn router() -> Router<AppState> {
    Router::new()
}
