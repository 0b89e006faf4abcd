-- The compile stage of compiled languages: a JSON object
-- {"status","stdout","stderr","exit_code","time_ms","memory_kb"}, NULL for interpreted ones.
ALTER TABLE executions ADD COLUMN compile TEXT;
