-- The line of the user's main file a failed run's error points at (1-based), when the
-- toolchain printed one: NULL otherwise, and for every run recorded before this column.
ALTER TABLE executions ADD COLUMN error_line INTEGER;
