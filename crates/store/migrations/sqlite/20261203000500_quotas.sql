-- Quotas (issue 13, tiers): executions each API key created per UTC day, counted in the
-- transaction that creates an execution. A counter of its own rather than a count of
-- executions rows, so that deleting executions (DELETE /executions/:id, retention) gives
-- no day's quota back. day is 'YYYY-MM-DD' (UTC).
CREATE TABLE key_daily_executions (
    key_id TEXT NOT NULL,
    day TEXT NOT NULL,
    executions BIGINT NOT NULL,
    PRIMARY KEY (key_id, day)
);
-- The concurrent quota counts a key's QUEUED and RUNNING executions on every create: this
-- index holds only those, so the count never walks a key's history.
CREATE INDEX executions_owner_unfinished ON executions (owner_key_id)
    WHERE status IN ('QUEUED', 'RUNNING');
