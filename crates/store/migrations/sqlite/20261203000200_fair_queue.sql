-- Fair scheduling between owners on the embedded queue (issue 13). A claim serves the owner
-- with the fewest running jobs among those with a due job, ties going to the one served
-- longest ago (round-robin), first come first served within one owner.
--
-- queue_owners remembers when each owner was last served, as a counter that goes up by one
-- per claim (a clock would give ties within a millisecond). An owner without a row was never
-- served, which goes before any that was. '' is "no owner", a group of its own.
CREATE TABLE queue_owners (
    owner  TEXT PRIMARY KEY NOT NULL,
    served INTEGER NOT NULL
);
CREATE INDEX queue_owners_served ON queue_owners (served);

-- The owners with jobs are found by walking this index one owner at a time (a loose index
-- scan), and each owner's next due job is the first of its entries here (execution_id
-- breaks ties of run_at, as in the claim's ORDER BY, so no sort is needed).
CREATE INDEX jobs_owner_run_at ON jobs (owner, run_at, execution_id);
-- Each owner's running jobs are counted here; only leased rows are in it.
CREATE INDEX jobs_owner_leased ON jobs (owner, lease_until) WHERE lease_until IS NOT NULL;
