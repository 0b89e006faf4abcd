//! `POST /code-sessions`, `GET /code-sessions/:id`, `PATCH /code-sessions/:id`.

use crate::error::ApiError;
use crate::extract::{JsonObject, PathId};
use crate::validate;
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use livexec_core::model::rfc3339;
use livexec_core::{ExecutionId, Session, SessionId};
use serde::Serialize;

/// The answer to create and update.
#[derive(Debug, Serialize)]
pub struct SessionStatus {
    session_id: SessionId,
    status: String,
}

impl From<Session> for SessionStatus {
    fn from(s: Session) -> Self {
        SessionStatus {
            session_id: s.id,
            status: s.status,
        }
    }
}

/// The whole session (API.md §6).
#[derive(Debug, Serialize)]
pub struct SessionView {
    session_id: SessionId,
    status: String,
    language: String,
    source_code: String,
    created_at: String,
    updated_at: String,
    latest_execution_id: Option<ExecutionId>,
}

impl From<Session> for SessionView {
    fn from(s: Session) -> Self {
        SessionView {
            session_id: s.id,
            status: s.status,
            language: s.language,
            source_code: s.source_code,
            created_at: rfc3339(s.created_at),
            updated_at: rfc3339(s.updated_at),
            latest_execution_id: s.latest_execution_id,
        }
    }
}

/// Create a session; without `templateCode` it starts with the runtime's default template.
pub async fn create(
    State(state): State<AppState>,
    JsonObject(body): JsonObject,
) -> Result<(StatusCode, Json<SessionStatus>), ApiError> {
    let req = validate::create_session(&body, state.runtimes.as_ref())?;
    let code = match req.template_code {
        Some(code) => code,
        None => state
            .runtimes
            .get(&req.language)
            .map(|rt| rt.default_template.clone())
            .unwrap_or_default(),
    };
    let session = state.store.create_session(&req.language, &code).await?;
    tracing::debug!(session_id = %session.id, language = %session.language, "session created");
    Ok((StatusCode::CREATED, Json(session.into())))
}

/// The session with its code and latest execution.
pub async fn show(
    State(state): State<AppState>,
    PathId(id): PathId,
) -> Result<Json<SessionView>, ApiError> {
    let session = state.store.get_session(id).await?;
    Ok(Json(session.ok_or(ApiError::SessionNotFound)?.into()))
}

/// Replace the session's code and, when given, its language.
pub async fn update(
    State(state): State<AppState>,
    PathId(id): PathId,
    JsonObject(body): JsonObject,
) -> Result<Json<SessionStatus>, ApiError> {
    let req = validate::update_session(&body, state.runtimes.as_ref())?;
    let session = state
        .store
        .update_session(id, &req.source_code, req.language.as_deref())
        .await?;
    Ok(Json(session.ok_or(ApiError::SessionNotFound)?.into()))
}
