//! Isolation between keys (issue 13): reading a session or an execution on behalf of a
//! caller. One the caller may not see ([`Caller::can_see`]) answers exactly as an unknown id
//! does — the same 404 and message — so ids of other keys cannot even be confirmed to exist.

use crate::error::ApiError;
use crate::AppState;
use livexec_core::{Caller, Execution, ExecutionId, Session, SessionId};

/// The session `id` if it exists and `caller` may see it; else the 404 of an unknown session.
pub(crate) async fn session(
    state: &AppState,
    caller: &Caller,
    id: SessionId,
) -> Result<Session, ApiError> {
    match state.store.get_session(id).await? {
        Some(s) if caller.can_see(s.owner) => Ok(s),
        _ => Err(ApiError::SessionNotFound),
    }
}

/// The execution `id` if it exists and `caller` may see it; else the 404 of an unknown one.
pub(crate) async fn execution(
    state: &AppState,
    caller: &Caller,
    id: ExecutionId,
) -> Result<Execution, ApiError> {
    visible(caller, state.store.get_execution(id).await?).ok_or(ApiError::ExecutionNotFound)
}

/// `found` when `caller` may see it, else `None` (as if it did not exist).
pub(crate) fn visible(caller: &Caller, found: Option<Execution>) -> Option<Execution> {
    found.filter(|e| caller.can_see(e.owner))
}
