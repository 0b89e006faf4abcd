-- The embedded queue's claim is one statement: the UPDATE that leases a job (the only
-- statement that sets jobs.lease_token to a token; retry and release set it to NULL, extend
-- names lease_until only) fires this trigger, which records the job's owner as served last
-- (queue_owners.served becomes the highest so far, as the fair choice of the next claim
-- expects). Before, the claim was BEGIN IMMEDIATE, the UPDATE, this INSERT and COMMIT: four
-- round trips to SQLite's thread on every run's path (issue 9). A single UPDATE takes the
-- write lock before it reads, so the choice and the lease still see one state.
CREATE TRIGGER served_on_claim AFTER UPDATE OF lease_token ON jobs
WHEN NEW.lease_token IS NOT NULL
BEGIN
    INSERT INTO queue_owners (owner, served)
    SELECT NEW.owner, COALESCE(MAX(served), 0) + 1 FROM queue_owners WHERE true
    ON CONFLICT (owner) DO UPDATE SET served = excluded.served;
END;
