//! The one error type of the HTTP API and the one place where errors become status codes.
//!
//! Every failure a handler can meet is an [`ApiError`] variant; [`IntoResponse`] turns it into
//! the body of API.md ("Errors"): `{ "statusCode", "message", "error" }`. Server-side failures
//! are logged here with their full cause chain and answered with a bare
//! `"Internal server error"`, so no detail ever reaches a client.

use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use livexec_core::{SessionId, StoreError};
use serde_json::{json, Value};

/// Everything that can go wrong while answering a request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body failed validation; one message per problem (API.md: an array).
    #[error("validation failed: {}", .0.join("; "))]
    Validation(Vec<String>),
    /// The body is not JSON.
    #[error("malformed JSON: {detail}")]
    MalformedJson {
        /// The parser's description (line and column).
        detail: String,
    },
    /// A bad request that is not about one body field (header, query, body shape).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// A path id is not a UUID.
    #[error("path id is not a UUID")]
    InvalidUuid,
    /// The body is over the configured limit.
    #[error("request body over the configured limit")]
    PayloadTooLarge,
    /// What the body carries is over a request maximum (files' total size); one message per
    /// problem, like [`ApiError::Validation`].
    #[error("request over a maximum: {}", .0.join("; "))]
    TooLarge(Vec<String>),
    /// The session does not exist.
    #[error("session not found")]
    SessionNotFound,
    /// The execution does not exist.
    #[error("execution not found")]
    ExecutionNotFound,
    /// The idempotency key already belongs to another session's execution.
    #[error("idempotency key {key:?} is already used by session {other_session}")]
    IdempotencyConflict {
        /// The key the client sent.
        key: String,
        /// The session that owns it.
        other_session: SessionId,
    },
    /// The idempotency key already names an execution of another request (another body).
    #[error("idempotency key {key:?} was already used for another request")]
    IdempotencyKeyReused {
        /// The key the client sent.
        key: String,
    },
    /// No valid key: missing, malformed, unknown or revoked, all answered alike (401, with
    /// `WWW-Authenticate: Bearer`).
    #[error("no valid API key")]
    Unauthorized,
    /// No API key has this id (`/admin/keys/:id`).
    #[error("API key not found")]
    KeyNotFound,
    /// A valid key that may not use this route (an admin route with a normal key).
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// A delete refused because an execution (the one asked for, or one of the session's) is
    /// still QUEUED or RUNNING: 409.
    #[error("execution {execution_id} is not finished")]
    Unfinished {
        /// The unfinished execution.
        execution_id: livexec_core::ExecutionId,
    },
    /// Over a rate limit or quota of the caller's tier: 429 with `Retry-After` and
    /// `RateLimit-*` headers, the message naming the limit.
    #[error("too many requests: {}", .0.message)]
    TooManyRequests(crate::ratelimit::Limited),
    /// No route has this path.
    #[error("no route for {method} {path}")]
    RouteNotFound {
        /// The request method.
        method: Method,
        /// The request path.
        path: String,
    },
    /// The path exists but not with this method.
    #[error("method {method} not allowed on {path}")]
    MethodNotAllowed {
        /// The request method.
        method: Method,
        /// The request path.
        path: String,
    },
    /// The store failed in a way the client cannot fix.
    #[error("store failed")]
    Store(#[source] StoreError),
    /// The live event bus failed (e.g. Redis is down) or refused a subscription past the
    /// server's cap: 503, the client can poll instead.
    #[error("event bus unavailable")]
    EventsUnavailable(#[source] livexec_events::EventsError),
    /// The server cannot answer this now for lack of a resource it shares between callers
    /// (the memory of large answers): 503 with `Retry-After`.
    #[error("unavailable: {message}")]
    Unavailable {
        /// What is lacking, for people.
        message: String,
        /// `Retry-After`, seconds.
        retry_after_secs: u64,
    },
    /// A handler panicked (caught by the panic layer).
    #[error("handler panicked: {detail}")]
    Panic {
        /// The panic payload, when it is a string.
        detail: String,
    },
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::SessionNotFound(_) => ApiError::SessionNotFound,
            StoreError::QuotaExceeded(q) => ApiError::TooManyRequests(q.into()),
            // Callers that send a key attach it with `StoreResultExt::for_idempotency_key`;
            // without one the conflict can only be a server bug, hence 500 via `Store`.
            other => ApiError::Store(other),
        }
    }
}

