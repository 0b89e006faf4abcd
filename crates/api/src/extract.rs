//! Our own extractors, so that every bad request gets the API error shape instead of axum's
//! plain-text rejections (the pattern of tokio-rs/axum `examples/error-handling`).
//!
//! - [`JsonObject`]: the request body as a JSON object (an empty body counts as `{}` so that
//!   validation can list what is missing); malformed JSON → 400, over the body limit → 413.
//! - [`PathId`]: the one `:id` path segment as a UUID; anything else → 400
//!   `"Validation failed (uuid is expected)"`.
//! - [`QueryMap`]: the query string as key/value pairs (later duplicates win).

use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde_json::{Map, Value};
use std::collections::HashMap;
use uuid::Uuid;

/// A request body that is a JSON object.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonObject(pub Map<String, Value>);

impl<S: Send + Sync> FromRequest<S> for JsonObject {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::BadRequest("The request body could not be read".to_owned())
            }
        })?;
        parse_object(&bytes).map(JsonObject)
    }
}

/// A request body that is a JSON array (a batch).
#[derive(Debug, Clone, PartialEq)]
pub struct JsonArray(pub Vec<Value>);

impl<S: Send + Sync> FromRequest<S> for JsonArray {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::BadRequest("The request body could not be read".to_owned())
            }
        })?;
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Array(items)) => Ok(JsonArray(items)),
            Ok(_) => Err(ApiError::BadRequest(
                "The request body must be a JSON array".to_owned(),
            )),
            Err(err) => Err(ApiError::MalformedJson {
                detail: err.to_string(),
            }),
        }
    }
}

/// Parse a body into a JSON object; whitespace only counts as `{}`.
pub fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::BadRequest(
            "The request body must be a JSON object".to_owned(),
        )),
        Err(err) => Err(ApiError::MalformedJson {
            detail: err.to_string(),
        }),
    }
}

/// The `:id` path parameter, parsed as a UUID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathId(pub Uuid);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::InvalidUuid)?;
        parse_uuid(&raw).map(PathId).ok_or(ApiError::InvalidUuid)
    }
}

/// A UUID in its canonical hyphenated 36-character form (any version, any case).
pub fn parse_uuid(raw: &str) -> Option<Uuid> {
    if raw.len() != 36 {
        return None;
    }
    Uuid::try_parse(raw).ok()
}

/// The query string as a map.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryMap(pub HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for QueryMap {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Query(map) = Query::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::BadRequest("The query string is malformed".to_owned()))?;
        Ok(QueryMap(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_body_is_an_empty_object() {
        assert_eq!(parse_object(b"").unwrap(), Map::new());
        assert_eq!(parse_object(b" \n\t").unwrap(), Map::new());
    }

    #[test]
    fn non_objects_and_garbage_are_refused() {
        for body in [&b"[]"[..], b"\"x\"", b"3", b"null", b"true"] {
            assert!(matches!(parse_object(body), Err(ApiError::BadRequest(_))));
        }
        for body in [&b"{"[..], b"{\"a\":}", b"\xff\xfe", b"{\"a\":\"\\ud800\"}"] {
            assert!(matches!(
                parse_object(body),
                Err(ApiError::MalformedJson { .. })
            ));
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = "[".repeat(100_000);
        let body = format!("{{\"a\":{deep}");
        assert!(parse_object(body.as_bytes()).is_err());
    }

    #[test]
    fn only_canonical_uuids_parse() {
        let id = Uuid::now_v7();
        assert_eq!(parse_uuid(&id.to_string()), Some(id));
        assert_eq!(parse_uuid(&id.to_string().to_uppercase()), Some(id));
        assert_eq!(parse_uuid(&id.simple().to_string()), None);
        assert_eq!(parse_uuid(&id.urn().to_string()), None);
        assert_eq!(parse_uuid("not-a-uuid"), None);
        assert_eq!(parse_uuid("zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz"), None);
    }
}
