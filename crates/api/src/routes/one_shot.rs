//! One-shot runs without a session (API.md §10): `POST /executions`, `POST /executions/batch`
//! and `GET /executions?ids=a,b,c`.
//!
//! A one-shot request is `{"language", "version"?, "source_code" | "files", …run options}`:
//! the code is `source_code`, or else the file of `files` named like the runtime's main file.
//! It is checked like a run's body (every problem at once), then created with its own
//! idempotency rules (a key names one request, never a session's run) and answered like a run,
//! `?wait=true` included.

use crate::auth::Authed;
use crate::error::{ApiError, StoreResultExt};
use crate::extract::{parse_uuid, JsonArray, JsonObject, QueryMap};
use crate::maxima::MAX_BATCH;
use crate::response_memory::{json_answer, Holder};
use crate::routes::runs::{enqueue, respond, RunAccepted};
use crate::validate::{self, check_language, check_no_nul, Problems, IDEMPOTENCY_HEADER};
use crate::{owned, run_body, run_files, AppState, OnShutdown};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Json;
use livexec_core::{Caller, ExecutionView, NewOneShot};
use livexec_runtimes::Availability;
use serde_json::{json, Map, Value};

/// Most ids of one `GET /executions?ids=`.
pub const MAX_IDS: usize = 100;

/// The runtime a one-shot asks for: `language` (an id or alias), at `version` when given.
fn runtime_for(
    state: &AppState,
    language: &str,
    version: Option<&str>,
    p: &mut Problems,
) -> Option<String> {
    let Some(version) = version else {
        return Some(language.to_owned());
    };
    let family = state.runtimes.get(language)?.language.clone();
    let mut known = Vec::new();
    let mut candidates: Vec<_> = state
        .runtimes
        .iter()
        .filter(|rt| rt.language == family)
        .collect();
    // The runtime `language` names first, then its siblings.
    candidates.sort_by_key(|rt| rt.id != language);
    for rt in candidates {
        if let Availability::Available { version: v } = state.runtimes.availability(&rt.id) {
            if v == version || v.starts_with(&format!("{version}.")) {
                return Some(rt.id.clone());
            }
            known.push(v.clone());
        }
    }
    let known = if known.is_empty() {
        "none is known here".to_owned()
    } else {
        known.join(", ")
    };
    p.push(format!(
        "version {version} of {family} is not available (available: {known})"
    ));
    None
}

/// Check a one-shot request: every problem at once.
fn one_shot(
    state: &AppState,
    caller: &Caller,
    body: &Map<String, Value>,
) -> Result<NewOneShot, ApiError> {
    let maxima = &state.maxima_for(caller);
    let mut p = Problems::default();
    let language = check_language(body.get("language"), true, state.runtimes.as_ref(), &mut p);
    let version = match body.get("version") {
        None | Some(Value::Null) => None,
        Some(Value::String(v)) => Some(v.as_str()),
        Some(_) => {
            p.push("version must be a string");
            None
        }
    };
    let mut source_code = match body.get("source_code") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => {
            check_no_nul("source_code", s, &mut p);
            Some(s.clone())
        }
        Some(_) => {
            p.push("source_code must be a string");
            None
        }
    };
    let has_code = body.get("source_code").is_some_and(|v| !v.is_null());
    let mut options = run_body::options(body, maxima, &state.runtimes, &mut p);
    let mut keys = vec!["language", "version", "source_code"];
    keys.extend_from_slice(run_body::OPTION_KEYS);
    p.unknown_properties(body, &keys);
    let runtime = language.and_then(|l| runtime_for(state, &l, version, &mut p));
    if let Some(rt) = runtime.as_deref().and_then(|id| state.runtimes.get(id)) {
        let main = rt.file_name.as_str();
        if has_code {
            run_files::check_files_with(
                &options.files,
                &[],
                main,
                rt.compile.as_ref(),
                maxima,
                0,
                &mut p,
            );
        } else if let Some(i) = options.files.iter().position(|f| f.name == main) {
            let file = options.files.remove(i);
            match String::from_utf8(file.content) {
                Ok(code) if !code.contains('\0') => source_code = Some(code),
                _ => p.push(format!(
                    "files[{i}].content must be UTF-8 text without NUL: it is the main file"
                )),
            }
        } else {
            p.push(format!(
                "source_code must be a string, or files must hold {main} (the main file of {})",
                rt.id
            ));
        }
    }
    if let Some(rt) = runtime.as_deref() {
        state.clamp_limits(caller, rt, &mut options.limits);
    }
    p.finish(|| NewOneShot {
        language: runtime.unwrap_or_default(),
        source_code: source_code.unwrap_or_default(),
        idempotency_key: None,
        enqueue_job: state.queue.enqueued_by_store(),
        options,
        owner: caller.owner(),
    })
}

/// `POST /executions`: run code without a session; with `?wait=true`, answer when it is over.
#[utoipa::path(post, path = "/executions", tag = "executions",
    params(
        ("wait" = Option<bool>, Query, description = "Answer when the execution is over"),
        ("timeout_ms" = Option<u64>, Query, description = "Longest wait, ms (capped)"),
        ("Idempotency-Key" = Option<String>, Header, description = "Repeat-safe key"),
    ),
    request_body = super::openapi::OneShot,
    responses(
        (status = 200, description = "Queued (without wait), or finished (with wait)", body = RunAccepted),
        (status = 202, description = "With wait: not over yet", body = ExecutionView),
        (status = 400, description = "Bad body, query or header", body = crate::error::ErrorBody),
        (status = 413, description = "Body over the configured limit", body = crate::error::ErrorBody),
        (status = 422, description = "The idempotency key belongs to another request", body = crate::error::ErrorBody),
        (status = 429, description = "Over a rate limit or quota of the key's tier", body = crate::error::ErrorBody),
        (status = 503, description = "With wait: the answer does not fit the server's memory for large answers now (the execution is kept); retry after `Retry-After`", body = crate::error::ErrorBody),
    ))]