impl From<livexec_events::EventsError> for ApiError {
    fn from(err: livexec_events::EventsError) -> Self {
        use livexec_events::EventsError as E;
        match err {
            E::BadLastEventId { .. } => ApiError::BadRequest(err.to_string()),
            E::ExecutionNotFound { .. } => ApiError::ExecutionNotFound,
            E::Store { source, .. } => source.into(),
            other => ApiError::EventsUnavailable(other),
        }
    }
}

/// Turns store errors into API errors that know the request's idempotency key
/// (in the spirit of realworld-axum-sqlx's `ResultExt::on_constraint`).
pub trait StoreResultExt<T> {
    /// Map an [`StoreError::IdempotencyConflict`] to [`ApiError::IdempotencyConflict`] naming
    /// `key`; every other error goes through `From<StoreError>`.
    fn for_idempotency_key(self, key: Option<&str>) -> Result<T, ApiError>;
}

impl<T> StoreResultExt<T> for Result<T, StoreError> {
    fn for_idempotency_key(self, key: Option<&str>) -> Result<T, ApiError> {
        self.map_err(|err| match (err, key) {
            (StoreError::IdempotencyConflict { other_session }, Some(key)) => {
                ApiError::IdempotencyConflict {
                    key: key.to_owned(),
                    other_session,
                }
            }
            (StoreError::IdempotencyKeyReused, Some(key)) => ApiError::IdempotencyKeyReused {
                key: key.to_owned(),
            },
            (err, _) => err.into(),
        })
    }
}

impl ApiError {
    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Validation(_)
            | ApiError::MalformedJson { .. }
            | ApiError::BadRequest(_)
            | ApiError::InvalidUuid => StatusCode::BAD_REQUEST,
            ApiError::PayloadTooLarge | ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::SessionNotFound
            | ApiError::ExecutionNotFound
            | ApiError::KeyNotFound
            | ApiError::RouteNotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::IdempotencyConflict { .. } | ApiError::IdempotencyKeyReused { .. } => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::Unfinished { .. } => StatusCode::CONFLICT,
            ApiError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Store(_) | ApiError::Panic { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::EventsUnavailable(_) | ApiError::Unavailable { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        }
    }

    /// The error body of API.md ("Errors"), also the `error` of a failed batch item.
    pub fn body(&self) -> ErrorBody {
        let status = self.status();
        ErrorBody {
            status_code: status.as_u16(),
            message: self.message(),
            error: status.canonical_reason().unwrap_or("Error").to_owned(),
        }
    }

    /// The `message` field: an array for validation failures, a string otherwise.
    fn message(&self) -> Value {
        match self {
            ApiError::Validation(problems) | ApiError::TooLarge(problems) => json!(problems),
            ApiError::MalformedJson { detail } => json!(format!("Malformed JSON: {detail}")),
            ApiError::BadRequest(msg) => json!(msg),
            ApiError::InvalidUuid => json!("Validation failed (uuid is expected)"),
            ApiError::PayloadTooLarge => json!("request entity too large"),
            ApiError::SessionNotFound => json!("Session not found"),
            ApiError::ExecutionNotFound => json!("Execution not found"),
            ApiError::IdempotencyConflict { key, .. } => {
                json!(format!(
                    "Idempotency key \"{key}\" is already used by another session"
                ))
            }
            ApiError::IdempotencyKeyReused { key } => json!(format!(
                "Idempotency key \"{key}\" was already used for another request (another body); \
                 send a new key for a new request"
            )),
            ApiError::RouteNotFound { method, path } => json!(format!("Cannot {method} {path}")),
            ApiError::MethodNotAllowed { method, path } => {
                json!(format!("Method {method} is not allowed on {path}"))
            }
            ApiError::Unauthorized => json!(
                "A valid API key is required: send it as \"Authorization: Bearer KEY\" (or \
                 \"X-Auth-Token: KEY\")"
            ),
            ApiError::Forbidden(msg) => json!(msg),
            ApiError::Unfinished { execution_id } => json!(format!(
                "Execution {execution_id} is still queued or running; delete once it has finished"
            )),
            ApiError::TooManyRequests(limited) => json!(limited.message),
            ApiError::KeyNotFound => json!("API key not found"),
            ApiError::Unavailable { message, .. } => json!(message),
            ApiError::Store(_) | ApiError::Panic { .. } => json!("Internal server error"),
            ApiError::EventsUnavailable(_) => json!(
                "Live events are unavailable right now (the event bus is down or this server \
                 has too many open streams); poll GET /executions/:executionId instead"
            ),
        }
    }
}

