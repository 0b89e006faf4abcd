//! `/admin/keys`: create, list, show and revoke API keys (issue 13). Admin keys only: a normal
//! key gets 403. While the service is open (no key yet, or `LIVEXEC_AUTH=off`) whoever reaches
//! it may call these too, which is how a first key can be made over HTTP.
//!
//! A key's token is in the answer to its creation only; afterwards only its hash exists.
//! Revoking goes through the cached key store, so it holds at once on this node and, in scaled
//! mode, on every node (see `auth::revocations`).

use crate::auth::token::{hash_token, new_token};
use crate::auth::Authed;
use crate::error::ApiError;
use crate::extract::{JsonObject, PathId};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use livexec_core::model::rfc3339;
use livexec_core::{ApiKey, Caller, KeyId};
use serde::Serialize;
use serde_json::Value;

/// Longest key name, in characters.
const MAX_NAME_CHARS: usize = 100;

/// An API key as the admin routes show it (never its token, except once in [`NewKey`]).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KeyView {
    /// The key's id: what logs and usage name it by.
    #[schema(value_type = uuid::Uuid)]
    id: KeyId,
    /// A name for people.
    name: String,
    /// The tier whose limits apply.
    tier: String,
    /// Whether it may use `/admin/…` and read every key's data.
    admin: bool,
    /// When it was created (RFC 3339).
    created_at: String,
    /// When it was revoked (RFC 3339), `null` while it works.
    revoked_at: Option<String>,
}

impl From<ApiKey> for KeyView {
    fn from(k: ApiKey) -> Self {
        KeyView {
            id: k.id,
            name: k.name,
            tier: k.tier,
            admin: k.admin,
            created_at: rfc3339(k.created_at),
            revoked_at: k.revoked_at.map(rfc3339),
        }
    }
}

/// The answer to `POST /admin/keys`: the key and its secret token, shown this once.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NewKey {
    /// The key.
    #[serde(flatten)]
    key: KeyView,
    /// The secret to send as `Authorization: Bearer TOKEN`. Shown only now: store it.
    token: String,
}

/// Body of `POST /admin/keys`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct CreateKey {
    /// A name for people (1–100 characters).
    name: String,
    /// An admin key (default false).
    admin: Option<bool>,
    /// The tier (default `free`): letters, digits, `-` and `_`, up to 32.
    tier: Option<String>,
}

/// 403 unless `caller` may manage keys.
fn admin_only(caller: &Caller) -> Result<(), ApiError> {
    if caller.is_admin() {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "This route needs an admin API key".to_owned(),
        ))
    }
}

/// Validate a create body: the name, the admin flag and the tier (one of `tiers`), every
/// problem at once.
fn parse_create(
    body: &serde_json::Map<String, Value>,
    tiers: &crate::Tiers,
) -> Result<(String, bool, String), ApiError> {
    let mut problems = Vec::new();
    let name = match body.get("name") {
        Some(Value::String(s))
            if !s.trim().is_empty()
                && s.chars().count() <= MAX_NAME_CHARS
                && !s.chars().any(char::is_control) =>
        {
            s.trim().to_owned()
        }
        Some(Value::String(_)) => {
            problems.push(format!(
                "name must be 1 to {MAX_NAME_CHARS} characters, without control characters"
            ));
            String::new()
        }
        Some(_) => {
            problems.push("name must be a string".to_owned());
            String::new()
        }
        None => {
            problems.push("name should not be empty".to_owned());
            String::new()
        }
    };
    let admin = match body.get("admin") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            problems.push("admin must be a boolean value".to_owned());
            false
        }
    };
    let tier = match body.get("tier") {
        None | Some(Value::Null) => "free".to_owned(),
        Some(Value::String(t)) if tiers.contains(t) => t.clone(),
        Some(Value::String(t)) if crate::auth::valid_tier(t) => {
            problems.push(format!(
                "tier {t} is not a tier of this service; one of: {}",
                tiers.names().join(", ")
            ));
            String::new()
        }
        Some(_) => {
            problems.push(format!(
                "tier must be 1 to {} letters, digits, '-' or '_'",
                crate::auth::MAX_TIER_CHARS
            ));
            String::new()
        }
    };
    for field in body.keys() {
        if !matches!(field.as_str(), "name" | "admin" | "tier") {
            problems.push(format!("property {field} should not exist"));
        }
    }
    if problems.is_empty() {
        Ok((name, admin, tier))
    } else {
        Err(ApiError::Validation(problems))
    }
}

/// Create a key; the answer carries its token, once.
#[utoipa::path(post, path = "/admin/keys", tag = "admin",
    request_body = CreateKey,
    responses(
        (status = 201, description = "The key and its token (shown only now)", body = NewKey),
        (status = 400, description = "Invalid body", body = crate::error::ErrorBody),
        (status = 401, description = "No valid API key", body = crate::error::ErrorBody),
        (status = 403, description = "Not an admin key", body = crate::error::ErrorBody),
    ))]
