//! Who is calling: API keys and the caller a request acts as (issue 13).
//!
//! Sessions and executions belong to the key that created them ([`Owner`]); a request acts as
//! a [`Caller`], which says what it may see. Keys themselves are stored by a
//! [`KeyStore`](crate::ports) implementation; only a hash of the secret token is ever kept.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

/// An API key's id (UUID v7). It is the only thing about a key that is ever logged.
pub type KeyId = Uuid;

/// Who owns a session or an execution: the key that created it, or `None` when it was created
/// while the service was open (no keys, or `LIVEXEC_AUTH=off`).
pub type Owner = Option<KeyId>;

/// An API key as stored (never its secret: only a hash of it is kept, and the token is shown
/// once, when the key is created).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ApiKey {
    /// The key's id.
    #[schema(value_type = uuid::Uuid)]
    pub id: KeyId,
    /// A name for people (`"ide-frontend"`), not unique.
    pub name: String,
    /// The tier whose rate limits, quotas and per-run maxima apply (`free`, `pro`, …).
    pub tier: String,
    /// Admin keys read everything and manage keys (`/admin/keys`).
    pub admin: bool,
    /// When it was created (RFC 3339 in JSON).
    pub created_at: DateTime<Utc>,
    /// When it was revoked; a revoked key is refused like an unknown one.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// The caller a request acts as, set by the authentication layer before any handler runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// No key: the service is open (no key exists yet, or `LIVEXEC_AUTH=off`). Sees
    /// everything, as the original service did; what it creates has no owner.
    Open,
    /// A valid, unrevoked key.
    Key(ApiKey),
}

impl Caller {
    /// The owner of what this caller creates.
    pub fn owner(&self) -> Owner {
        match self {
            Caller::Open => None,
            Caller::Key(key) => Some(key.id),
        }
    }

    /// Whether this caller may use admin routes (`/admin/keys`, any key's usage). An open
    /// service has no admin routes to protect: they answer as for an admin.
    pub fn is_admin(&self) -> bool {
        match self {
            Caller::Open => true,
            Caller::Key(key) => key.admin,
        }
    }

    /// Whether this caller may see a session or execution owned by `owner`: its own, or
    /// anything for an admin key or an open service. Anything else answers 404, never 403.
    pub fn can_see(&self, owner: Owner) -> bool {
        match self {
            Caller::Open => true,
            Caller::Key(key) => key.admin || owner == Some(key.id),
        }
    }
}

/// The quotas a tier puts on creating executions for one key (checked by the store in the
/// creating transaction, so they hold across API nodes). `None` is no limit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Quota {
    /// The tier's name, for the message of [`QuotaExceeded`].
    pub tier: String,
    /// Executions of the key QUEUED or RUNNING at once.
    pub concurrent: Option<u32>,
    /// Executions the key may create per UTC day.
    pub per_day: Option<u32>,
    /// Sessions the key may hold at once (created and not deleted). Checked when a session is
    /// created ([`crate::Store::create_session_within`]), not by [`Quota::is_limited`], which
    /// is about executions.
    pub sessions: Option<u32>,
}

impl Quota {
    /// No quota at all (an open service, or a tier without quotas).
    pub fn none() -> Quota {
        Quota::default()
    }

    /// Whether a quota on executions applies.
    pub fn is_limited(&self) -> bool {
        self.concurrent.is_some() || self.per_day.is_some()
    }
}

/// Which quota a new execution would have broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaKind {
    /// [`Quota::concurrent`].
    Concurrent,
    /// [`Quota::per_day`].
    Daily,
    /// [`Quota::sessions`].
    Sessions,
}

/// A refused execution: the key is at one of its quotas.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.message())]
pub struct QuotaExceeded {
    /// Which quota.
    pub kind: QuotaKind,
    /// The tier whose quota it is.
    pub tier: String,
    /// The quota's value.
    pub limit: u32,
    /// Seconds until trying again can succeed: to the next UTC midnight for the daily quota,
    /// a guess (1) for the concurrent one (it frees when a run ends).
    pub retry_after_secs: u64,
}

impl QuotaExceeded {
    /// The message for clients, naming the limit (`"daily quota of tier free: 1000
    /// executions per UTC day"`).
    pub fn message(&self) -> String {
        let (tier, limit) = (&self.tier, self.limit);
        match self.kind {
            QuotaKind::Concurrent => format!("concurrent executions of tier {tier}: {limit}"),
            QuotaKind::Daily => {
                format!("daily quota of tier {tier}: {limit} executions per UTC day")
            }
            QuotaKind::Sessions => format!(
                "sessions of tier {tier}: {limit} at once; delete one (DELETE /code-sessions/:id) to make room"
            ),
        }
    }
}

/// The idempotency key as stored: scoped to its owner (`"<key id>:<key>"`, or `"-:<key>"`
/// without one), so two keys never see each other's idempotency keys.
pub fn scoped_idempotency_key(owner: Owner, key: &str) -> String {
    match owner {
        Some(id) => format!("{id}:{key}"),
        None => format!("-:{key}"),
    }
}

/// The client's idempotency key of a stored (scoped) one.
pub fn unscoped_idempotency_key(stored: &str) -> &str {
    stored.split_once(':').map_or(stored, |(_, key)| key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(admin: bool) -> ApiKey {
        ApiKey {
            id: Uuid::now_v7(),
            name: "k".into(),
            tier: "free".into(),
            admin,
            created_at: Utc::now(),
            revoked_at: None,
        }
    }

    #[test]
    fn a_key_sees_its_own_an_admin_everything() {
        let me = key(false);
        let caller = Caller::Key(me.clone());
        assert!(caller.can_see(Some(me.id)));
        assert!(!caller.can_see(Some(Uuid::now_v7())));
        assert!(!caller.can_see(None));
        assert!(!caller.is_admin());
        assert!(Caller::Key(key(true)).can_see(Some(me.id)));
        assert!(Caller::Open.can_see(Some(me.id)));
    }

    #[test]
    fn idempotency_keys_round_trip_through_their_scope() {
        let id = Uuid::now_v7();
        let stored = scoped_idempotency_key(Some(id), "a:b");
        assert_eq!(unscoped_idempotency_key(&stored), "a:b");
        assert_ne!(stored, scoped_idempotency_key(None, "a:b"));
        assert_eq!(
            unscoped_idempotency_key(&scoped_idempotency_key(None, "x")),
            "x"
        );
    }
}
