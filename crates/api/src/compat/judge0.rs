//! Judge0 CE 1.13.1's API: submissions (single and batch, `base64_encoded`, `wait`,
//! `fields`), languages, statuses and the informational documents, in Judge0's own shapes
//! and errors. A trailing slash is accepted on every path; `X-Auth-Token` and RapidAPI
//! headers are ignored.

use super::judge0_tables::{self as tables, MAX_BATCH};
use super::judge0_view::{self as view, Fields};
use super::judge0_wire::{self as wire, Refusal};
use super::native;
use crate::auth::Authed;
use crate::owned;
use crate::response_memory::{json_answer, Holder, Refused};
use crate::{AppState, OnShutdown};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::{Json, Router};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use uuid::Uuid;

/// Judge0's routes, each also with a trailing slash.
pub fn router() -> Router<AppState> {
    let routes: [(&str, MethodRouter<AppState>); 10] = [
        ("/submissions", post(create)),
        ("/submissions/batch", post(batch_create).get(batch_show)),
        ("/submissions/{token}", get(show)),
        ("/languages", get(languages)),
        ("/languages/{id}", get(language)),
        ("/statuses", get(statuses)),
        ("/config_info", get(config_info)),
        ("/about", get(about)),
        ("/system_info", get(system_info)),
        ("/workers", get(workers)),
    ];
    routes.into_iter().fold(Router::new(), |r, (path, route)| {
        r.route(path, route.clone())
            .route(&format!("{path}/"), route)
    })
}

/// An answer in Judge0's error shapes.
#[derive(Debug)]
pub enum Judge0Error {
    /// 400 `{"error"}`.
    Bad(String),
    /// 422 `{"field": [messages]}`.
    Invalid(Map<String, Value>),
    /// 404 for an unknown token or language.
    NotFound,
    /// 413: the body is larger than the service accepts.
    TooLarge,
    /// 429 `{"error"}`: over a rate limit or quota of the key's tier.
    TooMany(crate::ratelimit::Limited),
    /// 500: the platform failed (logged).
    Internal(String),
    /// 503 or 429 `{"error"}`: the answer does not fit the memory of large answers.
    Memory(Refused),
}

impl From<Refused> for Judge0Error {
    fn from(r: Refused) -> Self {
        Judge0Error::Memory(r)
    }
}

impl From<Refusal> for Judge0Error {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::Bad(m) => Judge0Error::Bad(m),
            Refusal::Invalid(m) => Judge0Error::Invalid(m),
        }
    }
}

/// Judge0's 422 fields for the shared checks' messages: each under the Judge0 attribute it
/// concerns (`args[…]` → `command_line_arguments`, `files[…]` → `additional_files`).
fn invalid_fields(messages: Vec<String>) -> Map<String, Value> {
    let mut fields = Map::new();
    for m in messages {
        let field = if m.starts_with("args") {
            "command_line_arguments"
        } else if m.starts_with("files") {
            "additional_files"
        } else {
            "source_code"
        };
        let list = fields.entry(field).or_insert_with(|| json!([]));
        if let Value::Array(list) = list {
            list.push(Value::String(m));
        }
    }
    fields
}

impl From<native::NativeError> for Judge0Error {
    fn from(e: native::NativeError) -> Self {
        match e {
            native::NativeError::Store(livexec_core::StoreError::QuotaExceeded(q)) => {
                return Judge0Error::TooMany(q.into())
            }
            native::NativeError::Invalid { messages, .. } => {
                return Judge0Error::Invalid(invalid_fields(messages))
            }
            _ => {}
        }
        tracing::error!(error = %e, "judge0 submission failed");
        Judge0Error::Internal(e.to_string())
    }
}

impl From<livexec_core::StoreError> for Judge0Error {
    fn from(e: livexec_core::StoreError) -> Self {
        native::NativeError::from(e).into()
    }
}

impl From<view::NotUtf8> for Judge0Error {
    fn from(_: view::NotUtf8) -> Self {
        Judge0Error::Bad("some attributes for this submission cannot be converted to UTF-8, use base64_encoded=true query parameter".into())
    }
}

impl IntoResponse for Judge0Error {
    fn into_response(self) -> Response {
        let (status, body) = match self {
            Judge0Error::Bad(m) => (StatusCode::BAD_REQUEST, json!({ "error": m })),
            Judge0Error::Invalid(m) => (StatusCode::UNPROCESSABLE_ENTITY, Value::Object(m)),
            Judge0Error::NotFound => (StatusCode::NOT_FOUND, json!({ "error": "Not Found" })),
            Judge0Error::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                json!({ "error": "request body is too large" }),
            ),
            Judge0Error::Internal(m) => (StatusCode::INTERNAL_SERVER_ERROR, json!({ "error": m })),
            Judge0Error::TooMany(limited) => return limited.response_in(super::Surface::Judge0),
            Judge0Error::Memory(refused) => return refused.response_in(super::Surface::Judge0),
        };
        (status, Json(body)).into_response()
    }
}

type Answer = Result<Response, Judge0Error>;
type Params = Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>;

