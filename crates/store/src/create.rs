//! `create_execution`: one statement snapshots the session (code, language, files) into a
//! QUEUED execution with the request's options, and when that inserted nothing, find out
//! whether the idempotency key already names an execution (that one is the answer, or a
//! conflict with another session), or the session does not exist.

use crate::dialect::Dialect;
use crate::json;
use crate::rows::{
    backend, new_execution, now_ms, resolve_existing, DataError, RawExecution, EXECUTION_COLUMNS,
};
use chrono::{DateTime, Utc};
use livexec_core::tenant::scoped_idempotency_key;
use livexec_core::{
    CreatedExecution, KeyId, NewExecution, NewOneShot, Owner, Quota, QuotaExceeded, QuotaKind,
    RunOptions, StoreError,
};
use sqlx::{Encode, Executor, FromRow, IntoArguments, Pool, Transaction, Type};

/// The embedded queue's job of a new execution: runnable at its `queued_at` (unix ms), with
/// its owner for the fair claim.
const JOB_INSERT: &str =
    "INSERT INTO jobs (execution_id, attempts, run_at, owner) VALUES ($1, 0, $2, $3)";

/// How many times `create_execution` retries after losing an idempotency-key race.
const KEY_RACE_TRIES: usize = 5;

/// What the insert hands back of the session it snapshotted: language, code, files (JSON),
/// owner.
type Snapshot<Id> = (String, String, Option<String>, Option<Id>);

/// The embedded queue's `jobs.owner` of an execution owned by `owner` (`''` for none).
fn job_owner(owner: Owner) -> String {
    owner.map(|o| o.to_string()).unwrap_or_default()
}

/// Takes `key`'s lock inside `tx` until it ends ([`Dialect::KEY_LOCK`]; nothing where
/// writing transactions are serialized anyway), so that the quota checks of one key run one
/// at a time on any number of API nodes.
pub(crate) async fn lock_key<DB>(
    tx: &mut Transaction<'static, DB>,
    key: KeyId,
    op: &'static str,
) -> Result<(), StoreError>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
{
    if let Some(lock) = DB::KEY_LOCK {
        let (hi, lo) = key.as_u64_pair();
        sqlx::query(lock)
            .bind((hi ^ lo) as i64)
            .execute(&mut **tx)
            .await
            .map_err(backend(op))?;
    }
    Ok(())
}

/// Counts one more execution of `key` today and the key's QUEUED and RUNNING executions
/// (the new one included), inside the creating transaction `tx`, after taking the key's lock:
/// the quota holds however many API nodes create at once. `Err(QuotaExceeded)` when over
/// (the caller rolls back, so nothing of the refused execution stays).
async fn check_quota<DB>(
    tx: &mut Transaction<'static, DB>,
    key: KeyId,
    quota: &Quota,
    now: DateTime<Utc>,
    op: &'static str,
) -> Result<(), StoreError>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'r> (i64,): FromRow<'r, DB::Row>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
{
    const DAY: &str = "INSERT INTO key_daily_executions (key_id, day, executions) \
         VALUES ($1, $2, 1) ON CONFLICT (key_id, day) \
         DO UPDATE SET executions = key_daily_executions.executions + 1 RETURNING executions";
    const UNFINISHED: &str = "SELECT COUNT(*) FROM executions \
         WHERE owner_key_id = $1 AND status IN ('QUEUED', 'RUNNING')";
    lock_key(tx, key, op).await?;
    let over = |kind, limit: u32, retry_after_secs| {
        Err(StoreError::QuotaExceeded(QuotaExceeded {
            kind,
            tier: quota.tier.clone(),
            limit,
            retry_after_secs,
        }))
    };
    if let Some(limit) = quota.per_day {
        let day = now.format("%Y-%m-%d").to_string();
        let (today,): (i64,) = sqlx::query_as(DAY)
            .bind(DB::id(key))
            .bind(day)
            .fetch_one(&mut **tx)
            .await
            .map_err(backend(op))?;
        if today > i64::from(limit) {
            return over(QuotaKind::Daily, limit, seconds_to_next_utc_day(now));
        }
    }
    if let Some(limit) = quota.concurrent {
        let (unfinished,): (i64,) = sqlx::query_as(UNFINISHED)
            .bind(DB::id(key))
            .fetch_one(&mut **tx)
            .await
            .map_err(backend(op))?;
        if unfinished > i64::from(limit) {
            return over(QuotaKind::Concurrent, limit, 1);
        }
    }
    Ok(())
}

/// Whole seconds from `now` to the next UTC midnight (at least 1).
fn seconds_to_next_utc_day(now: DateTime<Utc>) -> u64 {
    let next = (now.date_naive() + chrono::Days::new(1))
        .and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc());
    next.map_or(86_400, |next| {
        let ms = (next - now).num_milliseconds().max(0) as u64;
        ms.div_ceil(1000).max(1)
    })
}