pub async fn create(
    State(state): State<AppState>,
    QueryMap(query): QueryMap,
    OnShutdown(stop): OnShutdown,
    Authed(caller): Authed,
    headers: HeaderMap,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let key = validate::idempotency_key(&headers)?;
    let query = validate::run_query(&query)?;
    let mut new = one_shot(&state, &caller, &body)?;
    new.idempotency_key = key.clone();
    let created = state
        .store
        .create_one_shot_within(new, &state.quota_for(&caller))
        .await
        .for_idempotency_key(key.as_deref())?;
    respond(&state, created, query, stop, Holder::of(&caller)).await
}

/// One item of a batch: the request checked and created, or its error.
async fn batch_item(
    state: &AppState,
    caller: &Caller,
    item: &Value,
) -> Result<RunAccepted, ApiError> {
    let Value::Object(body) = item else {
        return Err(ApiError::BadRequest(
            "A batch item must be a JSON object".to_owned(),
        ));
    };
    let created = state
        .store
        .create_one_shot_within(one_shot(state, caller, body)?, &state.quota_for(caller))
        .await?;
    let execution = created.execution;
    if !state.queue.enqueued_by_store() {
        enqueue(state, &execution).await;
    }
    Ok(RunAccepted {
        execution_id: execution.id,
        status: execution.status,
    })
}

/// `POST /executions/batch`: up to [`MAX_BATCH`] one-shot requests; the answer is aligned with
/// them, each `{execution_id, status}` or `{error: {statusCode, message, error}}`.
#[utoipa::path(post, path = "/executions/batch", tag = "executions",
    request_body = Vec<super::openapi::OneShot>,
    responses(
        (status = 200, description = "One item per request: `{execution_id, status}` or `{error}`",
            body = Vec<super::openapi::BatchItem>),
        (status = 400, description = "Not an array, 0 or too many items, or an idempotency key", body = crate::error::ErrorBody),
        (status = 413, description = "Body over the configured limit", body = crate::error::ErrorBody),
    ))]
pub async fn batch(
    State(state): State<AppState>,
    Authed(caller): Authed,
    headers: HeaderMap,
    JsonArray(items): JsonArray,
) -> Result<Json<Vec<Value>>, ApiError> {
    if headers.contains_key(IDEMPOTENCY_HEADER) {
        return Err(ApiError::BadRequest(
            "idempotency-key is not accepted on a batch; send a request with its own key to \
             POST /executions instead"
                .to_owned(),
        ));
    }
    if items.is_empty() || items.len() > MAX_BATCH {
        return Err(ApiError::Validation(vec![format!(
            "a batch must contain 1 to {MAX_BATCH} requests, got {}",
            items.len()
        )]));
    }
    let mut out = Vec::with_capacity(items.len());
    for item in &items {
        out.push(match batch_item(&state, &caller, item).await {
            Ok(accepted) => json!(accepted),
            Err(err) => {
                if err.status().is_server_error() {
                    tracing::error!(error = %err, "batch item failed");
                }
                json!({ "error": err.body() })
            }
        });
    }
    Ok(Json(out))
}

/// `GET /executions?ids=a,b,c`: up to [`MAX_IDS`] executions at once, aligned with the ids
/// (null for an unknown one).
#[utoipa::path(get, path = "/executions", tag = "executions",
    params(("ids" = String, Query, description = "Comma-separated execution ids")),
    responses(
        (status = 200, description = "Aligned with the ids; null for an unknown one",
            body = Vec<Option<ExecutionView>>),
        (status = 400, description = "Missing, too many or malformed ids", body = crate::error::ErrorBody),
        (status = 429, description = "The caller's large answers in flight hold its share of the server's memory for answers", body = crate::error::ErrorBody),
        (status = 503, description = "The server's memory for large answers is in use; retry after `Retry-After`", body = crate::error::ErrorBody),
    ))]
pub async fn many(
    State(state): State<AppState>,
    Authed(caller): Authed,
    QueryMap(query): QueryMap,
) -> Result<Response, ApiError> {
    let raw = query.get("ids").map(String::as_str).unwrap_or_default();
    let parts: Vec<&str> = raw
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let mut p = Problems::default();
    if parts.is_empty() || parts.len() > MAX_IDS {
        p.push(format!(
            "ids must be a comma-separated list of 1 to {MAX_IDS} execution ids"
        ));
    }
    let ids: Vec<_> = parts
        .iter()
        .enumerate()
        .filter_map(|(i, part)| {
            let id = parse_uuid(part);
            if id.is_none() {
                p.push(format!("ids[{i}] must be a UUID"));
            }
            id
        })
        .collect();
    p.finish(|| ())?;
    let mut out = Vec::with_capacity(ids.len());
    // Each execution's part of the answer is reserved as it is read: many large ones end
    // in a 503/429 before they are all in memory.
    let mut reservation = state.config.response_memory.start(Holder::of(&caller));
    for id in ids {
        // Another key's execution is null, as an unknown one.
        let found = owned::visible(&caller, state.store.get_execution(id).await?);
        let view = found.map(|e| e.into_view());
        reservation.grow_for(&view)?;
        out.push(view);
    }
    Ok(json_answer(StatusCode::OK, &out, reservation))
}