/// The query's values (a malformed query string counts as empty, as Rails is lenient).
fn params(q: Params) -> HashMap<String, String> {
    q.map(|Query(m)| m).unwrap_or_default()
}

/// `base64_encoded` (default false, as Judge0 1.13.1).
fn base64(p: &HashMap<String, String>) -> bool {
    p.get("base64_encoded").is_some_and(|v| v == "true")
}

/// The body as a JSON object; Rails' 400 otherwise.
fn object(body: Result<Bytes, BytesRejection>) -> Result<Map<String, Value>, Judge0Error> {
    let bytes = body.map_err(|r| match r.status() {
        StatusCode::PAYLOAD_TOO_LARGE => Judge0Error::TooLarge,
        _ => Judge0Error::Bad("the request body could not be read".into()),
    })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(Judge0Error::Bad(
            "the request body is not a JSON object".into(),
        )),
    }
}

/// `POST /submissions`: 201 `{"token"}`, or with `wait=true` 201 with the finished
/// submission's `fields`.
async fn create(
    State(state): State<AppState>,
    OnShutdown(stop): OnShutdown,
    Authed(caller): Authed,
    q: Params,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let p = params(q);
    let fields = Fields::parse(p.get("fields").map(String::as_str)).map_err(Judge0Error::Bad)?;
    let body = object(body)?;
    let sub = wire::parse(&state, &caller, &body, base64(&p))?;
    let execution = native::submit(
        &state,
        &sub.runtime,
        &sub.source_code,
        sub.options,
        &caller,
        0,
    )
    .await?;
    if p.get("wait").is_some_and(|w| w == "true") {
        let execution = native::wait(&state, execution, stop).await?;
        would_fit(&state, &caller, &execution)?;
        let view = view::render(&state, &execution, &fields, base64(&p))?;
        drop(execution);
        let memory = &state.config.response_memory;
        return Ok(memory.answer(Holder::of(&caller), StatusCode::CREATED, &view)?);
    }
    Ok((StatusCode::CREATED, Json(json!({ "token": execution.id }))).into_response())
}

/// `GET /submissions/:token`.
/// Another key's submission answers as an unknown token does (issue 13).
async fn show(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(token): Path<String>,
    q: Params,
) -> Answer {
    let p = params(q);
    let fields = Fields::parse(p.get("fields").map(String::as_str)).map_err(Judge0Error::Bad)?;
    let id = Uuid::parse_str(&token).map_err(|_| Judge0Error::NotFound)?;
    let found = state.store.get_execution(id).await?;
    let execution = owned::visible(&caller, found).ok_or(Judge0Error::NotFound)?;
    would_fit(&state, &caller, &execution)?;
    let view = view::render(&state, &execution, &fields, base64(&p))?;
    drop(execution);
    let memory = &state.config.response_memory;
    Ok(memory.answer(Holder::of(&caller), StatusCode::OK, &view)?)
}

/// Whether a submission's answer could fit the memory of large answers now, before it is
/// rendered only to be refused: counted from its outputs, which it holds at least (rendered
/// and in the body), the real size reserved once rendered.
fn would_fit(
    state: &AppState,
    caller: &livexec_core::Caller,
    e: &livexec_core::Execution,
) -> Result<(), Refused> {
    let r = &e.report;
    let compile = r
        .compile
        .as_ref()
        .map_or(0, |c| c.stdout.len() + c.stderr.len());
    let outputs = (r.stdout.len() + r.stderr.len() + compile) as u64;
    state
        .config
        .response_memory
        .would_fit(Holder::of(caller), 2 * outputs)
}

/// The batch size check of both batch endpoints.
fn batch_size(n: usize) -> Result<(), Judge0Error> {
    match n {
        0 => Err(Judge0Error::Bad(
            "there should be at least one submission in a batch".into(),
        )),
        n if n > MAX_BATCH => Err(Judge0Error::Bad(format!(
            "number of submissions in a batch should be less than or equal to {MAX_BATCH}"
        ))),
        _ => Ok(()),
    }
}

