-- Shared prelude of every queue script (prepended by src/redis.rs).
-- KEYS: 1 stream, 2 delayed zset, 3 attempts hash, 4 queued set, 5 leases hash.
-- ARGV[1] is always the consumer group.
local STREAM, DELAYED, ATTEMPTS, QUEUED, LEASES = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local GROUP = ARGV[1]

-- Redis server time in unix milliseconds: every worker measures leases on one clock.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Create the stream and its group when the stream is missing (first use, or flushed away).
local function ensure_group()
  if redis.call('EXISTS', STREAM) == 0 then
    redis.call('XGROUP', 'CREATE', STREAM, GROUP, '0', 'MKSTREAM')
  end
end

-- The lease named by (entry id, nonce) is the entry's current one.
local function owns(id, nonce)
  return redis.call('HGET', LEASES, id) == nonce
end

-- Drop a claimed entry from the group and the stream.
local function drop_entry(id)
  redis.call('HDEL', LEASES, id)
  redis.call('XACK', STREAM, GROUP, id)
  redis.call('XDEL', STREAM, id)
end
