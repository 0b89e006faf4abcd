-- ARGV: 2 entry id, 3 nonce, 4 execution id. Returns 1 if handed back.
local id, nonce, eid = ARGV[2], ARGV[3], ARGV[4]
if not owns(id, nonce) then return 0 end
drop_entry(id)
if redis.call('HINCRBY', ATTEMPTS, eid, -1) <= 0 then
  redis.call('HDEL', ATTEMPTS, eid)
end
ensure_group()
redis.call('XADD', STREAM, '*', 'eid', eid)
return 1
