//! Row → domain conversion shared by both backends, and the errors of bad stored data.
//!
//! Rows are read into [`RawExecution`] and [`RawSession`], generic over how the backend stores
//! ids and times (TEXT ids and unix-ms integers in SQLite, UUID and timestamptz in PostgreSQL);
//! the backend's readers for those columns are passed in, and the parsing of status and
//! error-type strings, which can fail on bad data, happens once here. The column lists are what
//! every query selects.

use crate::json;
use chrono::{DateTime, Utc};
use livexec_core::tenant::unscoped_idempotency_key;
use livexec_core::{CompileReport, ErrorType, Execution, RunReport, Session, Status, StoreError};
use uuid::Uuid;

/// Stored data that does not fit the domain, or a request the store refuses to write.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A status column holds a string that is not a [`Status`].
    #[error("column {column} holds unknown status {value:?}")]
    BadStatus {
        /// Which column.
        column: &'static str,
        /// What it holds.
        value: String,
    },
    /// An `error_type` column holds a string that is not an [`ErrorType`].
    #[error("column error_type holds unknown error type {value:?}")]
    BadErrorType {
        /// What it holds.
        value: String,
    },
    /// The `compile` column holds text that is not a compile report.
    #[error("column compile holds no valid compile report: {source}")]
    BadCompile {
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// A JSON column (run options, files, limits, tests) could not be written or read.
    #[error("column {column} holds no valid JSON of its kind: {source}")]
    BadJson {
        /// Which column.
        column: &'static str,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// An id column holds something that is not a UUID.
    #[error("column {column} holds {value:?}, which is not a UUID")]
    BadUuid {
        /// Which column.
        column: &'static str,
        /// What it holds.
        value: String,
    },
    /// A timestamp column holds milliseconds outside chrono's range.
    #[error("column {column} holds {value} ms, which is not a representable time")]
    BadTimestamp {
        /// Which column.
        column: &'static str,
        /// What it holds.
        value: i64,
    },
    /// A `usage_daily.day` is not a `YYYY-MM-DD` date.
    #[error("column day holds {value:?}, which is not a YYYY-MM-DD date")]
    BadDay {
        /// What it holds.
        value: String,
    },
    /// `finish_execution` was given a result whose status is not terminal.
    #[error("a run result must have a terminal status, got {status}")]
    NonTerminalResult {
        /// The status given.
        status: Status,
    },
    /// `create_execution` kept losing the race for an idempotency key without finding the winner.
    #[error("idempotency key race still unresolved after {tries} tries")]
    KeyRaceUnresolved {
        /// How many tries were made.
        tries: usize,
    },
    /// The database URL names no backend this store supports.
    #[error(
        "unsupported database URL scheme {scheme:?}: expected sqlite:, postgres: or postgresql: \
         (e.g. sqlite://livexec.db or postgres://user@host:5432/db)"
    )]
    UnsupportedUrl {
        /// The scheme found (everything before the first `:`).
        scheme: String,
    },
}

/// Wrap a driver error (or a [`DataError`]) with the operation that hit it.
pub(crate) fn backend<E>(op: &'static str) -> impl FnOnce(E) -> StoreError
where
    E: std::error::Error + Send + Sync + 'static,
{
    move |source| StoreError::Backend {
        op,
        source: Box::new(source),
    }
}

/// The current time, truncated to whole milliseconds so it round-trips through both backends
/// and through RFC 3339 with millisecond precision exactly.
pub(crate) fn now_ms() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now)
}

/// Unix milliseconds → time.
pub(crate) fn from_ms(column: &'static str, ms: i64) -> Result<DateTime<Utc>, DataError> {
    DateTime::from_timestamp_millis(ms).ok_or(DataError::BadTimestamp { column, value: ms })
}

/// Hyphenated UUID text → UUID.
pub(crate) fn parse_uuid(column: &'static str, text: &str) -> Result<Uuid, DataError> {
    Uuid::parse_str(text).map_err(|_| DataError::BadUuid {
        column,
        value: text.to_owned(),
    })
}

/// A stored status string → [`Status`].
pub(crate) fn parse_status(column: &'static str, text: &str) -> Result<Status, DataError> {
    text.parse().map_err(|_| DataError::BadStatus {
        column,
        value: text.to_owned(),
    })
}

