-- The compile stage of compiled languages: a JSON object
-- {"status","stdout","stderr","exit_code","time_ms","memory_kb"}, NULL for interpreted ones.
-- TEXT, not JSONB: JSONB refuses \u0000, and compiler output may hold NUL.
ALTER TABLE executions ADD COLUMN compile TEXT;
