-- Owners (issue 13): sessions and executions belong to the API key that created them; NULL is
-- "created while the service was open". The embedded queue's jobs carry their owner too ('' for
-- none) so the claim can be fair between owners.
--
-- Idempotency keys become scoped to their owner: the stored value is "<key id>:<key>" or
-- "-:<key>" (see livexec_core::tenant::scoped_idempotency_key), so the column's UNIQUE
-- constraint holds per owner and no table has to be rebuilt. Existing keys had no owner.
ALTER TABLE sessions ADD COLUMN owner_key_id UUID;
ALTER TABLE executions ADD COLUMN owner_key_id UUID;
ALTER TABLE jobs ADD COLUMN owner TEXT NOT NULL DEFAULT '';
UPDATE executions SET idempotency_key = '-:' || idempotency_key WHERE idempotency_key IS NOT NULL;
CREATE INDEX sessions_owner_key_id ON sessions (owner_key_id);
CREATE INDEX executions_owner_key_id_queued_at ON executions (owner_key_id, queued_at);
