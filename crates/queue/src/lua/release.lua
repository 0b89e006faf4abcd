-- ARGV: 2 entry id, 3 nonce, 4 execution id. Returns 1 if handed back (to the end of its
-- owner's list).
local id, nonce, eid = ARGV[2], ARGV[3], ARGV[4]
if not owns(id, nonce) then return 0 end
drop_entry(id)
if redis.call('HINCRBY', ATTEMPTS, eid, -1) <= 0 then
  redis.call('HDEL', ATTEMPTS, eid)
end
push_job(eid, owner_of(eid))
arrived(eid)
return 1
