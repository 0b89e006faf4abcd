-- ARGV: 2 entry id, 3 nonce, 4 execution id. Returns 1 if the job was removed.
local id, nonce, eid = ARGV[2], ARGV[3], ARGV[4]
if not owns(id, nonce) then return 0 end
drop_entry(id)
redis.call('HDEL', ATTEMPTS, eid)
redis.call('HDEL', OWNERS, eid)
redis.call('ZREM', DELAYED, eid)
redis.call('SREM', QUEUED, eid)
return 1
