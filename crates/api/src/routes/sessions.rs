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
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionStatus {
    #[schema(value_type = uuid::Uuid)]
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
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionView {
    #[schema(value_type = uuid::Uuid)]
    session_id: SessionId,
    status: String,
    language: String,
    source_code: String,
    created_at: String,
    updated_at: String,
    #[schema(value_type = Option<uuid::Uuid>)]
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
#[utoipa::path(post, path = "/code-sessions", tag = "sessions",
    request_body = super::openapi::CreateSession,
    responses(
        (status = 201, description = "Created", body = SessionStatus),
        (status = 400, description = "Validation failed or malformed JSON", body = crate::error::ErrorBody),
        (status = 413, description = "Body over the configured limit", body = crate::error::ErrorBody),
    ))]
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
#[utoipa::path(get, path = "/code-sessions/{id}", tag = "sessions",
    params(("id" = uuid::Uuid, Path, description = "Session id")),
    responses(
        (status = 200, description = "The session", body = SessionView),
        (status = 400, description = "The id is not a UUID", body = crate::error::ErrorBody),
        (status = 404, description = "No such session", body = crate::error::ErrorBody),
    ))]
pub async fn show(
    State(state): State<AppState>,
    PathId(id): PathId,
) -> Result<Json<SessionView>, ApiError> {
    let session = state.store.get_session(id).await?;
    Ok(Json(session.ok_or(ApiError::SessionNotFound)?.into()))
}

/// Replace the session's code and, when given, its language.
#[utoipa::path(patch, path = "/code-sessions/{id}", tag = "sessions",
    params(("id" = uuid::Uuid, Path, description = "Session id")),
    request_body = super::openapi::UpdateSession,
    responses(
        (status = 200, description = "Updated", body = SessionStatus),
        (status = 400, description = "Validation failed, malformed JSON or bad id", body = crate::error::ErrorBody),
        (status = 404, description = "No such session", body = crate::error::ErrorBody),
        (status = 413, description = "Body over the configured limit", body = crate::error::ErrorBody),
    ))]
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
