//! Authentication (issue 13): who a request acts as.
//!
//! [`authenticate`] runs before every route and puts the request's [`Caller`] into its
//! extensions; handlers take it with the [`Authed`] extractor. A key travels as
//! `Authorization: Bearer KEY` or `X-Auth-Token: KEY` (what Judge0 clients send). The mode
//! ([`AuthMode`], `LIVEXEC_AUTH`) says when a key is needed:
//! - `auto` (the default): while no unrevoked key exists the service is open (every request is
//!   [`Caller::Open`], as the original service was); once one exists, every request needs one.
//! - `required`: every request needs a key, even before any exists.
//! - `off`: no request needs one and keys are not checked at all.
//!
//! A missing, malformed, unknown or revoked key gets the same 401, after the same work: the
//! token as sent (empty when missing) is hashed, missed in the cache of validated keys
//! ([`cache`]: only successes are cached) and looked up once in the database, in every case.
//! Past [`failures::FailureLimit`] refusals from one client address the answer is 429 with
//! `Retry-After` ([`failures`]). `/health`, the playground's pages and assets, `/docs` and
//! `/openapi.json` never need a key. Refusals on the drop-in APIs come in their clients'
//! shapes: Judge0 `{"error"}`, Piston `{"message"}`, MCP a JSON-RPC error with
//! `WWW-Authenticate: Bearer`.
//!
//! Tokens are never logged: the request line carries the key's id only ([`LoggedKey`]).

pub mod cache;
pub mod ending;
pub mod failures;
pub mod revocations;
pub mod token;

use crate::compat::Surface;
use crate::error::ApiError;
use crate::ratelimit::Limited;
use crate::AppState;
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use failures::FailureLimiter;
use livexec_core::{Caller, KeyId};
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// When a request needs a key (`LIVEXEC_AUTH`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthMode {
    /// Open while no unrevoked key exists, keys required once one does (the default).
    #[default]
    Auto,
    /// Keys always required.
    Required,
    /// Keys never checked: the service is open to whoever reaches it.
    Off,
}

impl std::str::FromStr for AuthMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" | "" => Ok(AuthMode::Auto),
            "required" => Ok(AuthMode::Required),
            "off" => Ok(AuthMode::Off),
            other => Err(format!(
                "LIVEXEC_AUTH must be auto, required or off, not {other:?}"
            )),
        }
    }
}

/// Longest tier name, in characters.
pub const MAX_TIER_CHARS: usize = 32;

/// Whether `t` can name a tier: 1–32 ASCII letters, digits, `-` or `_`.
pub fn valid_tier(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= MAX_TIER_CHARS
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Paths that never need a key: health, and the static pages that ask for one.
fn is_public(path: &str) -> bool {
    matches!(
        path,
        "/health" | "/" | "/docs" | "/openapi.json" | "/stats" | "/favicon.ico"
    ) || path.starts_with("/assets/")
        || path.starts_with("/docs/")
}

/// The token a request carries: `Authorization: Bearer KEY`, else `X-Auth-Token: KEY`.
/// A bare `Authorization: KEY` (what Piston clients send) counts too. `Some("")` for a header
/// that is present but holds no usable token (malformed).
fn token_of(headers: &HeaderMap) -> Option<&str> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let text = value.to_str().unwrap_or("").trim();
        return Some(match text.split_once(' ') {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
            Some(_) => "",
            None if text.starts_with(token::TOKEN_PREFIX) => text,
            None => "",
        });
    }
    headers
        .get("x-auth-token")
        .map(|v| v.to_str().unwrap_or("").trim())
}

/// Who `token` (from `token_of`) is, under the state's mode.
pub(crate) async fn caller_for(state: &AppState, token: Option<&str>) -> Result<Caller, ApiError> {
    let mode = state.config.auth;
    if mode == AuthMode::Off {
        return Ok(Caller::Open);
    }
    // The same work for every refusal, whatever the request sent: one hash, one cache miss
    // (refusals are never cached), one database lookup, and in auto mode the (cached) count.
    let hash = token::hash_token(token.unwrap_or(""));
    let found = state.keys.key_by_hash(&hash).await?;
    if let (Some(t), Some(key)) = (token, found) {
        if !t.is_empty() && key.revoked_at.is_none() {
            return Ok(Caller::Key(key));
        }
    }
    // Open while no key exists: whatever a client sends is ignored, as by a Judge0 without
    // authentication (its SDK always sends an X-Auth-Token).
    if mode == AuthMode::Auto && state.keys.active_keys().await? == 0 {
        return Ok(Caller::Open);
    }
    Err(ApiError::Unauthorized)
}

/// The state of the [`authenticate`] layer: the app's, plus this router's buckets of refused
/// attempts per client address.
#[derive(Clone)]
pub(crate) struct Gate {
    pub(crate) state: AppState,
    pub(crate) failures: Arc<FailureLimiter>,
}

impl Gate {
    /// The gate of a router over `state`.
    pub(crate) fn new(state: AppState) -> Self {
        let failures = Arc::new(FailureLimiter::new(state.config.auth_failures));
        Gate { state, failures }
    }
}

/// The id of the key a request acted as, put on the response for the request's log line
/// (never the token).
#[derive(Debug, Clone, Copy)]
pub(crate) struct LoggedKey(pub(crate) KeyId);

