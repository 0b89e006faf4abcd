//! The [`KeyStore`] on both backends: the `api_keys` table. Only the hex SHA-256 of a key's
//! token is stored and looked up (the `UNIQUE` index on `token_hash` answers it).

use crate::dialect::Dialect;
use crate::rows::{backend, now_ms, DataError, Reader};
use crate::sql::SqlStore;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use livexec_core::{ApiKey, KeyId, KeyStore, StoreError};
use sqlx::{Encode, Executor, FromRow, IntoArguments, Type};
use std::fmt::Write as _;
use uuid::Uuid;

/// The columns every key query selects, in [`RawKey`] order.
const KEY_COLUMNS: &str = "id, name, tier, admin, created_at, revoked_at";

/// A key row as stored.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct RawKey<Id, Time> {
    id: Id,
    name: String,
    tier: String,
    admin: bool,
    created_at: Time,
    revoked_at: Option<Time>,
}

impl<Id, Time> RawKey<Id, Time> {
    fn into_domain(
        self,
        read_id: Reader<Id, Uuid>,
        read_time: Reader<Time, DateTime<Utc>>,
    ) -> Result<ApiKey, DataError> {
        Ok(ApiKey {
            id: read_id("id", self.id)?,
            name: self.name,
            tier: self.tier,
            admin: self.admin,
            created_at: read_time("created_at", self.created_at)?,
            revoked_at: self
                .revoked_at
                .map(|t| read_time("revoked_at", t))
                .transpose()?,
        })
    }
}

/// The stored form of a token hash: lowercase hex.
fn hex(hash: &[u8; 32]) -> String {
    let mut out = String::with_capacity(64);
    for b in hash {
        let _ = write!(out, "{b:02x}");
    }
    out
}

fn key<DB: Dialect>(op: &'static str, row: RawKey<DB::Id, DB::Time>) -> Result<ApiKey, StoreError> {
    row.into_domain(DB::read_id, DB::read_time)
        .map_err(backend(op))
}

#[async_trait]
impl<DB> KeyStore for SqlStore<DB>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'r> RawKey<DB::Id, DB::Time>: FromRow<'r, DB::Row>,
    for<'r> (i64,): FromRow<'r, DB::Row>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> bool: Encode<'q, DB> + Type<DB>,
{
    async fn create_key(
        &self,
        name: &str,
        tier: &str,
        admin: bool,
        token_hash: &[u8; 32],
    ) -> Result<ApiKey, StoreError> {
        const OP: &str = "create_key";
        let created = ApiKey {
            id: Uuid::now_v7(),
            name: name.to_owned(),
            tier: tier.to_owned(),
            admin,
            created_at: now_ms(),
            revoked_at: None,
        };
        sqlx::query(
            "INSERT INTO api_keys (id, name, tier, admin, token_hash, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(DB::id(created.id))
        .bind(name)
        .bind(tier)
        .bind(admin)
        .bind(hex(token_hash))
        .bind(DB::time(created.created_at))
        .execute(self.pool())
        .await
        .map_err(backend(OP))?;
        Ok(created)
    }

    async fn key_by_hash(&self, token_hash: &[u8; 32]) -> Result<Option<ApiKey>, StoreError> {
        const OP: &str = "key_by_hash";
        let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE token_hash = $1");
        let row: Option<RawKey<DB::Id, DB::Time>> = sqlx::query_as(&sql)
            .bind(hex(token_hash))
            .fetch_optional(self.pool())
            .await
            .map_err(backend(OP))?;
        row.map(|r| key::<DB>(OP, r)).transpose()
    }

    async fn get_key(&self, id: KeyId) -> Result<Option<ApiKey>, StoreError> {
        const OP: &str = "get_key";
        let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = $1");
        let row: Option<RawKey<DB::Id, DB::Time>> = sqlx::query_as(&sql)
            .bind(DB::id(id))
            .fetch_optional(self.pool())
            .await
            .map_err(backend(OP))?;
        row.map(|r| key::<DB>(OP, r)).transpose()
    }

    async fn list_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        const OP: &str = "list_keys";
        let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys ORDER BY id");
        let rows: Vec<RawKey<DB::Id, DB::Time>> = sqlx::query_as(&sql)
            .fetch_all(self.pool())
            .await
            .map_err(backend(OP))?;
        rows.into_iter().map(|r| key::<DB>(OP, r)).collect()
    }

    async fn revoke_key(&self, id: KeyId) -> Result<Option<ApiKey>, StoreError> {
        const OP: &str = "revoke_key";
        let sql = format!(
            "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1 \
             RETURNING {KEY_COLUMNS}"
        );
        let row: Option<RawKey<DB::Id, DB::Time>> = sqlx::query_as(&sql)
            .bind(DB::id(id))
            .bind(DB::time(now_ms()))
            .fetch_optional(self.pool())
            .await
            .map_err(backend(OP))?;
        row.map(|r| key::<DB>(OP, r)).transpose()
    }

    async fn active_keys(&self) -> Result<u64, StoreError> {
        const OP: &str = "active_keys";
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM api_keys WHERE revoked_at IS NULL")
            .fetch_one(self.pool())
            .await
            .map_err(backend(OP))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn hashes_are_stored_as_lowercase_hex() {
        let mut h = [0u8; 32];
        h[0] = 0xab;
        h[31] = 0x01;
        let s = super::hex(&h);
        assert_eq!(s.len(), 64);
        assert!(s.starts_with("ab00"));
        assert!(s.ends_with("01"));
    }
}
