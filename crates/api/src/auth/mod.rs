//! Authentication (issue 13): who a request acts as.
//!
//! [`authenticate`] runs before every route and puts the request's [`Caller`] into its
//! extensions; handlers take it with the [`Authed`] extractor. Until keys exist the service is
//! open and every request acts as [`Caller::Open`].

use crate::error::ApiError;
use crate::AppState;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use livexec_core::Caller;

/// The middleware: decide the caller of `req` and hand it on.
pub(crate) async fn authenticate(
    State(_state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    req.extensions_mut().insert(Caller::Open);
    next.run(req).await
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