/// `err` and its sources, joined with `: `, for the log (sources already printed by the
/// error above them are not repeated).
fn cause_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        // Many errors already print their source; do not repeat it.
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// The body of every error answer (API.md "Errors").
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    /// The HTTP status code, repeated.
    pub status_code: u16,
    /// What went wrong: one string, or one string per problem for a validation failure.
    #[schema(schema_with = message_schema)]
    pub message: Value,
    /// The status's reason phrase (`Bad Request`, `Not Found`, …).
    pub error: String,
}

/// `message`: a string, or an array of strings.
fn message_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, Type};
    let text = || ObjectBuilder::new().schema_type(Type::String);
    Schema::OneOf(
        OneOfBuilder::new()
            .item(text())
            .item(ArrayBuilder::new().items(text()))
            .build(),
    )
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        match &self {
            // Load shedding, counted by `livexec_responses_refused_total`: a flood of refusals
            // must not flood the error log.
            ApiError::Unavailable { message, .. } => {
                tracing::debug!(%message, "request refused for now");
            }
            _ if status.is_server_error() => {
                tracing::error!(error = %cause_chain(&self), "request failed");
            }
            _ => {}
        }
        let body = self.body();
        let mut response = (status, Json(body)).into_response();
        if let ApiError::TooManyRequests(limited) = &self {
            limited.add_headers(response.headers_mut());
        }
        if let ApiError::Unavailable {
            retry_after_secs, ..
        } = &self
        {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(*retry_after_secs),
            );
        }
        if matches!(self, ApiError::Unauthorized) {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backend() -> StoreError {
        StoreError::Backend {
            op: "ping",
            source: "pool closed".into(),
        }
    }

    #[test]
    fn cause_chain_does_not_repeat_printed_sources() {
        let err = ApiError::from(backend());
        assert_eq!(
            cause_chain(&err),
            "store failed: database error during ping: pool closed"
        );
    }

    #[test]
    fn store_errors_map_to_statuses_once() {
        let id = uuid::Uuid::now_v7();
        assert_eq!(
            ApiError::from(StoreError::SessionNotFound(id)).status(),
            StatusCode::NOT_FOUND
        );
        let conflict: Result<(), StoreError> =
            Err(StoreError::IdempotencyConflict { other_session: id });
        let err = conflict.for_idempotency_key(Some("k")).unwrap_err();
        assert_eq!(err.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            err.message(),
            json!("Idempotency key \"k\" is already used by another session")
        );
        assert_eq!(
            ApiError::from(backend()).status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        assert_eq!(
            ApiError::from(backend()).message(),
            json!("Internal server error")
        );
    }

    #[test]
    fn events_errors_map_to_statuses() {
        use livexec_events::EventsError;
        let id = uuid::Uuid::now_v7();
        // 2^64 is a non-negative integer, but no event id: the message says which ones are.
        let bad = ApiError::from(EventsError::BadLastEventId {
            value: "18446744073709551616".into(),
        });
        assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            bad.message(),
            json!("invalid Last-Event-ID \"18446744073709551616\": expected an event id, an integer from 0 to 18446744073709551615")
        );
        let missing = ApiError::from(EventsError::ExecutionNotFound { id });
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
        assert_eq!(missing.message(), json!("Execution not found"));
        let store = ApiError::from(EventsError::Store {
            op: "get_execution",
            id,
            source: backend(),
        });
        assert_eq!(store.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let bus = ApiError::from(EventsError::Bus {
            id,
            source: livexec_core::PortError {
                backend: "redis",
                op: "XREAD",
                source: "connection refused".into(),
            },
        });
        assert_eq!(bus.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            !bus.message().to_string().contains("refused"),
            "no detail to clients"
        );
    }
}
