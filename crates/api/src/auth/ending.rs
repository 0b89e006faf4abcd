//! What a revocation does to a key's connections that are already open: an event stream of
//! the key ends (with the `interrupted` event a shutdown sends; resuming it is then a 401), as
//! every new request of the key is already refused.
//!
//! A stream waits on [`until_revoked`]: it asks the key store about its key whenever this
//! process hears of a revocation ([`heard`]: through its own admin API, or another node's over
//! Redis), and every [`RECHECK`] in any case (a `livexec keys revoke` without Redis reaches a
//! running service no other way). A wake-up for another key's revocation costs one lookup.

use livexec_core::{Caller, KeyStore};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// How often an open stream asks the key store about its key when it hears nothing.
pub const RECHECK: Duration = Duration::from_secs(10);

/// Rung when this process hears of a revocation.
static REVOCATIONS: Notify = Notify::const_new();

/// A key was revoked (or every cached key dropped): open streams check their keys now.
pub fn heard() {
    REVOCATIONS.notify_waiters();
}

/// Resolves once `caller`'s key is revoked or gone; never for an open caller. A failed
/// lookup keeps the stream (the next one decides).
///
/// The wake-up is armed when this is called (not when first polled), and the key is looked up
/// once at the start: a revocation between the request's authentication and then is not
/// missed.
pub fn until_revoked(
    keys: Arc<dyn KeyStore>,
    caller: Caller,
) -> impl std::future::Future<Output = ()> + Send {
    let first = matches!(caller, Caller::Key(_)).then(armed);
    async move {
        let (Caller::Key(key), Some(mut woken)) = (caller, first) else {
            return std::future::pending().await;
        };
        loop {
            match keys.get_key(key.id).await {
                Ok(Some(now)) if now.revoked_at.is_none() => {}
                Ok(_) => {
                    tracing::info!(key = %key.id, "API key revoked: its open event stream ends");
                    return;
                }
                Err(e) => {
                    tracing::warn!(key = %key.id, error = %e, "checking an open stream's key failed")
                }
            }
            tokio::select! {
                () = &mut woken => {}
                () = tokio::time::sleep(RECHECK) => {}
            }
            // Armed before the next lookup, so a revocation heard during it is not missed.
            woken = armed();
        }
    }
}

/// A wake-up on the next revocation heard, already registered.
fn armed() -> std::pin::Pin<Box<tokio::sync::futures::Notified<'static>>> {
    let mut woken = Box::pin(REVOCATIONS.notified());
    woken.as_mut().enable();
    woken
}

/// Resolves when this process next hears of a revocation, or after [`RECHECK`]: when holders
/// of many keys' connections (MCP sessions) look their keys up again.
pub async fn next_check() {
    tokio::select! {
        () = REVOCATIONS.notified() => {}
        () = tokio::time::sleep(RECHECK) => {}
    }
}
