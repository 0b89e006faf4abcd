-- Usage (issue 13): what each owner ran, per UTC day and runtime, kept apart from the
-- executions so deleting them (or retention emptying them) does not erase what was used.
-- finish_execution adds to it in the same transaction. owner is the key id, '' for none (the
-- service was open); day is 'YYYY-MM-DD' (UTC, the day the execution finished).
CREATE TABLE usage_daily (
    owner         TEXT NOT NULL,
    day           TEXT NOT NULL,
    language      TEXT NOT NULL,
    executions    INTEGER NOT NULL DEFAULT 0,
    cpu_ms        INTEGER NOT NULL DEFAULT 0,
    wall_ms       INTEGER NOT NULL DEFAULT 0,
    memory_kib_ms INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (owner, day, language)
);
CREATE INDEX usage_daily_day ON usage_daily (day);
-- What already finished counts from the start (executions the platform gave up on, with
-- error_type InternalError and no run time, are left out as finish_execution leaves them out).
INSERT INTO usage_daily (owner, day, language, executions, cpu_ms, wall_ms, memory_kib_ms)
SELECT COALESCE(owner_key_id, ''), strftime('%Y-%m-%d', finished_at / 1000, 'unixepoch'),
    language, COUNT(*), SUM(COALESCE(cpu_time_ms, 0)), SUM(execution_time_ms),
    SUM(COALESCE(memory_kb, 0) * execution_time_ms)
FROM executions
WHERE status IN ('COMPLETED', 'FAILED', 'TIMEOUT') AND finished_at IS NOT NULL
    AND started_at IS NOT NULL
    AND NOT (error_type IS 'InternalError' AND execution_time_ms = 0)
GROUP BY 1, 2, 3;
-- Retention (LIVEXEC_RETENTION_DAYS) looks for finished executions by when they finished.
CREATE INDEX executions_finished_at ON executions (finished_at);
