-- livexec schema for PostgreSQL.
-- Ids are UUID (v7 for executions, so byte order is time order). Timestamps are timestamptz,
-- written with millisecond precision. Output is raw BYTEA so NUL and invalid UTF-8 store.

CREATE TABLE sessions (
    id          UUID PRIMARY KEY,
    language    TEXT NOT NULL,
    source_code TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT 'ACTIVE',
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE executions (
    id                UUID PRIMARY KEY,
    session_id        UUID NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    language          TEXT NOT NULL,
    source_code       TEXT NOT NULL,
    status            TEXT NOT NULL,
    stdout            BYTEA NOT NULL DEFAULT ''::bytea,
    stderr            BYTEA NOT NULL DEFAULT ''::bytea,
    execution_time_ms BIGINT NOT NULL DEFAULT 0,
    error_message     TEXT,
    error_type        TEXT,
    exit_code         INTEGER,
    signal            INTEGER,
    cpu_time_ms       BIGINT,
    memory_kb         BIGINT,
    idempotency_key   TEXT UNIQUE,
    attempts          INTEGER NOT NULL DEFAULT 0,
    queued_at         TIMESTAMPTZ NOT NULL,
    started_at        TIMESTAMPTZ,
    finished_at       TIMESTAMPTZ
);

CREATE INDEX executions_session_id_id ON executions (session_id, id);
CREATE INDEX executions_status_queued_at ON executions (status, queued_at);

-- The database-backed queue (used by the queue crate when there is no Redis). Times are unix ms.
CREATE TABLE jobs (
    execution_id UUID PRIMARY KEY REFERENCES executions (id) ON DELETE CASCADE,
    attempts     INTEGER NOT NULL DEFAULT 0,
    run_at       BIGINT NOT NULL,
    lease_until  BIGINT,
    lease_token  TEXT,
    worker       TEXT
);

CREATE INDEX jobs_run_at ON jobs (run_at);
