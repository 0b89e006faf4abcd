-- One-shot runs (POST /executions) have no session: session_id becomes nullable. SQLite cannot
-- drop NOT NULL, so the table is rebuilt. The migration runs in a transaction (sqlx), where
-- foreign keys cannot be turned off: dropping the old table deletes its rows first and that
-- cascades to jobs, so the jobs are kept aside and put back after.
CREATE TEMP TABLE jobs_kept AS SELECT * FROM jobs;
CREATE TABLE executions_rebuilt (
    id                TEXT PRIMARY KEY NOT NULL,
    session_id        TEXT REFERENCES sessions (id) ON DELETE CASCADE,
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
    finished_at       INTEGER,
    compile           TEXT,
    options           TEXT,
    session_files     TEXT,
    limits            TEXT,
    tests             TEXT,
    output_files      TEXT
);
INSERT INTO executions_rebuilt (id, session_id, language, source_code, status, stdout, stderr,
    execution_time_ms, error_message, error_type, exit_code, signal, cpu_time_ms, memory_kb,
    idempotency_key, attempts, queued_at, started_at, finished_at, compile, options,
    session_files, limits, tests, output_files)
SELECT id, session_id, language, source_code, status, stdout, stderr,
    execution_time_ms, error_message, error_type, exit_code, signal, cpu_time_ms, memory_kb,
    idempotency_key, attempts, queued_at, started_at, finished_at, compile, options,
    session_files, limits, tests, output_files
FROM executions;
DROP TABLE executions;
ALTER TABLE executions_rebuilt RENAME TO executions;
CREATE INDEX executions_session_id_id ON executions (session_id, id);
CREATE INDEX executions_status_queued_at ON executions (status, queued_at);
INSERT INTO jobs SELECT * FROM jobs_kept;
DROP TABLE jobs_kept;