/// Create the execution `new` asks for (see [`livexec_core::Store::create_execution_within`]).
pub(crate) async fn create_execution<DB>(
    pool: &Pool<DB>,
    new: NewExecution,
    quota: &Quota,
) -> Result<CreatedExecution, StoreError>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'r> RawExecution<DB::Id, DB::Time>: FromRow<'r, DB::Row>,
    for<'r> Snapshot<DB::Id>: FromRow<'r, DB::Row>,
    for<'r> (String, String): FromRow<'r, DB::Row>,
    for<'r> (i64,): FromRow<'r, DB::Row>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> Option<DB::Id>: Encode<'q, DB>,
{
    const OP: &str = "create_execution";
    // The key whose quota applies: the caller's, when its tier has one.
    let quota_key = new.owner.filter(|_| quota.is_limited());
    // The insert takes the session's snapshot itself: one statement on the request path
    // instead of a read and then a write. It inserts nothing when the key is taken or the
    // session unknown; which one is told apart after. The execution belongs to the
    // session's owner; the idempotency key is scoped to the caller's.
    const INSERT: &str = "INSERT INTO executions (id, session_id, language, source_code, \
         status, idempotency_key, attempts, queued_at, options, session_files, owner_key_id) \
         SELECT $1, id, language, source_code, 'QUEUED', $3, 0, $4, $5, files, owner_key_id \
         FROM sessions WHERE id = $2 ON CONFLICT (idempotency_key) DO NOTHING \
         RETURNING language, source_code, session_files, owner_key_id";
    let options = json::encode_options(&new.options).map_err(backend(OP))?;
    let scoped_key = new
        .idempotency_key
        .as_deref()
        .map(|k| scoped_idempotency_key(new.owner, k));
    for _ in 0..KEY_RACE_TRIES {
        let mut exec = new_execution(
            Some(new.session_id),
            String::new(),
            String::new(),
            new.idempotency_key.clone(),
            now_ms(),
            None,
        );
        let insert = sqlx::query_as::<_, Snapshot<DB::Id>>(INSERT)
            .bind(DB::id(exec.id))
            .bind(DB::id(new.session_id))
            .bind(scoped_key.as_deref())
            .bind(DB::time(exec.queued_at))
            .bind(options.as_deref());
        let read_owner = |o: Option<DB::Id>| {
            o.map(|o| DB::read_id("owner_key_id", o))
                .transpose()
                .map_err(backend(OP))
        };
        let snapshot = if new.enqueue_job || quota_key.is_some() {
            // The execution, its job and its quota's counters commit together.
            let mut tx = DB::begin_write(pool).await.map_err(backend(OP))?;
            match insert.fetch_optional(&mut *tx).await.map_err(backend(OP))? {
                Some((language, code, files, owner)) => {
                    let owner = read_owner(owner)?;
                    if let Some(key) = quota_key {
                        if let Err(err) = check_quota(&mut tx, key, quota, exec.queued_at, OP).await
                        {
                            tx.rollback().await.map_err(backend(OP))?;
                            return Err(err);
                        }
                    }
                    if new.enqueue_job {
                        // The queue's times are unix milliseconds in both backends.
                        sqlx::query(JOB_INSERT)
                            .bind(DB::id(exec.id))
                            .bind(exec.queued_at.timestamp_millis())
                            .bind(job_owner(owner))
                            .execute(&mut *tx)
                            .await
                            .map_err(backend(OP))?;
                    }
                    tx.commit().await.map_err(backend(OP))?;
                    Some((language, code, files, owner))
                }
                None => None,
            }
        } else {
            // One statement commits on its own, before its row comes back (both drivers
            // finish the statement first), so no transaction round trips around it.
            match insert.fetch_optional(pool).await.map_err(backend(OP))? {
                Some((language, code, files, owner)) => {
                    Some((language, code, files, read_owner(owner)?))
                }
                None => None,
            }
        };
        let Some((language, source_code, session_files, owner)) = snapshot else {
            match existing(pool, OP, &new).await? {
                Some(found) => return found,
                // The key's owner was not visible yet: try again.
                None => continue,
            }
        };
        exec.language = language;
        exec.source_code = source_code;
        exec.owner = owner;
        exec.options =
            json::run_options(options.as_deref(), session_files.as_deref()).map_err(backend(OP))?;
        return Ok(CreatedExecution {
            execution: exec,
            created: true,
        });
    }
    Err(backend(OP)(DataError::KeyRaceUnresolved {
        tries: KEY_RACE_TRIES,
    }))
}