pub async fn create(
    State(state): State<AppState>,
    Authed(caller): Authed,
    JsonObject(body): JsonObject,
) -> Result<(StatusCode, Json<NewKey>), ApiError> {
    admin_only(&caller)?;
    let (name, admin, tier) = parse_create(&body, &state.config.tiers)?;
    let token = new_token().map_err(|e| ApiError::Panic {
        detail: e.to_string(),
    })?;
    let key = state
        .keys
        .create_key(&name, &tier, admin, &hash_token(&token))
        .await?;
    tracing::info!(key = %key.id, admin, tier = %key.tier, "API key created");
    Ok((
        StatusCode::CREATED,
        Json(NewKey {
            key: key.into(),
            token,
        }),
    ))
}

/// Every key, oldest first, revoked ones included (never a token).
#[utoipa::path(get, path = "/admin/keys", tag = "admin",
    responses(
        (status = 200, description = "Every key", body = Vec<KeyView>),
        (status = 401, description = "No valid API key", body = crate::error::ErrorBody),
        (status = 403, description = "Not an admin key", body = crate::error::ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    Authed(caller): Authed,
) -> Result<Json<Vec<KeyView>>, ApiError> {
    admin_only(&caller)?;
    let keys = state.keys.list_keys().await?;
    Ok(Json(keys.into_iter().map(KeyView::from).collect()))
}

/// One key.
#[utoipa::path(get, path = "/admin/keys/{id}", tag = "admin",
    params(("id" = uuid::Uuid, Path, description = "Key id")),
    responses(
        (status = 200, description = "The key", body = KeyView),
        (status = 400, description = "The id is not a UUID", body = crate::error::ErrorBody),
        (status = 401, description = "No valid API key", body = crate::error::ErrorBody),
        (status = 403, description = "Not an admin key", body = crate::error::ErrorBody),
        (status = 404, description = "No such key", body = crate::error::ErrorBody),
    ))]
pub async fn show(
    State(state): State<AppState>,
    Authed(caller): Authed,
    PathId(id): PathId,
) -> Result<Json<KeyView>, ApiError> {
    admin_only(&caller)?;
    let key = state.keys.get_key(id).await?.ok_or(ApiError::KeyNotFound)?;
    Ok(Json(key.into()))
}

/// Revoke a key, at once and for good (on every node); its sessions and executions stay.
/// Revoking a revoked key answers it as it stands.
#[utoipa::path(delete, path = "/admin/keys/{id}", tag = "admin",
    params(("id" = uuid::Uuid, Path, description = "Key id")),
    responses(
        (status = 200, description = "The key, revoked", body = KeyView),
        (status = 400, description = "The id is not a UUID", body = crate::error::ErrorBody),
        (status = 401, description = "No valid API key", body = crate::error::ErrorBody),
        (status = 403, description = "Not an admin key", body = crate::error::ErrorBody),
        (status = 404, description = "No such key", body = crate::error::ErrorBody),
    ))]
pub async fn revoke(
    State(state): State<AppState>,
    Authed(caller): Authed,
    PathId(id): PathId,
) -> Result<Json<KeyView>, ApiError> {
    admin_only(&caller)?;
    let key = state
        .keys
        .revoke_key(id)
        .await?
        .ok_or(ApiError::KeyNotFound)?;
    tracing::info!(key = %key.id, "API key revoked");
    // Its open event streams end now, whatever store is behind `keys`.
    crate::auth::ending::heard();
    Ok(Json(key.into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(v: Value) -> serde_json::Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn create_bodies_are_checked_all_at_once() {
        let tiers = crate::Tiers::builtin();
        assert_eq!(
            parse_create(&body(json!({"name": " ide "})), &tiers).unwrap(),
            ("ide".to_owned(), false, "free".to_owned())
        );
        assert_eq!(
            parse_create(
                &body(json!({"name": "a", "admin": true, "tier": "pro"})),
                &tiers
            )
            .unwrap(),
            ("a".to_owned(), true, "pro".to_owned())
        );
        let Err(ApiError::Validation(problems)) =
            parse_create(&body(json!({"admin": 1, "tier": "a b", "x": 0})), &tiers)
        else {
            panic!("expected a validation error");
        };
        assert_eq!(problems.len(), 4, "{problems:?}");
        let Err(ApiError::Validation(problems)) =
            parse_create(&body(json!({"name": "a", "tier": "gold"})), &tiers)
        else {
            panic!("an unknown tier is refused");
        };
        assert_eq!(
            problems,
            ["tier gold is not a tier of this service; one of: free, pro, unlimited"]
        );
    }
}
