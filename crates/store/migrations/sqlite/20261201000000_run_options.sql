-- Run options of issue 11. Every column is JSON text (TEXT, not JSONB: JSONB refuses \u0000,
-- and a program's output or a file may hold NUL; serde_json escapes every control character,
-- so the text itself never holds one). NULL means "none" (the defaults of a bodiless run).
--
-- sessions.files: the session's extra files, [{"name","content"(base64)}], replaced whole.
-- executions.options: what the run request asked (RunOptions, its own files only).
-- executions.session_files: the session's files as the run snapshotted them.
-- executions.limits / tests / output_files: what the run gave (EffectiveLimits, [TestResult],
-- [{"name","content"}]).
ALTER TABLE sessions ADD COLUMN files TEXT;
ALTER TABLE executions ADD COLUMN options TEXT;
ALTER TABLE executions ADD COLUMN session_files TEXT;
ALTER TABLE executions ADD COLUMN limits TEXT;
ALTER TABLE executions ADD COLUMN tests TEXT;
ALTER TABLE executions ADD COLUMN output_files TEXT;