/// Why `create_execution` inserted nothing: the execution its idempotency key already
/// names (or the conflict with another session), else `SessionNotFound`; `None` when
/// neither is visible yet (an idempotency race: look again).
async fn existing<DB>(
    pool: &Pool<DB>,
    op: &'static str,
    new: &NewExecution,
) -> Result<Option<Result<CreatedExecution, StoreError>>, StoreError>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'r> RawExecution<DB::Id, DB::Time>: FromRow<'r, DB::Row>,
    for<'r> (String, String): FromRow<'r, DB::Row>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
{
    if let Some(key) = &new.idempotency_key {
        let by_key =
            format!("SELECT {EXECUTION_COLUMNS} FROM executions WHERE idempotency_key = $1");
        let existing: Option<RawExecution<DB::Id, DB::Time>> = sqlx::query_as(&by_key)
            .bind(scoped_idempotency_key(new.owner, key))
            .fetch_optional(pool)
            .await
            .map_err(backend(op))?;
        if let Some(existing) = existing {
            // The request as it was stored: its own options, before the session's files.
            let asked: RunOptions = json::decode("options", existing.options.as_deref())
                .map_err(backend(op))?
                .unwrap_or_default();
            let found = existing
                .into_domain(DB::read_id, DB::read_time)
                .map_err(backend(op))?;
            return Ok(Some(resolve_existing(
                found,
                Some(new.session_id),
                asked == new.options,
            )));
        }
    }
    let session: Option<(String, String)> =
        sqlx::query_as("SELECT language, source_code FROM sessions WHERE id = $1")
            .bind(DB::id(new.session_id))
            .fetch_optional(pool)
            .await
            .map_err(backend(op))?;
    match session {
        None => Ok(Some(Err(StoreError::SessionNotFound(new.session_id)))),
        Some(_) => Ok(None),
    }
}

/// Create the one-shot execution `new` asks for (see
/// [`livexec_core::Store::create_one_shot_within`]).
pub(crate) async fn create_one_shot<DB>(
    pool: &Pool<DB>,
    new: NewOneShot,
    quota: &Quota,
) -> Result<CreatedExecution, StoreError>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'r> RawExecution<DB::Id, DB::Time>: FromRow<'r, DB::Row>,
    for<'r> (i64,): FromRow<'r, DB::Row>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> Option<DB::Id>: Encode<'q, DB>,
{
    const OP: &str = "create_one_shot";
    const INSERT: &str = "INSERT INTO executions (id, language, source_code, status, \
         idempotency_key, attempts, queued_at, options, owner_key_id) \
         VALUES ($1, $2, $3, 'QUEUED', $4, 0, $5, $6, $7) \
         ON CONFLICT (idempotency_key) DO NOTHING";
    let options = json::encode_options(&new.options).map_err(backend(OP))?;
    let scoped_key = new
        .idempotency_key
        .as_deref()
        .map(|k| scoped_idempotency_key(new.owner, k));
    for _ in 0..KEY_RACE_TRIES {
        let mut exec = new_execution(
            None,
            new.language.clone(),
            new.source_code.clone(),
            new.idempotency_key.clone(),
            now_ms(),
            new.owner,
        );
        exec.options = new.options.clone();
        let mut tx = DB::begin_write(pool).await.map_err(backend(OP))?;
        let done = sqlx::query(INSERT)
            .bind(DB::id(exec.id))
            .bind(new.language.as_str())
            .bind(new.source_code.as_str())
            .bind(scoped_key.as_deref())
            .bind(DB::time(exec.queued_at))
            .bind(options.as_deref())
            .bind(new.owner.map(DB::id))
            .execute(&mut *tx)
            .await
            .map_err(backend(OP))?;
        if DB::rows_affected(&done) > 0 {
            if let Some(key) = new.owner.filter(|_| quota.is_limited()) {
                if let Err(err) = check_quota(&mut tx, key, quota, exec.queued_at, OP).await {
                    tx.rollback().await.map_err(backend(OP))?;
                    return Err(err);
                }
            }
            if new.enqueue_job {
                sqlx::query(JOB_INSERT)
                    .bind(DB::id(exec.id))
                    .bind(exec.queued_at.timestamp_millis())
                    .bind(job_owner(new.owner))
                    .execute(&mut *tx)
                    .await
                    .map_err(backend(OP))?;
            }
            tx.commit().await.map_err(backend(OP))?;
            return Ok(CreatedExecution {
                execution: exec,
                created: true,
            });
        }
        tx.rollback().await.map_err(backend(OP))?;
        // Only a taken key inserts nothing: find its execution (or try again when its
        // owner is not visible yet).
        let Some(key) = &scoped_key else {
            continue;
        };
        let by_key =
            format!("SELECT {EXECUTION_COLUMNS} FROM executions WHERE idempotency_key = $1");
        let existing: Option<RawExecution<DB::Id, DB::Time>> = sqlx::query_as(&by_key)
            .bind(key.as_str())
            .fetch_optional(pool)
            .await
            .map_err(backend(OP))?;
        let Some(existing) = existing else { continue };
        let found = existing
            .into_domain(DB::read_id, DB::read_time)
            .map_err(backend(OP))?;
        let same = found.language == new.language
            && found.source_code == new.source_code
            && found.options == new.options;
        return resolve_existing(found, None, same);
    }
    Err(backend(OP)(DataError::KeyRaceUnresolved {
        tries: KEY_RACE_TRIES,
    }))
}
