-- A finished execution's usage is added by the database in the statement that records the
-- result, so that the result and its usage commit together in one round trip instead of a
-- four-statement transaction (issue 9: the write after every run). finish_execution's UPDATE
-- is the only statement whose SET list names execution_time_ms and that finds the execution
-- RUNNING; fail_execution (the platform giving up, no run time) and retention name other
-- columns and add nothing, as before. The values are those finish_execution added itself:
-- negatives count as 0, memory_kib_ms is memory_kb × execution_time_ms, the day is the UTC
-- day of finished_at.
CREATE FUNCTION usage_on_finish() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO usage_daily (owner, day, language, executions, cpu_ms, wall_ms, memory_kib_ms)
    VALUES (
        COALESCE(CAST(NEW.owner_key_id AS TEXT), ''),
        to_char(NEW.finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD'),
        NEW.language,
        1,
        GREATEST(COALESCE(NEW.cpu_time_ms, 0), 0),
        GREATEST(NEW.execution_time_ms, 0),
        GREATEST(COALESCE(NEW.memory_kb, 0), 0) * GREATEST(NEW.execution_time_ms, 0))
    ON CONFLICT (owner, day, language) DO UPDATE SET
        executions = usage_daily.executions + 1,
        cpu_ms = usage_daily.cpu_ms + excluded.cpu_ms,
        wall_ms = usage_daily.wall_ms + excluded.wall_ms,
        memory_kib_ms = usage_daily.memory_kib_ms + excluded.memory_kib_ms;
    RETURN NULL;
END;
$$;
CREATE TRIGGER usage_on_finish AFTER UPDATE OF execution_time_ms ON executions
FOR EACH ROW
WHEN (OLD.status = 'RUNNING' AND NEW.status IN ('COMPLETED', 'FAILED', 'TIMEOUT'))
EXECUTE FUNCTION usage_on_finish();
