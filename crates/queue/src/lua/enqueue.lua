-- ARGV: 2 execution id, 3 owner ('' for none). Returns 1 when added, 0 when the job already
-- exists.
local eid, owner = ARGV[2], ARGV[3]
if redis.call('SADD', QUEUED, eid) == 0 then
  return 0
end
if owner ~= '' then
  redis.call('HSET', OWNERS, eid, owner)
end
push_job(eid, owner)
arrived(eid)
return 1
