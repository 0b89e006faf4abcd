-- ARGV: 2 entry id, 3 nonce, 4 execution id, 5 delay ms. Returns 1 if rescheduled.
local id, nonce, eid, delay = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
if not owns(id, nonce) then return 0 end
drop_entry(id)
redis.call('ZADD', DELAYED, now_ms() + delay, eid)
return 1
