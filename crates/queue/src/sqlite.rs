//! [`SqliteQueue`]: the embedded durable queue, the `jobs` table of the store's SQLite database.
//!
//! The table is created by the store's migrations, and the store inserts a job in the same
//! transaction as its execution, so nothing accepted is ever lost between the two. A claim is an
//! `UPDATE … RETURNING` that chooses the owner to serve and its oldest due job (fairly between
//! owners, see [`crate::sql`]), one statement on its own: a writing statement holds the
//! database's write lock from its start, so two workers never claim the same job, and the
//! store's `served_on_claim` trigger marks the owner served in it. Times are unix milliseconds
//! of this machine's clock, the same clock the store uses for `run_at`. This module owns the SQLite [`Dialect`] (the claim
//! and the clock); the other statements are shared ([`crate::sql`]).

use crate::sql::{fair_choice_sql, Dialect, SqlQueue};
use crate::{millis, parse_execution_id, QueueError};
use livexec_core::ExecutionId;
use sqlx::sqlite::{SqlitePool, SqliteQueryResult};
use sqlx::Sqlite;
use std::future::Future;
use std::sync::LazyLock;
use std::time::Duration;

/// The job queue in the store's SQLite database. Cheap to clone (it shares the pool).
pub type SqliteQueue = SqlQueue<Sqlite>;

/// Now, in unix milliseconds.
fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The claim statement (`?1` now, `?2` lease end, `?3` token, `?4` worker), built once.
static CLAIM: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH RECURSIVE {} \
             UPDATE jobs SET attempts = attempts + 1, lease_until = ?2, lease_token = ?3, \
                 worker = ?4 \
             WHERE execution_id = ( \
                 SELECT j.execution_id FROM jobs j, chosen \
                 WHERE j.owner = chosen.owner AND j.run_at <= ?1 \
                     AND (j.lease_until IS NULL OR j.lease_until <= ?1) \
                 ORDER BY j.run_at, j.execution_id LIMIT 1) \
             AND run_at <= ?1 AND (lease_until IS NULL OR lease_until <= ?1) \
             RETURNING execution_id, attempts",
        fair_choice_sql("?1")
    )
});

/// Hyphenated-text ids; times computed here and bound as values.
impl Dialect for Sqlite {
    const BACKEND: &'static str = "sqlite queue";
    const GREATEST: &'static str = "MAX";
    type Id = String;

    /// Execution ids are stored as hyphenated text.
    fn id(id: ExecutionId) -> String {
        id.hyphenated().to_string()
    }

    fn read_id(stored: String) -> Result<ExecutionId, QueueError> {
        parse_execution_id(&stored)
    }

    fn from_now_sql(param: &str) -> String {
        param.to_owned()
    }

    fn from_now_arg(after: Duration) -> i64 {
        now_ms().saturating_add(millis(after))
    }

    fn rows_affected(done: &SqliteQueryResult) -> u64 {
        done.rows_affected()
    }

    fn claim<'a>(
        pool: &'a SqlitePool,
        worker: &'a str,
        lease_for: Duration,
        token: &'a str,
    ) -> impl Future<Output = Result<Option<(String, i32)>, sqlx::Error>> + Send + 'a {
        let now = now_ms();
        // One statement: it takes SQLite's write lock before it reads, so the choice and the
        // update see the same state and no other writer claims in between; the store's
        // `served_on_claim` trigger (migration 20261205000100) records the owner as served in
        // the same statement.
        sqlx::query_as(&CLAIM)
            .bind(now)
            .bind(now.saturating_add(millis(lease_for)))
            .bind(token)
            .bind(worker)
            .fetch_optional(pool)
    }
}
