-- livexec schema for SQLite.
-- Ids are hyphenated lowercase UUID text (v7 for executions, so text order is time order).
-- Timestamps are INTEGER unix milliseconds. Output is raw BLOB so any bytes store.

CREATE TABLE sessions (
    id          TEXT PRIMARY KEY NOT NULL,
    language    TEXT NOT NULL,
    source_code TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT 'ACTIVE',
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

CREATE TABLE executions (
    id                TEXT PRIMARY KEY NOT NULL,
    session_id        TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    language          TEXT NOT NULL,
    source_code       TEXT NOT NULL,
    status            TEXT NOT NULL,
    stdout            BLOB NOT NULL DEFAULT x'',
    stderr            BLOB NOT NULL DEFAULT x'',
    execution_time_ms INTEGER NOT NULL DEFAULT 0,
    error_message     TEXT,
    error_type        TEXT,
    exit_code         INTEGER,
    signal            INTEGER,
    cpu_time_ms       INTEGER,
    memory_kb         INTEGER,
    idempotency_key   TEXT UNIQUE,
    attempts          INTEGER NOT NULL DEFAULT 0,
    queued_at         INTEGER NOT NULL,
    started_at        INTEGER,
    finished_at       INTEGER
);

CREATE INDEX executions_session_id_id ON executions (session_id, id);
CREATE INDEX executions_status_queued_at ON executions (status, queued_at);

-- The embedded queue (owned by the queue crate, created here so one migration set covers the
-- whole database and the job can be inserted in the execution's own transaction).
CREATE TABLE jobs (
    execution_id TEXT PRIMARY KEY NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    attempts     INTEGER NOT NULL DEFAULT 0,
    run_at       INTEGER NOT NULL,
    lease_until  INTEGER,
    lease_token  TEXT,
    worker       TEXT
);

CREATE INDEX jobs_run_at ON jobs (run_at);
