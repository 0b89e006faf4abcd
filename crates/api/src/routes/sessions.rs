//! `POST /code-sessions`, `GET /code-sessions/:id`, `PATCH /code-sessions/:id`.

use crate::auth::Authed;
use crate::error::ApiError;
use crate::extract::{JsonObject, PathId};
use crate::validate::{self, Problems};
use crate::{owned, run_files, AppState};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use livexec_core::model::rfc3339;
use livexec_core::{Deletion, ExecutionId, FileView, Session, SessionId, SessionPatch, SourceFile};
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
    files: Vec<FileView>,
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
            files: s.files.iter().map(FileView::from).collect(),
        }
    }
}

/// 400 when one of `files` is named like the main file of `language`.
fn check_main_name(state: &AppState, language: &str, files: &[SourceFile]) -> Result<(), ApiError> {
    let mut problems = Problems::default();
    if let Some(rt) = state.runtimes.get(language) {
        run_files::check_files_with(
            files,
            &[],
            &rt.file_name,
            rt.compile.as_ref(),
            &state.config.maxima,
            0,
            &mut problems,
        );
    }
    problems.finish(|| ())
}

/// Create a session; without `templateCode` it starts with the runtime's default template.
#[utoipa::path(post, path = "/code-sessions", tag = "sessions",
    request_body = super::openapi::CreateSession,
    responses(
        (status = 201, description = "Created", body = SessionStatus),
        (status = 400, description = "Validation failed or malformed JSON", body = crate::error::ErrorBody),
        (status = 413, description = "Body over the configured limit", body = crate::error::ErrorBody),
        (status = 429, description = "The key holds its tier's sessions (or is over its request rate)", body = crate::error::ErrorBody),
    ))]
pub async fn create(
    State(state): State<AppState>,
    Authed(caller): Authed,
    JsonObject(body): JsonObject,
) -> Result<(StatusCode, Json<SessionStatus>), ApiError> {
    let req = validate::create_session_with(&body, state.runtimes.as_ref(), &state.config.maxima)?;
    check_main_name(&state, &req.language, &req.files)?;
    let code = match req.template_code {
        Some(code) => code,
        None => state
            .runtimes
            .get(&req.language)
            .map(|rt| rt.default_template.clone())
            .unwrap_or_default(),
    };
    let session = state
        .store
        .create_session_within(
            &req.language,
            &code,
            &req.files,
            caller.owner(),
            &state.quota_for(&caller),
        )
        .await?;
    tracing::debug!(session_id = %session.id, language = %session.language, "session created");
    Ok((StatusCode::CREATED, Json(session.into())))
}

/// The session with its code, files and latest execution.
#[utoipa::path(get, path = "/code-sessions/{id}", tag = "sessions",
    params(("id" = uuid::Uuid, Path, description = "Session id")),
    responses(
        (status = 200, description = "The session", body = SessionView),
        (status = 400, description = "The id is not a UUID", body = crate::error::ErrorBody),
        (status = 404, description = "No such session", body = crate::error::ErrorBody),
    ))]
pub async fn show(
    State(state): State<AppState>,
    Authed(caller): Authed,
    PathId(id): PathId,
) -> Result<Json<SessionView>, ApiError> {
    Ok(Json(owned::session(&state, &caller, id).await?.into()))
}

/// Replace the session's code, files (whole) and language, each when given.
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
    Authed(caller): Authed,
    PathId(id): PathId,
    JsonObject(body): JsonObject,
) -> Result<Json<SessionStatus>, ApiError> {
    let req = validate::update_session_with(&body, state.runtimes.as_ref(), &state.config.maxima)?;
    // Another key's session is unknown to this caller (and its owner never changes).
    let stored = owned::session(&state, &caller, id).await?;
    if req.files.is_some() || req.language.is_some() {
        // The files and the main file's name must not collide once both changes apply.
        let language = req.language.as_deref().unwrap_or(&stored.language);
        check_main_name(
            &state,
            language,
            req.files.as_deref().unwrap_or(&stored.files),
        )?;
    }
    let patch = SessionPatch {
        source_code: req.source_code,
        language: req.language,
        files: req.files,
    };
    let session = state.store.patch_session(id, &patch).await?;
    Ok(Json(session.ok_or(ApiError::SessionNotFound)?.into()))
}

/// Delete the session and all its executions, for good (their rows are deleted; usage stays
/// in the usage rollup). 409 while one of its executions is queued or running.
#[utoipa::path(delete, path = "/code-sessions/{id}", tag = "sessions",
    params(("id" = uuid::Uuid, Path, description = "Session id")),
    responses(
        (status = 204, description = "Deleted, with its executions"),
        (status = 400, description = "The id is not a UUID", body = crate::error::ErrorBody),
        (status = 404, description = "No such session", body = crate::error::ErrorBody),
        (status = 409, description = "One of its executions is queued or running (named)", body = crate::error::ErrorBody),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    Authed(caller): Authed,
    PathId(id): PathId,
) -> Result<StatusCode, ApiError> {
    owned::session(&state, &caller, id).await?;
    match state.store.delete_session(id).await? {
        Deletion::Deleted => {
            tracing::info!(session_id = %id, "session deleted");
            Ok(StatusCode::NO_CONTENT)
        }
        Deletion::NotFound => Err(ApiError::SessionNotFound),
        Deletion::Unfinished(execution_id) => Err(ApiError::Unfinished { execution_id }),
    }
}