/// The columns every execution query selects, in [`RawExecution`] order.
pub(crate) const EXECUTION_COLUMNS: &str = "id, session_id, language, source_code, status, \
     stdout, stderr, execution_time_ms, error_message, error_type, error_line, exit_code, \
     signal, cpu_time_ms, memory_kb, idempotency_key, attempts, queued_at, started_at, \
     finished_at, compile, options, session_files, limits, tests, output_files, owner_key_id";

/// The bytes an execution row holds in its columns that can be large, as one BIGINT
/// expression (for reading a page of rows in parts of bounded size).
pub(crate) const EXECUTION_BYTES: &str = "CAST(\
     COALESCE(octet_length(source_code), 0) + COALESCE(octet_length(stdout), 0) + \
     COALESCE(octet_length(stderr), 0) + COALESCE(octet_length(error_message), 0) + \
     COALESCE(octet_length(compile), 0) + COALESCE(octet_length(options), 0) + \
     COALESCE(octet_length(session_files), 0) + COALESCE(octet_length(tests), 0) + \
     COALESCE(octet_length(output_files), 0) AS BIGINT)";

/// Reads a stored id or time column of type `T` into the domain type `U`.
pub(crate) type Reader<T, U> = fn(&'static str, T) -> Result<U, DataError>;

/// An execution row as stored: ids of type `Id` and times of type `Time` in the backend's own
/// encoding, status strings not yet parsed.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct RawExecution<Id, Time> {
    pub id: Id,
    pub session_id: Option<Id>,
    pub language: String,
    pub source_code: String,
    pub status: String,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub execution_time_ms: i64,
    pub error_message: Option<String>,
    pub error_type: Option<String>,
    pub error_line: Option<i32>,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub cpu_time_ms: Option<i64>,
    pub memory_kb: Option<i64>,
    pub idempotency_key: Option<String>,
    pub attempts: i32,
    pub queued_at: Time,
    pub started_at: Option<Time>,
    pub finished_at: Option<Time>,
    pub compile: Option<String>,
    pub options: Option<String>,
    pub session_files: Option<String>,
    pub limits: Option<String>,
    pub tests: Option<String>,
    pub output_files: Option<String>,
    pub owner_key_id: Option<Id>,
}

impl<Id, Time> RawExecution<Id, Time> {
    /// Decode the ids and times with the backend's readers and parse the status strings into
    /// the domain execution.
    pub(crate) fn into_domain(
        self,
        read_id: Reader<Id, Uuid>,
        read_time: Reader<Time, DateTime<Utc>>,
    ) -> Result<Execution, DataError> {
        let read_opt_time = |column, stored: Option<Time>| -> Result<_, DataError> {
            stored.map(|v| read_time(column, v)).transpose()
        };
        let id = read_id("id", self.id)?;
        let session_id = self
            .session_id
            .map(|s| read_id("session_id", s))
            .transpose()?;
        let queued_at = read_time("queued_at", self.queued_at)?;
        let started_at = read_opt_time("started_at", self.started_at)?;
        let finished_at = read_opt_time("finished_at", self.finished_at)?;
        let status = parse_status("status", &self.status)?;
        let error_type = self
            .error_type
            .map(|v| {
                v.parse::<ErrorType>()
                    .map_err(|_| DataError::BadErrorType { value: v.clone() })
            })
            .transpose()?;
        let compile = self
            .compile
            .as_deref()
            .map(|text| {
                serde_json::from_str::<CompileReport>(text)
                    .map_err(|source| DataError::BadCompile { source })
            })
            .transpose()?;
        let options = json::run_options(self.options.as_deref(), self.session_files.as_deref())?;
        let limits = json::decode("limits", self.limits.as_deref())?;
        let tests = json::decode_list("tests", self.tests.as_deref())?;
        let output_files = json::decode_list("output_files", self.output_files.as_deref())?;
        let owner = self
            .owner_key_id
            .map(|o| read_id("owner_key_id", o))
            .transpose()?;
        // Stored scoped to the owner; the client sees its own key.
        let idempotency_key = self
            .idempotency_key
            .map(|k| unscoped_idempotency_key(&k).to_owned());
        Ok(Execution {
            id,
            session_id,
            language: self.language,
            source_code: self.source_code,
            status,
            idempotency_key,
            attempts: self.attempts,
            queued_at,
            started_at,
            finished_at,
            options,
            owner,
            report: RunReport {
                stdout: self.stdout,
                stderr: self.stderr,
                execution_time_ms: self.execution_time_ms,
                error_message: self.error_message,
                error_type,
                error_line: self.error_line,
                exit_code: self.exit_code,
                signal: self.signal,
                cpu_time_ms: self.cpu_time_ms,
                memory_kb: self.memory_kb,
                compile,
                limits,
                tests,
                output_files,
            },
        })
    }
}