/// `POST /submissions/batch`: `[{"token"} | {field errors}]` in order; 201 when at least
/// one was created, else 422.
async fn batch_create(
    State(state): State<AppState>,
    Authed(caller): Authed,
    q: Params,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let p = params(q);
    let body = object(body)?;
    let items = match body.get("submissions") {
        Some(Value::Array(items)) => items.clone(),
        _ => Vec::new(),
    };
    batch_size(items.len())?;
    let mut answers = Vec::with_capacity(items.len());
    let mut any = false;
    for item in &items {
        let parsed = match item {
            Value::Object(m) => wire::parse(&state, &caller, m, base64(&p)),
            _ => Err(Refusal::Bad("a submission must be a JSON object".into())),
        };
        answers.push(match parsed {
            Ok(sub) => {
                let submitted = native::submit(
                    &state,
                    &sub.runtime,
                    &sub.source_code,
                    sub.options,
                    &caller,
                    0,
                )
                .await;
                match submitted {
                    Ok(e) => {
                        any = true;
                        json!({ "token": e.id })
                    }
                    // Over a quota: this item (and those after it) say so, as a bad one does.
                    Err(native::NativeError::Store(livexec_core::StoreError::QuotaExceeded(q))) => {
                        json!({ "error": q.message() })
                    }
                    Err(native::NativeError::Invalid { messages, .. }) => {
                        Value::Object(invalid_fields(messages))
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            Err(Refusal::Invalid(m)) => Value::Object(m),
            Err(Refusal::Bad(m)) => json!({ "error": m }),
        });
    }
    let status = if any {
        StatusCode::CREATED
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    Ok((status, Json(Value::Array(answers))).into_response())
}

/// `GET /submissions/batch?tokens=a,b`: `{"submissions": [object | null]}` in token order
/// (null for an unknown token and for another key's).
async fn batch_show(State(state): State<AppState>, Authed(caller): Authed, q: Params) -> Answer {
    let p = params(q);
    let fields = Fields::parse(p.get("fields").map(String::as_str)).map_err(Judge0Error::Bad)?;
    let tokens: Vec<&str> = p
        .get("tokens")
        .map(|t| {
            t.trim()
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .collect()
        })
        .unwrap_or_default();
    batch_size(tokens.len())?;
    let mut submissions = Vec::with_capacity(tokens.len());
    // Each submission's part of the answer is reserved as it is made.
    let mut reservation = state.config.response_memory.start(Holder::of(&caller));
    for token in tokens {
        let execution = match Uuid::parse_str(token) {
            Ok(id) => owned::visible(&caller, state.store.get_execution(id).await?),
            Err(_) => None,
        };
        let submission = match execution {
            Some(e) => view::render(&state, &e, &fields, base64(&p))?,
            None => Value::Null,
        };
        reservation.grow_for(&submission)?;
        submissions.push(submission);
    }
    let answer = json!({ "submissions": submissions });
    Ok(json_answer(StatusCode::OK, &answer, reservation))
}

async fn languages(State(state): State<AppState>) -> Json<Value> {
    Json(tables::languages(&state))
}

async fn language(State(state): State<AppState>, Path(id): Path<String>) -> Answer {
    let id: i64 = id.parse().map_err(|_| Judge0Error::NotFound)?;
    let lang = tables::language(&state, id).ok_or(Judge0Error::NotFound)?;
    Ok(Json(lang).into_response())
}

async fn statuses() -> Json<Value> {
    Json(
        tables::STATUSES
            .iter()
            .map(|(id, _)| tables::status(*id))
            .collect(),
    )
}

async fn config_info(State(state): State<AppState>) -> Json<Value> {
    Json(tables::config_info(&state))
}

async fn about() -> Json<Value> {
    Json(tables::about())
}

/// `GET /system_info`: a few of the `lscpu`/`free` keys Judge0 reports.
async fn system_info() -> Json<Value> {
    let cpus = livexec_runtimes::machine_cores();
    let mem = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
        m.lines()
            .next()
            .map(|l| l.trim_start_matches("MemTotal:").trim().to_owned())
    });
    Json(json!({
        "Architecture": std::env::consts::ARCH,
        "CPU(s)": cpus.to_string(),
        "Mem": mem,
    }))
}

/// `GET /workers`: one queue, Judge0's shape. The API process does not see the workers, so
/// the counts are not reported (zeros).
async fn workers() -> Json<Value> {
    Json(json!([{
        "queue": tables::VERSION,
        "size": 0,
        "available": 0,
        "idle": 0,
        "working": 0,
        "paused": 0,
        "failed": 0,
    }]))
}

/// Split `command_line_arguments` as a POSIX shell splits words (Judge0 hands the string to
/// a shell): whitespace separates, single and double quotes group, a backslash escapes.
/// `None` on an unclosed quote.
pub fn split_args(s: &str) -> Option<Vec<String>> {
    let (mut words, mut word, mut in_word) = (Vec::new(), String::new(), false);
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '\'' => break,
                        c => word.push(c),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => word.push(chars.next()?),
                        c => word.push(c),
                    }
                }
            }
            '\\' => {
                in_word = true;
                word.push(chars.next()?);
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Some(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_split_as_a_shell_splits_them() {
        assert_eq!(
            split_args(r#"a  'b c' "d \"e\"" f\ g"#).unwrap(),
            ["a", "b c", "d \"e\"", "f g"]
        );
        assert_eq!(split_args("").unwrap(), Vec::<String>::new());
        assert_eq!(split_args("'open"), None);
    }

    #[test]
    fn seconds_and_timestamps_are_formatted_as_judge0_does() {
        assert_eq!(view::seconds(12), "0.012");
        assert_eq!(view::seconds(5000), "5.0");
        assert_eq!(view::seconds(10), "0.01");
        let t = chrono::DateTime::parse_from_rfc3339("2024-12-09T17:22:55.662+00:00").unwrap();
        assert_eq!(view::timestamp(t.into()), "2024-12-09T17:22:55.662Z");
    }

    #[test]
    fn fields_default_star_and_unknown() {
        assert!(Fields::parse(Some("*")).is_ok());
        assert_eq!(
            Fields::parse(Some("stdout,nope,bad")).unwrap_err(),
            "invalid fields: [nope, bad]"
        );
    }
}
