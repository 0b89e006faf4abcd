-- Shared prelude of every queue script (prepended by src/redis.rs).
-- KEYS: 1 stream, 2 delayed zset, 3 attempts hash, 4 queued set, 5 leases hash, 6 ring zset,
-- 7 served hash, 8 owners hash, 9 sequence counter, 10 arrivals stream, 11 the prefix of the
-- per-owner pending lists (`<KEYS[11]>:<owner>`; not a key itself).
-- ARGV[1] is always the consumer group.
local STREAM, DELAYED, ATTEMPTS, QUEUED, LEASES = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local RING, SERVED, OWNERS, SEQ, ARRIVALS = KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10]
local PENDING = KEYS[11]
local GROUP = ARGV[1]

-- Ring score of an owner never served: below every served one (served scores are the sequence
-- counter, from 1), in the order the owners joined.
local NEVER_SERVED = 2 ^ 50

-- Arrivals entries kept (approximately): the feed only needs the latest.
local ARRIVALS_KEPT = 1000

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

-- The list of an owner's runnable jobs ('' is "no owner").
local function pending_key(owner)
  return PENDING .. ':' .. owner
end

-- The owner of a job ('' when it has none, or was enqueued before owners were kept).
local function owner_of(eid)
  return redis.call('HGET', OWNERS, eid) or ''
end

-- Make a job runnable at the end of its owner's list, and put the owner in the ring if it is
-- not there: at its last service's place, or before every served owner if never served.
local function push_job(eid, owner)
  redis.call('RPUSH', pending_key(owner), eid)
  if not redis.call('ZSCORE', RING, owner) then
    local score = redis.call('HGET', SERVED, owner)
    if not score then
      score = string.format('%.0f', redis.call('INCR', SEQ) - NEVER_SERVED)
    end
    redis.call('ZADD', RING, score, owner)
  end
end

-- Tell the arrivals feeds (src/redis_arrivals.rs) that a job became runnable.
local function arrived(eid)
  redis.call('XADD', ARRIVALS, 'MAXLEN', '~', ARRIVALS_KEPT, '*', 'eid', eid)
end