/// A session row as stored ([`SESSION_COLUMNS`]), ids and times in the backend's own encoding.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct RawSession<Id, Time> {
    pub id: Id,
    pub language: String,
    pub source_code: String,
    pub status: String,
    pub created_at: Time,
    pub updated_at: Time,
    pub latest_execution_id: Option<Id>,
    pub files: Option<String>,
    pub owner_key_id: Option<Id>,
}

impl<Id, Time> RawSession<Id, Time> {
    /// Decode the ids and times with the backend's readers into the domain session.
    pub(crate) fn into_domain(
        self,
        read_id: Reader<Id, Uuid>,
        read_time: Reader<Time, DateTime<Utc>>,
    ) -> Result<Session, DataError> {
        Ok(Session {
            id: read_id("id", self.id)?,
            language: self.language,
            source_code: self.source_code,
            status: self.status,
            created_at: read_time("created_at", self.created_at)?,
            updated_at: read_time("updated_at", self.updated_at)?,
            latest_execution_id: self
                .latest_execution_id
                .map(|l| read_id("latest_execution_id", l))
                .transpose()?,
            files: json::decode_list("files", self.files.as_deref())?,
            owner: self
                .owner_key_id
                .map(|o| read_id("owner_key_id", o))
                .transpose()?,
        })
    }
}

/// The columns every session query selects or returns, the newest execution id included
/// (the `(session_id, id)` index answers it).
pub(crate) const SESSION_COLUMNS: &str = "id, language, source_code, status, created_at, \
     updated_at, files, owner_key_id, (SELECT e.id FROM executions e WHERE e.session_id = sessions.id \
     ORDER BY e.id DESC LIMIT 1) AS latest_execution_id";

/// A new QUEUED execution (of a session, or a one-shot one), before it is written.
pub(crate) fn new_execution(
    session_id: Option<Uuid>,
    language: String,
    source_code: String,
    idempotency_key: Option<String>,
    queued_at: DateTime<Utc>,
    owner: livexec_core::Owner,
) -> Execution {
    Execution {
        id: Uuid::now_v7(),
        session_id,
        language,
        source_code,
        status: Status::Queued,
        idempotency_key,
        attempts: 0,
        queued_at,
        started_at: None,
        finished_at: None,
        options: Default::default(),
        owner,
        report: RunReport::default(),
    }
}

/// What `create_execution` found when it looked up an idempotency key: the execution itself
/// when it is the same request (`same_request`: the same options) on the same session, a
/// conflict when another session owns the key, and a reused key otherwise.
pub(crate) fn resolve_existing(
    existing: Execution,
    session_id: Option<Uuid>,
    same_request: bool,
) -> Result<livexec_core::CreatedExecution, StoreError> {
    if existing.session_id != session_id {
        match (existing.session_id, session_id) {
            // Another session's run, asked from a session: the error of API.md §3.
            (Some(other_session), Some(_)) => {
                Err(StoreError::IdempotencyConflict { other_session })
            }
            // A one-shot's key asked from a session, or a session's from a one-shot.
            _ => Err(StoreError::IdempotencyKeyReused),
        }
    } else if !same_request {
        Err(StoreError::IdempotencyKeyReused)
    } else {
        Ok(livexec_core::CreatedExecution {
            execution: existing,
            created: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_strings_are_errors_not_panics() {
        assert!(parse_status("status", "BOGUS").is_err());
        assert!(parse_uuid("id", "nope").is_err());
        assert!(from_ms("queued_at", i64::MAX).is_err());
        assert_eq!(
            parse_status("status", "RUNNING").ok(),
            Some(Status::Running)
        );
    }

    #[test]
    fn now_is_whole_milliseconds() {
        let t = now_ms();
        assert_eq!(t.timestamp_subsec_nanos() % 1_000_000, 0);
        assert_eq!(from_ms("t", t.timestamp_millis()).ok(), Some(t));
    }
}
