//! `GET /executions/:id`, its live event stream `GET /executions/:id/events` (SSE), and the
//! history `GET /executions/sessions/:id` with paging.

use crate::auth::Authed;
use crate::error::ApiError;
use crate::extract::{PathId, QueryMap};
use crate::ratelimit::Limited;
use crate::response_memory::{json_answer, pace_frames, Holder};
use crate::streams::Holding;
use crate::validate;
use crate::OnShutdown;
use crate::{owned, AppState};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use livexec_core::{Caller, Deletion, EventBus, ExecutionView, SessionId};
use livexec_events::{execution_sse_admitted, last_event_id, parse_last_event_id, Admit};
use std::sync::Arc;

/// One execution (API.md §4).
#[utoipa::path(get, path = "/executions/{id}", tag = "executions",
    params(("id" = uuid::Uuid, Path, description = "Execution id")),
    responses(
        (status = 200, description = "The execution", body = ExecutionView),
        (status = 400, description = "The id is not a UUID", body = crate::error::ErrorBody),
        (status = 404, description = "No such execution", body = crate::error::ErrorBody),
        (status = 429, description = "The caller's large answers in flight hold its share of the server's memory for answers", body = crate::error::ErrorBody),
        (status = 503, description = "The server's memory for large answers is in use; retry after `Retry-After`", body = crate::error::ErrorBody),
    ))]
pub async fn show(
    State(state): State<AppState>,
    Authed(caller): Authed,
    PathId(id): PathId,
) -> Result<Response, ApiError> {
    let view = owned::execution(&state, &caller, id).await?.into_view();
    let memory = &state.config.response_memory;
    Ok(memory.answer(Holder::of(&caller), StatusCode::OK, &view)?)
}

/// Delete a finished execution, for good (its row is deleted; usage stays in the usage
/// rollup). 409 while it is queued or running. Its live events, if any are still buffered,
/// expire with the bus's retention (a minute in memory, an hour on Redis); they cannot be
/// read, since every read of them checks the store first.
#[utoipa::path(delete, path = "/executions/{id}", tag = "executions",
    params(("id" = uuid::Uuid, Path, description = "Execution id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "The id is not a UUID", body = crate::error::ErrorBody),
        (status = 404, description = "No such execution", body = crate::error::ErrorBody),
        (status = 409, description = "Still queued or running", body = crate::error::ErrorBody),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    Authed(caller): Authed,
    PathId(id): PathId,
) -> Result<StatusCode, ApiError> {
    owned::execution(&state, &caller, id).await?;
    match state.store.delete_execution(id).await? {
        Deletion::Deleted => {
            tracing::info!(execution_id = %id, "execution deleted");
            Ok(StatusCode::NO_CONTENT)
        }
        Deletion::NotFound => Err(ApiError::ExecutionNotFound),
        Deletion::Unfinished(execution_id) => Err(ApiError::Unfinished { execution_id }),
    }
}

/// The execution's events as Server-Sent Events (`status`, `stdout`, `stderr`, then `result`;
/// wire format in `livexec_events::sse`). Resumes after the `Last-Event-ID` header, or after
/// `?last_event_id=N` for clients that cannot set headers; the header wins.
#[utoipa::path(get, path = "/executions/{id}/events", tag = "executions",
    params(
        ("id" = uuid::Uuid, Path, description = "Execution id"),
        ("last_event_id" = Option<u64>, Query, description = "Resume after this event id"),
        ("Last-Event-ID" = Option<u64>, Header, description = "Resume after this event id"),
    ),
    responses(
        (status = 200, description = "Server-Sent Events: status, compile_stdout, compile_stderr, stdout, stderr, result, interrupted",
            content_type = "text/event-stream", body = String),
        (status = 400, description = "Bad id or Last-Event-ID", body = crate::error::ErrorBody),
        (status = 404, description = "No such execution", body = crate::error::ErrorBody),
        (status = 429, description = "The key holds its tier's open event streams", body = crate::error::ErrorBody),
        (status = 503, description = "Live events unavailable; poll the execution instead", body = crate::error::ErrorBody),
    ))]
