-- ARGV: 2 consumer, 3 entry id, 4 nonce, 5 lease ms, 6 horizon ms. Returns 1 if extended.
local consumer, id, nonce = ARGV[2], ARGV[3], ARGV[4]
local lease, horizon = tonumber(ARGV[5]), tonumber(ARGV[6])
if not owns(id, nonce) then return 0 end
if redis.call('EXISTS', STREAM) == 0 then
  redis.call('HDEL', LEASES, id)
  return 0
end
local pending = redis.call('XPENDING', STREAM, GROUP, id, id, 1)
if #pending == 0 then
  redis.call('HDEL', LEASES, id)
  return 0
end
redis.call('XCLAIM', STREAM, GROUP, consumer, 0, id, 'IDLE', horizon - lease, 'JUSTID')
return 1
