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
//! token as sent (empty when missing) is hashed and looked up once in every case. `/health`,
//! the playground's pages and assets, `/docs` and `/openapi.json` never need a key.

pub mod token;

use crate::error::ApiError;
use crate::AppState;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use livexec_core::Caller;

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

/// Paths that never need a key: health, and the static pages that ask for one.
fn is_public(path: &str) -> bool {
    matches!(
        path,
        "/health" | "/" | "/docs" | "/openapi.json" | "/stats" | "/favicon.ico"
    ) || path.starts_with("/assets/")
        || path.starts_with("/docs/")
}

/// The token a request carries: `Authorization: Bearer KEY`, else `X-Auth-Token: KEY`.
/// `Some("")` for a header that is present but holds no usable token (malformed).
fn token_of(headers: &HeaderMap) -> Option<&str> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let text = value.to_str().unwrap_or("");
        return Some(match text.split_once(' ') {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
            _ => "",
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
    // The same lookup for every request, whatever it sent.
    let hash = token::hash_token(token.unwrap_or(""));
    let found = state.keys.key_by_hash(&hash).await?;
    match (token, found) {
        (Some(t), Some(key)) if !t.is_empty() && key.revoked_at.is_none() => Ok(Caller::Key(key)),
        // Open while no key exists: whatever a client sends is ignored, as by a Judge0 without
        // authentication (its SDK always sends an X-Auth-Token).
        _ if mode == AuthMode::Auto && state.keys.active_keys().await? == 0 => Ok(Caller::Open),
        _ => Err(ApiError::Unauthorized),
    }
}

/// The middleware: decide the caller of `req` and hand it on, or answer 401.
pub(crate) async fn authenticate(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    if state.config.auth == AuthMode::Off || is_public(req.uri().path()) {
        req.extensions_mut().insert(Caller::Open);
        return next.run(req).await;
    }
    match caller_for(&state, token_of(req.headers())).await {
        Ok(caller) => {
            req.extensions_mut().insert(caller);
            next.run(req).await
        }
        Err(err) => err.into_response(),
    }
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
    }

    #[test]
    fn modes_parse() {
        assert_eq!("OFF".parse::<AuthMode>(), Ok(AuthMode::Off));
        assert_eq!("required".parse::<AuthMode>(), Ok(AuthMode::Required));
        assert!("maybe".parse::<AuthMode>().is_err());
    }
}
