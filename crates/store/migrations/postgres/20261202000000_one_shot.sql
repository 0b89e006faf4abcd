-- One-shot runs (POST /executions) have no session: session_id becomes nullable.
ALTER TABLE executions ALTER COLUMN session_id DROP NOT NULL;