pub async fn events(
    State(state): State<AppState>,
    PathId(id): PathId,
    QueryMap(query): QueryMap,
    OnShutdown(stop): OnShutdown,
    Authed(caller): Authed,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let after = if headers.contains_key("last-event-id") {
        last_event_id(&headers)?
    } else {
        parse_last_event_id(query.get("last_event_id").map(String::as_str))?
    };
    // A key holds at most its tier's `event_streams` open at once.
    let slot = match (&caller, state.config.tiers.of_caller(&caller)) {
        (Caller::Key(key), Some(tier)) => match tier.event_streams {
            Some(max) => Some(state.config.stream_slots.take(key.id, max).ok_or_else(|| {
                ApiError::TooManyRequests(Limited {
                    message: format!("open event streams of tier {}: {max}", tier.name),
                    limit: max,
                    remaining: 0,
                    reset_secs: 1,
                    retry_after_secs: 1,
                })
            })?),
            None => None,
        },
        _ => None,
    };
    let events: Arc<dyn EventBus> = Arc::new(Holding::new(state.events.clone(), slot));
    // The stream ends (`interrupted`) at shutdown, or once the caller's key is revoked.
    let revoked = crate::auth::ending::until_revoked(state.keys.clone(), caller.clone());
    let stop = Box::pin(async move {
        tokio::select! {
            () = stop => {}
            () = revoked => {}
        }
    });
    // The owner is checked on the execution as read, before anything is subscribed.
    let holder = Holder::of(&caller);
    let visible = move |owner| caller.can_see(owner);
    let store = state.store.clone();
    // The `result` event is the execution, as large as its answer: reserved before it is built
    // (not built when it would not fit), held until the stream ends, paced like an answer.
    let memory = state.config.response_memory.clone();
    let admitting = memory.clone();
    let admit: Admit = Arc::new(move |view| admitting.admit_result(holder, view));
    let stream = execution_sse_admitted(store, events, id, after, stop, visible, Some(admit));
    Ok(pace_frames(stream.await?.into_response(), memory))
}

/// A session's executions, newest first; a `Link: <…>; rel="next"` header when there are more.
#[utoipa::path(get, path = "/executions/sessions/{id}", tag = "executions",
    params(
        ("id" = uuid::Uuid, Path, description = "Session id"),
        ("limit" = Option<u32>, Query, description = "Page size"),
        ("before" = Option<uuid::Uuid>, Query, description = "Only executions older than this one"),
    ),
    responses(
        (status = 200, description = "Newest first; `Link: rel=next` when there are more",
            body = Vec<ExecutionView>),
        (status = 400, description = "Bad id or query", body = crate::error::ErrorBody),
        (status = 404, description = "No such session", body = crate::error::ErrorBody),
        (status = 429, description = "The caller's large answers in flight hold its share of the server's memory for answers", body = crate::error::ErrorBody),
        (status = 503, description = "The server's memory for large answers is in use; retry after `Retry-After`", body = crate::error::ErrorBody),
    ))]
pub async fn history(
    State(state): State<AppState>,
    Authed(caller): Authed,
    PathId(session_id): PathId,
    QueryMap(query): QueryMap,
) -> Result<Response, ApiError> {
    let page = validate::history_query(&query)?;
    // A session's executions are its owner's (runs of it by an admin included).
    owned::session(&state, &caller, session_id).await?;
    // What the page holds, without reading it (one extra id tells whether a next page
    // exists); then its rows are read a few at a time, up to HISTORY_READ bytes at once, each
    // reserved as it is made: a page of large executions is refused before it is all in
    // memory.
    let mut sizes = state
        .store
        .list_execution_sizes(session_id, page.limit + 1, page.before)
        .await?;
    let more = sizes.len() > page.limit as usize;
    sizes.truncate(page.limit as usize);
    let mut reservation = state.config.response_memory.start(Holder::of(&caller));
    let mut views: Vec<ExecutionView> = Vec::with_capacity(sizes.len());
    // Reading from just above the first listed id: a run that started meanwhile is not read.
    let mut cursor = sizes
        .first()
        .map(|(id, _)| uuid::Uuid::from_u128(id.as_u128().saturating_add(1)));
    let mut rest = sizes.as_slice();
    while !rest.is_empty() {
        let mut n = 1;
        let mut bytes = rest[0].1;
        while n < rest.len() && bytes + rest[n].1 <= HISTORY_READ {
            bytes += rest[n].1;
            n += 1;
        }
        let rows = state
            .store
            .list_executions(session_id, n as u32, cursor)
            .await?;
        if rows.is_empty() {
            break; // deleted meanwhile
        }
        for execution in rows {
            cursor = Some(execution.id);
            let view = execution.into_view();
            reservation.grow_for(&view)?;
            views.push(view);
        }
        rest = &rest[n.min(rest.len())..];
    }
    let next = match views.last() {
        Some(last) if more => Some(next_link(session_id, page.limit, last.execution_id)),
        _ => None,
    };
    let mut response = json_answer(StatusCode::OK, &views, reservation);
    if let Some(link) = next {
        response.headers_mut().insert(header::LINK, link);
    }
    Ok(response)
}

/// The most bytes of stored rows a history page reads at once (one row at least): 8 MiB.
const HISTORY_READ: u64 = 8 << 20;

fn next_link(session_id: SessionId, limit: u32, before: uuid::Uuid) -> HeaderValue {
    let link =
        format!("</executions/sessions/{session_id}?limit={limit}&before={before}>; rel=\"next\"");
    // Built only from UUIDs and digits, so always a valid header value.
    HeaderValue::from_str(&link).unwrap_or_else(|_| HeaderValue::from_static(""))
}