/// The middleware: decide the caller of `req` and hand it on, or refuse it (401, or 429 when
/// its address has been refused too often).
pub(crate) async fn authenticate(
    State(gate): State<Gate>,
    mut req: Request,
    next: Next,
) -> Response {
    let state = &gate.state;
    if state.config.auth == AuthMode::Off || is_public(req.uri().path()) {
        req.extensions_mut().insert(Caller::Open);
        return next.run(req).await;
    }
    match caller_for(state, token_of(req.headers())).await {
        Ok(caller) => {
            let key = match &caller {
                Caller::Key(key) => Some(LoggedKey(key.id)),
                Caller::Open => None,
            };
            req.extensions_mut().insert(caller);
            let mut response = next.run(req).await;
            if let Some(key) = key {
                response.extensions_mut().insert(key);
            }
            response
        }
        Err(ApiError::Unauthorized) => {
            let addr = req
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip());
            let (path, compat) = (req.uri().path(), &state.config.compat);
            match gate.failures.refused(addr) {
                Ok(()) => unauthorized(path, compat),
                Err(wait) => too_many_refusals(wait, state.config.auth_failures.burst)
                    .response_for(path, compat),
            }
        }
        Err(err) => err.into_response(),
    }
}

/// The 401 of a refused request, in the shape of the API `path` belongs to (with
/// `WWW-Authenticate: Bearer`).
fn unauthorized(path: &str, compat: &crate::compat::CompatConfig) -> Response {
    let native = ApiError::Unauthorized;
    let message = match native.body().message {
        serde_json::Value::String(s) => s,
        other => other.to_string(),
    };
    let status = StatusCode::UNAUTHORIZED;
    let mut response = match Surface::of(path, compat) {
        Surface::Native => return native.into_response(),
        Surface::Judge0 => (status, axum::Json(json!({ "error": message }))).into_response(),
        Surface::Piston => (status, axum::Json(json!({ "message": message }))).into_response(),
        Surface::Mcp => {
            let body = json!({ "jsonrpc": "2.0", "id": null,
                "error": { "code": -32001, "message": message } });
            (status, axum::Json(body)).into_response()
        }
    };
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

/// The 429 of an address refused too often: the rate-limit answer of every other limit,
/// waiting `wait` (whole seconds, at least 1), out of a bucket of `burst` refusals.
fn too_many_refusals(wait: Duration, burst: u32) -> Limited {
    let secs = retry_secs(wait);
    Limited {
        message: format!(
            "Too many requests without a valid API key from this address; retry after {secs} s"
        ),
        limit: burst,
        remaining: 0,
        reset_secs: secs,
        retry_after_secs: secs,
    }
}

/// Whole seconds to wait, at least 1.
fn retry_secs(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0).max(u64::from(wait.is_zero()))
}

/// Extractor: the caller [`authenticate`] decided. Absent only when a route is served without
/// the middleware, a bug: then 500, never an open door.
#[derive(Debug, Clone)]
pub struct Authed(pub Caller);

impl<S: Send + Sync> FromRequestParts<S> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        match parts.extensions.get::<Caller>() {
            Some(caller) => Ok(Authed(caller.clone())),
            None => Err(ApiError::Panic {
                detail: "no caller: the route is served without the authentication layer"
                    .to_owned(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn tokens_come_from_bearer_or_x_auth_token() {
        let mut h = HeaderMap::new();
        assert_eq!(token_of(&h), None);
        h.insert("x-auth-token", HeaderValue::from_static("lx_abc"));
        assert_eq!(token_of(&h), Some("lx_abc"));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer lx_def"),
        );
        assert_eq!(token_of(&h), Some("lx_def"));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic Zm9v"),
        );
        assert_eq!(token_of(&h), Some(""));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("lx_raw"));
        assert_eq!(token_of(&h), Some("lx_raw"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("garbage"));
        assert_eq!(token_of(&h), Some(""));
    }

    #[test]
    fn paths_map_to_their_surface() {
        let all = crate::compat::CompatConfig::default();
        assert_eq!(Surface::of("/submissions/abc", &all), Surface::Judge0);
        assert_eq!(Surface::of("/submissionsX", &all), Surface::Native);
        assert_eq!(Surface::of("/api/v2/execute/", &all), Surface::Piston);
        assert_eq!(Surface::of("/mcp", &all), Surface::Mcp);
        assert_eq!(Surface::of("/executions/x", &all), Surface::Native);
        let none = crate::compat::CompatConfig {
            judge0: false,
            piston: false,
            mcp: false,
        };
        assert_eq!(Surface::of("/languages", &none), Surface::Native);
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_secs(Duration::ZERO), 1);
        assert_eq!(retry_secs(Duration::from_millis(100)), 1);
        assert_eq!(retry_secs(Duration::from_secs(2)), 2);
        assert_eq!(retry_secs(Duration::from_millis(2100)), 3);
    }

    #[test]
    fn modes_parse() {
        assert_eq!("OFF".parse::<AuthMode>(), Ok(AuthMode::Off));
        assert_eq!("required".parse::<AuthMode>(), Ok(AuthMode::Required));
        assert!("maybe".parse::<AuthMode>().is_err());
    }
}
